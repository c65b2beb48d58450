//! Outlet adapters: turn a saved news article page into article metadata and the
//! captioned photos it carries.
//!
//! The entry point is [`extract`]. It picks an adapter for the outlet (given, or detected
//! from the page's host), runs it, and falls back to the [generic](adapters::generic)
//! extractor (JSON-LD, OpenGraph, `figure`/`figcaption`) with a note when the outlet
//! adapter finds nothing. The result is an [`Extraction`]: an [`ArticleMeta`] and a list of
//! [`CaptionedImage`]s in article order, the lead image flagged.
//!
//! ```
//! let url = url::Url::parse("https://www.example.com/news/1").unwrap();
//! let html = r#"<html><body><article><figure>
//!   <img src="/a.jpg" srcset="/a-320.jpg 320w, /a-1024.jpg 1024w" alt="A bridge">
//!   <figcaption>The new bridge opens. Photograph: Jane Doe/Reuters</figcaption>
//! </figure></article></body></html>"#;
//! let ex = anchor_extract::extract(None, &url, html);
//! assert_eq!(ex.images[0].image_url, "https://www.example.com/a-1024.jpg");
//! assert_eq!(ex.images[0].caption, "The new bridge opens.");
//! assert_eq!(ex.images[0].credit.as_deref(), Some("Jane Doe/Reuters"));
//! ```
#![warn(missing_docs)]

pub mod adapters;
pub mod credit;
mod dom;
pub mod jsonld;
pub mod meta;
pub mod srcset;

pub use anchor_core::outlet::Outlet;
use serde::Serialize;
use url::Url;

/// What an adapter found on one page.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Extraction {
    /// Article-level metadata.
    pub article: ArticleMeta,
    /// Captioned photos in article order.
    pub images: Vec<CaptionedImage>,
    /// The adapter and layout that produced this, e.g. `"guardian/2023"` or `"generic"`.
    pub adapter: String,
    /// Soft problems met on the way (fallbacks, skipped figures); never fatal.
    pub notes: Vec<String>,
}

/// Article-level metadata.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ArticleMeta {
    /// The canonical URL of the article (`link rel=canonical`, `og:url`, JSON-LD `url`).
    pub canonical_url: Option<String>,
    /// The headline.
    pub headline: Option<String>,
    /// Publication time, RFC 3339 where the page gives a full timestamp.
    pub published_at: Option<String>,
    /// Section or topic, e.g. `"politics"`.
    pub section: Option<String>,
    /// Author names, in page order, without duplicates.
    pub authors: Vec<String>,
}

/// One captioned photo.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CaptionedImage {
    /// Absolute URL of the largest rendition found.
    pub image_url: String,
    /// The caption, with the credit taken out.
    pub caption: String,
    /// The photo credit, e.g. `"Jane Doe/Reuters"`, without its "Photograph:" label.
    pub credit: Option<String>,
    /// The image's alt text, when it has one.
    pub alt: Option<String>,
    /// 0-based position among the captioned images of the article.
    pub position: u32,
    /// Whether this is the article's lead (main) image.
    pub is_lead: bool,
}

/// Runs the adapter of `outlet` (or the one detected from `page_url`'s host when `None`;
/// the generic extractor when no outlet matches) over `html`.
///
/// Never fails: problems become [`Extraction::notes`].
pub fn extract(outlet: Option<Outlet>, page_url: &Url, html: &str) -> Extraction {
    adapters::run(outlet.or_else(|| detect_outlet(page_url)), page_url, html)
}

/// The outlet whose site serves `url`, from its host name.
pub fn detect_outlet(url: &Url) -> Option<Outlet> {
    let host = url.host_str()?.to_ascii_lowercase();
    let is = |domain: &str| host == domain || host.ends_with(&format!(".{domain}"));
    if is("theguardian.com") || is("guardian.co.uk") {
        Some(Outlet::Guardian)
    } else if is("bbc.co.uk") || is("bbc.com") {
        Some(Outlet::Bbc)
    } else if is("usatoday.com") {
        Some(Outlet::UsaToday)
    } else if is("washingtonpost.com") {
        Some(Outlet::WashingtonPost)
    } else if is("nytimes.com") {
        Some(Outlet::NyTimes)
    } else {
        None
    }
}

/// One JSON object (a single line) for `img`, with keys `image_url`, `caption`, `credit`,
/// `alt`, `position` and `is_lead`; what `anchor scrape extract` prints.
pub fn to_json_line(img: &CaptionedImage) -> String {
    let value = serde_json::json!({
        "image_url": img.image_url,
        "caption": img.caption,
        "credit": img.credit,
        "alt": img.alt,
        "position": img.position,
        "is_lead": img.is_lead,
    });
    value.to_string()
}
