//! Retry delays: exponential backoff with deterministic jitter, and
//! `Retry-After`.
//!
//! Jitter spreads retries so clients do not stampede a recovering server; it
//! is derived from (URL, attempt) rather than a random generator so that two
//! runs make the same requests at the same relative times.

use std::time::Duration;

use sha2::{Digest, Sha256};

/// A number in [0, 1) that depends only on `url` and `attempt`.
pub fn jitter_fraction(url: &str, attempt: u32) -> f64 {
    let digest = Sha256::new()
        .chain_update(url.as_bytes())
        .chain_update(attempt.to_le_bytes())
        .finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // 53 bits fill an f64 mantissa exactly.
    (u64::from_le_bytes(first) >> 11) as f64 / (1u64 << 53) as f64
}

/// Delay before retry number `retry` (0-based) of `url`: `base * 2^retry`,
/// capped at `max`, scaled into [50%, 100%] by the jitter.
pub fn backoff_delay(url: &str, retry: u32, base: Duration, max: Duration) -> Duration {
    let exp = base.saturating_mul(1u32.checked_shl(retry.min(20)).unwrap_or(u32::MAX));
    let capped = exp.min(max);
    capped.mul_f64(0.5 + 0.5 * jitter_fraction(url, retry))
}

/// Parses a `Retry-After` value given in seconds. HTTP-date values are not
/// interpreted (they would need a clock); the caller falls back to backoff.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_reproducible() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(1);
        let d0 = backoff_delay("http://a/x", 0, base, max);
        let d3 = backoff_delay("http://a/x", 3, base, max);
        assert!(d0 >= Duration::from_millis(50) && d0 <= base, "{d0:?}");
        assert!(
            d3 >= Duration::from_millis(400) && d3 <= Duration::from_millis(800),
            "{d3:?}"
        );
        assert!(backoff_delay("http://a/x", 30, base, max) <= max);
        assert_eq!(d0, backoff_delay("http://a/x", 0, base, max));
        assert_ne!(
            jitter_fraction("http://a/x", 0),
            jitter_fraction("http://a/y", 0)
        );
    }

    #[test]
    fn retry_after_seconds() {
        assert_eq!(parse_retry_after(" 3 "), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }
}
