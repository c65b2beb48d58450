//! Small helpers over `scraper` shared by the adapters.

use scraper::{ElementRef, Html, Selector};

/// Parses a CSS selector; the selectors are constants of this crate, so a failure is a bug,
/// logged and treated as "matches nothing" rather than a panic.
pub(crate) fn selector(css: &str) -> Option<Selector> {
    match Selector::parse(css) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::error!(css, error = %e, "invalid built-in selector");
            None
        }
    }
}

/// Elements of the document matching `css`, in document order.
pub(crate) fn select_doc<'a>(doc: &'a Html, css: &str) -> Vec<ElementRef<'a>> {
    match selector(css) {
        Some(s) => doc.select(&s).collect(),
        None => Vec::new(),
    }
}

/// Descendants of `el` matching `css`, in document order.
pub(crate) fn select_in<'a>(el: ElementRef<'a>, css: &str) -> Vec<ElementRef<'a>> {
    match selector(css) {
        Some(s) => el.select(&s).collect(),
        None => Vec::new(),
    }
}

/// First descendant of `el` matching `css`.
pub(crate) fn first_in<'a>(el: ElementRef<'a>, css: &str) -> Option<ElementRef<'a>> {
    let s = selector(css)?;
    el.select(&s).next()
}

/// First element of the document matching `css`.
pub(crate) fn first_doc<'a>(doc: &'a Html, css: &str) -> Option<ElementRef<'a>> {
    let s = selector(css)?;
    doc.select(&s).next()
}

/// The text of `el` with runs of whitespace collapsed to one space and trimmed.
pub(crate) fn text(el: ElementRef<'_>) -> String {
    collapse_ws(&el.text().collect::<String>())
}

/// Collapses whitespace runs (including non-breaking spaces) to single spaces, trimmed.
pub(crate) fn collapse_ws(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s.split(|c: char| c.is_whitespace() || c == '\u{a0}') {
        if word.is_empty() {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// A non-empty, whitespace-collapsed attribute value.
pub(crate) fn attr(el: ElementRef<'_>, name: &str) -> Option<String> {
    el.value()
        .attr(name)
        .map(collapse_ws)
        .filter(|s| !s.is_empty())
}

/// Whether `el` or one of its ancestors matches `css` (bounded by the document root).
pub(crate) fn inside(el: ElementRef<'_>, css: &str) -> bool {
    let Some(s) = selector(css) else { return false };
    let mut cur = Some(el);
    while let Some(e) = cur {
        if s.matches(&e) {
            return true;
        }
        cur = e.parent().and_then(ElementRef::wrap);
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The selectors that use more than plain classes must parse, or they silently match
    /// nothing.
    #[test]
    fn built_in_selectors_parse() {
        for css in [
            crate::adapters::generic::FURNITURE,
            crate::adapters::blocks::IMAGE_CSS,
            crate::adapters::generic::CAPTION_CSS,
            "figure:not([data-spacefinder-type]), figure[data-spacefinder-type$=ImageBlockElement]",
            "article > figure:first-child",
            "[itemprop=datePublished][content], [itemprop=datePublished][datetime], time[pubdate], time[datetime]",
            "figcaption[itemprop*=caption]",
            r#"script[type="application/ld+json"]"#,
            "[class*=credit], [class*=Credit], [class*=copyright], [itemprop=copyrightHolder], [itemprop=author]",
        ] {
            assert!(Selector::parse(css).is_ok(), "{css}");
        }
        assert!(selector("figure[").is_none());
    }

    #[test]
    fn whitespace_collapses() {
        assert_eq!(collapse_ws("  a\u{a0}\n b\t"), "a b");
        assert_eq!(collapse_ws(""), "");
    }
}
