//! JSON-LD (`<script type="application/ld+json">`) blocks: the `NewsArticle` and its
//! `ImageObject`s.

use scraper::Html;
use serde_json::Value;

/// Every JSON object found in the page's JSON-LD blocks, flattened: arrays and `@graph`
/// members become separate objects. Blocks that do not parse are skipped with a note.
pub fn objects(doc: &Html, notes: &mut Vec<String>) -> Vec<Value> {
    let mut out = Vec::new();
    for script in crate::dom::select_doc(doc, r#"script[type="application/ld+json"]"#) {
        let raw: String = script.text().collect();
        // Some pages wrap the JSON in CDATA or HTML comments.
        let cleaned = raw
            .trim()
            .trim_start_matches("//<![CDATA[")
            .trim_end_matches("//]]>")
            .trim_start_matches("<!--")
            .trim_end_matches("-->")
            .trim();
        if cleaned.is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(cleaned) {
            Ok(v) => flatten(v, &mut out, 0),
            Err(e) => notes.push(format!("json-ld block does not parse: {e}")),
        }
    }
    out
}

fn flatten(v: Value, out: &mut Vec<Value>, depth: usize) {
    // Bounded so that a hostile page cannot recurse without end.
    if depth > 8 {
        return;
    }
    match v {
        Value::Array(items) => {
            for i in items {
                flatten(i, out, depth + 1);
            }
        }
        Value::Object(mut map) => {
            if let Some(graph) = map.remove("@graph") {
                flatten(graph, out, depth + 1);
            }
            if !map.is_empty() {
                out.push(Value::Object(map));
            }
        }
        _ => {}
    }
}

/// Whether the object's `@type` (a string or a list) names one of `types`.
pub fn has_type(v: &Value, types: &[&str]) -> bool {
    match v.get("@type") {
        Some(Value::String(t)) => types.contains(&t.as_str()),
        Some(Value::Array(ts)) => ts
            .iter()
            .filter_map(Value::as_str)
            .any(|t| types.contains(&t)),
        _ => false,
    }
}

/// Article types of schema.org that carry news metadata.
pub const ARTICLE_TYPES: &[&str] = &[
    "NewsArticle",
    "Article",
    "ReportageNewsArticle",
    "AnalysisNewsArticle",
    "OpinionNewsArticle",
    "BackgroundNewsArticle",
    "LiveBlogPosting",
    "BlogPosting",
    "WebPage",
];

/// The first article-like object (news types preferred over `WebPage`).
pub fn article(objects: &[Value]) -> Option<&Value> {
    objects
        .iter()
        .find(|o| has_type(o, &ARTICLE_TYPES[..ARTICLE_TYPES.len() - 1]))
        .or_else(|| objects.iter().find(|o| has_type(o, &["WebPage"])))
}

/// A string value: a plain string, or the first string of a list, or an object's `name`/`url`.
pub fn string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => {
            let s = crate::dom::collapse_ws(s);
            (!s.is_empty()).then_some(s)
        }
        Value::Array(items) => items.iter().find_map(string),
        Value::Object(m) => m
            .get("name")
            .or_else(|| m.get("url"))
            .or_else(|| m.get("@id"))
            .and_then(string),
        _ => None,
    }
}

/// Names of a `author`/`creator` value: a string, a Person object, or a list of them.
pub fn names(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => {
            let s = crate::dom::collapse_ws(s);
            if s.is_empty() { vec![] } else { vec![s] }
        }
        Value::Array(items) => items.iter().flat_map(names).collect(),
        Value::Object(m) => m
            .get("name")
            .and_then(Value::as_str)
            .map(crate::dom::collapse_ws)
            .filter(|s| !s.is_empty())
            .into_iter()
            .collect(),
        _ => vec![],
    }
}

/// An image described by JSON-LD.
#[derive(Debug, Clone, PartialEq)]
pub struct LdImage {
    /// `url` or `contentUrl`.
    pub url: String,
    /// `caption` or `description`.
    pub caption: Option<String>,
    /// `creditText`, `copyrightHolder`, `author`.
    pub credit: Option<String>,
    /// `width`, when numeric.
    pub width: Option<u64>,
}

/// The images of an article object's `image` value (string, ImageObject or list).
pub fn images(article: &Value) -> Vec<LdImage> {
    let mut out = Vec::new();
    if let Some(v) = article.get("image") {
        collect_images(v, &mut out);
    }
    out
}

fn collect_images(v: &Value, out: &mut Vec<LdImage>) {
    match v {
        Value::String(s) if !s.trim().is_empty() => out.push(LdImage {
            url: s.trim().to_string(),
            caption: None,
            credit: None,
            width: None,
        }),
        Value::Array(items) => items.iter().for_each(|i| collect_images(i, out)),
        Value::Object(m) => {
            let Some(url) = m
                .get("url")
                .or_else(|| m.get("contentUrl"))
                .and_then(string)
            else {
                return;
            };
            let width = m.get("width").and_then(|w| match w {
                Value::Number(n) => n.as_u64(),
                Value::String(s) => s.trim_end_matches("px").parse().ok(),
                Value::Object(o) => o.get("value").and_then(Value::as_u64),
                _ => None,
            });
            out.push(LdImage {
                url,
                caption: m
                    .get("caption")
                    .or_else(|| m.get("description"))
                    .and_then(string),
                credit: m
                    .get("creditText")
                    .or_else(|| m.get("copyrightHolder"))
                    .or_else(|| m.get("author"))
                    .and_then(string),
                width,
            });
        }
        _ => {}
    }
}
