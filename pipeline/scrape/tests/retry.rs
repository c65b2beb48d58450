//! `--retry-failed` on the demo source: only rows with a transient error
//! class are fetched again, final failures and successes are kept as they
//! are, and the tables stay sorted.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anchor_core::Outlet;
use anchor_core::step::{self, Outcome, RunOptions};
use anchor_core::store::TableReader;
use anchor_core::tables;
use anchor_core::tables::{articles, pairs};
use anchor_scrape::ErrorClass;
use anchor_scrape::step::{ScrapeParams, ScrapeStep};

const N_ARTICLES: usize = 60;

fn photos_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/models/photos");
    dir.is_dir().then_some(dir)
}

fn read_pairs(out: &Path) -> Vec<tables::pairs::Row> {
    let reader = TableReader::open(out, pairs::NAME, None).unwrap();
    reader
        .read_all(None, 4096)
        .flat_map(|b| tables::pairs::from_batch(&b.unwrap()).unwrap())
        .collect()
}

fn read_articles(out: &Path) -> Vec<tables::articles::Row> {
    let reader = TableReader::open(out, articles::NAME, None).unwrap();
    reader
        .read_all(None, 4096)
        .flat_map(|b| tables::articles::from_batch(&b.unwrap()).unwrap())
        .collect()
}

fn transient(class: Option<&str>) -> bool {
    class
        .and_then(ErrorClass::parse)
        .is_some_and(ErrorClass::is_transient)
}

/// Requests the demo server saw for `url` on `outlet`'s port.
fn hits(step: &ScrapeStep, outlet: &str, url: &str) -> u32 {
    let outlet: Outlet = outlet.parse().unwrap();
    let path = url::Url::parse(url).unwrap().path().to_owned();
    step.demo_servers().unwrap().hits(outlet, &path)
}

/// Whether every part file of `table` holds its rows sorted by id (parts
/// are chunks of the source's list, so order is per part).
fn parts_sorted_by_id(out: &Path, table: &str) -> bool {
    let reader = TableReader::open(out, table, None).unwrap();
    reader.parts().iter().all(|path| {
        let ids: Vec<String> = anchor_core::store::read_file(path)
            .unwrap()
            .iter()
            .flat_map(|b| {
                if table == pairs::NAME {
                    tables::pairs::from_batch(b)
                        .unwrap()
                        .into_iter()
                        .map(|p| p.id)
                        .collect::<Vec<_>>()
                } else {
                    tables::articles::from_batch(b)
                        .unwrap()
                        .into_iter()
                        .map(|a| a.id)
                        .collect()
                }
            })
            .collect();
        ids.windows(2).all(|w| w[0] <= w[1])
    })
}

#[test]
fn retry_failed_refetches_only_transient_rows() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    // No retries within a fetch, so the demo's "fail once" faults (429 with
    // Retry-After, 503, a slow first answer) end the first run transient.
    let mut params = ScrapeParams::demo(N_ARTICLES);
    if let Some(f) = params.fetch.as_mut() {
        f.max_retries = 0;
    }
    let mut step = ScrapeStep::new(params, photos_dir()).unwrap();
    let first = step::run(&step, out, &RunOptions::default()).unwrap();
    assert!(matches!(first, Outcome::Complete { .. }), "{first:?}");
    let pairs1 = read_pairs(out);
    let articles1 = read_articles(out);
    let hits1: BTreeMap<String, u32> = pairs1
        .iter()
        .map(|p| (p.id.clone(), hits(&step, &p.outlet, &p.image_url)))
        .collect();
    let article_hits1: BTreeMap<String, u32> = articles1
        .iter()
        .map(|a| (a.url.clone(), hits(&step, &a.outlet, &a.url)))
        .collect();

    let classes: Vec<&str> = pairs1
        .iter()
        .filter_map(|p| p.error_class.as_deref())
        .collect();
    for needed in [
        "rate_limited",
        "server_error",
        "timeout",
        "not_found",
        "forbidden",
        "robots_disallowed",
    ] {
        assert!(classes.contains(&needed), "no {needed} pair in {classes:?}");
    }

    step.set_retry_failed(true);
    let second = step::run(&step, out, &RunOptions::default()).unwrap();
    assert!(matches!(second, Outcome::Complete { .. }), "{second:?}");
    let pairs2 = read_pairs(out);
    let articles2 = read_articles(out);
    assert!(parts_sorted_by_id(out, pairs::NAME));
    assert!(parts_sorted_by_id(out, articles::NAME));

    let after: BTreeMap<&str, &tables::pairs::Row> =
        pairs2.iter().map(|p| (p.id.as_str(), p)).collect();
    let mut recovered = 0;
    let mut still_failing = 0;
    for p in &pairs1 {
        let delta = hits(&step, &p.outlet, &p.image_url) - hits1[&p.id];
        let now = after
            .get(p.id.as_str())
            .unwrap_or_else(|| panic!("pair {} lost by the retry", p.id));
        if transient(p.error_class.as_deref()) {
            assert!(delta >= 1, "transient {:?} not refetched", p.error_class);
            assert!(now.attempts > p.attempts, "attempts must add up");
            if now.status == "success" {
                recovered += 1;
                assert!(now.bytes.is_some() && now.sha256.is_some());
            } else {
                still_failing += 1;
                assert!(transient(now.error_class.as_deref()), "{now:?}");
            }
        } else {
            assert_eq!(delta, 0, "{:?} row fetched again", p.error_class);
            assert_eq!(*now, p, "a non-transient row changed");
        }
    }
    // "Once" faults recover, "always" faults stay transient.
    assert!(
        recovered > 0 && still_failing > 0,
        "{recovered} {still_failing}"
    );

    // Articles: final ones untouched and not requested; the transient
    // "503 once" page recovers and brings its pairs.
    let mut recovered_articles = 0;
    let after_articles: BTreeMap<&str, &tables::articles::Row> =
        articles2.iter().map(|a| (a.url.as_str(), a)).collect();
    for a in &articles1 {
        let delta = hits(&step, &a.outlet, &a.url) - article_hits1[&a.url];
        let now = after_articles[a.url.as_str()];
        if transient(a.error_class.as_deref()) {
            assert!(delta >= 1);
            if now.status == "success" {
                recovered_articles += 1;
                assert!(pairs2.iter().any(|p| p.article_id == now.id));
            }
        } else {
            assert_eq!(delta, 0, "{:?} article fetched again", a.error_class);
            assert_eq!(now, a);
        }
    }
    assert!(recovered_articles > 0);
    assert!(pairs2.len() > pairs1.len());

    // The retry is recorded as its own run: asking again is up to date.
    let third = step::run(&step, out, &RunOptions::default()).unwrap();
    assert!(matches!(third, Outcome::UpToDate { .. }), "{third:?}");
}

#[test]
fn retry_failed_without_a_previous_run_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut params = ScrapeParams::demo(4);
    params.retry_failed = true;
    let step = ScrapeStep::new(params, photos_dir()).unwrap();
    let err = step::run(&step, dir.path(), &RunOptions::default()).unwrap_err();
    // Refused while planning, before the runner records anything.
    assert!(
        anchor_core::ledger::read_record(dir.path(), "scrape")
            .unwrap()
            .is_none()
    );
    assert!(
        err.to_string().contains("retry") || format!("{err:?}").contains("NothingToRetry"),
        "{err}"
    );
}

fn flaky_routes(
    req: &anchor_scrape::local_server::Request,
    attempt: u32,
) -> anchor_scrape::local_server::Response {
    use anchor_scrape::local_server::Response;
    let jpeg = || anchor_scrape::demo::photos::jpeg(&anchor_scrape::demo::photos::generated(1), 80);
    match req.target.as_str() {
        "/robots.txt" => Response::new(200, "text/plain", "User-agent: *\nAllow: /\n"),
        "/ok.jpg" => Response::new(200, "image/jpeg", jpeg()),
        "/flaky.jpg" if attempt == 0 => Response::new(503, "text/plain", "busy"),
        "/flaky.jpg" => Response::new(200, "image/jpeg", jpeg()),
        _ => Response::new(404, "text/plain", "no"),
    }
}

#[test]
fn retry_failed_on_a_url_list_refetches_only_the_transient_image() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt
        .block_on(anchor_scrape::local_server::LocalServer::start(
            std::sync::Arc::new(flaky_routes),
        ))
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("list.csv");
    let base = format!("http://{}", server.addr);
    std::fs::write(
        &list,
        format!(
            "url,caption\n{base}/ok.jpg,Fine\n{base}/flaky.jpg,Busy once\n{base}/missing.jpg,Gone\n"
        ),
    )
    .unwrap();
    let mut params = ScrapeParams::urls(list);
    if let Some(f) = params.fetch.as_mut() {
        f.allow_private_addresses = true;
        f.default_rate_per_sec = 100.0;
        f.max_retries = 0;
    }
    let out = dir.path().join("out");
    let first = ScrapeStep::new(params.clone(), None).unwrap();
    step::run(&first, &out, &RunOptions::default()).unwrap();
    let status = |rows: &[tables::pairs::Row], name: &str| -> String {
        rows.iter()
            .find(|p| p.image_url.ends_with(name))
            .map(|p| p.status.clone())
            .unwrap()
    };
    let before = read_pairs(&out);
    assert_eq!(status(&before, "/flaky.jpg"), "failed_to_download");

    params.retry_failed = true;
    let retry = ScrapeStep::new(params, None).unwrap();
    step::run(&retry, &out, &RunOptions::default()).unwrap();
    let after = read_pairs(&out);
    assert_eq!(after.len(), before.len());
    assert_eq!(status(&after, "/flaky.jpg"), "success");
    assert_eq!(server.hits("/flaky.jpg"), 2);
    assert_eq!(server.hits("/ok.jpg"), 1, "a success was fetched again");
    assert_eq!(server.hits("/missing.jpg"), 1, "a 404 was fetched again");
    for (b, a) in before.iter().zip(&after) {
        if !b.image_url.ends_with("/flaky.jpg") {
            assert_eq!(a, b);
        }
    }
}
