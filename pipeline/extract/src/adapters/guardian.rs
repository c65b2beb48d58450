//! The Guardian.
//!
//! Layouts:
//! - `frontend` (2011–2020): `figure[itemprop~=associatedMedia]` with a `figcaption` whose
//!   text ends `Photograph: …` (or a bare `Agency/Photographer` credit); the lead is
//!   `figure.media-primary`.
//! - `photo-essay` (immersive, 2019): the lead is `.immersive-main-media` with its caption
//!   in a `figcaption.caption--immersive`; inline figures have no `figcaption`, the caption
//!   is the `<ul>` that follows them.
//! - `dcr` (dotcom-rendering, 2023–): main media `figure` without `data-spacefinder-type`,
//!   inline `figure[data-spacefinder-type$=ImageBlockElement]`; videos (`gu-island`) left out.

use super::blocks::{alt_of, first_image};
use super::{Found, Layout, Page};
use crate::dom::{first_doc, first_in, select_doc, text};
use scraper::ElementRef;

/// Recognises the page's layout and returns its captioned images.
pub fn extract(page: &mut Page<'_>) -> Option<Layout> {
    // og:title of opinion and essay pages appends " | Author"; the page's h1 does not.
    if let Some(h) = first_doc(&page.doc, "h1[itemprop=headline], h1.content__headline")
        .map(text)
        .filter(|t| !t.is_empty())
    {
        page.meta.headline = Some(h);
    }
    if first_doc(&page.doc, "gu-island, figure[data-spacefinder-role]").is_some() {
        return Some(dcr(page));
    }
    if first_doc(&page.doc, "figure[itemprop*=associatedMedia]").is_some() {
        let mut images = Vec::new();
        let mut name = "frontend";
        if let Some(main) = immersive_main(page) {
            images.push(main);
            name = "photo-essay";
        }
        images.extend(frontend(page));
        return Some(Layout { name, images });
    }
    None
}

fn frontend(page: &Page<'_>) -> Vec<Found> {
    let mut out = Vec::new();
    for fig in select_doc(&page.doc, "figure[itemprop*=associatedMedia]") {
        let Some((url, img)) = first_image(fig) else {
            continue;
        };
        let is_lead = fig
            .value()
            .attr("class")
            .is_some_and(|c| c.contains("media-primary"));
        let caption = match first_in(fig, "figcaption") {
            Some(cap) => super::generic::caption_and_credit(cap).0,
            None => photo_essay_caption(fig).unwrap_or_default(),
        };
        let (caption, credit) = split_guardian(&caption);
        out.push(Found {
            url,
            caption,
            credit,
            alt: alt_of(img),
            is_lead,
        });
    }
    out
}

/// Photo essays caption a figure with the `<ul>` right after it. A `<ul>` after several
/// figures in a row describes them together ("Clockwise from top: …"); such shared captions
/// are not given to any one photo.
fn photo_essay_caption(fig: ElementRef<'_>) -> Option<String> {
    let prev_is_figure = fig
        .prev_siblings()
        .filter_map(ElementRef::wrap)
        .next()
        .is_some_and(|e| e.value().name() == "figure");
    let next = fig.next_siblings().filter_map(ElementRef::wrap).next()?;
    if prev_is_figure || next.value().name() != "ul" {
        return None;
    }
    let t = text(next);
    (!t.is_empty()).then_some(t)
}

fn immersive_main(page: &Page<'_>) -> Option<Found> {
    let media = first_doc(&page.doc, ".immersive-main-media")?;
    let (url, img) = first_image(media)?;
    let cap = first_doc(&page.doc, "figcaption.caption--immersive")?;
    let caption = text(cap);
    let caption = caption
        .strip_prefix("Main image:")
        .map(str::trim)
        .unwrap_or(&caption)
        .to_string();
    let (caption, credit) = split_guardian(&caption);
    Some(Found {
        url,
        caption,
        credit,
        alt: alt_of(img),
        is_lead: true,
    })
}

fn dcr(page: &Page<'_>) -> Layout {
    let mut out = Vec::new();
    for fig in select_doc(
        &page.doc,
        "figure:not([data-spacefinder-type]), figure[data-spacefinder-type$=ImageBlockElement]",
    ) {
        // Videos, interactives and embeds are not photos.
        if first_in(fig, "gu-island, iframe, video").is_some()
            || fig
                .value()
                .attr("class")
                .is_some_and(|c| c.contains("element-interactive"))
        {
            continue;
        }
        let Some(f) = super::generic::from_figure(fig) else {
            continue;
        };
        let is_lead = fig.value().attr("data-spacefinder-type").is_none();
        let (caption, credit) = match f.credit {
            Some(c) => (f.caption, Some(c)),
            None => split_guardian(&f.caption),
        };
        out.push(Found {
            caption,
            credit,
            is_lead,
            ..f
        });
    }
    Layout {
        name: "dcr",
        images: out,
    }
}

/// The Guardian's conventions on top of the shared splitter: `Photograph: …` labels, and
/// the older bare credits such as `… prison. Allstar/UNIVERSAL PICTURES/Sportsphoto Ltd./Allstar`.
fn split_guardian(caption: &str) -> (String, Option<String>) {
    let (c, credit) = crate::credit::split_credit(caption);
    if credit.is_some() {
        return (c, credit);
    }
    match slash_credit(&c) {
        Some(i) => (
            c[..i].trim().to_string(),
            crate::credit::clean_credit(&c[i..]),
        ),
        None => (c, None),
    }
}

/// Start of a trailing bare credit: the first word holding a `/` (agency/photographer),
/// widened back over capitalised words until a sentence end or a lowercase word.
fn slash_credit(caption: &str) -> Option<usize> {
    let words: Vec<(usize, &str)> = caption
        .split(' ')
        .scan(0usize, |pos, w| {
            let start = *pos;
            *pos += w.len() + 1;
            Some((start, w))
        })
        .collect();
    let k = words.iter().position(|(_, w)| {
        w.contains('/') && !w.contains("://") && w.chars().next().is_some_and(char::is_uppercase)
    })?;
    if k == 0 {
        return None;
    }
    let mut start = k;
    while start > 0 {
        let prev = words[start - 1].1;
        let capital = prev.chars().next().is_some_and(char::is_uppercase);
        if !capital || prev.ends_with(['.', '!', '?', ',', ':']) {
            break;
        }
        start -= 1;
    }
    Some(words[start].0)
}

#[cfg(test)]
mod tests {
    use super::split_guardian;

    #[test]
    fn bare_slash_credits() {
        let (c, cr) = split_guardian(
            "Loyal in love … Debbi Morgan as Carter's wife, Mae Thelma. Allstar/UNIVERSAL PICTURES/Sportsphoto Ltd./Allstar",
        );
        assert_eq!(
            c,
            "Loyal in love … Debbi Morgan as Carter's wife, Mae Thelma."
        );
        assert_eq!(
            cr.as_deref(),
            Some("Allstar/UNIVERSAL PICTURES/Sportsphoto Ltd./Allstar")
        );
        let (c, cr) = split_guardian("Carter's autobiography Allstar/UNIVERSAL PICTURES");
        assert_eq!(c, "Carter's autobiography");
        assert_eq!(cr.as_deref(), Some("Allstar/UNIVERSAL PICTURES"));
        let (c, cr) = split_guardian("A 24/7 vigil outside the court");
        assert_eq!(c, "A 24/7 vigil outside the court");
        assert_eq!(cr, None);
    }
}
