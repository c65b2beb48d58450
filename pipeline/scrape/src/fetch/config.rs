//! Fetcher settings.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::image_check::ImageLimits;

/// The product token robots.txt groups are matched against.
pub const PRODUCT_TOKEN: &str = "anchor-scrape";

/// Everything that shapes how the fetcher behaves on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FetchConfig {
    /// `User-Agent` header; must carry a contact URL.
    pub user_agent: String,
    /// Requests per second per host:port when the host has no own setting.
    pub default_rate_per_sec: f64,
    /// Requests per second for specific hosts, keyed `host:port` or bare
    /// `host` (any port).
    pub host_rates: BTreeMap<String, f64>,
    /// Requests in flight over all hosts.
    pub max_concurrency: usize,
    /// TCP connect timeout.
    pub connect_timeout: Duration,
    /// Whole-request timeout (headers and body) per attempt.
    pub request_timeout: Duration,
    /// Bodies larger than this are refused (`body_too_large`).
    pub max_body_bytes: u64,
    /// Retries after the first attempt, for transient failures only.
    pub max_retries: u32,
    /// First backoff delay; doubles per retry.
    pub backoff_base: Duration,
    /// Largest backoff delay (also caps `Retry-After`).
    pub backoff_max: Duration,
    /// Redirect hops followed before `redirect_loop`.
    pub max_redirects: usize,
    /// Hosts that may be contacted (`None`: any).
    pub allowed_hosts: Option<BTreeSet<String>>,
    /// Permit loopback, private and link-local addresses (demo and tests).
    pub allow_private_addresses: bool,
    /// Fetch and honour robots.txt.
    pub respect_robots: bool,
    /// DNS overrides: host name to socket address (the demo maps its
    /// `*.demo.test` hosts to its 127.0.0.1 ports this way).
    pub resolve_overrides: BTreeMap<String, SocketAddr>,
    /// Decode limits for images.
    pub image_limits: ImageLimits,
}

impl Default for FetchConfig {
    fn default() -> Self {
        FetchConfig {
            user_agent: format!(
                "{PRODUCT_TOKEN}/{} (+https://example.invalid/anchor/crawler; research dataset)",
                env!("CARGO_PKG_VERSION")
            ),
            default_rate_per_sec: 1.0,
            host_rates: BTreeMap::new(),
            max_concurrency: 32,
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_body_bytes: 32 << 20,
            max_retries: 3,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            max_redirects: 5,
            allowed_hosts: None,
            allow_private_addresses: false,
            respect_robots: true,
            resolve_overrides: BTreeMap::new(),
            image_limits: ImageLimits::default(),
        }
    }
}

impl FetchConfig {
    /// The request rate for `host_port`: its own, else its host's, else
    /// the default.
    pub fn rate_for(&self, host_port: &str) -> f64 {
        let host = host_port.rsplit_once(':').map_or(host_port, |(h, _)| h);
        self.host_rates
            .get(host_port)
            .or_else(|| self.host_rates.get(host))
            .copied()
            .unwrap_or(self.default_rate_per_sec)
    }
}
