//! USA Today.
//!
//! Layouts:
//! - `2014` (Gannett desktop, 2014–2016): `aside[itemprop=associatedMedia]` with an image and
//!   `span.cutline` caption plus `span.credit` (`(Photo: …)`).
//! - `2019` (presto): `div.asset-image` with `.image-caption` and `.image-credit`.
//! - `2016` (presto video lead): a video with a poster and a credit, no photo; found nothing,
//!   so the generic fallback runs.

use super::blocks::{Rule, by_caption};
use super::{Layout, Page};
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
    } else {
        return None;
    };
    let mut images: Vec<_> = by_caption(&page.doc, &rule)
        .into_iter()
        .map(|(_, f)| f)
        .collect();
    super::generic::mark_lead(page, &mut images);
    Some(Layout { name, images })
}
