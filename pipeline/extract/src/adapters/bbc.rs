//! BBC News.
//!
//! Layouts:
//! - `2015` (2015–2020): `figure` holding `span.image-and-copyright-container` (an `img`, or a
//!   lazy `div.js-delayed-image-load[data-src]`), `span.story-image-copyright` for the credit
//!   and `figcaption .media-caption__text`; videos are `figure.media-player` or sit in
//!   `[data-media-type=video]` placeholders. Lazy image URLs name a width (`/news/320/`); the
//!   largest rendition of those layouts is 976 px wide.
//! - `2024` (bbc.com Next.js, 2022–): `figure` with `[data-testid=image|hero-image]`, the credit
//!   as the last `span` beside the `img` (and repeated at the start of the alt text), the caption
//!   in `[data-component=caption-block] figcaption`; its `.jpg.webp` transcodes are taken back to
//!   the original `.jpg`/`.png` path.
//! - `2008` (news.bbc.co.uk, 2000s table layout): the story in `td.storybody`, each photo an
//!   `img` with its caption in the `div.cap` right after it, no credit; a video's caption is a
//!   `p.caption` and stays out. The lead is the photo the template marks as the story's main
//!   image (between `<!-- S IIMA -->` and `<!-- E IIMA -->` comments).
//! - `amp` (AMP pages, 2016–): `div.image_container` holding an `amp-img`, the caption in the
//!   `div.caption` right after it (a screen-reader "Image caption" label first); the lead is
//!   the image before the article's first paragraph.

use super::blocks::{Rule, by_caption, first_image};
use super::{Found, Layout, Page};
use crate::dom::{first_doc, first_in, select_doc, select_in, text};

/// Recognises the page's layout and returns its captioned images.
pub fn extract(page: &mut Page<'_>) -> Option<Layout> {
    if first_doc(&page.doc, "[data-testid=hero-image], [data-testid=image]").is_some() {
        return Some(Layout {
            name: "2024",
            images: next_layout(page),
        });
    }
    if first_doc(&page.doc, ".media-caption__text, .story-image-copyright").is_some() {
        return Some(Layout {
            name: "2015",
            images: cps_layout(page),
        });
    }
    if first_doc(&page.doc, ".image_container amp-img").is_some() {
        return Some(Layout {
            name: "amp",
            images: amp_layout(page),
        });
    }
    if first_doc(&page.doc, ".storybody div.cap").is_some() {
        return Some(Layout {
            name: "2008",
            images: table_layout(page),
        });
    }
    if first_doc(&page.doc, "figure[class*=StyledFigure]").is_some() {
        return Some(Layout {
            name: "2024-sport",
            images: super::generic::figures(page),
        });
    }
    None
}

fn cps_layout(page: &Page<'_>) -> Vec<Found> {
    let rule = Rule {
        caption: ".media-caption__text",
        credit: ".story-image-copyright",
        skip: ".media-player, [data-media-type=video], .media-with-caption__caption, .social-embed",
        max_up: 3,
    };
    let intro = first_doc(&page.doc, ".story-body__introduction");
    by_caption(&page.doc, &rule)
        .into_iter()
        .map(|(block, mut f)| {
            f.url = largest_ichef(&f.url);
            // The lead photo is the one placed before the introduction paragraph.
            f.is_lead = intro.is_some_and(|p| {
                block
                    .next_siblings()
                    .filter_map(scraper::ElementRef::wrap)
                    .next()
                    .is_some_and(|n| n.id() == p.id())
            });
            f
        })
        .collect()
}

fn table_layout(page: &Page<'_>) -> Vec<Found> {
    let rule = Rule {
        caption: ".storybody div.cap",
        credit: "",
        skip: "",
        max_up: 1,
    };
    let body = first_doc(&page.doc, ".storybody");
    by_caption(&page.doc, &rule)
        .into_iter()
        .enumerate()
        .map(|(i, (block, mut f))| {
            f.is_lead = i == 0 && body.is_some_and(|b| in_main_image_marker(b, block));
            f
        })
        .collect()
}

/// Whether `block` sits between the template's `<!-- S IIMA -->` and `<!-- E IIMA -->`
/// comments inside `body`: the story's main image.
fn in_main_image_marker(body: scraper::ElementRef<'_>, block: scraper::ElementRef<'_>) -> bool {
    let mut inside = false;
    for node in body.descendants() {
        if let Some(comment) = node.value().as_comment() {
            match comment.trim() {
                "S IIMA" => inside = true,
                "E IIMA" => inside = false,
                _ => {}
            }
        }
        if node.id() == block.id() {
            return inside;
        }
    }
    false
}

fn amp_layout(page: &Page<'_>) -> Vec<Found> {
    let mut out = Vec::new();
    let mut seen_paragraph = false;
    for block in select_doc(&page.doc, ".image_container, .main_article_text > p") {
        if block.value().name() == "p" {
            seen_paragraph = true;
            continue;
        }
        let Some((url, img)) = super::blocks::first_image(block) else {
            continue;
        };
        let Some(cap) = block
            .next_siblings()
            .filter_map(scraper::ElementRef::wrap)
            .next()
            .filter(|n| n.value().classes().any(|c| c == "caption"))
        else {
            continue;
        };
        let label = select_in(cap, ".screen_reader_text");
        let mut caption = String::new();
        super::generic::collect_text_except(cap, &label, &mut caption);
        out.push(Found {
            url: largest_ichef(&url),
            caption: crate::dom::collapse_ws(&caption),
            credit: None,
            alt: super::blocks::alt_of(img),
            is_lead: !seen_paragraph && out.is_empty(),
        });
    }
    out
}

/// `https://ichef.bbci.co.uk/news/320/cpsprodpb/…` → the 976 px rendition.
fn largest_ichef(url: &str) -> String {
    // ichef.bbci.co.uk and its shards ichef-1.bbci.co.uk, …
    const HOST: &str = ".bbci.co.uk/news/";
    let Some(i) = url.find(HOST) else {
        return url.to_string();
    };
    if !url[..i].ends_with("ichef") && !url[..i].contains("//ichef-") {
        return url.to_string();
    }
    let rest = &url[i + HOST.len()..];
    let Some(slash) = rest.find('/') else {
        return url.to_string();
    };
    let width = &rest[..slash];
    match width.parse::<u32>() {
        Ok(w) if w < 976 => format!("{}{HOST}976{}", &url[..i], &rest[slash..]),
        _ => url.to_string(),
    }
}

/// `…ichef.bbci.co.uk/news/1536/cpsprodpb/3e3b/live/x.jpg.webp` → `….jpg`: ichef appends
/// `.webp` to the original's path to ask for a transcode, so dropping it gives the original
/// format at the same size (the path older layouts embed).
fn strip_ichef_webp(url: &str) -> String {
    let is_ichef = url::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_ascii_lowercase))
        .is_some_and(|h| h.starts_with("ichef") && h.ends_with(".bbci.co.uk"));
    let lower = url.to_ascii_lowercase();
    if is_ichef
        && [".jpg.webp", ".jpeg.webp", ".png.webp"]
            .iter()
            .any(|e| lower.ends_with(e))
    {
        url[..url.len() - ".webp".len()].to_string()
    } else {
        url.to_string()
    }
}

fn next_layout(page: &Page<'_>) -> Vec<Found> {
    let mut out = Vec::new();
    for fig in select_doc(&page.doc, "figure") {
        let Some(holder) = first_in(fig, "[data-testid=hero-image], [data-testid=image]") else {
            continue;
        };
        let Some((url, img)) = first_image(holder) else {
            continue;
        };
        let url = strip_ichef_webp(&url);
        let credit = select_in(holder, "span")
            .into_iter()
            .map(text)
            .rfind(|t| !t.is_empty());
        let caption = first_in(fig, "figcaption").map(text).unwrap_or_default();
        // The alt text repeats the credit first ("Getty Images City of London").
        let alt = super::blocks::alt_of(img).map(|a| match &credit {
            Some(c) => a
                .strip_prefix(c.as_str())
                .map(|r| r.trim().to_string())
                .unwrap_or(a),
            None => a,
        });
        let is_lead = holder.value().attr("data-testid") == Some("hero-image");
        out.push(Found {
            url,
            caption,
            credit,
            alt,
            is_lead,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{largest_ichef, strip_ichef_webp};

    #[test]
    fn ichef_webp_transcode_gives_the_original() {
        assert_eq!(
            strip_ichef_webp("https://ichef.bbci.co.uk/news/1536/cpsprodpb/3e3b/live/a.jpg.webp"),
            "https://ichef.bbci.co.uk/news/1536/cpsprodpb/3e3b/live/a.jpg"
        );
        assert_eq!(
            strip_ichef_webp("https://ichef.bbci.co.uk/news/1536/cpsprodpb/005a/live/b.png.webp"),
            "https://ichef.bbci.co.uk/news/1536/cpsprodpb/005a/live/b.png"
        );
        assert_eq!(
            strip_ichef_webp("https://other.example/news/1536/c.jpg.webp"),
            "https://other.example/news/1536/c.jpg.webp"
        );
        assert_eq!(
            strip_ichef_webp("https://ichef.bbci.co.uk/news/1536/d.webp"),
            "https://ichef.bbci.co.uk/news/1536/d.webp"
        );
    }

    #[test]
    fn ichef_width_raised_to_976() {
        assert_eq!(
            largest_ichef("https://ichef.bbci.co.uk/news/320/cpsprodpb/B7A6/production/_1.jpg"),
            "https://ichef.bbci.co.uk/news/976/cpsprodpb/B7A6/production/_1.jpg"
        );
        assert_eq!(
            largest_ichef("https://ichef.bbci.co.uk/news/1536/x.jpg"),
            "https://ichef.bbci.co.uk/news/1536/x.jpg"
        );
        assert_eq!(
            largest_ichef("http://ichef-1.bbci.co.uk/news/555/cpsprodpb/142FD/production/_8.jpg"),
            "http://ichef-1.bbci.co.uk/news/976/cpsprodpb/142FD/production/_8.jpg"
        );
        assert_eq!(
            largest_ichef("https://ichef.bbci.co.uk/news/"),
            "https://ichef.bbci.co.uk/news/"
        );
        assert_eq!(
            largest_ichef("https://news.bbci.co.uk/news/320/x.jpg"),
            "https://news.bbci.co.uk/news/320/x.jpg"
        );
    }
}
