//! The New York Times.
//!
//! Layouts:
//! - `2010` (articleInline): `div.image` with the photo, `h6.credit`, `p.caption`.
//! - `2011` (DealBook blog): `img` followed by `span.credit` and `span.caption`.
//! - `2015` (NYT5): `figure.media.photo` with `span.caption-text` and
//!   `span.credit[itemprop=copyrightHolder]` (a hidden "Credit" label inside); videos and
//!   interactives left out.
//! - `2018` (React, css-* classes): `figure` with `figcaption` spans, the credit in
//!   `[itemprop=copyrightHolder]`, renditions in `srcset` (largest is `superJumbo`); a video
//!   is a `figure[itemtype=…VideoObject]` whose only image is the player's poster.

use super::blocks::{Rule, by_caption};
use super::{Found, Layout, Page};
use crate::dom::first_doc;

/// Recognises the page's layout and returns its captioned images.
pub fn extract(page: &mut Page<'_>) -> Option<Layout> {
    let (name, rule) = if first_doc(&page.doc, ".caption-text").is_some() {
        (
            "2015",
            Rule {
                caption: "figure figcaption.caption",
                credit: ".credit",
                skip: "figure.video, figure.interactive, .video-container",
                max_up: 2,
            },
        )
    } else if first_doc(&page.doc, "figcaption[itemprop*=caption]").is_some() {
        (
            "2018",
            Rule {
                caption: "figure figcaption",
                credit: "[itemprop=copyrightHolder]",
                skip: "figure[class*=video], figure[itemtype*=VideoObject], [data-testid=credit], video",
                max_up: 2,
            },
        )
    } else if first_doc(&page.doc, "p.caption, span.caption").is_some() {
        (
            "2010",
            Rule {
                caption: "p.caption, span.caption",
                credit: ".credit",
                skip: "div[class*=video], .columnGroup .story",
                max_up: 3,
            },
        )
    } else {
        return None;
    };
    // The lead sits in the article header (2018 layout) or is `figure.lede` (2015).
    let mut images: Vec<Found> = by_caption(&page.doc, &rule)
        .into_iter()
        .map(|(block, mut f)| {
            f.is_lead = crate::dom::inside(block, "header, figure.lede, .lede-container");
            f
        })
        .collect();
    mark_lead(page, &mut images);
    Some(Layout { name, images })
}

/// The lead is the photo whose rendition folder matches `og:image`'s: NYT renditions of one
/// photo share a folder (`…/13SUDAN-1/13SUDAN-1-superJumbo.jpg`, `…-facebookJumbo.jpg`).
/// Newer pages put every photo of a story in one folder, so the file's stem up to the
/// rendition suffix must match as well.
fn mark_lead(page: &Page<'_>, images: &mut [Found]) {
    if images.iter().any(|f| f.is_lead) {
        return;
    }
    let Some(og) = crate::meta::meta_content(&page.doc, &["og:image"]) else {
        return;
    };
    let Some(og_key) = rendition_key(&og) else {
        return;
    };
    if let Some(f) = images
        .iter_mut()
        .find(|f| rendition_key(&f.url).is_some_and(|k| k == og_key))
    {
        f.is_lead = true;
    }
}

/// (folder, file stem without its `-rendition` suffix) of an NYT image URL.
fn rendition_key(u: &str) -> Option<(String, String)> {
    let path = u.split(['?', '#']).next()?;
    let mut parts = path.rsplit('/');
    let file = parts.next()?;
    let folder = parts.next()?;
    let stem = file.split('.').next()?;
    let base = stem.rsplit_once('-').map_or(stem, |(b, _)| b);
    Some((folder.to_string(), base.to_string()))
}
