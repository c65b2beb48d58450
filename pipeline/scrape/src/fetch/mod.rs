//! The polite fetcher.
//!
//! One [`Fetcher`] serves a whole run. For every URL it
//!
//! 1. refuses URLs that are not http(s), hosts that are not configured, and
//!    (after resolving them) loopback, private or link-local addresses;
//! 2. fetches robots.txt once per host:port and obeys it, including
//!    `Crawl-delay`;
//! 3. waits for the host's own rate limiter, then for a global concurrency
//!    slot;
//! 4. follows redirects itself, repeating steps 1–3 for every hop, and stops
//!    at a loop or too many hops;
//! 5. honours `X-Robots-Tag` before reading the body, caps the body size and
//!    checks `Content-Type` against the bytes, and validates images under
//!    decode limits;
//! 6. retries transient failures (DNS, connect, timeout, 429, 5xx) with
//!    exponential backoff, deterministic jitter and `Retry-After`.
//!
//! Every fetch ends as a [`Fetched`] with a [`FetchStatus`] and, on failure,
//! an [`ErrorClass`]; nothing here returns `Err` for a bad URL or response.

pub mod backoff;
pub mod config;
pub mod exchange;
pub mod host;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use reqwest::redirect::Policy;
use url::Url;

pub use config::{FetchConfig, PRODUCT_TOKEN};
pub use exchange::{Exchange, ExchangeOutcome, Recorder, Replay};
pub use host::{HostReport, HostState};

use crate::address_policy::is_non_public;
use crate::error::{Error, Result};
use crate::image_check::{ImageInfo, check_image};
use crate::outcome::{ErrorClass, FetchStatus};
use crate::robots::Robots;
use crate::sniff::{self, Sniffed};
use exchange::{header, x_robots_forbids};

/// What the caller expects the URL to hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// An HTML page.
    Page,
    /// An image (validated and decoded under limits).
    Image,
    /// A sitemap or archive page, read only for its links. Sites commonly
    /// send `X-Robots-Tag: noindex` on sitemaps to keep them out of search
    /// results; that does not stop a listing (`noai`/`noimageai` still do).
    Listing,
}

/// The `X-Robots-Tag` token that forbids this fetch, if any.
fn robots_tag_forbids(expect: Expect, values: &[&str]) -> Option<String> {
    match expect {
        Expect::Listing => values.iter().find_map(|v| {
            x_robots_forbids(&[v]).and_then(|_| {
                v.split(',')
                    .map(|t| {
                        t.rsplit(':')
                            .next()
                            .unwrap_or("")
                            .trim()
                            .to_ascii_lowercase()
                    })
                    .find(|t| t == "noai" || t == "noimageai")
            })
        }),
        _ => x_robots_forbids(values),
    }
}

/// The end of one fetch.
#[derive(Debug, Clone, PartialEq)]
pub struct Fetched {
    /// URL asked for.
    pub url: Url,
    /// URL of the last hop.
    pub final_url: Url,
    /// Final status.
    pub status: FetchStatus,
    /// Why it failed (`None` on success).
    pub error_class: Option<ErrorClass>,
    /// Failure detail.
    pub error_message: Option<String>,
    /// HTTP status of the last response, if any.
    pub http_status: Option<u16>,
    /// Attempts made (1 + retries).
    pub attempts: u32,
    /// `Content-Type` of the last response.
    pub content_type: Option<String>,
    /// Body, on success.
    pub body: Option<Bytes>,
    /// Image facts, on a successful image fetch.
    pub image: Option<ImageInfo>,
}

/// A failed attempt.
struct Failure {
    class: ErrorClass,
    message: String,
    http_status: Option<u16>,
    content_type: Option<String>,
    retry_after: Option<Duration>,
    final_url: Url,
}

impl Failure {
    fn new(class: ErrorClass, message: impl Into<String>, url: &Url) -> Failure {
        Failure {
            class,
            message: message.into(),
            http_status: None,
            content_type: None,
            retry_after: None,
            final_url: url.clone(),
        }
    }
}

/// A successful attempt.
struct Success {
    final_url: Url,
    http_status: u16,
    content_type: Option<String>,
    body: Bytes,
    image: Option<ImageInfo>,
}

/// The polite fetcher; cheap to share behind an `Arc`.
pub struct Fetcher {
    config: FetchConfig,
    client: reqwest::Client,
    hosts: Mutex<HashMap<String, Arc<HostState>>>,
    slots: tokio::sync::Semaphore,
    recorder: Option<Arc<dyn Recorder>>,
    replay: Option<Arc<dyn Replay>>,
}

impl Fetcher {
    /// A fetcher that talks to the network, over http or https (rustls with
    /// Mozilla's root certificates, built in).
    pub fn new(config: FetchConfig) -> Result<Fetcher> {
        // reqwest is built without a default crypto provider; installing
        // ring process-wide fails harmlessly when one is installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let roots = webpki_root_certs::TLS_SERVER_ROOT_CERTS
            .iter()
            .filter_map(|der| reqwest::Certificate::from_der(der.as_ref()).ok());
        let mut builder = reqwest::Client::builder()
            .tls_certs_only(roots)
            .user_agent(config.user_agent.clone())
            .redirect(Policy::none())
            .connect_timeout(config.connect_timeout)
            .no_proxy()
            .pool_max_idle_per_host(config.max_concurrency.max(1))
            .dns_resolver(GuardedResolver {
                allow_private: config.allow_private_addresses,
            });
        for (host, addr) in &config.resolve_overrides {
            builder = builder.resolve(host, *addr);
        }
        let client = builder.build().map_err(|e| Error::Client(e.to_string()))?;
        Ok(Fetcher {
            slots: tokio::sync::Semaphore::new(config.max_concurrency.max(1)),
            config,
            client,
            hosts: Mutex::new(HashMap::new()),
            recorder: None,
            replay: None,
        })
    }

    /// Records every exchange with `recorder` (e.g. a WARC writer).
    pub fn with_recorder(mut self, recorder: Arc<dyn Recorder>) -> Fetcher {
        self.recorder = Some(recorder);
        self
    }

    /// Serves every request from `replay` instead of the network; politeness
    /// waits and address checks are skipped, everything else is the same.
    pub fn with_replay(mut self, replay: Arc<dyn Replay>) -> Fetcher {
        self.replay = Some(replay);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &FetchConfig {
        &self.config
    }

    /// Per-host statistics so far, sorted by host.
    pub fn host_reports(&self) -> Vec<HostReport> {
        let hosts: Vec<(String, Arc<HostState>)> = match self.hosts.lock() {
            Ok(h) => h.iter().map(|(k, v)| (k.clone(), Arc::clone(v))).collect(),
            Err(_) => return Vec::new(),
        };
        let mut reports: Vec<HostReport> = hosts
            .iter()
            .filter_map(|(k, v)| v.stats.lock().ok().map(|s| s.report(k)))
            .collect();
        reports.sort_by(|a, b| a.host.cmp(&b.host));
        reports
    }

    /// Fetches `url`, retrying transient failures; never fails as a call.
    pub async fn fetch(&self, url: &Url, expect: Expect) -> Fetched {
        let mut attempts = 0u32;
        loop {
            attempts += 1;
            let result = self.attempt(url, expect).await;
            let key = host_key(url);
            match result {
                Ok(ok) => {
                    self.count_outcome(key.as_deref(), "success");
                    return Fetched {
                        url: url.clone(),
                        final_url: ok.final_url,
                        status: FetchStatus::Success,
                        error_class: None,
                        error_message: None,
                        http_status: Some(ok.http_status),
                        attempts,
                        content_type: ok.content_type,
                        body: Some(ok.body),
                        image: ok.image,
                    };
                }
                Err(fail) => {
                    let retry = fail.class.is_transient() && attempts <= self.config.max_retries;
                    if retry {
                        let backoff = backoff::backoff_delay(
                            url.as_str(),
                            attempts - 1,
                            self.config.backoff_base,
                            self.config.backoff_max,
                        );
                        let wait = fail
                            .retry_after
                            .map_or(backoff, |ra| ra.min(self.config.backoff_max));
                        tracing::debug!(%url, class = %fail.class, ?wait, "retrying");
                        if self.replay.is_none() {
                            tokio::time::sleep(wait).await;
                        }
                        continue;
                    }
                    self.count_outcome(key.as_deref(), fail.class.as_str());
                    return Fetched {
                        url: url.clone(),
                        final_url: fail.final_url,
                        status: fail.class.status(),
                        error_class: Some(fail.class),
                        error_message: Some(fail.message),
                        http_status: fail.http_status,
                        attempts,
                        content_type: fail.content_type,
                        body: None,
                        image: None,
                    };
                }
            }
        }
    }

    fn count_outcome(&self, key: Option<&str>, what: &str) {
        if let Some(key) = key {
            let state = self.host_state(key);
            if let Ok(mut s) = state.stats.lock() {
                *s.outcomes.entry(what.to_owned()).or_default() += 1;
            }
        }
    }

    fn host_state(&self, key: &str) -> Arc<HostState> {
        match self.hosts.lock() {
            Ok(mut hosts) => Arc::clone(
                hosts
                    .entry(key.to_owned())
                    .or_insert_with(|| Arc::new(HostState::new())),
            ),
            // A poisoned map only loses sharing of politeness state.
            Err(_) => Arc::new(HostState::new()),
        }
    }

    /// One attempt: the request and every redirect hop.
    async fn attempt(&self, url: &Url, expect: Expect) -> std::result::Result<Success, Failure> {
        let mut current = url.clone();
        let mut seen: BTreeSet<String> = BTreeSet::new();
        seen.insert(current.to_string());
        for _hop in 0..=self.config.max_redirects {
            let key = self.admit(&current).await?;
            let state = self.host_state(&key);
            let (status, headers, body) = self.exchange(&current, &state, expect).await?;
            let content_type = header(&headers, "content-type").map(str::to_owned);
            if (300..400).contains(&status) && status != 304 {
                let Some(location) = header(&headers, "location") else {
                    return Err(Failure {
                        http_status: Some(status),
                        ..Failure::new(
                            ErrorClass::BadRedirect,
                            format!("HTTP {status} without Location"),
                            &current,
                        )
                    });
                };
                let next = match current.join(location) {
                    Ok(u) => u,
                    Err(e) => {
                        return Err(Failure {
                            http_status: Some(status),
                            ..Failure::new(
                                ErrorClass::BadRedirect,
                                format!("bad Location {location:?}: {e}"),
                                &current,
                            )
                        });
                    }
                };
                if !seen.insert(next.to_string()) {
                    return Err(Failure {
                        http_status: Some(status),
                        ..Failure::new(
                            ErrorClass::RedirectLoop,
                            format!("redirect back to {next}"),
                            &next,
                        )
                    });
                }
                current = next;
                continue;
            }
            let fail = |class: ErrorClass, message: String| Failure {
                http_status: Some(status),
                content_type: content_type.clone(),
                retry_after: header(&headers, "retry-after").and_then(backoff::parse_retry_after),
                ..Failure::new(class, message, &current)
            };
            match status {
                200..=299 => {}
                429 => return Err(fail(ErrorClass::RateLimited, "HTTP 429".into())),
                404 | 410 => return Err(fail(ErrorClass::NotFound, format!("HTTP {status}"))),
                401 | 403 => return Err(fail(ErrorClass::Forbidden, format!("HTTP {status}"))),
                500..=599 => return Err(fail(ErrorClass::ServerError, format!("HTTP {status}"))),
                400..=499 => return Err(fail(ErrorClass::ClientError, format!("HTTP {status}"))),
                _ => {
                    return Err(fail(
                        ErrorClass::BadRedirect,
                        format!("unexpected HTTP {status}"),
                    ));
                }
            }
            let xrt: Vec<&str> = headers
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case("x-robots-tag"))
                .map(|(_, v)| v.as_str())
                .collect();
            if let Some(token) = robots_tag_forbids(expect, &xrt) {
                return Err(fail(
                    ErrorClass::XRobotsTag,
                    format!("X-Robots-Tag: {token}"),
                ));
            }
            let declared =
                header(&headers, "content-length").and_then(|v| v.trim().parse::<u64>().ok());
            if body.len() as u64 > self.config.max_body_bytes
                || declared.is_some_and(|n| n > self.config.max_body_bytes)
            {
                return Err(fail(
                    ErrorClass::BodyTooLarge,
                    format!("body over the {} byte cap", self.config.max_body_bytes),
                ));
            }
            if body.is_empty() {
                return Err(fail(ErrorClass::EmptyBody, "empty body".into()));
            }
            let sniffed = Sniffed::of(&body);
            if !sniff::agrees(content_type.as_deref(), sniffed) {
                return Err(fail(
                    ErrorClass::ContentTypeMismatch,
                    format!(
                        "Content-Type {:?} but the bytes look like {sniffed:?}",
                        content_type.as_deref().unwrap_or("")
                    ),
                ));
            }
            let image = match expect {
                Expect::Page | Expect::Listing => {
                    if sniffed.is_image() {
                        return Err(fail(
                            ErrorClass::ContentTypeMismatch,
                            "expected a page, got an image".into(),
                        ));
                    }
                    None
                }
                Expect::Image => {
                    let limits = self.config.image_limits;
                    let bytes = body.clone();
                    let checked = tokio::task::spawn_blocking(move || check_image(&bytes, &limits))
                        .await
                        .map_err(|e| {
                            fail(
                                ErrorClass::CorruptImage,
                                format!("decoder task failed: {e}"),
                            )
                        })?;
                    match checked {
                        Ok(info) => Some(info),
                        Err((class, message)) => return Err(fail(class, message)),
                    }
                }
            };
            return Ok(Success {
                final_url: current,
                http_status: status,
                content_type,
                body,
                image,
            });
        }
        Err(Failure::new(
            ErrorClass::RedirectLoop,
            format!("more than {} redirects", self.config.max_redirects),
            &current,
        ))
    }

    /// Policy checks for one hop; returns the host:port key.
    async fn admit(&self, url: &Url) -> std::result::Result<String, Failure> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Failure::new(
                ErrorClass::InvalidUrl,
                format!("scheme {} is not http(s)", url.scheme()),
                url,
            ));
        }
        let Some(key) = host_key(url) else {
            return Err(Failure::new(ErrorClass::InvalidUrl, "URL has no host", url));
        };
        let host = url.host_str().unwrap_or("").to_ascii_lowercase();
        if let Some(allowed) = &self.config.allowed_hosts
            && !allowed.contains(&host)
            && !allowed.contains(&key)
        {
            return Err(Failure::new(
                ErrorClass::HostNotAllowed,
                format!("host {key} is not configured"),
                url,
            ));
        }
        if self.replay.is_none() {
            self.check_addresses(url, &host).await?;
        }
        let state = self.host_state(&key);
        if self.config.respect_robots && url.path() != "/robots.txt" {
            let robots = state
                .robots
                .get_or_init(|| self.fetch_robots(url, &state))
                .await;
            let target = match url.query() {
                Some(q) => format!("{}?{q}", url.path()),
                None => url.path().to_owned(),
            };
            if !robots.allowed(&target) {
                return Err(Failure::new(
                    ErrorClass::RobotsDisallowed,
                    format!("robots.txt disallows {target}"),
                    url,
                ));
            }
        }
        if self.replay.is_none() {
            let robots_delay = state.robots.get().and_then(|r| r.crawl_delay);
            let limiter = state
                .limiter
                .get_or_init(|| async {
                    host::limiter_for(self.config.rate_for(&key), robots_delay)
                })
                .await;
            limiter.until_ready().await;
        }
        Ok(key)
    }

    /// Refuses hosts that resolve to non-public addresses (unless allowed).
    async fn check_addresses(&self, url: &Url, host: &str) -> std::result::Result<(), Failure> {
        if self.config.allow_private_addresses {
            return Ok(());
        }
        let port = url.port_or_known_default().unwrap_or(80);
        let addrs: Vec<SocketAddr> = if let Some(addr) = self.config.resolve_overrides.get(host) {
            vec![*addr]
        } else if let Some(ip) = url.host().and_then(|h| match h {
            url::Host::Ipv4(v4) => Some(std::net::IpAddr::V4(v4)),
            url::Host::Ipv6(v6) => Some(std::net::IpAddr::V6(v6)),
            url::Host::Domain(_) => None,
        }) {
            vec![SocketAddr::new(ip, port)]
        } else {
            match tokio::net::lookup_host((host, port)).await {
                Ok(a) => a.collect(),
                Err(e) => {
                    return Err(Failure::new(
                        ErrorClass::Dns,
                        format!("resolving {host}: {e}"),
                        url,
                    ));
                }
            }
        };
        if let Some(bad) = addrs.iter().find(|a| is_non_public(a.ip())) {
            return Err(Failure::new(
                ErrorClass::PrivateAddress,
                format!("{host} resolves to non-public address {}", bad.ip()),
                url,
            ));
        }
        Ok(())
    }

    async fn fetch_robots(&self, url: &Url, state: &HostState) -> Robots {
        let mut robots_url = url.clone();
        robots_url.set_path("/robots.txt");
        robots_url.set_query(None);
        robots_url.set_fragment(None);
        let robots = match self.exchange(&robots_url, state, Expect::Page).await {
            Ok((status, _, body)) if (200..300).contains(&status) => {
                Robots::parse(&String::from_utf8_lossy(&body), PRODUCT_TOKEN)
            }
            // RFC 9309: "unavailable" (4xx) means no restrictions.
            Ok((status, _, _)) if (400..500).contains(&status) => Robots::allow_all(),
            // Redirects are not followed for robots.txt here; treat as absent.
            Ok((status, _, _)) if (300..400).contains(&status) => Robots::allow_all(),
            // "Unreachable" (5xx, network): assume complete disallow.
            _ => Robots::disallow_all(),
        };
        tracing::debug!(host = ?host_key(url), ?robots.crawl_delay, "robots.txt loaded");
        robots
    }

    /// One request on the wire (or from the replay archive): status, headers
    /// and as much body as the checks allow.
    async fn exchange(
        &self,
        url: &Url,
        state: &HostState,
        expect: Expect,
    ) -> std::result::Result<(u16, Vec<(String, String)>, Bytes), Failure> {
        let outcome = if let Some(replay) = &self.replay {
            replay
                .next(url.as_str())
                .unwrap_or_else(|| ExchangeOutcome::Failed {
                    class: ErrorClass::NotInArchive,
                    message: "no record of this URL in the WARC archive".to_owned(),
                })
        } else {
            let _slot = self.slots.acquire().await.map_err(|e| {
                Failure::new(ErrorClass::Connect, format!("fetcher closed: {e}"), url)
            })?;
            let started = Instant::now();
            let outcome =
                match tokio::time::timeout(self.config.request_timeout, self.wire(url, expect))
                    .await
                {
                    Ok(o) => o,
                    Err(_) => ExchangeOutcome::Failed {
                        class: ErrorClass::Timeout,
                        message: format!(
                            "no complete response within {:?}",
                            self.config.request_timeout
                        ),
                    },
                };
            if let Ok(mut s) = state.stats.lock() {
                s.requests += 1;
                if let ExchangeOutcome::Response { status, body, .. } = &outcome {
                    s.bytes += body.len() as u64;
                    s.http_429 += u64::from(*status == 429);
                    s.latencies.push(started.elapsed().as_secs_f64());
                }
            }
            if let Some(rec) = &self.recorder {
                let ex = Exchange {
                    url: url.to_string(),
                    outcome: outcome.clone(),
                };
                if let Err(e) = rec.record(&ex) {
                    tracing::warn!(%url, error = %e, "could not record exchange");
                }
            }
            outcome
        };
        match outcome {
            ExchangeOutcome::Response {
                status,
                headers,
                body,
            } => Ok((status, headers, body)),
            ExchangeOutcome::Failed { class, message } => Err(Failure::new(class, message, url)),
        }
    }

    /// The network request: headers first, body only if the headers allow.
    async fn wire(&self, url: &Url, expect: Expect) -> ExchangeOutcome {
        let accept = match expect {
            Expect::Page => "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5",
            Expect::Image => "image/jpeg,image/png,image/*;q=0.8",
            Expect::Listing => "application/xml,text/xml;q=0.9,text/html;q=0.8,*/*;q=0.5",
        };
        let mut resp = match self
            .client
            .get(url.clone())
            .header("accept", accept)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => return failed_from(&e),
        };
        let status = resp.status().as_u16();
        let headers: Vec<(String, String)> = resp
            .headers()
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let xrt: Vec<&str> = headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case("x-robots-tag"))
            .map(|(_, v)| v.as_str())
            .collect();
        // Decided by the headers alone: the body is not read.
        let skip_body = !((200..300).contains(&status) || status == 429 || status >= 500)
            || robots_tag_forbids(expect, &xrt).is_some();
        let cap = self.config.max_body_bytes;
        // Decided by the headers alone (including a declared length over the
        // cap, which `attempt` reads from the recorded headers): no body.
        if skip_body || resp.content_length().is_some_and(|n| n > cap) {
            return ExchangeOutcome::Response {
                status,
                headers,
                body: Bytes::new(),
            };
        }
        let mut body = BytesMut::new();
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    body.extend_from_slice(&chunk);
                    if body.len() as u64 > cap {
                        body.truncate((cap + 1) as usize);
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => return failed_from(&e),
            }
        }
        ExchangeOutcome::Response {
            status,
            headers,
            body: body.freeze(),
        }
    }
}

fn failed_from(e: &reqwest::Error) -> ExchangeOutcome {
    let class = if e.is_timeout() {
        ErrorClass::Timeout
    } else if e.is_connect() {
        if format!("{e:?}").contains("dns error") {
            ErrorClass::Dns
        } else {
            ErrorClass::Connect
        }
    } else if e.is_body() || e.is_decode() {
        ErrorClass::BodyRead
    } else {
        ErrorClass::Connect
    };
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        message.push_str(": ");
        message.push_str(&s.to_string());
        source = s.source();
    }
    ExchangeOutcome::Failed { class, message }
}

/// `host:port` (port defaulted from the scheme), lowercased.
pub fn host_key(url: &Url) -> Option<String> {
    let host = url.host_str()?.to_ascii_lowercase();
    let port = url.port_or_known_default()?;
    Some(format!("{host}:{port}"))
}

/// A DNS resolver that drops non-public addresses, the second fence behind
/// [`Fetcher::check_addresses`] (it catches DNS answers that change between
/// the check and the connect).
struct GuardedResolver {
    allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let kept: Vec<SocketAddr> = addrs
                .into_iter()
                .filter(|a| allow_private || !is_non_public(a.ip()))
                .collect();
            if kept.is_empty() {
                return Err(format!("{host} has no public address").into());
            }
            let iter: reqwest::dns::Addrs = Box::new(kept.into_iter());
            Ok(iter)
        })
    }
}

/// Counters of one set of fetches, as written into a part's stats.
pub fn outcome_counters(fetched: &[&Fetched]) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for f in fetched {
        let k = f.error_class.map_or("success", ErrorClass::as_str);
        *out.entry(format!("outcome_{k}")).or_insert(0) += 1;
        *out.entry("attempts".to_owned()).or_insert(0) += u64::from(f.attempts);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_ignore_noindex_but_not_noai() {
        assert_eq!(robots_tag_forbids(Expect::Listing, &["noindex"]), None);
        assert_eq!(
            robots_tag_forbids(Expect::Listing, &["googlebot: noindex, nofollow"]),
            None
        );
        assert_eq!(
            robots_tag_forbids(Expect::Listing, &["noindex, noai"]).as_deref(),
            Some("noai")
        );
        assert_eq!(
            robots_tag_forbids(Expect::Page, &["noindex"]).as_deref(),
            Some("noindex")
        );
    }
}
