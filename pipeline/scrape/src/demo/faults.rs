//! The demo's deliberate faults and how each must end.
//!
//! A fault is a pure function of (URL, attempt): the server decides what to
//! send from the path and how many times that path was asked for before.

use std::time::Duration;

use crate::outcome::{ErrorClass, FetchStatus};

/// Article-page faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArticleFault {
    /// A clean page.
    None,
    /// HTTP 404.
    NotFound,
    /// Under a path robots.txt disallows.
    RobotsDisallowed,
    /// `X-Robots-Tag: noindex`.
    NoIndex,
    /// 503 on the first attempt, then fine.
    ServerErrorOnce,
    /// 500 on every attempt.
    ServerErrorAlways,
    /// 429 with `Retry-After: 1` on the first attempt, then fine.
    RateLimitedOnce,
    /// A 301 to the canonical URL.
    Redirect,
    /// Two URLs redirecting to each other.
    RedirectLoop,
    /// Answers after a delay well below the timeout.
    SlowBelowTimeout,
    /// Answers after a delay well above the timeout, every time.
    SlowAboveTimeout,
}

/// Every article fault, in the order they are dealt out.
pub const ARTICLE_FAULTS: &[ArticleFault] = &[
    ArticleFault::NotFound,
    ArticleFault::RobotsDisallowed,
    ArticleFault::NoIndex,
    ArticleFault::ServerErrorOnce,
    ArticleFault::ServerErrorAlways,
    ArticleFault::RateLimitedOnce,
    ArticleFault::Redirect,
    ArticleFault::RedirectLoop,
    ArticleFault::SlowBelowTimeout,
    ArticleFault::SlowAboveTimeout,
];

/// Image faults (scrape-stage and image-quality ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFault {
    /// A clean image.
    None,
    /// HTTP 404.
    NotFound,
    /// HTTP 403.
    Forbidden,
    /// 429 + `Retry-After: 1` once, then fine.
    RateLimitedOnce,
    /// 429 + `Retry-After: 1` every time.
    RateLimitedAlways,
    /// 503 once, then fine.
    ServerErrorOnce,
    /// 502 every time.
    ServerErrorAlways,
    /// Under a robots.txt-disallowed path.
    RobotsDisallowed,
    /// `X-Robots-Tag: noai`.
    NoAi,
    /// `X-Robots-Tag: noimageai`.
    NoImageAi,
    /// Delay well below the timeout.
    SlowBelowTimeout,
    /// Delay well above the timeout on the first attempt only.
    SlowOnce,
    /// Delay well above the timeout every time.
    SlowAboveTimeout,
    /// The JPEG stops halfway.
    Truncated,
    /// The JPEG's entropy-coded data is scrambled.
    Corrupt,
    /// A small PNG declaring a 60000x60000 canvas.
    DecompressionBomb,
    /// A 1x1 PNG (tracking pixel).
    TrackingPixel,
    /// An HTML page served as `image/jpeg`.
    HtmlAsJpeg,
    /// A 302 to the real file.
    Redirect,
    /// Two image URLs redirecting to each other.
    RedirectLoop,
    /// `Content-Length` far over the body cap.
    BodyTooLarge,
}

/// Every image fault, in the order they are dealt out.
pub const IMAGE_FAULTS: &[ImageFault] = &[
    ImageFault::NotFound,
    ImageFault::Forbidden,
    ImageFault::RateLimitedOnce,
    ImageFault::RateLimitedAlways,
    ImageFault::ServerErrorOnce,
    ImageFault::ServerErrorAlways,
    ImageFault::RobotsDisallowed,
    ImageFault::NoAi,
    ImageFault::NoImageAi,
    ImageFault::SlowBelowTimeout,
    ImageFault::SlowOnce,
    ImageFault::SlowAboveTimeout,
    ImageFault::Truncated,
    ImageFault::Corrupt,
    ImageFault::DecompressionBomb,
    ImageFault::TrackingPixel,
    ImageFault::HtmlAsJpeg,
    ImageFault::Redirect,
    ImageFault::RedirectLoop,
    ImageFault::BodyTooLarge,
];

/// Caption faults: these end in extract or curate, not in scrape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptionFault {
    /// A normal caption.
    None,
    /// Only a credit, no caption text: the extractor keeps no pair.
    Empty,
    /// A caption in French.
    NonEnglish,
    /// A caption of several thousand characters.
    OverLong,
}

/// Every caption fault, in the order they are dealt out.
pub const CAPTION_FAULTS: &[CaptionFault] = &[
    CaptionFault::Empty,
    CaptionFault::NonEnglish,
    CaptionFault::OverLong,
];

/// How a URL must end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    /// `scrape`, `extract` or `curate`: where the fault is caught.
    pub stage: &'static str,
    /// Scrape status of the row (`absent` when no row is expected).
    pub status: &'static str,
    /// Scrape error class, if any.
    pub error_class: Option<&'static str>,
    /// Drop reason in a later stage, if any.
    pub drop_reason: Option<&'static str>,
}

fn scrape_fail(class: ErrorClass) -> Expected {
    Expected {
        stage: "scrape",
        status: class.status().as_str(),
        error_class: Some(class.as_str()),
        drop_reason: None,
    }
}

fn ok() -> Expected {
    Expected {
        stage: "scrape",
        status: FetchStatus::Success.as_str(),
        error_class: None,
        drop_reason: None,
    }
}

impl ArticleFault {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            ArticleFault::None => "none",
            ArticleFault::NotFound => "article_not_found",
            ArticleFault::RobotsDisallowed => "article_robots_disallowed",
            ArticleFault::NoIndex => "article_x_robots_noindex",
            ArticleFault::ServerErrorOnce => "article_503_once",
            ArticleFault::ServerErrorAlways => "article_500_always",
            ArticleFault::RateLimitedOnce => "article_429_once",
            ArticleFault::Redirect => "article_redirect",
            ArticleFault::RedirectLoop => "article_redirect_loop",
            ArticleFault::SlowBelowTimeout => "article_slow_below_timeout",
            ArticleFault::SlowAboveTimeout => "article_slow_above_timeout",
        }
    }

    /// How the article row must end.
    pub fn expected(self) -> Expected {
        match self {
            ArticleFault::NotFound => scrape_fail(ErrorClass::NotFound),
            ArticleFault::RobotsDisallowed => scrape_fail(ErrorClass::RobotsDisallowed),
            ArticleFault::NoIndex => scrape_fail(ErrorClass::XRobotsTag),
            ArticleFault::ServerErrorAlways => scrape_fail(ErrorClass::ServerError),
            ArticleFault::RedirectLoop => scrape_fail(ErrorClass::RedirectLoop),
            ArticleFault::SlowAboveTimeout => scrape_fail(ErrorClass::Timeout),
            _ => ok(),
        }
    }
}

impl ImageFault {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            ImageFault::None => "none",
            ImageFault::NotFound => "image_not_found",
            ImageFault::Forbidden => "image_forbidden",
            ImageFault::RateLimitedOnce => "image_429_once",
            ImageFault::RateLimitedAlways => "image_429_always",
            ImageFault::ServerErrorOnce => "image_503_once",
            ImageFault::ServerErrorAlways => "image_502_always",
            ImageFault::RobotsDisallowed => "image_robots_disallowed",
            ImageFault::NoAi => "image_x_robots_noai",
            ImageFault::NoImageAi => "image_x_robots_noimageai",
            ImageFault::SlowBelowTimeout => "image_slow_below_timeout",
            ImageFault::SlowOnce => "image_slow_once",
            ImageFault::SlowAboveTimeout => "image_slow_above_timeout",
            ImageFault::Truncated => "image_truncated",
            ImageFault::Corrupt => "image_corrupt",
            ImageFault::DecompressionBomb => "image_decompression_bomb",
            ImageFault::TrackingPixel => "image_tracking_pixel",
            ImageFault::HtmlAsJpeg => "image_html_as_jpeg",
            ImageFault::Redirect => "image_redirect",
            ImageFault::RedirectLoop => "image_redirect_loop",
            ImageFault::BodyTooLarge => "image_body_too_large",
        }
    }

    /// How the pair row must end.
    pub fn expected(self) -> Expected {
        match self {
            ImageFault::NotFound => scrape_fail(ErrorClass::NotFound),
            ImageFault::Forbidden => scrape_fail(ErrorClass::Forbidden),
            ImageFault::RateLimitedAlways => scrape_fail(ErrorClass::RateLimited),
            ImageFault::ServerErrorAlways => scrape_fail(ErrorClass::ServerError),
            ImageFault::RobotsDisallowed => scrape_fail(ErrorClass::RobotsDisallowed),
            ImageFault::NoAi | ImageFault::NoImageAi => scrape_fail(ErrorClass::XRobotsTag),
            ImageFault::SlowAboveTimeout => scrape_fail(ErrorClass::Timeout),
            ImageFault::Truncated => scrape_fail(ErrorClass::TruncatedImage),
            ImageFault::Corrupt => scrape_fail(ErrorClass::CorruptImage),
            ImageFault::DecompressionBomb => scrape_fail(ErrorClass::DecodeLimitExceeded),
            ImageFault::HtmlAsJpeg => scrape_fail(ErrorClass::ContentTypeMismatch),
            ImageFault::RedirectLoop => scrape_fail(ErrorClass::RedirectLoop),
            ImageFault::BodyTooLarge => scrape_fail(ErrorClass::BodyTooLarge),
            ImageFault::TrackingPixel => Expected {
                stage: "curate",
                drop_reason: Some("too_small"),
                ..ok()
            },
            _ => ok(),
        }
    }

    /// The server's delay for `attempt`, given the client timeout.
    pub fn delay(self, attempt: u32, timeout: Duration) -> Duration {
        match self {
            ImageFault::SlowBelowTimeout => timeout / 10,
            ImageFault::SlowOnce if attempt == 0 => timeout * 4,
            ImageFault::SlowAboveTimeout => timeout * 4,
            _ => Duration::ZERO,
        }
    }
}

impl CaptionFault {
    /// Stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            CaptionFault::None => "none",
            CaptionFault::Empty => "caption_empty",
            CaptionFault::NonEnglish => "caption_non_english",
            CaptionFault::OverLong => "caption_over_long",
        }
    }

    /// How the pair must end (only meaningful on an otherwise clean image).
    pub fn expected(self) -> Expected {
        match self {
            CaptionFault::None => ok(),
            CaptionFault::Empty => Expected {
                stage: "extract",
                status: "absent",
                error_class: None,
                drop_reason: Some("no_caption"),
            },
            CaptionFault::NonEnglish => Expected {
                stage: "curate",
                drop_reason: Some("non_english"),
                ..ok()
            },
            CaptionFault::OverLong => Expected {
                stage: "curate",
                drop_reason: Some("caption_too_long"),
                ..ok()
            },
        }
    }
}
