//! The New York Times.
//!
//! Layouts:
//! - `2005` (archive article template, tables): the photo in a table cell followed by a
//!   right-aligned `font size=-2` credit and a `font size=-1` caption; the lead is the photo
//!   whose thumbnail (`X.3T.jpg` for `X.3.jpg`) the `thumbnail` meta tag names.
//! - `interactive` (graphics desk, `g-` classes): one `.g-caption` or `.g-photo-caption`
//!   under a row of photos, each photo in its own cell with an optional `.g-photo-credit`;
//!   templated image URLs (`{{size}}`) filled with the widest rendition; video fallback
//!   frames left out.
//! - `2010` (articleInline): `div.image` with the photo, `h6.credit`, `p.caption`.
//! - `2011` (DealBook blog): `img` followed by `span.credit` and `span.caption`.
//! - `2015` (NYT5): `figure.media.photo` with `span.caption-text` and
//!   `span.credit[itemprop=copyrightHolder]` (a hidden "Credit" label inside); videos and
//!   interactives left out.
//! - `2018` (React, css-* classes): `figure` with `figcaption` spans, the credit in
//!   `[itemprop=copyrightHolder]`, renditions in `srcset` (largest is `superJumbo`); a video
//!   is a `figure[itemtype=…VideoObject]` whose only image is the player's poster.

use super::blocks::{Rule, by_caption, by_shared_caption};
use super::{Found, Layout, Page, generic};
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
    } else if first_doc(&page.doc, ".g-caption, .g-photo-caption").is_some() {
        let rule = Rule {
            caption: ".g-caption, .g-photo-caption",
            credit: ".g-credit, .g-photo-credit",
            skip: ".g-video, .g-vhs, video",
            max_up: 2,
        };
        let mut images = generic::in_doc_order(&page.doc, by_shared_caption(&page.doc, &rule));
        mark_lead(page, &mut images);
        return Some(Layout {
            name: "interactive",
            images,
        });
    } else if first_doc(&page.doc, ARCHIVE_CAPTION).is_some() {
        let rule = Rule {
            caption: ARCHIVE_CAPTION,
            credit: r#"div[align=right] > font[size="-2"]"#,
            skip: "",
            max_up: 1,
        };
        let mut images: Vec<Found> = by_caption(&page.doc, &rule)
            .into_iter()
            .map(|(_, f)| f)
            .collect();
        mark_thumbnail_lead(page, &mut images);
        return Some(Layout {
            name: "2005",
            images,
        });
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

/// A caption of the archive template: the `font size=-1` right after the credit's
/// right-aligned `div`.
const ARCHIVE_CAPTION: &str = r#"div[align=right] + font[size="-1"]"#;

/// Flags the photo the `thumbnail` meta tag was cut from: `…/10STAR.3T.jpg` is the thumbnail
/// of `…/10STAR.3.jpg`.
fn mark_thumbnail_lead(page: &Page<'_>, images: &mut [Found]) {
    let Some(thumb) = crate::meta::meta_content(&page.doc, &["thumbnail"]) else {
        return;
    };
    let Some((stem, ext)) = thumb.rsplit_once('.') else {
        return;
    };
    let Some(photo_stem) = stem.strip_suffix('T') else {
        return;
    };
    let file = format!("{photo_stem}.{ext}");
    let file = file.rsplit('/').next().unwrap_or(&file);
    if let Some(f) = images
        .iter_mut()
        .find(|f| f.url.rsplit('/').next() == Some(file))
    {
        f.is_lead = true;
    }
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
