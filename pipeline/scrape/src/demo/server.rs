//! Serving the demo plan: one [`LocalServer`] per outlet on 127.0.0.1, each
//! response a pure function of (path, attempt).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anchor_core::Outlet;
use bytes::Bytes;

use super::faults::{ArticleFault, ImageFault};
use super::markup::article_page;
use super::photos::{PhotoLibrary, png};
use super::site::{ArticlePlan, ImagePlan, SitePlan, demo_host};
use crate::local_server::{LocalServer, Request, Response};

/// The robots.txt every demo outlet serves.
pub const ROBOTS_TXT: &str =
    "User-agent: *\nDisallow: /private/\n\nUser-agent: anchor-scrape\nDisallow: /private/\n";

/// What one path serves.
enum Resource {
    Article(usize),
    ArticleRedirect(String),
    Loop(String),
    Image(usize, usize),
}

/// The demo site's servers.
pub struct DemoServers {
    /// Outlet to bound address.
    pub addrs: BTreeMap<&'static str, SocketAddr>,
    servers: Vec<LocalServer>,
}

impl DemoServers {
    /// DNS overrides for the fetcher: `<outlet>.demo.test` to its port.
    pub fn resolve_overrides(&self) -> BTreeMap<String, SocketAddr> {
        Outlet::ALL
            .iter()
            .copied()
            .filter_map(|o| self.addrs.get(o.as_str()).map(|a| (demo_host(o), *a)))
            .collect()
    }

    /// Requests served so far, all outlets.
    pub fn total_hits(&self) -> u32 {
        self.servers.iter().map(LocalServer::total_hits).sum()
    }

    /// Requests for `path` on `outlet`'s server.
    pub fn hits(&self, outlet: Outlet, path: &str) -> u32 {
        Outlet::ALL
            .iter()
            .position(|o| *o == outlet)
            .and_then(|i| self.servers.get(i))
            .map_or(0, |s| s.hits(path))
    }

    /// Stops all servers.
    pub fn stop(&self) {
        for s in &self.servers {
            s.stop();
        }
    }
}

/// Starts the demo servers on the current runtime. `timeout` is the
/// fetcher's request timeout, so slow faults sit well above or below it.
pub async fn start(
    plan: Arc<SitePlan>,
    photos: Arc<PhotoLibrary>,
    timeout: Duration,
) -> std::io::Result<DemoServers> {
    let mut addrs = BTreeMap::new();
    let mut servers = Vec::new();
    for outlet in Outlet::ALL.iter().copied() {
        let mut routes: HashMap<String, Resource> = HashMap::new();
        for a in plan.articles.iter().filter(|a| a.outlet == outlet) {
            routes.insert(a.canonical.path().to_owned(), Resource::Article(a.index));
            match a.fault {
                ArticleFault::Redirect => {
                    routes.insert(
                        a.url.path().to_owned(),
                        Resource::ArticleRedirect(a.canonical.path().to_owned()),
                    );
                }
                ArticleFault::RedirectLoop => {
                    let (p_a, p_b) = (a.url.path().to_owned(), a.url.path().replace("/a", "/b"));
                    routes.insert(p_a.clone(), Resource::Loop(p_b.clone()));
                    routes.insert(p_b, Resource::Loop(p_a));
                }
                _ => {}
            }
            for (k, img) in a.images.iter().enumerate() {
                routes.insert(img.url.path().to_owned(), Resource::Image(a.index, k));
                if img.fault == ImageFault::RedirectLoop {
                    let (p_a, p_b) = (
                        img.url.path().to_owned(),
                        img.url.path().replace("/a.jpg", "/b.jpg"),
                    );
                    routes.insert(p_a.clone(), Resource::Loop(p_b.clone()));
                    routes.insert(p_b, Resource::Loop(p_a));
                }
                if img.fault == ImageFault::Redirect {
                    routes.insert(
                        format!("/images/store/{}/{k}.jpg", a.index),
                        Resource::Image(a.index, k),
                    );
                }
            }
        }
        let state = Arc::new(Handler {
            plan: Arc::clone(&plan),
            photos: Arc::clone(&photos),
            routes,
            timeout,
            cache: Mutex::new(HashMap::new()),
        });
        let server = LocalServer::start(Arc::new(move |req: &Request, attempt: u32| {
            state.respond(req, attempt)
        }))
        .await?;
        addrs.insert(outlet.as_str(), server.addr);
        servers.push(server);
    }
    Ok(DemoServers { addrs, servers })
}

struct Handler {
    plan: Arc<SitePlan>,
    photos: Arc<PhotoLibrary>,
    routes: HashMap<String, Resource>,
    timeout: Duration,
    cache: Mutex<HashMap<(usize, usize), Bytes>>,
}

impl Handler {
    fn respond(&self, req: &Request, attempt: u32) -> Response {
        let path = req.target.split(['?', '#']).next().unwrap_or("/");
        if path == "/robots.txt" {
            return Response::new(200, "text/plain", ROBOTS_TXT);
        }
        match self.routes.get(path) {
            None => Response::new(404, "text/html", "<h1>Not found</h1>"),
            Some(Resource::ArticleRedirect(to)) => {
                Response::new(301, "text/html", "").header("Location", to)
            }
            Some(Resource::Loop(to)) => Response::new(302, "text/html", "").header("Location", to),
            Some(Resource::Article(i)) => match self.plan.articles.get(*i) {
                Some(a) => self.article(a, attempt),
                None => Response::new(404, "text/html", ""),
            },
            Some(Resource::Image(i, k)) => {
                match self
                    .plan
                    .articles
                    .get(*i)
                    .and_then(|a| a.images.get(*k).map(|img| (a, img)))
                {
                    Some((a, img)) => self.image(a, img, *k, path, attempt),
                    None => Response::new(404, "text/html", ""),
                }
            }
        }
    }

    fn article(&self, a: &ArticlePlan, attempt: u32) -> Response {
        let page = || Response::new(200, "text/html; charset=utf-8", article_page(a));
        match a.fault {
            ArticleFault::NotFound => Response::new(404, "text/html", "<h1>Page not found</h1>"),
            ArticleFault::NoIndex => page().header("X-Robots-Tag", "noindex"),
            ArticleFault::ServerErrorOnce if attempt == 0 => {
                Response::new(503, "text/html", "busy")
            }
            ArticleFault::ServerErrorAlways => Response::new(500, "text/html", "broken"),
            ArticleFault::RateLimitedOnce if attempt == 0 => {
                Response::new(429, "text/plain", "slow down").header("Retry-After", "1")
            }
            ArticleFault::SlowBelowTimeout => Response {
                delay: self.timeout / 10,
                ..page()
            },
            ArticleFault::SlowAboveTimeout => Response {
                delay: self.timeout * 4,
                ..page()
            },
            _ => page(),
        }
    }

    fn bytes(&self, a: &ArticlePlan, img: &ImagePlan, k: usize) -> Bytes {
        if let Ok(cache) = self.cache.lock()
            && let Some(b) = cache.get(&(a.index, k))
        {
            return b.clone();
        }
        let b = Bytes::from(self.photos.render(img.photo, img.variant));
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert((a.index, k), b.clone());
        }
        b
    }

    fn image(
        &self,
        a: &ArticlePlan,
        img: &ImagePlan,
        k: usize,
        path: &str,
        attempt: u32,
    ) -> Response {
        let ok = || Response::new(200, "image/jpeg", self.bytes(a, img, k).to_vec());
        let delay = img.fault.delay(attempt, self.timeout);
        let resp = match img.fault {
            ImageFault::NotFound => Response::new(404, "text/html", "<h1>Not found</h1>"),
            ImageFault::Forbidden => Response::new(403, "text/html", "<h1>Forbidden</h1>"),
            ImageFault::RateLimitedOnce if attempt == 0 => {
                Response::new(429, "text/plain", "").header("Retry-After", "1")
            }
            ImageFault::RateLimitedAlways => {
                Response::new(429, "text/plain", "").header("Retry-After", "1")
            }
            ImageFault::ServerErrorOnce if attempt == 0 => Response::new(503, "text/html", "busy"),
            ImageFault::ServerErrorAlways => Response::new(502, "text/html", "bad gateway"),
            ImageFault::NoAi => ok().header("X-Robots-Tag", "noai"),
            ImageFault::NoImageAi => ok().header("X-Robots-Tag", "noimageai"),
            ImageFault::Truncated => {
                let b = self.bytes(a, img, k);
                Response::new(200, "image/jpeg", b[..b.len() / 2].to_vec())
            }
            ImageFault::Corrupt => {
                let mut b = self.bytes(a, img, k).to_vec();
                // Scramble everything after the JFIF header up to EOI (tables, frame
                // header, scan): the file still starts and ends like a JPEG,
                // so only a real decode can tell.
                let end = b.len().saturating_sub(2);
                for (i, byte) in b.iter_mut().enumerate().take(end).skip(20) {
                    *byte ^= 0xA7 ^ (i as u8);
                }
                Response::new(200, "image/jpeg", b)
            }
            ImageFault::DecompressionBomb => Response::new(200, "image/png", bomb_png()),
            ImageFault::TrackingPixel => {
                Response::new(200, "image/png", png(&image::RgbImage::new(1, 1)))
            }
            ImageFault::HtmlAsJpeg => Response::new(
                200,
                "image/jpeg",
                "<!DOCTYPE html><html><body>Image moved</body></html>",
            ),
            ImageFault::Redirect if !path.starts_with("/images/store/") => {
                Response::new(302, "text/html", "")
                    .header("Location", &format!("/images/store/{}/{k}.jpg", a.index))
            }
            ImageFault::BodyTooLarge => Response {
                declared_length: Some(1 << 40),
                ..Response::new(200, "image/jpeg", Vec::new())
            },
            _ => ok(),
        };
        Response { delay, ..resp }
    }
}

/// A PNG whose header declares 60000x60000 RGBA pixels (14.4 GB decoded)
/// while the file is a few hundred bytes: a valid IHDR, one IDAT holding a
/// deflate stream of one empty row, IEND.
pub fn bomb_png() -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&60_000u32.to_be_bytes());
    ihdr.extend_from_slice(&60_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 6, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let row = vec![0u8; 60_000 * 4 + 1];
    use std::io::Write;
    let idat = (|| {
        for _ in 0..4 {
            enc.write_all(&row)?;
        }
        enc.finish()
    })()
    .unwrap_or_default();
    chunk(&mut out, b"IDAT", &idat);
    chunk(&mut out, b"IEND", &[]);
    out
}

fn chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = flate2::Crc::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_be_bytes());
}
