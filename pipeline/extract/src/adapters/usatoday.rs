//! USA Today.
//!
//! Layouts:
//! - `2014` (Gannett desktop, 2014–2016): `aside[itemprop=associatedMedia]` with an image and
//!   `span.cutline` caption plus `span.credit` (`(Photo: …)`); inline photos of the same
//!   pages are `ImageObject` microdata asides with the caption in a bare `<p>`.
//! - community blogs (2010): an `img` with `cutline="…"` and `credit="…"` attributes inside a
//!   link to the full-size file; found by the generic fallback.
//! - `2019` (presto): `div.asset-image` with `.image-caption` and `.image-credit`.
//! - `2020` (Gannett `gnt_` classes): `figure` with a lazy `img` (`data-gl-src`,
//!   `data-gl-srcset`) and an empty element whose `data-c-caption` and `data-c-credit`
//!   attributes the style sheet renders as the caption line.
//! - `2016` (presto video lead): a video with a poster and a credit, no photo; found nothing,
//!   so the generic fallback runs.

use super::blocks::{Rule, by_caption};
use super::{Layout, Page, generic};
use crate::dom::first_doc;

/// Recognises the page's layout and returns its captioned images.
pub fn extract(page: &mut Page<'_>) -> Option<Layout> {
    let (name, rule) = if first_doc(&page.doc, ".cutline").is_some() {
        (
            "2014",
            Rule {
                caption: ".cutline",
                credit: ".credit",
                skip: "div[class*=video], .related-story, [class*=promo]",
                max_up: 4,
            },
        )
    } else if first_doc(&page.doc, ".image-caption").is_some() {
        (
            "2019",
            Rule {
                caption: ".image-caption",
                credit: ".image-credit",
                skip: "div[class*=video]",
                max_up: 3,
            },
        )
    } else if first_doc(&page.doc, "figure [data-c-caption]").is_some() {
        let mut images = generic::figures(page);
        generic::mark_lead(page, &mut images);
        return Some(Layout {
            name: "2020",
            images,
        });
    } else {
        return None;
    };
    // Photos of the same pages also come as microdata image objects whose caption is a bare
    // paragraph, or as an `img` carrying its caption in attributes.
    let mut blocks = by_caption(&page.doc, &rule);
    blocks.extend(generic::microdata_images(&page.doc));
    blocks.extend(generic::attribute_captions(&page.doc));
    let mut images = generic::in_doc_order(&page.doc, blocks);
    generic::mark_lead(page, &mut images);
    Some(Layout { name, images })
}
