//! The caption-anchored block finder the outlet adapters share: find each caption element,
//! climb to the nearest ancestor that holds an image, and read image, caption, credit and
//! alt from that block. Older layouts put caption and image in sibling elements with no
//! common `figure`, so anchoring on the caption is what works across the years.

use super::Found;
use crate::dom::{attr, select_doc, select_in, text};
use crate::srcset::best_url;
use scraper::{ElementRef, Html};

/// How one layout marks its photos.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// Caption elements.
    pub caption: &'static str,
    /// Credit elements, looked up inside the caption first, then inside the block.
    pub credit: &'static str,
    /// Ancestors (or the block itself) that disqualify a caption: videos, promos, embeds.
    pub skip: &'static str,
    /// How many ancestors to climb from the caption looking for the image.
    pub max_up: usize,
}

/// Elements that can carry an image URL.
pub(crate) const IMAGE_CSS: &str =
    "picture, img, amp-img, [data-src], [data-hi-res-src], [data-image]";

/// One [`Found`] per caption of `rule`, in document order.
pub fn by_caption<'a>(doc: &'a Html, rule: &Rule) -> Vec<(ElementRef<'a>, Found)> {
    let mut out: Vec<(ElementRef<'a>, Found)> = Vec::new();
    for cap in select_doc(doc, rule.caption) {
        let Some((block, url, alt)) = climb_to_image(cap, rule.max_up) else {
            continue;
        };
        // Only the block and the path up to it decide: a page-wide wrapper whose class
        // happens to mention "video" must not hide every photo.
        if !rule.skip.is_empty()
            && (on_path(cap, block, rule.skip) || !select_in(block, rule.skip).is_empty())
        {
            continue;
        }
        // Two caption elements of one block (e.g. a wrapper and its inner text): keep one.
        if out.iter().any(|(b, _)| b.id() == block.id()) {
            continue;
        }
        let credit_els: Vec<ElementRef<'_>> = if rule.credit.is_empty() {
            Vec::new()
        } else {
            let inner = select_in(cap, rule.credit);
            if inner.is_empty() {
                select_in(block, rule.credit)
            } else {
                inner
            }
        };
        let (caption, credit) = caption_and_credit_of(cap, &credit_els);
        out.push((
            block,
            Found {
                url,
                caption,
                credit,
                alt,
                is_lead: false,
            },
        ));
    }
    out
}

/// One [`Found`] per photo of each caption's block, all with that caption: graphics-desk
/// layouts set several photos side by side over one caption, each photo in its own cell
/// with, at most, its own credit. Photos inside `rule.skip` (a video's fallback frame) are
/// left out; a credit in the caption itself is every photo's credit.
pub fn by_shared_caption<'a>(doc: &'a Html, rule: &Rule) -> Vec<(ElementRef<'a>, Found)> {
    let mut out: Vec<(ElementRef<'a>, Found)> = Vec::new();
    let mut blocks_seen = Vec::new();
    for cap in select_doc(doc, rule.caption) {
        let Some((block, _, _)) = climb_to_image(cap, rule.max_up) else {
            continue;
        };
        if blocks_seen.contains(&block.id()) {
            continue;
        }
        blocks_seen.push(block.id());
        if !rule.skip.is_empty() && on_path(cap, block, rule.skip) {
            continue;
        }
        let caption_credits = if rule.credit.is_empty() {
            Vec::new()
        } else {
            select_in(cap, rule.credit)
        };
        let (caption, shared_credit) = caption_and_credit_of(cap, &caption_credits);
        let photos: Vec<ElementRef<'a>> = select_in(block, IMAGE_CSS)
            .into_iter()
            .filter(|img| !is_read_through_picture(*img))
            .filter(|img| rule.skip.is_empty() || !on_path(*img, block, rule.skip))
            .collect();
        for img in &photos {
            let Some(url) = best_url(*img) else {
                continue;
            };
            let cell = cell_of(*img, block, &photos);
            let own_credit = if rule.credit.is_empty() {
                None
            } else {
                select_in(cell, rule.credit)
                    .into_iter()
                    .map(text)
                    .find(|c| !c.is_empty())
            };
            out.push((
                *img,
                Found {
                    url,
                    caption: caption.clone(),
                    credit: own_credit.or_else(|| shared_credit.clone()),
                    alt: alt_of(*img),
                    is_lead: false,
                },
            ));
        }
    }
    out
}

/// The text of `cap` without its `credits` elements, whitespace collapsed, and the first
/// of those credits that has text.
fn caption_and_credit_of(
    cap: ElementRef<'_>,
    credits: &[ElementRef<'_>],
) -> (String, Option<String>) {
    let credit = credits.iter().map(|c| text(*c)).find(|c| !c.is_empty());
    let mut caption = String::new();
    super::generic::collect_text_except(cap, credits, &mut caption);
    (crate::dom::collapse_ws(&caption), credit)
}

/// The largest ancestor of `img` below `block` that holds no other of `photos`: the photo's
/// own cell, where its credit sits.
fn cell_of<'a>(
    img: ElementRef<'a>,
    block: ElementRef<'a>,
    photos: &[ElementRef<'a>],
) -> ElementRef<'a> {
    let mut cell = img;
    while let Some(parent) = cell.parent().and_then(ElementRef::wrap) {
        if parent.id() == block.id() {
            break;
        }
        let holds_another = photos
            .iter()
            .any(|p| p.id() != img.id() && p.ancestors().any(|a| a.id() == parent.id()));
        if holds_another {
            break;
        }
        cell = parent;
    }
    cell
}

/// An `img` inside a `<picture>`: read through the picture.
fn is_read_through_picture(img: ElementRef<'_>) -> bool {
    img.value().name() == "img"
        && img
            .parent()
            .and_then(ElementRef::wrap)
            .is_some_and(|p| p.value().name() == "picture")
}

/// Whether an element from `from` up to `to` (both included) matches `css`.
fn on_path(from: ElementRef<'_>, to: ElementRef<'_>, css: &str) -> bool {
    let Some(sel) = crate::dom::selector(css) else {
        return false;
    };
    let mut cur = Some(from);
    while let Some(e) = cur {
        if sel.matches(&e) {
            return true;
        }
        if e.id() == to.id() {
            return false;
        }
        cur = e.parent().and_then(ElementRef::wrap);
    }
    false
}

/// The nearest ancestor of `start` (itself included) holding an image with a usable URL (in
/// the markup or in a `<noscript>` fallback): the ancestor, the URL and the image's alt text.
pub fn climb_to_image(
    start: ElementRef<'_>,
    max_up: usize,
) -> Option<(ElementRef<'_>, String, Option<String>)> {
    let mut cur = Some(start);
    for _ in 0..=max_up {
        let el = cur?;
        if let Some((url, alt)) = image_with_alt(el) {
            return Some((el, url, alt));
        }
        cur = el.parent().and_then(ElementRef::wrap);
    }
    None
}

/// The first image of `el` with its alt text, looking into `<noscript>` fallbacks when the
/// markup itself has none.
pub fn image_with_alt(el: ElementRef<'_>) -> Option<(String, Option<String>)> {
    match first_image(el) {
        Some((url, img)) => Some((url, alt_of(img))),
        None => noscript_image(el),
    }
}

/// An image inside a `<noscript>` of `el` (or `el` itself): lazy loaders put the real `<img>`
/// only there, and the HTML parser keeps noscript content as text, so it is parsed on its own.
pub fn noscript_image(el: ElementRef<'_>) -> Option<(String, Option<String>)> {
    let mut holders = select_in(el, "noscript");
    if el.value().name() == "noscript" {
        holders.insert(0, el);
    }
    for ns in holders {
        let inner: String = ns.text().collect();
        if !inner.contains("<img") && !inner.contains("<picture") {
            continue;
        }
        let fragment = Html::parse_fragment(&inner);
        if let Some((url, carrier)) = first_image(fragment.root_element()) {
            return Some((url, alt_of(carrier)));
        }
    }
    None
}

/// The first image in `el` with a usable URL, and the element carrying it.
pub fn first_image(el: ElementRef<'_>) -> Option<(String, ElementRef<'_>)> {
    for img in select_in(el, IMAGE_CSS) {
        if is_read_through_picture(img) {
            continue;
        }
        if let Some(u) = best_url(img) {
            let carrier = if img.value().name() == "picture" {
                crate::dom::first_in(img, "img").unwrap_or(img)
            } else {
                img
            };
            return Some((u, carrier));
        }
    }
    None
}

/// Alt text of an image element (`alt`, or the lazy loaders' `data-alt`).
pub fn alt_of(img: ElementRef<'_>) -> Option<String> {
    attr(img, "alt").or_else(|| attr(img, "data-alt"))
}
