//! `anchor scrape` on the embedded demo source: idempotence, a real
//! `kill -9` mid-run and resume, and `anchor status`.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::util::{Run, TestDir};

const SMALL: &[&str] = &[
    "--set",
    "scrape.demo_articles=48",
    "--set",
    "scrape.articles_per_part=4",
];

/// Every Parquet file of the scrape's tables, relative path → bytes.
fn table_files(out: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for table in ["articles", "pairs"] {
        for entry in std::fs::read_dir(out.join(table)).unwrap() {
            let entry = entry.unwrap();
            let name = entry.file_name().to_string_lossy().into_owned();
            files.push((
                format!("{table}/{name}"),
                std::fs::read(entry.path()).unwrap(),
            ));
        }
    }
    files.sort();
    files
}

fn markers(out: &Path) -> usize {
    std::fs::read_dir(out.join("scrape/parts"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                .count()
        })
        .unwrap_or(0)
}

#[test]
fn demo_scrape_is_idempotent_and_survives_kill_9() {
    let dir = TestDir::new();
    let reference = Run::of(
        dir.anchor()
            .args(SMALL)
            .args(["--out", "reference", "scrape"]),
    )
    .success();
    assert!(
        reference.stdout().contains("scrape: done"),
        "{}",
        reference.stdout()
    );
    let again = Run::of(
        dir.anchor()
            .args(SMALL)
            .args(["--out", "reference", "scrape"]),
    )
    .success();
    assert!(
        again.stdout().contains("scrape: up to date"),
        "{}",
        again.stdout()
    );

    let status = Run::of(
        dir.anchor()
            .args(SMALL)
            .args(["--out", "reference", "status"]),
    )
    .success()
    .stdout();
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("scrape") && l.contains("done")),
        "{status}"
    );

    // Kill a real anchor process once a few parts are committed.
    let mut child = dir
        .anchor()
        .args(SMALL)
        .args(["--out", "killed", "--jobs", "1", "scrape"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let killed = dir.path().join("killed");
    let deadline = Instant::now() + Duration::from_secs(120);
    while markers(&killed) < 2 {
        assert!(Instant::now() < deadline, "the scrape made no progress");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the scrape finished before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let committed = markers(&killed);
    assert!(
        committed < 12,
        "the kill must land mid-run ({committed} of 12 parts)"
    );

    let partial = Run::of(dir.anchor().args(SMALL).args(["--out", "killed", "status"]))
        .success()
        .stdout();
    assert!(partial.contains("partial"), "{partial}");

    let resumed = Run::of(dir.anchor().args(SMALL).args(["--out", "killed", "scrape"]))
        .success()
        .stdout();
    assert!(
        resumed.contains(&format!("{committed} resumed")),
        "{resumed}"
    );
    assert_eq!(
        table_files(&killed),
        table_files(&dir.path().join("reference"))
    );
}

type Routes = std::collections::BTreeMap<String, (&'static str, Vec<u8>)>;
type Hits = std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, u32>>>;

/// A one-thread HTTP/1.1 server on 127.0.0.1 for the live source: the
/// routes `make` builds from the bound address, 404 otherwise; counts
/// requests per path.
fn serve(make: impl FnOnce(std::net::SocketAddr) -> Routes) -> (std::net::SocketAddr, Hits) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let routes = make(addr);
    let hits: Hits = Default::default();
    let hits2 = std::sync::Arc::clone(&hits);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buf = Vec::new();
            let mut chunk = [0u8; 1024];
            while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut chunk) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                }
            }
            let head = String::from_utf8_lossy(&buf).into_owned();
            let target = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
            *hits2.lock().unwrap().entry(target.clone()).or_insert(0) += 1;
            let (status, ctype, body) = match routes.get(&target) {
                Some((t, b)) => ("200 OK", *t, b.clone()),
                None => ("404 Not Found", "text/plain", b"no".to_vec()),
            };
            let _ = stream.write_all(
                format!(
                    "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )
                .as_bytes(),
            );
            let _ = stream.write_all(&body);
        }
    });
    (addr, hits)
}

#[test]
fn live_source_keeps_the_date_range_and_resumes_from_its_list() {
    let dir = TestDir::new();
    let jpeg = anchor_scrape::demo::photos::jpeg(&anchor_scrape::demo::photos::generated(5), 80);
    let (addr, hits) = serve(|addr| {
        let mut routes = Routes::new();
        routes.insert(
            "/sitemap.xml".to_owned(),
            (
                "application/xml",
                format!(
                    "<urlset xmlns:news=\"http://www.google.com/schemas/sitemap-news/0.9\">\
                     <url><loc>http://{addr}/news/story-a-123456</loc><news:news>\
                     <news:publication_date>2024-02-24</news:publication_date></news:news></url>\
                     <url><loc>http://{addr}/news/story-b-123457</loc><news:news>\
                     <news:publication_date>2024-02-01</news:publication_date></news:news></url>\
                     </urlset>"
                )
                .into_bytes(),
            ),
        );
        routes.insert(
            "/news/story-a-123456".to_owned(),
            (
                "text/html",
                b"<html><body><article><h1>Story A</h1><figure><img src=\"/img/a.jpg\" alt=\"a\">\
                  <figcaption>Protesters march in Paris. Photograph: Jane Doe/Reuters</figcaption>\
                  </figure></article></body></html>"
                    .to_vec(),
            ),
        );
        routes.insert("/img/a.jpg".to_owned(), ("image/jpeg", jpeg));
        routes
    });
    dir.write(
        "outlets.toml",
        &format!(
            "[outlets.bbc]\nrate = 50.0\nseeds = [\"http://{addr}/sitemap.xml\"]\n\
             allowed_hosts = [\"{addr}\"]\narticle_patterns = ['^http://127\\.0\\.0\\.1:\\d+/news/[a-z-]+-\\d{{6}}$']\n"
        ),
    );
    let live = [
        "--out",
        "out",
        "scrape",
        "--source",
        "live",
        "--outlets",
        "outlets.toml",
        "--since",
        "2024-02-20",
        "--until",
        "2024-02-28",
        "--per-outlet",
        "5",
        "--allow-private-addresses",
    ];
    let first = Run::of(dir.anchor().args(live)).success();
    assert!(
        first.stdout().contains("scrape: done"),
        "{}",
        first.stdout()
    );
    let hit = |p: &str| hits.lock().unwrap().get(p).copied().unwrap_or(0);
    assert_eq!(hit("/news/story-a-123456"), 1);
    assert_eq!(hit("/img/a.jpg"), 1);
    assert_eq!(hit("/news/story-b-123457"), 0, "outside --since/--until");
    let lists: Vec<_> = std::fs::read_dir(dir.path().join("out/scrape/live"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(lists.len(), 1);
    let list: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&lists[0]).unwrap()).unwrap();
    assert_eq!(list["listed"].as_array().map(Vec::len), Some(1), "{list}");

    let again = Run::of(dir.anchor().args(live)).success();
    assert!(
        again.stdout().contains("scrape: up to date"),
        "{}",
        again.stdout()
    );
    assert_eq!(
        hit("/sitemap.xml"),
        1,
        "an up-to-date run discovers nothing"
    );

    let bad = Run::of(dir.anchor().args([
        "--out",
        "out",
        "scrape",
        "--source",
        "live",
        "--since",
        "2024-02-30",
    ]));
    assert_ne!(bad.code(), Some(0));
    assert!(bad.stderr().contains("scrape.since"), "{}", bad.stderr());
}
