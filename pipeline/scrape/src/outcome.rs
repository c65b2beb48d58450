//! The final status and error class every fetch ends with.
//!
//! Both are stable snake_case words written into the `articles` and `pairs`
//! tables (img2dataset's `status` column, datatrove's drop reasons): renaming
//! one is a schema change.

use std::fmt;

/// The final status of a row, img2dataset style.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum FetchStatus {
    /// Fetched, checked and (for images) decoded.
    Success,
    /// No usable response: network failure, HTTP error, size or type check.
    FailedToDownload,
    /// Bytes arrived but are not a decodable image within the limits.
    FailedToDecode,
    /// The site asked us not to fetch or use it (robots.txt, `X-Robots-Tag`).
    Disallowed,
    /// Refused by our own policy before any request (private address,
    /// unconfigured host, bad URL).
    Refused,
}

impl FetchStatus {
    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            FetchStatus::Success => "success",
            FetchStatus::FailedToDownload => "failed_to_download",
            FetchStatus::FailedToDecode => "failed_to_decode",
            FetchStatus::Disallowed => "disallowed",
            FetchStatus::Refused => "refused",
        }
    }
}

impl fmt::Display for FetchStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a fetch did not succeed. Transient classes may succeed on a later run
/// (`anchor scrape --retry-failed`); the others are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorClass {
    /// Name resolution failed.
    Dns,
    /// TCP connect failed or was refused.
    Connect,
    /// No complete response within the request timeout.
    Timeout,
    /// The connection broke while the body was being read.
    BodyRead,
    /// HTTP 429 on every attempt.
    RateLimited,
    /// HTTP 5xx on every attempt.
    ServerError,
    /// HTTP 404 or 410.
    NotFound,
    /// HTTP 401 or 403.
    Forbidden,
    /// Any other 4xx.
    ClientError,
    /// A 3xx without a usable `Location`, or another unexpected status.
    BadRedirect,
    /// More redirects than allowed, or a redirect back to a URL already seen.
    RedirectLoop,
    /// robots.txt disallows the URL (or a redirect target).
    RobotsDisallowed,
    /// `X-Robots-Tag` carries `noai`, `noimageai`, `noindex` or `noimageindex`.
    XRobotsTag,
    /// The address resolves to loopback, private or link-local space.
    PrivateAddress,
    /// The host is not among the configured hosts.
    HostNotAllowed,
    /// The URL is malformed or not http(s).
    InvalidUrl,
    /// The body is larger than the configured cap.
    BodyTooLarge,
    /// The body is empty.
    EmptyBody,
    /// The bytes are not what `Content-Type` says (e.g. HTML as image/jpeg).
    ContentTypeMismatch,
    /// The bytes are not an image format we accept.
    NotAnImage,
    /// Image dimensions or allocation exceed the decode limits (a
    /// decompression bomb is rejected here, before pixels are allocated).
    DecodeLimitExceeded,
    /// The image ends before its data does.
    TruncatedImage,
    /// The image data is invalid.
    CorruptImage,
    /// The page yielded no captioned image.
    NoImages,
    /// A WARC replay holds no record for the URL.
    NotInArchive,
}

impl ErrorClass {
    /// Every class, for documentation and tests.
    pub const ALL: &'static [ErrorClass] = &[
        ErrorClass::Dns,
        ErrorClass::Connect,
        ErrorClass::Timeout,
        ErrorClass::BodyRead,
        ErrorClass::RateLimited,
        ErrorClass::ServerError,
        ErrorClass::NotFound,
        ErrorClass::Forbidden,
        ErrorClass::ClientError,
        ErrorClass::BadRedirect,
        ErrorClass::RedirectLoop,
        ErrorClass::RobotsDisallowed,
        ErrorClass::XRobotsTag,
        ErrorClass::PrivateAddress,
        ErrorClass::HostNotAllowed,
        ErrorClass::InvalidUrl,
        ErrorClass::BodyTooLarge,
        ErrorClass::EmptyBody,
        ErrorClass::ContentTypeMismatch,
        ErrorClass::NotAnImage,
        ErrorClass::DecodeLimitExceeded,
        ErrorClass::TruncatedImage,
        ErrorClass::CorruptImage,
        ErrorClass::NoImages,
        ErrorClass::NotInArchive,
    ];

    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Dns => "dns",
            ErrorClass::Connect => "connect",
            ErrorClass::Timeout => "timeout",
            ErrorClass::BodyRead => "body_read",
            ErrorClass::RateLimited => "rate_limited",
            ErrorClass::ServerError => "server_error",
            ErrorClass::NotFound => "not_found",
            ErrorClass::Forbidden => "forbidden",
            ErrorClass::ClientError => "client_error",
            ErrorClass::BadRedirect => "bad_redirect",
            ErrorClass::RedirectLoop => "redirect_loop",
            ErrorClass::RobotsDisallowed => "robots_disallowed",
            ErrorClass::XRobotsTag => "x_robots_tag",
            ErrorClass::PrivateAddress => "private_address",
            ErrorClass::HostNotAllowed => "host_not_allowed",
            ErrorClass::InvalidUrl => "invalid_url",
            ErrorClass::BodyTooLarge => "body_too_large",
            ErrorClass::EmptyBody => "empty_body",
            ErrorClass::ContentTypeMismatch => "content_type_mismatch",
            ErrorClass::NotAnImage => "not_an_image",
            ErrorClass::DecodeLimitExceeded => "decode_limit_exceeded",
            ErrorClass::TruncatedImage => "truncated_image",
            ErrorClass::CorruptImage => "corrupt_image",
            ErrorClass::NoImages => "no_images",
            ErrorClass::NotInArchive => "not_in_archive",
        }
    }

    /// Parses [`ErrorClass::as_str`] back.
    pub fn parse(s: &str) -> Option<ErrorClass> {
        ErrorClass::ALL.iter().copied().find(|c| c.as_str() == s)
    }

    /// Whether retrying later may succeed. Only these are retried within a
    /// fetch and by `--retry-failed`; 404/403 and policy refusals are final.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            ErrorClass::Dns
                | ErrorClass::Connect
                | ErrorClass::Timeout
                | ErrorClass::BodyRead
                | ErrorClass::RateLimited
                | ErrorClass::ServerError
        )
    }

    /// The row status this class ends in.
    pub fn status(self) -> FetchStatus {
        match self {
            ErrorClass::RobotsDisallowed | ErrorClass::XRobotsTag => FetchStatus::Disallowed,
            ErrorClass::PrivateAddress | ErrorClass::HostNotAllowed | ErrorClass::InvalidUrl => {
                FetchStatus::Refused
            }
            ErrorClass::DecodeLimitExceeded
            | ErrorClass::TruncatedImage
            | ErrorClass::CorruptImage
            | ErrorClass::NotAnImage => FetchStatus::FailedToDecode,
            _ => FetchStatus::FailedToDownload,
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique_snake_case() {
        let mut seen = std::collections::BTreeSet::new();
        for class in ErrorClass::ALL {
            let name = class.as_str();
            assert!(
                name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{name}"
            );
            assert!(seen.insert(name), "duplicate {name}");
            assert_eq!(ErrorClass::parse(name), Some(*class));
        }
    }

    #[test]
    fn final_http_errors_are_not_transient() {
        assert!(!ErrorClass::NotFound.is_transient());
        assert!(!ErrorClass::Forbidden.is_transient());
        assert!(ErrorClass::RateLimited.is_transient());
        assert!(ErrorClass::Timeout.is_transient());
        assert_eq!(ErrorClass::XRobotsTag.status(), FetchStatus::Disallowed);
    }
}
