//! The generic extractor: `figure`/`figcaption` in the page (outside navigation, asides,
//! related-story, promo and video blocks); else, in document order, images beside an element
//! classed as a caption, schema.org `ImageObject` microdata blocks and images carrying their
//! caption in attributes; else the JSON-LD `NewsArticle` images that carry a caption. The OpenGraph (`og:image`) and JSON-LD images name the lead. Works on any outlet
//! and is the fallback of the outlet adapters. An OpenGraph image alone is not returned: it
//! has no caption, only the article's description.

use super::{Found, Page};
use crate::dom::{attr, first_in, inside, select_doc, select_in, text};
use scraper::{ElementRef, Html};

/// Containers whose images are page furniture, not article photos.
pub(crate) const FURNITURE: &str = "header nav, nav, footer, aside, [role=complementary], \
    [class*=related], [class*=Related], [class*=promo], [class*=Promo], [class*=advert], \
    [class*=ad-slot], [id*=advert], [class*=newsletter], [class*=most-popular], \
    [class*=MostPopular], [class*=onward], [class*=avatar], figure[class*=video], \
    [data-media-type=video], video";

/// Captioned images of `figure` elements; failing those, images beside an element classed
/// as a caption, microdata image objects and attribute captions; failing those, JSON-LD
/// images with a caption.
pub fn extract(page: &Page<'_>) -> Vec<Found> {
    let mut out = figures(page);
    if out.is_empty() {
        let mut blocks: Vec<(ElementRef<'_>, Found)> = caption_block_pairs(page);
        blocks.extend(
            microdata_images(&page.doc)
                .into_iter()
                .filter(|(b, _)| !parent_inside(*b, FURNITURE)),
        );
        blocks.extend(
            attribute_captions(&page.doc)
                .into_iter()
                .filter(|(b, _)| !inside(*b, FURNITURE)),
        );
        out = in_doc_order(&page.doc, blocks);
    }
    if out.is_empty() {
        out = ld_images(page);
    }
    mark_lead(page, &mut out);
    out
}

/// Caption elements named as such by class or microdata, each with the nearest image around
/// it: the layout of pages that predate `figure`.
pub(crate) const CAPTION_CSS: &str = "[class~=caption], [class~=cutline], [class~=wp-caption-text], \
    [class*=caption-text], [class*=image-caption], [class*=photo-caption], [itemprop~=caption]";

/// One [`Found`] per caption element of [`CAPTION_CSS`] that has an image within two levels
/// up, outside page furniture.
pub fn caption_blocks(page: &Page<'_>) -> Vec<Found> {
    caption_block_pairs(page)
        .into_iter()
        .map(|(_, f)| f)
        .collect()
}

/// [`caption_blocks`] with the block each image was found in.
fn caption_block_pairs<'a>(page: &'a Page<'_>) -> Vec<(ElementRef<'a>, Found)> {
    let rule = super::blocks::Rule {
        caption: CAPTION_CSS,
        credit: "[class*=credit], [class*=Credit], [itemprop~=copyrightHolder]",
        skip: "video, [class*=video], [data-media-type=video]",
        max_up: 2,
    };
    super::blocks::by_caption(&page.doc, &rule)
        .into_iter()
        .filter(|(block, _)| !inside(*block, FURNITURE))
        .collect()
}

/// Whether an ancestor of `el` (not `el` itself) matches `css`: a microdata image is often
/// its own `aside`, which is furniture only when it sits inside furniture.
fn parent_inside(el: ElementRef<'_>, css: &str) -> bool {
    el.parent()
        .and_then(ElementRef::wrap)
        .is_some_and(|p| inside(p, css))
}

/// schema.org `ImageObject` microdata blocks holding an image: the caption is the block's
/// `caption`/`description` property, else its first paragraph with text (some layouts put
/// the caption in a bare `<p>` beside the image); the credit is the `copyrightHolder` or
/// `creator` property, else an element classed as a credit.
pub(crate) fn microdata_images(doc: &Html) -> Vec<(ElementRef<'_>, Found)> {
    let credit_css = "[class*=credit], [class*=Credit], [itemprop~=copyrightHolder], \
        [itemprop~=creator], [itemprop~=author]";
    let mut out = Vec::new();
    for block in select_doc(doc, "[itemtype*=ImageObject]") {
        if inside(block, "video, [class*=video], [data-media-type=video]") {
            continue;
        }
        // The inner one of nested image objects is handled on its own.
        if !select_in(block, "[itemtype*=ImageObject]").is_empty() {
            continue;
        }
        let Some((url, alt)) = super::blocks::image_with_alt(block) else {
            continue;
        };
        let cap_prop = first_in(block, "[itemprop~=caption], [itemprop~=description]");
        let credit_els = select_in(block, credit_css);
        let caption = match cap_prop {
            Some(c) if c.value().name() == "meta" => attr(c, "content").unwrap_or_default(),
            Some(c) => {
                let mut s = String::new();
                collect_text_except(c, &credit_els, &mut s);
                crate::dom::collapse_ws(&s)
            }
            None => select_in(block, "p")
                .into_iter()
                .map(|p| {
                    let mut s = String::new();
                    collect_text_except(p, &credit_els, &mut s);
                    crate::dom::collapse_ws(&s)
                })
                .find(|s| !s.is_empty())
                .unwrap_or_default(),
        };
        if caption.is_empty() {
            continue;
        }
        let credit = credit_els
            .iter()
            .map(|c| {
                if c.value().name() == "meta" {
                    attr(*c, "content").unwrap_or_default()
                } else {
                    text(*c)
                }
            })
            .find(|c| !c.is_empty());
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

/// Images whose caption is an attribute of the `img` itself (`cutline="…"`, `data-caption`),
/// with the credit in a sibling attribute. When the image is wrapped in a link to an image
/// file, that file is the original and the `src` a smaller rendition.
pub(crate) fn attribute_captions(doc: &Html) -> Vec<(ElementRef<'_>, Found)> {
    let mut out = Vec::new();
    for img in select_doc(doc, "img[cutline], img[data-cutline], img[data-caption]") {
        let Some(caption) = attr(img, "cutline")
            .or_else(|| attr(img, "data-cutline"))
            .or_else(|| attr(img, "data-caption"))
        else {
            continue;
        };
        let credit = attr(img, "credit").or_else(|| attr(img, "data-credit"));
        let original = img
            .parent()
            .and_then(ElementRef::wrap)
            .filter(|p| p.value().name() == "a")
            .and_then(|a| attr(a, "href"))
            .filter(|h| is_image_file(h));
        let Some(url) = original.or_else(|| crate::srcset::best_url(img)) else {
            continue;
        };
        out.push((
            img,
            Found {
                url,
                caption,
                credit,
                alt: super::blocks::alt_of(img),
                is_lead: false,
            },
        ));
    }
    out
}

/// Whether a URL's path names an image file.
fn is_image_file(url: &str) -> bool {
    let path = url
        .split(['?', '#'])
        .next()
        .unwrap_or(url)
        .to_ascii_lowercase();
    [".jpg", ".jpeg", ".png", ".webp", ".avif"]
        .iter()
        .any(|e| path.ends_with(e))
}

/// The images of `items` in the order their blocks appear in the document; a block found by
/// two rules keeps the first rule's reading.
pub(crate) fn in_doc_order<'a>(
    doc: &'a Html,
    mut items: Vec<(ElementRef<'a>, Found)>,
) -> Vec<Found> {
    let order: Vec<_> = doc.root_element().descendants().map(|n| n.id()).collect();
    items.sort_by_key(|(el, _)| {
        order
            .iter()
            .position(|id| *id == el.id())
            .unwrap_or(usize::MAX)
    });
    let mut out: Vec<(ElementRef<'a>, Found)> = Vec::new();
    for (el, f) in items {
        if out.iter().any(|(e, _)| e.id() == el.id()) {
            continue;
        }
        out.push((el, f));
    }
    out.into_iter().map(|(_, f)| f).collect()
}

/// One [`Found`] per `figure` holding an image and a caption, outside page furniture.
pub fn figures(page: &Page<'_>) -> Vec<Found> {
    let mut out = Vec::new();
    for fig in select_doc(&page.doc, "figure") {
        if inside(fig, FURNITURE) {
            continue;
        }
        // Nested figures: the inner one is handled on its own.
        if !select_in(fig, "figure").is_empty() {
            continue;
        }
        if let Some(mut f) = from_figure(fig) {
            f.is_lead = is_marked_lead(fig);
            out.push(f);
        }
    }
    out
}

/// Whether a figure's class names it the story's lead picture (`lead`, `lede`,
/// `media-asset--lead`, `lead-image`), as templates do for the picture above the text.
fn is_marked_lead(fig: ElementRef<'_>) -> bool {
    fig.value().classes().any(|class| {
        let class = class.to_ascii_lowercase();
        class
            .split(['-', '_'])
            .filter(|part| !part.is_empty())
            .any(|part| part == "lead" || part == "lede")
    })
}

/// A figure's image, caption, separate credit and alt. Without a `figcaption`, the caption
/// may be an attribute of an element in the figure (`data-c-caption`, with `data-c-credit`)
/// that a style sheet renders as text.
pub(crate) fn from_figure(fig: ElementRef<'_>) -> Option<Found> {
    let (url, alt) = super::blocks::image_with_alt(fig)?;
    let (caption, credit) = match first_in(fig, "figcaption") {
        Some(cap_el) => caption_and_credit(cap_el),
        None => {
            let holder = first_in(fig, "[data-c-caption]")?;
            (
                attr(holder, "data-c-caption").unwrap_or_default(),
                attr(holder, "data-c-credit"),
            )
        }
    };
    Some(Found {
        url,
        caption,
        credit,
        alt,
        is_lead: false,
    })
}

/// The caption text of `cap` without its credit element(s), and the credit text.
pub(crate) fn caption_and_credit(cap: ElementRef<'_>) -> (String, Option<String>) {
    let credit_css = "[class*=credit], [class*=Credit], [class*=copyright], \
        [itemprop=copyrightHolder], [itemprop=author]";
    let credit_els = select_in(cap, credit_css);
    let credit = credit_els
        .first()
        .map(|c| text(*c))
        .filter(|c| !c.is_empty());
    let mut caption = String::new();
    collect_text_except(cap, &credit_els, &mut caption);
    (crate::dom::collapse_ws(&caption), credit)
}

/// Text of `el`, skipping the subtrees in `skip` and hidden helper text.
pub(crate) fn collect_text_except(el: ElementRef<'_>, skip: &[ElementRef<'_>], out: &mut String) {
    for child in el.children() {
        if let Some(e) = ElementRef::wrap(child) {
            if skip.iter().any(|s| s.id() == e.id()) {
                continue;
            }
            let name = e.value().name();
            if name == "script" || name == "style" || name == "svg" || name == "button" {
                continue;
            }
            if e.value().attr("class").is_some_and(|c| {
                c.contains("visually-hidden")
                    || c.contains("screen-reader")
                    || c.contains("off-screen")
            }) {
                continue;
            }
            // Keep words of adjacent blocks apart.
            out.push(' ');
            collect_text_except(e, skip, out);
            out.push(' ');
        } else if let Some(t) = child.value().as_text() {
            out.push_str(t);
        }
    }
}

/// JSON-LD images of the article that carry a caption.
fn ld_images(page: &Page<'_>) -> Vec<Found> {
    let Some(art) = crate::jsonld::article(&page.ld) else {
        return Vec::new();
    };
    crate::jsonld::images(art)
        .into_iter()
        .filter(|i| i.caption.is_some())
        .map(|i| Found {
            url: i.url,
            caption: i.caption.unwrap_or_default(),
            credit: i.credit,
            alt: None,
            is_lead: false,
        })
        .collect()
}

/// Flags as lead the image matching `og:image` or the JSON-LD image; else none.
pub(crate) fn mark_lead(page: &Page<'_>, found: &mut [Found]) {
    if found.iter().any(|f| f.is_lead) {
        return;
    }
    let mut leads: Vec<String> = Vec::new();
    if let Some(og) = crate::meta::meta_content(&page.doc, &["og:image", "twitter:image"]) {
        leads.push(og);
    }
    if let Some(art) = crate::jsonld::article(&page.ld) {
        leads.extend(crate::jsonld::images(art).into_iter().map(|i| i.url));
    }
    let key = |u: &str| image_key(u);
    let lead_keys: Vec<String> = leads.iter().map(|u| key(u)).collect();
    if let Some(f) = found
        .iter_mut()
        .find(|f| lead_keys.iter().any(|k| !k.is_empty() && *k == key(&f.url)))
    {
        f.is_lead = true;
    }
}

/// A rough identity of an image across renditions: the file name without extension,
/// size suffixes and query string.
pub(crate) fn image_key(url: &str) -> String {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let file = path.rsplit('/').next().unwrap_or(path);
    let stem = file.split('.').next().unwrap_or(file);
    stem.to_ascii_lowercase()
}
