//! Article metadata from the page head: JSON-LD, OpenGraph/`article:*` and the older
//! `<meta name=…>` conventions the outlets used over the years.

use crate::ArticleMeta;
use crate::dom::{attr, first_doc, select_doc, text};
use crate::jsonld;
use scraper::Html;
use serde_json::Value;
use url::Url;

/// Content of the first `<meta>` whose `property`, `name` or `itemprop` is one of `keys`.
pub(crate) fn meta_content(doc: &Html, keys: &[&str]) -> Option<String> {
    for key in keys {
        for k in ["property", "name", "itemprop"] {
            let css = format!(r#"meta[{k}="{key}"]"#);
            if let Some(v) = select_doc(doc, &css)
                .into_iter()
                .find_map(|m| attr(m, "content"))
            {
                return Some(v);
            }
        }
    }
    None
}

/// Metadata found in the usual places; adapters then fill gaps with outlet knowledge.
pub fn article_meta(doc: &Html, page_url: &Url, ld: &[Value]) -> ArticleMeta {
    let art = jsonld::article(ld);
    let ld_str = |key: &str| art.and_then(|a| a.get(key)).and_then(jsonld::string);

    let canonical_url = first_doc(doc, r#"link[rel="canonical"]"#)
        .and_then(|l| attr(l, "href"))
        .or_else(|| meta_content(doc, &["og:url"]))
        .or_else(|| ld_str("url"))
        .and_then(|u| crate::srcset::resolve(page_url, &u));

    let headline = ld_str("headline")
        .or_else(|| meta_content(doc, &["og:title", "hdl", "headline", "twitter:title"]))
        .or_else(|| first_doc(doc, "h1").map(text).filter(|s| !s.is_empty()))
        .or_else(|| first_doc(doc, "title").map(text).filter(|s| !s.is_empty()));

    // A placeholder date (`0001-01-01T00:00:00Z`, seen in USA Today's JSON-LD) is no date.
    let real_date = |d: &String| !d.starts_with("0001-") && !d.starts_with("0000-");
    let published_at = ld_str("datePublished")
        .filter(real_date)
        .or_else(|| {
            meta_content(
                doc,
                &[
                    "article:published_time",
                    "datePublished",
                    "published_time",
                    "ptime",
                    "pdate",
                    "DISPLAYDATE",
                    "OriginalPublicationDate",
                    "og:pubdate",
                    "date",
                    "DC.date.issued",
                    "rnews:datePublished",
                ],
            )
        })
        .filter(real_date)
        .or_else(|| {
            first_doc(
                doc,
                "[itemprop=datePublished][content], [itemprop=datePublished][datetime], \
                 time[pubdate], time[datetime]",
            )
            .and_then(|t| attr(t, "datetime").or_else(|| attr(t, "content")))
        })
        .map(|d| normalise_time(&d));

    let section = ld_str("articleSection")
        .or_else(|| meta_content(doc, &["article:section", "section", "CG", "cg"]));

    let mut authors = art
        .and_then(|a| a.get("author").or_else(|| a.get("creator")))
        .map(jsonld::names)
        .unwrap_or_default();
    if authors.is_empty() {
        authors = meta_content(doc, &["author", "byl", "article:author"])
            .map(|a| split_byline(&a))
            .unwrap_or_default();
    }
    ArticleMeta {
        canonical_url,
        headline,
        published_at,
        section,
        authors: dedup_authors(authors),
    }
}

/// Splits a byline such as `"By Jane Doe and John Roe"` into names. URLs (OpenGraph
/// profile links) are not names and are dropped.
pub fn split_byline(byline: &str) -> Vec<String> {
    let b = crate::dom::collapse_ws(byline);
    let b = b
        .strip_prefix("By ")
        .or_else(|| b.strip_prefix("by "))
        .or_else(|| b.strip_prefix("BY "))
        .unwrap_or(&b);
    b.split([',', ';'])
        .flat_map(|p| p.split(" and "))
        .flat_map(|p| p.split(" & "))
        .map(|p| p.trim().to_string())
        .filter(|p| !p.is_empty() && !p.contains("://") && !p.starts_with("www."))
        .collect()
}

/// Drops empty names, URLs and repeats, keeping page order.
pub(crate) fn dedup_authors(authors: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for a in authors {
        let a = crate::dom::collapse_ws(&a);
        if a.is_empty() || a.contains("://") {
            continue;
        }
        if !out.iter().any(|o| o.eq_ignore_ascii_case(&a)) {
            out.push(a);
        }
    }
    out
}

/// Normalises a timestamp towards RFC 3339: `T` separator, `+hh:mm` offsets, `YYYYMMDD`
/// dates expanded. Anything it does not recognise is returned trimmed, as found.
pub fn normalise_time(s: &str) -> String {
    let s = s.trim();
    let b = s.as_bytes();
    // 20100417 → 2010-04-17
    if b.len() == 8 && b.iter().all(u8::is_ascii_digit) {
        return format!("{}-{}-{}", &s[..4], &s[4..6], &s[6..8]);
    }
    let looks_iso =
        b.len() >= 10 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-' && b[7] == b'-';
    if !looks_iso {
        return s.to_string();
    }
    let mut out = s.to_string();
    if out.len() > 10 && out.as_bytes()[10] == b' ' {
        out.replace_range(10..11, "T");
    }
    // +0000 → +00:00 (only in the offset part, after the time).
    if out.len() >= 16 && out.contains('T') {
        let n = out.len();
        let tail = &out.as_bytes()[n - 5..];
        if (tail[0] == b'+' || tail[0] == b'-') && tail[1..].iter().all(u8::is_ascii_digit) {
            out.insert(n - 2, ':');
        }
    }
    if out.ends_with(" GMT") || out.ends_with(" UTC") {
        out.truncate(out.len() - 4);
        out.push('Z');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_forms() {
        assert_eq!(normalise_time("20100417"), "2010-04-17");
        assert_eq!(
            normalise_time("2015-03-18 07:00:00+0000"),
            "2015-03-18T07:00:00+00:00"
        );
        assert_eq!(
            normalise_time("2023-05-15T10:19:44.000Z"),
            "2023-05-15T10:19:44.000Z"
        );
        assert_eq!(
            normalise_time("2016-07-25T05:09:18-0400"),
            "2016-07-25T05:09:18-04:00"
        );
        assert_eq!(normalise_time("April 17, 2010"), "April 17, 2010");
        assert_eq!(normalise_time("ü"), "ü");
    }

    #[test]
    fn bylines() {
        assert_eq!(
            split_byline("By Jane Doe and John Roe"),
            vec!["Jane Doe".to_string(), "John Roe".to_string()]
        );
        assert_eq!(
            split_byline("https://www.theguardian.com/profile/x"),
            Vec::<String>::new()
        );
    }
}
