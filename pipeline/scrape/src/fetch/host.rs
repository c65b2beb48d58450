//! Per-host state: robots.txt, the rate limiter and statistics.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde::{Deserialize, Serialize};

use crate::robots::Robots;

/// One host:port's politeness state. Each host has its own limiter (not one
/// keyed limiter) because robots.txt `Crawl-delay` differs per host.
pub struct HostState {
    /// robots.txt, fetched once.
    pub robots: tokio::sync::OnceCell<Robots>,
    /// Built after robots.txt is known, from the configured rate and the
    /// Crawl-delay, whichever is slower.
    pub limiter: tokio::sync::OnceCell<DefaultDirectRateLimiter>,
    /// Counters for the report.
    pub stats: Mutex<HostStats>,
}

impl HostState {
    pub(crate) fn new() -> HostState {
        HostState {
            robots: tokio::sync::OnceCell::new(),
            limiter: tokio::sync::OnceCell::new(),
            stats: Mutex::new(HostStats::default()),
        }
    }
}

/// A limiter allowing one request per `max(1/rate, crawl_delay)`, no burst.
pub fn limiter_for(rate_per_sec: f64, crawl_delay: Option<Duration>) -> DefaultDirectRateLimiter {
    let rate = if rate_per_sec.is_finite() && rate_per_sec > 0.0 {
        rate_per_sec
    } else {
        1.0
    };
    let mut period = Duration::from_secs_f64(1.0 / rate);
    if let Some(delay) = crawl_delay {
        period = period.max(delay);
    }
    let period = period.max(Duration::from_nanos(1));
    let quota = Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(NonZeroU32::MIN);
    RateLimiter::direct(quota)
}

/// Raw per-host counters.
#[derive(Debug, Clone, Default)]
pub struct HostStats {
    /// HTTP requests sent (robots.txt included).
    pub requests: u64,
    /// Final outcomes by status or error class.
    pub outcomes: BTreeMap<String, u64>,
    /// Responses with HTTP 429.
    pub http_429: u64,
    /// Body bytes received.
    pub bytes: u64,
    /// Latency of each response (request sent to body read), in seconds.
    pub latencies: Vec<f64>,
}

/// Per-host statistics as reported (and written to `host_stats.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HostReport {
    /// `host:port`.
    pub host: String,
    /// HTTP requests sent.
    pub requests: u64,
    /// Final outcomes (`success` or an error class) and their counts.
    pub outcomes: BTreeMap<String, u64>,
    /// Responses with HTTP 429.
    pub http_429: u64,
    /// Body bytes received.
    pub bytes: u64,
    /// Median latency in milliseconds.
    pub latency_p50_ms: f64,
    /// 95th-percentile latency in milliseconds.
    pub latency_p95_ms: f64,
}

impl HostStats {
    /// Summarises into a report.
    pub fn report(&self, host: &str) -> HostReport {
        let mut lat = self.latencies.clone();
        lat.sort_by(f64::total_cmp);
        HostReport {
            host: host.to_owned(),
            requests: self.requests,
            outcomes: self.outcomes.clone(),
            http_429: self.http_429,
            bytes: self.bytes,
            latency_p50_ms: percentile(&lat, 0.50) * 1000.0,
            latency_p95_ms: percentile(&lat, 0.95) * 1000.0,
        }
    }
}

/// Nearest-rank percentile of sorted values (0 when empty).
pub fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.95), 95.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn crawl_delay_slows_the_limiter() {
        let fast = limiter_for(1000.0, None);
        assert!(fast.check().is_ok());
        let slow = limiter_for(1000.0, Some(Duration::from_secs(5)));
        assert!(slow.check().is_ok());
        assert!(
            slow.check().is_err(),
            "a second request within the crawl delay must wait"
        );
    }
}
