//! The Washington Post.
//!
//! Layouts:
//! - `2010` (wp-dyn): photos and gallery promos with a `div.caption` beside the image.
//! - `2015` (PageBuilder): `div.inline-photo` with `img[data-hi-res-src]` and `span.pb-caption`
//!   ending in `(Photographer/Agency)`; inline videos (`.inline-video`) left out; galleries as
//!   `div.wp-volt-gal-photo[data-image][data-caption][data-credit]` slides.
//! - `arc` (2016–2020): `figure` with `figcaption`, the image behind the `imrs.php` resizer
//!   (its `w=32` blur-up placeholder unwrapped to the original); videos found nothing, so
//!   the generic fallback runs.

use super::blocks::{Rule, by_caption};
use super::{Found, Layout, Page};
use crate::dom::{attr, first_doc, select_doc};

/// Recognises the page's layout and returns its captioned images.
pub fn extract(page: &mut Page<'_>) -> Option<Layout> {
    let gallery = gallery_slides(page);
    let (name, mut images) = if first_doc(&page.doc, ".pb-caption").is_some() {
        let rule = Rule {
            caption: ".inline-photo .pb-caption, .lead-art .pb-caption",
            credit: "",
            skip: ".inline-video, .inline-video-caption, .powa, [class*=graphic]",
            max_up: 2,
        };
        // The lead photo opens the article body: no element before it.
        let inline: Vec<Found> = by_caption(&page.doc, &rule)
            .into_iter()
            .map(|(block, mut f)| {
                f.is_lead = block
                    .prev_siblings()
                    .filter_map(scraper::ElementRef::wrap)
                    .next()
                    .is_none();
                f
            })
            .collect();
        ("2015", inline)
    } else if first_doc(&page.doc, "div.caption").is_some() {
        let rule = Rule {
            caption: "div.caption",
            credit: ".credit",
            skip: "",
            max_up: 3,
        };
        let found = by_caption(&page.doc, &rule)
            .into_iter()
            .map(|(_, f)| f)
            .collect();
        ("2010", found)
    } else if first_doc(&page.doc, "figure figcaption").is_some() {
        let mut found = super::generic::figures(page);
        // The lead figure opens the article element.
        if first_doc(&page.doc, "article > figure:first-child").is_some()
            && let Some(first) = found.first_mut()
        {
            first.is_lead = true;
        }
        ("arc", found)
    } else if !gallery.is_empty() {
        ("gallery", Vec::new())
    } else {
        return None;
    };
    images.extend(gallery);
    for f in &mut images {
        f.url = unwrap_imrs(&f.url);
        if f.credit.is_none() {
            split_trailing_parenthesis(f);
        }
    }
    super::generic::mark_lead(page, &mut images);
    Some(Layout { name, images })
}

/// The Post ends every photo caption with its credit in parentheses, whatever its wording:
/// `… in Florence, Ky. (Luke Sharrett for The Washington Post)`.
fn split_trailing_parenthesis(f: &mut Found) {
    let caption = f.caption.trim_end();
    let Some(body) = caption.strip_suffix(')') else {
        return;
    };
    let Some(open) = body.rfind('(') else {
        return;
    };
    let inner = body[open + 1..].trim();
    // A lowercase parenthetical is a direction such as "(left)", not a credit.
    if inner.is_empty() || inner.chars().next().is_some_and(char::is_lowercase) {
        return;
    }
    f.credit = crate::credit::clean_credit(inner);
    f.caption = body[..open].trim().to_string();
}

/// `…/wp-apps/imrs.php?src=ORIGINAL&w=480` is the Post's resizer; the `src` it resizes is
/// the largest rendition (the `w=32` ones are blur-up placeholders).
fn unwrap_imrs(u: &str) -> String {
    if !u.contains("/imrs.php?") {
        return u.to_string();
    }
    let Ok(parsed) = url::Url::parse(u) else {
        return u.to_string();
    };
    parsed
        .query_pairs()
        .find(|(k, _)| k == "src")
        .map(|(_, v)| v.into_owned())
        .filter(|v| v.starts_with("http"))
        .unwrap_or_else(|| u.to_string())
}

/// Gallery slides carry everything in data attributes.
fn gallery_slides(page: &Page<'_>) -> Vec<Found> {
    select_doc(&page.doc, "div.wp-volt-gal-photo[data-image]")
        .into_iter()
        .filter_map(|slide| {
            Some(Found {
                url: attr(slide, "data-image")?,
                caption: attr(slide, "data-caption").unwrap_or_default(),
                credit: attr(slide, "data-credit"),
                alt: attr(slide, "data-alt"),
                is_lead: false,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::unwrap_imrs;

    #[test]
    fn resizer_urls_give_the_original() {
        assert_eq!(
            unwrap_imrs(
                "https://www.washingtonpost.com/wp-apps/imrs.php?src=https://arc.s3.amazonaws.com/public/RIB.jpg&w=32"
            ),
            "https://arc.s3.amazonaws.com/public/RIB.jpg"
        );
        assert_eq!(
            unwrap_imrs("https://img.example/a.jpg?w=32"),
            "https://img.example/a.jpg?w=32"
        );
        assert_eq!(
            unwrap_imrs("/wp-apps/imrs.php?w=32"),
            "/wp-apps/imrs.php?w=32"
        );
    }
}
