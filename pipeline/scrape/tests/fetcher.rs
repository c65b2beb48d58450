//! The fetcher against a server on 127.0.0.1 with robots.txt, Retry-After,
//! X-Robots-Tag, redirect and slow routes.

use std::collections::BTreeSet;
use std::io::Cursor;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anchor_scrape::local_server::{LocalServer, Request, Response};
use anchor_scrape::{ErrorClass, Expect, FetchConfig, FetchStatus, Fetcher};
use url::Url;

fn png() -> Vec<u8> {
    let img = image::RgbImage::from_fn(40, 30, |x, y| image::Rgb([x as u8 * 5, y as u8 * 7, 90]));
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn routes(req: &Request, attempt: u32) -> Response {
    let png = png();
    match req.target.as_str() {
        "/robots.txt" => Response::new(
            200,
            "text/plain",
            "User-agent: *\nDisallow: /private/\n\nUser-agent: anchor-scrape\nDisallow: /private/\nDisallow: /bad-for-anchor\nCrawl-delay: 0.2\n",
        ),
        "/ok.png" => Response::new(200, "image/png", png),
        "/page" => Response::new(
            200,
            "text/html; charset=utf-8",
            "<html><body>hi</body></html>",
        ),
        "/private/secret.png" => Response::new(200, "image/png", png),
        "/429-once.png" if attempt == 0 => {
            Response::new(429, "text/plain", "slow down").header("Retry-After", "1")
        }
        "/429-once.png" => Response::new(200, "image/png", png),
        "/noai.png" => Response::new(200, "image/png", png).header("X-Robots-Tag", "noai"),
        "/noimageindex.png" => Response::new(200, "image/png", png)
            .header("X-Robots-Tag", "otherbot: nofollow, noimageindex"),
        "/404.png" => Response::new(404, "text/html", "<h1>gone</h1>"),
        "/403.png" => Response::new(403, "text/html", "<h1>no</h1>"),
        "/500.png" => Response::new(500, "text/html", "<h1>oops</h1>"),
        "/slow.png" => Response {
            delay: Duration::from_secs(3),
            ..Response::new(200, "image/png", png)
        },
        "/loop-a" => Response::new(302, "text/plain", "").header("Location", "/loop-b"),
        "/loop-b" => Response::new(302, "text/plain", "").header("Location", "/loop-a"),
        "/to-ok" => Response::new(301, "text/plain", "").header("Location", "/ok.png"),
        "/to-private" => {
            Response::new(302, "text/plain", "").header("Location", "/private/secret.png")
        }
        "/html-as-jpeg.jpg" => {
            Response::new(200, "image/jpeg", "<!doctype html><p>not a photo</p>")
        }
        "/huge.png" => Response {
            declared_length: Some(1 << 30),
            ..Response::new(200, "image/png", png)
        },
        _ => Response::new(404, "text/plain", "no route"),
    }
}

fn config(_addr: std::net::SocketAddr) -> FetchConfig {
    FetchConfig {
        default_rate_per_sec: 1000.0,
        allow_private_addresses: true,
        allowed_hosts: Some(BTreeSet::from(["127.0.0.1".to_owned()])),
        request_timeout: Duration::from_millis(800),
        max_retries: 2,
        backoff_base: Duration::from_millis(20),
        backoff_max: Duration::from_secs(2),
        max_body_bytes: 1 << 20,
        ..FetchConfig::default()
    }
}

async fn setup() -> (LocalServer, Fetcher, Url) {
    let server = LocalServer::start(Arc::new(routes)).await.unwrap();
    let base = Url::parse(&format!("http://{}/", server.addr)).unwrap();
    let fetcher = Fetcher::new(config(server.addr)).unwrap();
    (server, fetcher, base)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn success_and_robots_cached_with_crawl_delay() {
    let (server, fetcher, base) = setup().await;
    let started = Instant::now();
    let a = fetcher
        .fetch(&base.join("ok.png").unwrap(), Expect::Image)
        .await;
    let b = fetcher
        .fetch(&base.join("page").unwrap(), Expect::Page)
        .await;
    let c = fetcher
        .fetch(&base.join("ok.png").unwrap(), Expect::Image)
        .await;
    assert_eq!(a.status, FetchStatus::Success, "{a:?}");
    assert_eq!(a.image.map(|i| (i.width, i.height)), Some((40, 30)));
    assert_eq!(b.status, FetchStatus::Success, "{b:?}");
    assert_eq!(c.status, FetchStatus::Success);
    assert_eq!(
        server.hits("/robots.txt"),
        1,
        "robots.txt is fetched once per host"
    );
    // Crawl-delay 0.2 s for our group: three requests need at least 0.4 s
    // even though the configured rate is 1000/s.
    assert!(
        started.elapsed() >= Duration::from_millis(390),
        "{:?}",
        started.elapsed()
    );
    let reports = fetcher.host_reports();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].requests, 4);
    assert_eq!(reports[0].outcomes.get("success"), Some(&3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn robots_disallow_is_never_requested_even_via_redirect() {
    let (server, fetcher, base) = setup().await;
    for path in ["private/secret.png", "bad-for-anchor", "to-private"] {
        let f = fetcher
            .fetch(&base.join(path).unwrap(), Expect::Image)
            .await;
        assert_eq!(f.status, FetchStatus::Disallowed, "{path}: {f:?}");
        assert_eq!(f.error_class, Some(ErrorClass::RobotsDisallowed), "{path}");
        assert_eq!(f.attempts, 1);
    }
    assert_eq!(server.hits("/private/secret.png"), 0);
    assert_eq!(server.hits("/bad-for-anchor"), 0);
    assert_eq!(server.hits("/to-private"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured_then_success() {
    let (server, fetcher, base) = setup().await;
    let started = Instant::now();
    let f = fetcher
        .fetch(&base.join("429-once.png").unwrap(), Expect::Image)
        .await;
    assert_eq!(f.status, FetchStatus::Success, "{f:?}");
    assert_eq!(f.attempts, 2);
    assert!(
        started.elapsed() >= Duration::from_millis(990),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!(server.hits("/429-once.png"), 2);
    assert_eq!(fetcher.host_reports()[0].http_429, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn x_robots_tag_refuses() {
    let (_server, fetcher, base) = setup().await;
    for path in ["noai.png", "noimageindex.png"] {
        let f = fetcher
            .fetch(&base.join(path).unwrap(), Expect::Image)
            .await;
        assert_eq!(f.status, FetchStatus::Disallowed, "{f:?}");
        assert_eq!(f.error_class, Some(ErrorClass::XRobotsTag));
        assert!(f.body.is_none());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn final_and_transient_http_errors() {
    let (server, fetcher, base) = setup().await;
    let nf = fetcher
        .fetch(&base.join("404.png").unwrap(), Expect::Image)
        .await;
    assert_eq!(
        (nf.error_class, nf.attempts, nf.http_status),
        (Some(ErrorClass::NotFound), 1, Some(404))
    );
    let fb = fetcher
        .fetch(&base.join("403.png").unwrap(), Expect::Image)
        .await;
    assert_eq!(
        (fb.error_class, fb.attempts),
        (Some(ErrorClass::Forbidden), 1)
    );
    let se = fetcher
        .fetch(&base.join("500.png").unwrap(), Expect::Image)
        .await;
    assert_eq!(
        (se.error_class, se.attempts),
        (Some(ErrorClass::ServerError), 3)
    );
    assert_eq!(se.status, FetchStatus::FailedToDownload);
    assert_eq!(server.hits("/500.png"), 3);
    assert_eq!(server.hits("/404.png"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timeouts_loops_types_and_sizes() {
    let (_server, fetcher, base) = setup().await;
    let started = Instant::now();
    let slow = fetcher
        .fetch(&base.join("slow.png").unwrap(), Expect::Image)
        .await;
    assert_eq!(
        (slow.error_class, slow.attempts),
        (Some(ErrorClass::Timeout), 3)
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let lp = fetcher
        .fetch(&base.join("loop-a").unwrap(), Expect::Image)
        .await;
    assert_eq!(lp.error_class, Some(ErrorClass::RedirectLoop));
    let red = fetcher
        .fetch(&base.join("to-ok").unwrap(), Expect::Image)
        .await;
    assert_eq!(red.status, FetchStatus::Success);
    assert_eq!(red.final_url.path(), "/ok.png");
    let html = fetcher
        .fetch(&base.join("html-as-jpeg.jpg").unwrap(), Expect::Image)
        .await;
    assert_eq!(html.error_class, Some(ErrorClass::ContentTypeMismatch));
    let huge = fetcher
        .fetch(&base.join("huge.png").unwrap(), Expect::Image)
        .await;
    assert_eq!(huge.error_class, Some(ErrorClass::BodyTooLarge));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_addresses_and_unconfigured_hosts_are_refused_without_a_request() {
    let server = LocalServer::start(Arc::new(routes)).await.unwrap();
    let strict = Fetcher::new(FetchConfig {
        allow_private_addresses: false,
        ..config(server.addr)
    })
    .unwrap();
    let url = Url::parse(&format!("http://{}/ok.png", server.addr)).unwrap();
    let f = strict.fetch(&url, Expect::Image).await;
    assert_eq!(
        (f.status, f.error_class),
        (FetchStatus::Refused, Some(ErrorClass::PrivateAddress))
    );
    let other = Url::parse(&format!("http://localhost:{}/ok.png", server.addr.port())).unwrap();
    let g = strict.fetch(&other, Expect::Image).await;
    assert_eq!(g.error_class, Some(ErrorClass::HostNotAllowed));
    let ftp = strict
        .fetch(&Url::parse("ftp://127.0.0.1/x").unwrap(), Expect::Image)
        .await;
    assert_eq!(ftp.error_class, Some(ErrorClass::InvalidUrl));
    assert_eq!(server.total_hits(), 0, "nothing may reach the server");
}
