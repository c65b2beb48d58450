//! The adapters: one module per outlet, plus [`generic`].
//!
//! Each outlet adapter recognises the layouts its outlet used over the years and returns the
//! captioned images it finds (in article order) together with the layout's name. The shared
//! tail in [`run`] resolves URLs, drops non-photos (logos, avatars, icons, ads), removes
//! repeats, numbers positions and settles the lead flag.

pub mod bbc;
pub mod blocks;
pub mod generic;
pub mod guardian;
pub mod nytimes;
pub mod usatoday;
pub mod washingtonpost;

use crate::{ArticleMeta, CaptionedImage, Extraction, Outlet};
use scraper::Html;
use serde_json::Value;
use url::Url;

/// A parsed page and what every adapter needs to know about it.
pub struct Page<'a> {
    /// The parsed document.
    pub doc: Html,
    /// Where the page was fetched from.
    pub url: &'a Url,
    /// The URL relative image addresses resolve against: the page URL, or the canonical
    /// URL when the page URL is not a web address (a local file).
    pub base: Url,
    /// Flattened JSON-LD objects.
    pub ld: Vec<Value>,
    /// Article metadata found in the head; adapters may improve it.
    pub meta: ArticleMeta,
    /// Notes to report.
    pub notes: Vec<String>,
}

/// An image as an adapter found it, before the shared clean-up.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Found {
    /// The image URL as written in the page (resolved later).
    pub url: String,
    /// Caption text, possibly still holding the credit.
    pub caption: String,
    /// The credit, when the page gives it in its own element.
    pub credit: Option<String>,
    /// Alt text.
    pub alt: Option<String>,
    /// Whether the adapter knows this is the lead image.
    pub is_lead: bool,
}

impl Found {
    /// Splits the credit out of the caption unless the page gave it separately; when both
    /// exist, a credit repeated at the end of the caption is removed from it.
    fn settle_credit(&mut self) {
        let (caption, from_caption) = crate::credit::split_credit(&self.caption);
        match self
            .credit
            .take()
            .and_then(|c| crate::credit::clean_credit(&c))
        {
            Some(own) => {
                // Keep the caption split only if it removed this same credit.
                let same = from_caption
                    .as_deref()
                    .is_some_and(|c| c.eq_ignore_ascii_case(&own));
                if same {
                    self.caption = caption;
                } else {
                    self.caption = crate::dom::collapse_ws(&self.caption);
                    if let Some(stripped) = self.caption.strip_suffix(own.as_str()) {
                        self.caption = stripped.trim().to_string();
                    }
                }
                self.credit = Some(own);
            }
            None => {
                self.caption = caption;
                self.credit = from_caption;
            }
        }
    }
}

/// What an outlet adapter returns when it recognises the page.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    /// Layout name, e.g. `"2023"`, appended to the outlet's name in [`Extraction::adapter`].
    pub name: &'static str,
    /// Images in article order.
    pub images: Vec<Found>,
}

/// Runs `outlet`'s adapter (generic when `None`) with the generic fallback and clean-up.
pub fn run(outlet: Option<Outlet>, page_url: &Url, html: &str) -> Extraction {
    let doc = Html::parse_document(html);
    let mut notes = Vec::new();
    let ld = crate::jsonld::objects(&doc, &mut notes);
    let meta = crate::meta::article_meta(&doc, page_url, &ld);
    let base = match page_url.scheme() {
        "http" | "https" => page_url.clone(),
        _ => meta
            .canonical_url
            .as_deref()
            .and_then(|c| Url::parse(c).ok())
            .unwrap_or_else(|| page_url.clone()),
    };
    let mut page = Page {
        doc,
        url: page_url,
        base,
        ld,
        meta,
        notes,
    };
    let outlet_layout = match outlet {
        Some(Outlet::Guardian) => guardian::extract(&mut page),
        Some(Outlet::Bbc) => bbc::extract(&mut page),
        Some(Outlet::UsaToday) => usatoday::extract(&mut page),
        Some(Outlet::WashingtonPost) => washingtonpost::extract(&mut page),
        Some(Outlet::NyTimes) => nytimes::extract(&mut page),
        None => None,
    };
    let (adapter, images) = match (outlet, outlet_layout) {
        (Some(o), Some(layout)) => {
            let images = finish(&mut page, layout.images);
            if images.is_empty() {
                fallback(&mut page, &format!("{}/{}", o.as_str(), layout.name))
            } else {
                (format!("{}/{}", o.as_str(), layout.name), images)
            }
        }
        (Some(o), None) => {
            page.notes
                .push(format!("{} adapter: layout not recognised", o.as_str()));
            fallback(&mut page, o.as_str())
        }
        (None, _) => {
            let found = generic::extract(&page);
            ("generic".to_string(), finish(&mut page, found))
        }
    };
    Extraction {
        article: page.meta,
        images,
        adapter,
        notes: page.notes,
    }
}

fn fallback(page: &mut Page<'_>, tried: &str) -> (String, Vec<CaptionedImage>) {
    tracing::info!(url = %page.url, adapter = tried, "no captioned image found; falling back to generic");
    page.notes.push(format!(
        "{tried} found no captioned image; fell back to generic"
    ));
    let found = generic::extract(page);
    ("generic".to_string(), finish(page, found))
}

/// Shared clean-up: credit split, URL resolution, exclusion of non-photos, dedup,
/// positions and the lead flag.
fn finish(page: &mut Page<'_>, found: Vec<Found>) -> Vec<CaptionedImage> {
    let mut out: Vec<CaptionedImage> = Vec::new();
    for mut f in found {
        f.settle_credit();
        let Some(url) = crate::srcset::resolve(&page.base, &f.url) else {
            page.notes
                .push(format!("skipped image with unusable URL {:?}", f.url));
            continue;
        };
        if is_non_photo(&url, f.alt.as_deref()) {
            continue;
        }
        // Only captioned photos make dataset pairs; a credit alone is no caption.
        if f.caption.is_empty() {
            continue;
        }
        if let Some(prev) = out.iter_mut().find(|p| same_image(&p.image_url, &url)) {
            // The same photo twice (a lead repeated in a gallery, a noscript copy): keep the
            // first, but remember it was the lead.
            prev.is_lead |= f.is_lead;
            continue;
        }
        let alt = f.alt.filter(|a| !a.is_empty());
        out.push(CaptionedImage {
            image_url: url,
            caption: f.caption,
            credit: f.credit,
            alt,
            position: 0,
            is_lead: f.is_lead,
        });
    }
    // At most one lead: the first flagged.
    let mut seen_lead = false;
    for (i, img) in out.iter_mut().enumerate() {
        img.position = u32::try_from(i).unwrap_or(u32::MAX);
        if img.is_lead {
            if seen_lead {
                img.is_lead = false;
            }
            seen_lead = true;
        }
    }
    out
}

/// Two URLs name the same photo when they match up to the fragment, or, for paths naming an
/// image file, up to the query string too (renditions differ only in `?w=…`). A query on a
/// script path (`/image.php?id=7`) is what tells images apart, so it is kept there.
fn same_image(a: &str, b: &str) -> bool {
    let key = |s: &str| -> String {
        let no_frag = s.split('#').next().unwrap_or(s);
        let path = no_frag.split('?').next().unwrap_or(no_frag);
        let lower = path.to_ascii_lowercase();
        let is_file = [".jpg", ".jpeg", ".png", ".webp", ".gif", ".avif"]
            .iter()
            .any(|e| lower.ends_with(e));
        if is_file { path } else { no_frag }.to_string()
    };
    key(a) == key(b)
}

/// Logos, avatars, icons, sprites, ad pixels and similar page furniture.
pub(crate) fn is_non_photo(url: &str, alt: Option<&str>) -> bool {
    let lower = url.to_ascii_lowercase();
    let path = lower.split(['?', '#']).next().unwrap_or(&lower);
    const MARKERS: &[&str] = &[
        "logo",
        "avatar",
        "/icons/",
        "icon-",
        "-icon",
        "favicon",
        "sprite",
        "/ads/",
        "doubleclick",
        "pixel.",
        "/static/frontend/",
        "contributor",
        "/bylines/",
        "headshot",
        "placeholder",
        "spacer",
        "blank.",
    ];
    if MARKERS.iter().any(|m| path.contains(m)) || path.ends_with(".svg") || path.ends_with(".gif")
    {
        return true;
    }
    alt.is_some_and(|a| {
        let a = a.to_ascii_lowercase();
        a == "logo" || a.ends_with(" logo") || a == "avatar" || a == "advertisement"
    })
}

#[cfg(test)]
mod tests {
    use super::{is_non_photo, same_image};

    #[test]
    fn renditions_are_one_image_but_script_ids_are_not() {
        assert!(same_image(
            "https://i.example/a.jpg?w=620",
            "https://i.example/a.jpg?w=1240#x"
        ));
        assert!(!same_image(
            "https://e.example/image.php?id=1",
            "https://e.example/image.php?id=2"
        ));
        assert!(!same_image(
            "https://i.example/a.jpg",
            "https://i.example/b.jpg"
        ));
    }

    #[test]
    fn furniture_urls() {
        assert!(is_non_photo("https://e.example/static/logo-2x.png", None));
        assert!(is_non_photo("https://e.example/u/avatar/12.jpg", None));
        assert!(is_non_photo("https://e.example/a.svg", None));
        assert!(is_non_photo("https://e.example/a.jpg", Some("Site logo")));
        assert!(!is_non_photo(
            "https://e.example/photos/2020/fire.jpg",
            Some("A fire")
        ));
    }
}
