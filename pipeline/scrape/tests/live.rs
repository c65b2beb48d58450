//! `--source live` end to end against servers on 127.0.0.1: a sitemap index,
//! dated sitemaps, a daily archive page and a news sitemap lead to saved
//! real outlet pages (image URLs rewritten to a local CDN), which the
//! adapters turn into `pairs` rows. Checks the discovered list, the date
//! range, the quota, the refusal of a host outside `allowed_hosts` and the
//! resume from the persisted list.
//!
//! The pages are the repository's saved real outlet pages (`tests/fixtures/outlets`).
//! No traffic leaves 127.0.0.1: every URL the test serves points there, and
//! the real CDN hosts left in a page are outside `allowed_hosts`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anchor_core::Outlet;
use anchor_core::ledger::{self, StepStatus};
use anchor_core::step::{self, Outcome, RunOptions};
use anchor_core::store::TableReader;
use anchor_core::tables::{articles, pairs};
use anchor_scrape::discover::{Discovery, LiveSpec};
use anchor_scrape::local_server::{LocalServer, Request, Response};
use anchor_scrape::outlets::OutletsConfig;
use anchor_scrape::step::{ScrapeParams, ScrapeStep};
use arrow_array::cast::AsArray;

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/outlets")
}

/// `https://HOST/...`, `http://HOST/...` and `//HOST/...` of each host to
/// `http://<to>/HOST/...`.
fn rewrite(html: &str, hosts: &[&str], to: &str) -> String {
    let mut out = html.to_owned();
    for h in hosts {
        let target = format!("http://{to}/{h}/");
        out = out
            .replace(&format!("https://{h}/"), &target)
            .replace(&format!("http://{h}/"), &target)
            .replace(&format!("\"//{h}/"), &format!("\"{target}"))
            .replace(&format!(" //{h}/"), &format!(" {target}"));
    }
    out
}

fn urlset(entries: &[(&str, Option<&str>)]) -> String {
    let mut s = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<urlset xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\" \
         xmlns:news=\"http://www.google.com/schemas/sitemap-news/0.9\">\n",
    );
    for (loc, date) in entries {
        s.push_str(&format!("<url><loc>{loc}</loc>"));
        if let Some(d) = date {
            s.push_str(&format!(
                "<news:news><news:publication_date>{d}T09:00:00+00:00</news:publication_date></news:news>"
            ));
        }
        s.push_str("</url>\n");
    }
    s.push_str("</urlset>\n");
    s
}

type Routes = Arc<std::sync::Mutex<BTreeMap<String, Response>>>;

fn serve(routes: Routes) -> anchor_scrape::local_server::Handler {
    Arc::new(move |req: &Request, _| {
        routes
            .lock()
            .ok()
            .and_then(|r| r.get(&req.target).cloned())
            .unwrap_or_else(|| Response::new(404, "text/plain", "not here"))
    })
}

fn column(batches: &[arrow_array::RecordBatch], name: &str) -> Vec<Option<String>> {
    let mut out = Vec::new();
    for b in batches {
        let c = b.column_by_name(name).unwrap().as_string::<i32>();
        for i in 0..b.num_rows() {
            out.push((!arrow_array::Array::is_null(c, i)).then(|| c.value(i).to_owned()));
        }
    }
    out
}

fn read(out: &Path, table: &str) -> Vec<arrow_array::RecordBatch> {
    TableReader::open(out, table, None)
        .unwrap()
        .read_all(None, 1024)
        .map(|b| b.unwrap())
        .collect()
}

#[test]
fn live_discovery_quota_range_hosts_and_resume() {
    let fixtures = fixtures_dir();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let g_routes: Routes = Default::default();
    let b_routes: Routes = Default::default();
    let g = rt
        .block_on(LocalServer::start(serve(Arc::clone(&g_routes))))
        .unwrap();
    let b = rt
        .block_on(LocalServer::start(serve(Arc::clone(&b_routes))))
        .unwrap();
    let jpeg = anchor_scrape::demo::photos::jpeg(&anchor_scrape::demo::photos::generated(7), 80);
    let cdn = rt
        .block_on(LocalServer::start(Arc::new(move |_: &Request, _| {
            Response::new(200, "image/jpeg", jpeg.clone())
        })))
        .unwrap();
    // Not in allowed_hosts: nothing may ever reach it.
    let foreign = rt
        .block_on(LocalServer::start(Arc::new(|_: &Request, _| {
            Response::new(200, "text/plain", "should never be asked")
        })))
        .unwrap();
    let (ga, ba, ca, fa) = (g.addr, b.addr, cdn.addr, foreign.addr);

    let page = |rel: &str, to: std::net::SocketAddr| -> String {
        let html = std::fs::read_to_string(fixtures.join(rel)).unwrap();
        rewrite(
            &html,
            &[
                "i.guim.co.uk",
                "media.guim.co.uk",
                "ichef.bbci.co.uk",
                "ichef-1.bbci.co.uk",
            ],
            &to.to_string(),
        )
    };
    // Guardian: the pages, one with its images on the foreign host.
    let g_pages: Vec<(&str, String)> = vec![
        (
            "/world/2024/feb/24/valencia-fire",
            page("guardian/2024-valencia-fire.html", fa),
        ),
        (
            "/technology/2024/feb/24/facebook",
            page("guardian/2017-facebook-tracking-lawsuit.html", ca),
        ),
        (
            "/business/2024/feb/23/uk-economy",
            page("guardian/2023-uk-economy-shrank-march.html", ca),
        ),
        (
            "/film/2024/feb/23/bridesmaids",
            page("guardian/2011-kristen-wiig-bridesmaids.html", ca),
        ),
        (
            "/world/2024/feb/20/old-story",
            page("guardian/2020-uk-academics-second-class.html", ca),
        ),
    ];
    {
        let mut r = g_routes.lock().unwrap();
        for (path, html) in &g_pages {
            r.insert(
                (*path).to_owned(),
                Response::new(200, "text/html; charset=utf-8", html.clone()),
            );
        }
        r.insert(
            "/sitemaps/index.xml".into(),
            Response::new(
                200,
                "application/xml",
                format!(
                    "<?xml version=\"1.0\"?><sitemapindex xmlns=\"http://www.sitemaps.org/schemas/sitemap/0.9\">\
                     <sitemap><loc>http://{ga}/sitemaps/2024-02-24.xml</loc><lastmod>2024-02-24</lastmod></sitemap>\
                     <sitemap><loc>http://{ga}/sitemaps/2024-02-23.xml</loc><lastmod>2024-02-23</lastmod></sitemap>\
                     <sitemap><loc>http://{ga}/sitemaps/2023-01-01.xml</loc><lastmod>2023-01-01</lastmod></sitemap>\
                     <sitemap><loc>http://{fa}/sitemaps/elsewhere.xml</loc></sitemap>\
                     </sitemapindex>"
                ),
            ),
        );
        r.insert(
            "/sitemaps/2024-02-24.xml".into(),
            Response::new(
                200,
                "application/xml",
                urlset(&[
                    (
                        &format!("http://{ga}/world/2024/feb/24/valencia-fire"),
                        Some("2024-02-24"),
                    ),
                    (
                        &format!("http://{ga}/business/2024/feb/23/uk-economy"),
                        Some("2024-02-23"),
                    ),
                    (
                        &format!("http://{ga}/world/2024/feb/20/old-story"),
                        Some("2024-02-20"),
                    ),
                    (&format!("http://{ga}/about/contact"), None),
                    (
                        &format!("http://{fa}/world/2024/feb/24/foreign-copy"),
                        Some("2024-02-24"),
                    ),
                ]),
            ),
        );
        // 2024-02-23.xml is missing (404): recorded, not fatal.
        r.insert(
            "/theguardian/2024/feb/24".into(),
            Response::new(
                200,
                "text/html",
                "<html><body><a href=\"/technology/2024/feb/24/facebook\">f</a>\
                 <a href=\"/world/2024/feb/24/valencia-fire#comments\">v</a>\
                 <a href=\"/help\">help</a></body></html>",
            ),
        );
        r.insert(
            "/theguardian/2024/feb/23".into(),
            Response::new(
                200,
                "text/html",
                "<html><body><a href=\"/film/2024/feb/23/bridesmaids\">b</a></body></html>",
            ),
        );
    }
    {
        let mut r = b_routes.lock().unwrap();
        r.insert(
            "/news/world-europe-50473792".into(),
            Response::new(
                200,
                "text/html",
                page("bbc/2019-assange-sweden-investigation.html", ca),
            ),
        );
        r.insert(
            "/news/articles/clymn8zyrp9o".into(),
            Response::new(200, "text/html", page("bbc/2026-nato-explainer.html", ca)),
        );
        r.insert(
            "/sitemaps/news.xml".into(),
            Response::new(
                200,
                "text/xml",
                urlset(&[
                    (
                        &format!("http://{ba}/news/world-europe-50473792"),
                        Some("2024-02-24"),
                    ),
                    (
                        &format!("http://{ba}/news/articles/clymn8zyrp9o"),
                        Some("2024-02-23"),
                    ),
                    (
                        &format!("http://{ba}/news/world-us-canada-33646704"),
                        Some("2024-01-01"),
                    ),
                ]),
            ),
        );
    }

    let toml = format!(
        r#"
[outlets.guardian]
rate = 50.0
seeds = ["http://{ga}/sitemaps/index.xml", "http://{ga}/theguardian/{{yyyy}}/{{mon}}/{{dd}}"]
allowed_hosts = ["{ga}", "{ca}"]
article_patterns = ['^http://127\.0\.0\.1:\d+/[a-z]+/\d{{4}}/[a-z]{{3}}/\d{{2}}/[a-z-]+$']

[outlets.bbc]
rate = 50.0
seeds = ["http://{ba}/sitemaps/news.xml"]
allowed_hosts = ["{ba}", "{ca}"]
article_patterns = ['^http://127\.0\.0\.1:\d+/news/(articles/[a-z0-9]+|[a-z-]+-\d{{6,}})$']
"#
    );
    let dir = tempfile::tempdir().unwrap();
    let outlets_file = dir.path().join("outlets.toml");
    std::fs::write(&outlets_file, toml).unwrap();
    let spec = LiveSpec {
        outlets: OutletsConfig::load(&outlets_file).unwrap(),
        since: Some("2024-02-23".parse().unwrap()),
        until: Some("2024-02-24".parse().unwrap()),
        per_outlet: Some(3),
    };
    let make_step = || {
        let mut params = ScrapeParams::live(spec.clone());
        params.articles_per_part = 2;
        if let Some(f) = params.fetch.as_mut() {
            f.allow_private_addresses = true;
            f.request_timeout = std::time::Duration::from_secs(5);
            f.max_retries = 0;
        }
        ScrapeStep::new(params, None).unwrap()
    };
    let out = dir.path().join("out");
    let step1 = make_step();
    step::run(&step1, &out, &RunOptions::default()).unwrap();

    // The persisted plan: interleaved, newest first, quota 3 for the
    // Guardian, the range applied.
    let live_dir = out.join("scrape/live");
    let files: Vec<PathBuf> = std::fs::read_dir(&live_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    let discovery: Discovery = serde_json::from_slice(&std::fs::read(&files[0]).unwrap()).unwrap();
    let listed: Vec<(String, String)> = discovery
        .listed
        .iter()
        .map(|d| (d.outlet.clone(), d.url.clone()))
        .collect();
    let want = vec![
        (
            "guardian".to_owned(),
            format!("http://{ga}/technology/2024/feb/24/facebook"),
        ),
        (
            "bbc".to_owned(),
            format!("http://{ba}/news/world-europe-50473792"),
        ),
        (
            "guardian".to_owned(),
            format!("http://{ga}/world/2024/feb/24/valencia-fire"),
        ),
        (
            "bbc".to_owned(),
            format!("http://{ba}/news/articles/clymn8zyrp9o"),
        ),
        (
            "guardian".to_owned(),
            format!("http://{ga}/business/2024/feb/23/uk-economy"),
        ),
    ];
    assert_eq!(listed, want);
    let gc = &discovery.counts["guardian"];
    assert_eq!(gc.get("over_quota"), Some(&1), "{gc:?}");
    assert_eq!(gc.get("out_of_range"), Some(&1), "{gc:?}");
    assert_eq!(gc.get("host_not_allowed"), Some(&2), "{gc:?}");
    assert_eq!(gc.get("sitemap_before_since"), Some(&1), "{gc:?}");
    assert!(gc.get("not_article").copied().unwrap_or(0) >= 2, "{gc:?}");
    assert_eq!(discovery.counts["bbc"].get("out_of_range"), Some(&1));
    let dropped: BTreeSet<&str> = discovery.dropped.iter().map(|d| d.url.as_str()).collect();
    assert!(dropped.contains(format!("http://{fa}/sitemaps/elsewhere.xml").as_str()));
    assert!(dropped.contains(format!("http://{fa}/world/2024/feb/24/foreign-copy").as_str()));
    let missing = discovery
        .visits
        .iter()
        .find(|v| v.url.ends_with("/sitemaps/2024-02-23.xml"))
        .unwrap();
    assert_eq!(missing.status, "failed_to_download");
    assert_eq!(missing.error.as_deref(), Some("not_found"));

    // Nothing outside the range, the quota or the allowed hosts was fetched.
    assert_eq!(foreign.total_hits(), 0);
    assert_eq!(g.hits("/film/2024/feb/23/bridesmaids"), 0);
    assert_eq!(g.hits("/world/2024/feb/20/old-story"), 0);
    assert_eq!(g.hits("/sitemaps/2023-01-01.xml"), 0);
    assert_eq!(b.hits("/news/world-us-canada-33646704"), 0);

    // Rows: one article per listed URL, and per article exactly the images
    // its adapter finds, fetched from the local CDN or refused.
    let a_batches = read(&out, articles::NAME);
    let a_urls: BTreeSet<String> = column(&a_batches, articles::URL)
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(a_urls, want.iter().map(|(_, u)| u.clone()).collect());
    assert!(
        column(&a_batches, articles::SOURCE)
            .iter()
            .all(|s| s.as_deref() == Some("live"))
    );
    let p_batches = read(&out, pairs::NAME);
    let got: BTreeSet<(String, String, String)> = column(&p_batches, pairs::ARTICLE_URL)
        .into_iter()
        .zip(column(&p_batches, pairs::IMAGE_URL))
        .zip(column(&p_batches, pairs::STATUS))
        .map(|((a, i), s)| (a.unwrap(), i.unwrap(), s.unwrap()))
        .collect();
    let mut expected = BTreeSet::new();
    let served: BTreeMap<String, (Outlet, String)> = g_pages
        .iter()
        .map(|(p, h)| (format!("http://{ga}{p}"), (Outlet::Guardian, h.clone())))
        .chain(
            b_routes
                .lock()
                .unwrap()
                .iter()
                .filter(|(p, _)| p.starts_with("/news/"))
                .map(|(p, r)| {
                    (
                        format!("http://{ba}{p}"),
                        (Outlet::Bbc, String::from_utf8(r.body.clone()).unwrap()),
                    )
                }),
        )
        .collect();
    let mut refused = 0;
    for (_, url) in &want {
        let (outlet, html) = &served[url];
        let ex = anchor_extract::extract(Some(*outlet), &url::Url::parse(url).unwrap(), html);
        assert!(!ex.images.is_empty(), "{url}: the adapter finds no image");
        let canonical = ex
            .article
            .canonical_url
            .clone()
            .unwrap_or_else(|| url.clone());
        for img in ex.images {
            let status = if img.image_url.starts_with(&format!("http://{ca}/")) {
                "success"
            } else {
                refused += 1;
                "refused"
            };
            expected.insert((canonical.clone(), img.image_url, status.to_owned()));
        }
    }
    assert!(
        refused >= 1,
        "the valencia page's images are on the foreign host"
    );
    assert_eq!(got, expected);
    let classes = column(&p_batches, pairs::ERROR_CLASS);
    let statuses = column(&p_batches, pairs::STATUS);
    for (s, c) in statuses.iter().zip(&classes) {
        if s.as_deref() == Some("refused") {
            assert_eq!(c.as_deref(), Some("host_not_allowed"));
        }
    }

    // Resume: forget the last part and run a new step (a new process):
    // the persisted list is reused (no sitemap is fetched again) and only
    // the last part's article is fetched again.
    let sitemap_hits = g.hits("/sitemaps/index.xml") + b.hits("/sitemaps/news.xml");
    let before: Vec<u32> = want
        .iter()
        .map(|(_, u)| {
            let path = url::Url::parse(u).unwrap().path().to_owned();
            g.hits(&path) + b.hits(&path)
        })
        .collect();
    std::fs::remove_file(ledger::marker_path(&out, "scrape", 2)).unwrap();
    let mut record = ledger::read_record(&out, "scrape").unwrap().unwrap();
    record.status = StepStatus::Partial;
    ledger::write_json_atomic(&ledger::record_path(&out, "scrape"), &record).unwrap();
    let step2 = make_step();
    let outcome = step::run(&step2, &out, &RunOptions::default()).unwrap();
    assert!(!matches!(outcome, Outcome::UpToDate { .. }));
    assert_eq!(
        g.hits("/sitemaps/index.xml") + b.hits("/sitemaps/news.xml"),
        sitemap_hits
    );
    let after: Vec<u32> = want
        .iter()
        .map(|(_, u)| {
            let path = url::Url::parse(u).unwrap().path().to_owned();
            g.hits(&path) + b.hits(&path)
        })
        .collect();
    let again: Vec<u32> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    assert_eq!(
        again,
        vec![0, 0, 0, 0, 1],
        "only part 2 (the fifth article) is fetched again"
    );
    let p2: BTreeSet<(String, String, String)> = {
        let b2 = read(&out, pairs::NAME);
        column(&b2, pairs::ARTICLE_URL)
            .into_iter()
            .zip(column(&b2, pairs::IMAGE_URL))
            .zip(column(&b2, pairs::STATUS))
            .map(|((a, i), s)| (a.unwrap(), i.unwrap(), s.unwrap()))
            .collect()
    };
    assert_eq!(p2, expected, "the resumed run ends with the same rows");
}

/// HTTPS is compiled in: an `https://` URL is attempted with a TLS
/// handshake (which a plain-HTTP server on 127.0.0.1 answers with bytes
/// that are not TLS) rather than refused as an unsupported scheme.
#[test]
fn https_urls_are_attempted_over_tls() {
    use std::io::Write;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi");
        }
    });
    let rt = tokio::runtime::Runtime::new().unwrap();
    let fetcher = {
        let _guard = rt.enter();
        anchor_scrape::Fetcher::new(anchor_scrape::FetchConfig {
            allow_private_addresses: true,
            respect_robots: false,
            max_retries: 0,
            request_timeout: std::time::Duration::from_secs(5),
            ..anchor_scrape::FetchConfig::default()
        })
        .unwrap()
    };
    let url = url::Url::parse(&format!("https://{addr}/page")).unwrap();
    let got = rt.block_on(fetcher.fetch(&url, anchor_scrape::Expect::Page));
    let message = got
        .error_message
        .clone()
        .unwrap_or_default()
        .to_ascii_lowercase();
    eprintln!("https against plain http: {message}");
    assert_eq!(
        got.error_class,
        Some(anchor_scrape::ErrorClass::Connect),
        "{message}"
    );
    assert!(!message.contains("scheme"), "{message}");
    assert!(
        ["tls", "ssl", "handshake", "corrupt", "record"]
            .iter()
            .any(|w| message.contains(w)),
        "{message}"
    );
}

/// The shipped `data/outlets.toml` is valid, configures all five outlets,
/// and its article patterns match the canonical URLs of saved real pages
/// (and not their section fronts).
#[test]
fn shipped_outlets_file_matches_real_article_urls() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../data/outlets.toml");
    let cfg = OutletsConfig::load(&path).unwrap();
    let outlets: Vec<Outlet> = cfg.entries().iter().map(|(o, _)| *o).collect();
    assert_eq!(outlets, Outlet::ALL.to_vec());
    let real = [
        (
            Outlet::Guardian,
            "https://www.theguardian.com/world/2024/feb/24/death-toll-in-valencia-fire-rises-to-10-as-remains-of-last-missing-person-found",
        ),
        (
            Outlet::Guardian,
            "https://www.theguardian.com/world/live/2023/may/15/russia-ukraine-war-latest-g7-reportedly-set-to-tighten-russia-sanctions-france-to-send-kyiv-military-aid-live",
        ),
        (
            Outlet::Guardian,
            "http://www.theguardian.com/film/2014/apr/24/the-hurricane-rubin-carter-denzel-washington",
        ),
        (
            Outlet::Bbc,
            "https://www.bbc.com/news/world-europe-50473792",
        ),
        (
            Outlet::Bbc,
            "https://www.bbc.com/news/articles/clymn8zyrp9o",
        ),
        (Outlet::Bbc, "http://www.bbc.co.uk/news/health-34744858"),
        (
            Outlet::UsaToday,
            "http://www.usatoday.com/story/money/columnist/powell/2015/11/12/social-security-medicare-changes-budget-law-retirement/75164246/",
        ),
        (
            Outlet::WashingtonPost,
            "https://www.washingtonpost.com/politics/federal-workers-are-returning-to-the-office-some-members-of-congress-say-they-shouldnt-be/2020/07/08/c3d22ec8-c151-11ea-b4f6-cb39cd8940fb_story.html",
        ),
        (
            Outlet::WashingtonPost,
            "http://www.washingtonpost.com/wp-dyn/content/article/2010/12/08/AR2010120803185.html",
        ),
        (
            Outlet::NyTimes,
            "https://www.nytimes.com/2017/01/13/world/africa/sudan-sanctions.html",
        ),
        (
            Outlet::NyTimes,
            "http://www.nytimes.com/2010/12/22/world/europe/22start.html",
        ),
    ];
    for (outlet, url) in real {
        assert!(
            cfg.patterns(outlet).iter().any(|p| p.is_match(url)),
            "{outlet}: no article pattern matches {url}"
        );
    }
    let fronts = [
        (Outlet::Guardian, "https://www.theguardian.com/world"),
        (Outlet::Bbc, "https://www.bbc.com/news/world"),
        (Outlet::NyTimes, "https://www.nytimes.com/section/world"),
    ];
    for (outlet, url) in fronts {
        assert!(
            !cfg.patterns(outlet).iter().any(|p| p.is_match(url)),
            "{outlet}: a section front matches: {url}"
        );
    }
}
