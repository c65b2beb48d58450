//! The `urls:PATH` source against a local server: each listed image is one
//! pair row, failures included.

use std::sync::Arc;

use anchor_core::step::{self, RunOptions};
use anchor_core::store::TableReader;
use anchor_core::tables::pairs;
use anchor_scrape::local_server::{LocalServer, Request, Response};
use anchor_scrape::step::{ScrapeParams, ScrapeStep};
use arrow_array::cast::AsArray;

fn routes(req: &Request, _attempt: u32) -> Response {
    match req.target.as_str() {
        "/robots.txt" => Response::new(200, "text/plain", "User-agent: *\nDisallow: /private/\n"),
        "/ok.jpg" => Response::new(
            200,
            "image/jpeg",
            anchor_scrape::demo::photos::jpeg(&anchor_scrape::demo::photos::generated(1), 80),
        ),
        _ => Response::new(404, "text/plain", "no"),
    }
}

#[test]
fn listed_images_become_pairs_with_status() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(LocalServer::start(Arc::new(routes))).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("list.jsonl");
    let base = format!("http://{}", server.addr);
    std::fs::write(
        &list,
        format!(
            "{{\"url\":\"{base}/ok.jpg\",\"caption\":\"A listed photo\",\"outlet\":\"bbc\"}}\n\
             {{\"url\":\"{base}/missing.jpg\",\"caption\":\"Gone\"}}\n\
             {{\"url\":\"{base}/private/x.jpg\",\"caption\":\"Disallowed\"}}\n\
             {{\"url\":\"{base}/ok.jpg\",\"caption\":\"A listed photo\",\"outlet\":\"bbc\"}}\n"
        ),
    )
    .unwrap();
    let mut params = ScrapeParams::urls(list);
    if let Some(f) = params.fetch.as_mut() {
        f.allow_private_addresses = true;
        f.default_rate_per_sec = 100.0;
    }
    let step = ScrapeStep::new(params, None).unwrap();
    let out = dir.path().join("out");
    step::run(&step, &out, &RunOptions::default()).unwrap();
    let reader = TableReader::open(&out, pairs::NAME, None).unwrap();
    let batches: Vec<_> = reader.read_all(None, 1024).map(|b| b.unwrap()).collect();
    let mut got: Vec<(String, String, String)> = Vec::new();
    for b in &batches {
        let url = b
            .column_by_name(pairs::IMAGE_URL)
            .unwrap()
            .as_string::<i32>();
        let status = b.column_by_name(pairs::STATUS).unwrap().as_string::<i32>();
        let source = b.column_by_name(pairs::SOURCE).unwrap().as_string::<i32>();
        for i in 0..b.num_rows() {
            got.push((
                url.value(i).rsplit('/').next().unwrap().to_owned(),
                status.value(i).to_owned(),
                source.value(i).to_owned(),
            ));
        }
    }
    got.sort();
    assert_eq!(
        got,
        vec![
            (
                "missing.jpg".into(),
                "failed_to_download".into(),
                "urls".into()
            ),
            ("ok.jpg".into(), "success".into(), "urls".into()),
            ("x.jpg".into(), "disallowed".into(), "urls".into()),
        ],
        "the duplicate listing is one pair"
    );
    assert_eq!(server.hits("/private/x.jpg"), 0);
}
