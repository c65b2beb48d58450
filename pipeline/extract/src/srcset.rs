//! Choosing the largest rendition of an image: `srcset` descriptors, lazy-load attributes,
//! `<picture>` sources, and resolution of relative URLs.

use scraper::ElementRef;
use url::Url;

/// One candidate of a `srcset` attribute.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The URL as written.
    pub url: String,
    /// Width in pixels (`640w`), if given.
    pub width: Option<u32>,
    /// Pixel density (`2x`), if given.
    pub density: Option<f32>,
}

/// Parses a `srcset` value into candidates. Tolerates commas inside URLs (common in image
/// CDN query strings such as `?w=640,h=480`) by splitting on commas followed by whitespace
/// or at the end of a descriptor.
pub fn parse_srcset(srcset: &str) -> Vec<Candidate> {
    let mut out = Vec::new();
    let mut rest = srcset.trim();
    while !rest.is_empty() {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_whitespace());
        if rest.is_empty() {
            break;
        }
        // The URL runs to the first whitespace.
        let url_end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let mut url = &rest[..url_end];
        rest = &rest[url_end..];
        // A URL directly followed by a comma has no descriptor.
        let descriptor;
        if let Some(stripped) = url.strip_suffix(',') {
            url = stripped;
            descriptor = "";
        } else {
            let d_end = rest.find(',').unwrap_or(rest.len());
            descriptor = rest[..d_end].trim();
            rest = &rest[d_end..];
        }
        if url.is_empty() {
            continue;
        }
        let mut cand = Candidate {
            url: url.to_string(),
            width: None,
            density: None,
        };
        for token in descriptor.split_whitespace() {
            if let Some(w) = token.strip_suffix('w') {
                cand.width = w.parse().ok();
            } else if let Some(x) = token.strip_suffix('x') {
                cand.density = x.parse().ok();
            }
        }
        out.push(cand);
    }
    out
}

/// The URL of the largest candidate of a `srcset` (by width, then density; the last of
/// equals wins, as browsers list renditions smallest first).
pub fn largest(srcset: &str) -> Option<String> {
    let cands = parse_srcset(srcset);
    let score = |c: &Candidate| -> f64 {
        match (c.width, c.density) {
            (Some(w), _) => f64::from(w),
            (None, Some(d)) => f64::from(d),
            (None, None) => 1.0,
        }
    };
    let mut best: Option<&Candidate> = None;
    for c in &cands {
        if best.is_none_or(|b| score(c) >= score(b)) {
            best = Some(c);
        }
    }
    best.map(|c| c.url.clone())
}

/// Width in pixels of the largest candidate of `srcset`, if it states widths.
pub fn largest_width(srcset: &str) -> Option<u32> {
    parse_srcset(srcset).iter().filter_map(|c| c.width).max()
}

/// Attributes that hold a single lazily loaded image URL, preferred over `src` (which is
/// often a placeholder), most specific first: `data-raw-src` is the original file behind the
/// Washington Post's resizer renditions (`data-hi-res-src`); `datasrc` is the web address an
/// older BBC image script reads, kept when a saved copy of the page rewrote `src` to a local
/// file.
const SINGLE_URL_ATTRS: &[&str] = &[
    "data-raw-src",
    "data-hi-res-src",
    "data-src-large",
    "data-full-src",
    "data-original",
    "data-lazy-src",
    "data-gl-src",
    "data-src",
    "data-mediaviewer-src",
    "datasrc",
    "src",
];

/// Attributes holding a srcset.
const SRCSET_ATTRS: &[&str] = &[
    "srcset",
    "data-srcset",
    "data-lazy-srcset",
    "data-gl-srcset",
];

/// Whether `url` is a real image address rather than a placeholder (`data:` URI, spacer gif,
/// template with unfilled placeholders).
pub fn is_real_url(url: &str) -> bool {
    let u = url.trim();
    !(u.is_empty()
        || u.starts_with("data:")
        || u.starts_with("about:")
        || u.starts_with("javascript:")
        || u.contains("{width}")
        || u.contains("{{")
        || u.contains("grey-placeholder")
        || u.contains("blank.gif")
        || u.contains("spacer.gif")
        || u.contains("1x1"))
}

/// The largest rendition of the image `img` (an `<img>`, or a `<picture>` containing one):
/// `<picture><source srcset>` candidates, `srcset`, lazy-load attributes, then `src`.
/// Returns the URL as written (unresolved).
pub fn best_url(img: ElementRef<'_>) -> Option<String> {
    let mut best: Option<(u32, String)> = None;
    // Every URL the element offers, to find the original behind a transcode.
    let mut offered: Vec<String> = Vec::new();
    let mut consider = |w: u32, url: String| {
        if is_real_url(&url) && best.as_ref().is_none_or(|(bw, _)| w > *bw) {
            best = Some((w, url));
        }
    };
    // <picture> sources: the parent picture of an img, or the element itself.
    let picture = if img.value().name() == "picture" {
        Some(img)
    } else {
        img.parent()
            .and_then(ElementRef::wrap)
            .filter(|p| p.value().name() == "picture")
    };
    if let Some(p) = picture {
        for child in p.children().filter_map(ElementRef::wrap) {
            if child.value().name() != "source" {
                continue;
            }
            for a in SRCSET_ATTRS {
                if let Some(s) = child.value().attr(a) {
                    offered.extend(parse_srcset(s).into_iter().map(|c| c.url));
                    // Sources without width descriptors rank just above a bare src.
                    let w = largest_width(s).unwrap_or(1);
                    if let Some(u) = largest(s) {
                        consider(w, u);
                    }
                }
            }
        }
    }
    let img = if img.value().name() == "picture" {
        match crate::dom::first_in(img, "img") {
            Some(i) => i,
            None => return best.map(|(_, u)| prefer_original(u, &offered)),
        }
    } else {
        img
    };
    for a in SRCSET_ATTRS {
        if let Some(s) = img.value().attr(a) {
            offered.extend(parse_srcset(s).into_iter().map(|c| c.url));
            let w = largest_width(s).unwrap_or(1);
            if let Some(u) = largest(s) {
                consider(w, u);
            }
        }
    }
    for a in SINGLE_URL_ATTRS {
        if let Some(u) = img.value().attr(a) {
            offered.push(u.trim().to_string());
        }
    }
    if let Some((w, u)) = widest_from_pattern(img) {
        consider(w, u);
    }
    if best.is_none() {
        for a in SINGLE_URL_ATTRS {
            if let Some(u) = img.value().attr(a) {
                let u = u.trim();
                if is_real_url(u) {
                    return Some(u.to_string());
                }
            }
        }
    }
    best.map(|(_, u)| prefer_original(u, &offered))
}

/// The widest rendition of a templated image: `data-pattern="…/x-{{size}}.jpg"` with the
/// widths the template is rendered at in `data-widths="[320,640,2000]"` (the lazy loader of
/// newsroom graphics, whose `src` is the unfilled template).
fn widest_from_pattern(img: ElementRef<'_>) -> Option<(u32, String)> {
    let pattern = img.value().attr("data-pattern")?;
    if !pattern.contains("{{size}}") {
        return None;
    }
    let widths = img.value().attr("data-widths")?;
    let widest = widths
        .trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split(',')
        .filter_map(|w| w.trim().parse::<u32>().ok())
        .max()?;
    Some((widest, pattern.replace("{{size}}", &widest.to_string())))
}

/// `…/976/x.jpg.webp` → `…/976/x.jpg` when the element also offers `x.jpg` in some size: the
/// CDN transcodes the original to WebP on request, and the original is what a dataset wants.
pub fn prefer_original(url: String, offered: &[String]) -> String {
    let path_end = url.find(['?', '#']).unwrap_or(url.len());
    let (path, rest) = url.split_at(path_end);
    let Some(original) = path.strip_suffix(".webp") else {
        return url;
    };
    let lower = original.to_ascii_lowercase();
    if ![".jpg", ".jpeg", ".png"].iter().any(|e| lower.ends_with(e)) {
        return url;
    }
    let file = original.rsplit('/').next().unwrap_or(original);
    let is_offered = offered.iter().any(|o| {
        let p = o.split(['?', '#']).next().unwrap_or(o);
        p.rsplit('/').next() == Some(file)
    });
    if is_offered {
        format!("{original}{rest}")
    } else {
        url
    }
}

/// Resolves `url` against `base`, returning an absolute `http(s)` URL, or `None` when it
/// cannot be resolved or is not a web address.
pub fn resolve(base: &Url, url: &str) -> Option<String> {
    let u = url.trim();
    if !is_real_url(u) {
        return None;
    }
    let abs = base.join(u).ok()?;
    match abs.scheme() {
        "http" | "https" => Some(abs.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widest_candidate_wins() {
        let s = "a-320.jpg 320w, a-1024.jpg 1024w, a-640.jpg 640w";
        assert_eq!(largest(s).as_deref(), Some("a-1024.jpg"));
        assert_eq!(largest_width(s), Some(1024));
    }

    #[test]
    fn density_descriptors() {
        assert_eq!(largest("a.jpg, a@2x.jpg 2x").as_deref(), Some("a@2x.jpg"));
        assert_eq!(
            largest("a@3x.jpg 3x, a@2x.jpg 2x").as_deref(),
            Some("a@3x.jpg")
        );
    }

    #[test]
    fn commas_inside_urls_survive() {
        let s =
            "https://i.example/x.jpg?w=300,h=200 300w, https://i.example/x.jpg?w=900,h=600 900w";
        let c = parse_srcset(s);
        assert_eq!(c.len(), 2);
        assert_eq!(c[1].url, "https://i.example/x.jpg?w=900,h=600");
        assert_eq!(c[1].width, Some(900));
    }

    #[test]
    fn garbage_srcset_does_not_panic() {
        for s in [
            "",
            ",,,",
            " 100w",
            "a 12xw, , b ,",
            "\u{a0}ü 9999999999999w",
        ] {
            let _ = parse_srcset(s);
            let _ = largest(s);
        }
    }

    #[test]
    fn original_preferred_over_its_webp_transcode() {
        let offered = vec![
            "https://i.example/news/480/a/x.jpg".to_string(),
            "https://i.example/news/976/a/x.jpg.webp".to_string(),
        ];
        assert_eq!(
            prefer_original("https://i.example/news/976/a/x.jpg.webp".into(), &offered),
            "https://i.example/news/976/a/x.jpg"
        );
        // No original offered: the transcode is all there is.
        assert_eq!(
            prefer_original("https://i.example/news/976/a/y.jpg.webp".into(), &offered),
            "https://i.example/news/976/a/y.jpg.webp"
        );
        assert_eq!(
            prefer_original("https://i.example/z.webp".into(), &offered),
            "https://i.example/z.webp"
        );
    }

    #[test]
    fn templated_image_takes_its_widest_rendition() {
        let html = scraper::Html::parse_fragment(
            r#"<img src="https://i.example/a-{{size}}_x2.jpg" data-pattern="https://i.example/a-{{size}}.jpg" data-widths="[320, 2600,900]">
               <img src="https://i.example/b-{{size}}.jpg" data-pattern="https://i.example/b-{{size}}.jpg" data-widths="none">"#,
        );
        let imgs: Vec<_> = crate::dom::select_in(html.root_element(), "img");
        assert_eq!(
            best_url(imgs[0]).as_deref(),
            Some("https://i.example/a-2600.jpg")
        );
        // Widths that do not parse leave only the unfilled template, which is no URL.
        assert_eq!(best_url(imgs[1]), None);
    }

    #[test]
    fn resolve_relative_and_reject_data() {
        let base = Url::parse("https://www.example.com/news/story.html").unwrap();
        assert_eq!(
            resolve(&base, "/img/a.jpg").as_deref(),
            Some("https://www.example.com/img/a.jpg")
        );
        assert_eq!(
            resolve(&base, "//cdn.example.com/b.jpg").as_deref(),
            Some("https://cdn.example.com/b.jpg")
        );
        assert_eq!(resolve(&base, "data:image/gif;base64,R0lGOD"), None);
        assert_eq!(resolve(&base, "javascript:void(0)"), None);
    }
}
