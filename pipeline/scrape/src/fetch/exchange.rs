//! What one HTTP request produced, as recorded to WARC and replayed from it.

use bytes::Bytes;

use crate::outcome::ErrorClass;

/// The result of one request on the wire.
#[derive(Debug, Clone, PartialEq)]
pub enum ExchangeOutcome {
    /// A response arrived. `body` is what was read: empty when the headers
    /// alone decided (X-Robots-Tag, redirects), cut at the cap plus one byte
    /// when the body was too large.
    Response {
        /// HTTP status code.
        status: u16,
        /// Response headers in wire order.
        headers: Vec<(String, String)>,
        /// Body bytes read.
        body: Bytes,
    },
    /// No response: DNS, connect, timeout or a broken body.
    Failed {
        /// The error class.
        class: ErrorClass,
        /// Detail.
        message: String,
    },
}

/// One request and its outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct Exchange {
    /// Requested URL.
    pub url: String,
    /// What came back.
    pub outcome: ExchangeOutcome,
}

/// Receives every exchange (the WARC writer implements it).
pub trait Recorder: Send + Sync {
    /// Records one exchange. Failures are logged by the fetcher, not fatal
    /// to the fetch.
    fn record(&self, exchange: &Exchange) -> std::io::Result<()>;
}

/// Serves recorded exchanges instead of the network (WARC replay).
pub trait Replay: Send + Sync {
    /// The next recorded outcome for `url`, in the order they were recorded;
    /// `None` when the archive has no record of it.
    fn next(&self, url: &str) -> Option<ExchangeOutcome>;
}

/// The value of header `name` (case-insensitive), first occurrence.
pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Whether an `X-Robots-Tag` value forbids use: `noai`, `noimageai`,
/// `noindex`, `noimageindex` or `none`, optionally prefixed by a bot name
/// (`googlebot: noindex`).
pub fn x_robots_forbids(values: &[&str]) -> Option<String> {
    for value in values {
        for token in value.split(',') {
            let token = token
                .rsplit(':')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if matches!(
                token.as_str(),
                "noai" | "noimageai" | "noindex" | "noimageindex" | "none"
            ) {
                return Some(token);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x_robots_tokens() {
        assert_eq!(x_robots_forbids(&["noai"]).as_deref(), Some("noai"));
        assert_eq!(
            x_robots_forbids(&["googlebot: noimageindex, nofollow"]).as_deref(),
            Some("noimageindex")
        );
        assert_eq!(x_robots_forbids(&["nofollow", "noarchive"]), None);
    }
}
