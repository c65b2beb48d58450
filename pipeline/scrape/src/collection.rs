//! Ingest of the collections ANCHOR was built from, into the same
//! `articles` and `pairs` rows as a scrape:
//!
//! - `visualnews:PATH`: VisualNews `data.json` (a JSON array, or JSON
//!   lines), records `{id, source, topic, caption, image_path,
//!   article_path}`; paths are relative to the file's folder. Records of one
//!   `article_path` form one article; `source` (`guardian`, `bbc`,
//!   `usa_today`, `washington_post`) names the outlet; `topic` the section.
//!   VisualNews keeps no article URL, so articles and images are named
//!   `visualnews:<path>` (stable, and unique within the collection).
//! - `nytimes800k:PATH`: a `mongoexport` of NYTimes800k's `articles`
//!   collection (JSON lines or `--jsonArray`): `_id`, `web_url`, `pub_date`,
//!   `headline.main`, `section_name`, `parsed_section` (`{type, text, hash}`;
//!   a `caption` entry's `hash` names `images_processed/<hash>.jpg` beside
//!   the file). Images are named `nytimes800k:images_processed/<hash>.jpg`.
//!
//! Images are read from the local files under the decode limits of a fetch;
//! a missing or undecodable file is a row with a status (`not_found`,
//! `corrupt_image`, ...), never a skipped row. A record that is not what the
//! format says is an error naming the file and record.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anchor_core::Outlet;
use anchor_core::ids::{article_id, pair_id, sha256_hex};
use anchor_core::tables;
use serde::Deserialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::image_check::{ImageLimits, check_image};
use crate::outcome::{ErrorClass, FetchStatus};

/// Which collection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collection {
    /// VisualNews `data.json`.
    VisualNews,
    /// NYTimes800k `articles` export.
    NyTimes800k,
}

impl Collection {
    /// The `source` column value.
    pub fn source(self) -> &'static str {
        match self {
            Collection::VisualNews => "visualnews",
            Collection::NyTimes800k => "nytimes800k",
        }
    }
}

/// One captioned image of a collection article.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionImage {
    /// Stable name (`visualnews:...`, `nytimes800k:...`).
    pub image_url: String,
    /// The local file.
    pub file: PathBuf,
    /// Caption without its credit.
    pub caption: String,
    /// Credit split from the caption.
    pub credit: Option<String>,
}

/// One collection article.
#[derive(Debug, Clone, PartialEq)]
pub struct CollectionArticle {
    /// Stored outlet name.
    pub outlet: String,
    /// Article URL (or stable name).
    pub url: String,
    /// Headline.
    pub headline: Option<String>,
    /// Publication time.
    pub published_at: Option<String>,
    /// Section or topic.
    pub section: Option<String>,
    /// Images in article order.
    pub images: Vec<CollectionImage>,
}

/// Reads the collection at `path`.
pub fn read(kind: Collection, path: &Path) -> Result<Vec<CollectionArticle>> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let root = path.parent().unwrap_or(Path::new(".")).to_path_buf();
    let records = json_records(path, &bytes)?;
    match kind {
        Collection::VisualNews => visualnews(path, &root, records),
        Collection::NyTimes800k => nytimes(path, &root, records),
    }
}

fn bad(path: &Path, record: usize, detail: impl Into<String>) -> Error {
    Error::Collection {
        path: path.to_path_buf(),
        record,
        detail: detail.into(),
    }
}

/// A JSON array or JSON lines, as values.
fn json_records(path: &Path, bytes: &[u8]) -> Result<Vec<Value>> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'[') {
        return serde_json::from_slice(bytes).map_err(|e| bad(path, 0, format!("JSON array: {e}")));
    }
    let mut out = Vec::new();
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        out.push(
            serde_json::from_slice(line)
                .map_err(|e| bad(path, i + 1, format!("JSON line {}: {e}", i + 1)))?,
        );
    }
    Ok(out)
}

#[derive(Deserialize)]
struct VnRecord {
    id: Value,
    source: String,
    #[serde(default)]
    topic: Option<String>,
    caption: String,
    image_path: String,
    #[serde(default)]
    article_path: Option<String>,
}

/// `./bbc/images/1.jpg` → `bbc/images/1.jpg`; refuses paths that leave
/// the collection's folder.
fn relative(path: &Path, record: usize, p: &str) -> Result<String> {
    let trimmed = p.trim().trim_start_matches("./");
    if trimmed.is_empty()
        || trimmed.starts_with('/')
        || trimmed.split(['/', '\\']).any(|c| c == "..")
    {
        return Err(bad(
            path,
            record,
            format!("path {p:?} must be relative to the collection's folder, without `..`"),
        ));
    }
    Ok(trimmed.to_owned())
}

fn outlet_name(path: &Path, record: usize, s: &str) -> Result<String> {
    s.parse::<Outlet>()
        .map(|o| o.as_str().to_owned())
        .map_err(|e| bad(path, record, e.to_string()))
}

fn visualnews(path: &Path, root: &Path, records: Vec<Value>) -> Result<Vec<CollectionArticle>> {
    let mut articles: Vec<CollectionArticle> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for (i, value) in records.into_iter().enumerate() {
        let n = i + 1;
        let r: VnRecord = serde_json::from_value(value)
            .map_err(|e| bad(path, n, format!("VisualNews record: {e}")))?;
        let outlet = outlet_name(path, n, &r.source)?;
        let image = relative(path, n, &r.image_path)?;
        let url = match &r.article_path {
            Some(a) if !a.trim().is_empty() => format!("visualnews:{}", relative(path, n, a)?),
            // No article: the record is its own article.
            _ => format!("visualnews:{outlet}/record/{}", id_text(&r.id)),
        };
        let (caption, credit) = anchor_extract::credit::split_credit(&r.caption);
        let img = CollectionImage {
            image_url: format!("visualnews:{image}"),
            file: root.join(&image),
            caption,
            credit,
        };
        match index.get(&url) {
            Some(&k) => articles[k].images.push(img),
            None => {
                index.insert(url.clone(), articles.len());
                articles.push(CollectionArticle {
                    outlet,
                    url,
                    headline: None,
                    published_at: None,
                    section: r.topic.filter(|t| !t.trim().is_empty()),
                    images: vec![img],
                });
            }
        }
    }
    Ok(articles)
}

fn id_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(o) => o
            .get("$oid")
            .and_then(Value::as_str)
            .map_or_else(|| v.to_string(), str::to_owned),
        other => other.to_string(),
    }
}

/// `pub_date` as MongoDB exports it: a string, `{"$date": string}` or
/// `{"$date": {"$numberLong": millis}}` (and a bare millisecond number).
fn mongo_date(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => n.as_i64().map(rfc3339_from_millis),
        Value::Object(o) => {
            let d = o.get("$date")?;
            match d {
                Value::Object(inner) => inner
                    .get("$numberLong")
                    .and_then(|x| x.as_str().and_then(|s| s.parse().ok()).or(x.as_i64()))
                    .map(rfc3339_from_millis),
                other => mongo_date(other),
            }
        }
        _ => None,
    }
}

fn rfc3339_from_millis(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let day = crate::outlets::Day::from_days(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!("{day}T{:02}:{:02}:{:02}Z", s / 3600, s / 60 % 60, s % 60)
}

fn nytimes(path: &Path, root: &Path, records: Vec<Value>) -> Result<Vec<CollectionArticle>> {
    let mut articles = Vec::with_capacity(records.len());
    for (i, doc) in records.into_iter().enumerate() {
        let n = i + 1;
        let obj = doc
            .as_object()
            .ok_or_else(|| bad(path, n, "NYTimes800k document is not a JSON object"))?;
        let id = obj.get("_id").map(id_text);
        let url = match obj.get("web_url").and_then(Value::as_str) {
            Some(u) if !u.trim().is_empty() => u.trim().to_owned(),
            _ => format!(
                "nytimes800k:{}",
                id.ok_or_else(|| bad(path, n, "document has neither web_url nor _id"))?
            ),
        };
        let sections = obj
            .get("parsed_section")
            .and_then(Value::as_array)
            .ok_or_else(|| bad(path, n, "parsed_section is missing or not a list"))?;
        let mut images = Vec::new();
        for (j, s) in sections.iter().enumerate() {
            if s.get("type").and_then(Value::as_str) != Some("caption") {
                continue;
            }
            let hash = s
                .get("hash")
                .and_then(Value::as_str)
                .filter(|h| !h.is_empty() && h.chars().all(|c| c.is_ascii_alphanumeric()))
                .ok_or_else(|| {
                    bad(
                        path,
                        n,
                        format!("parsed_section[{j}]: a caption needs an alphanumeric hash"),
                    )
                })?;
            let text = s.get("text").and_then(Value::as_str).unwrap_or("");
            let (caption, credit) = anchor_extract::credit::split_credit(text);
            let rel = format!("images_processed/{hash}.jpg");
            images.push(CollectionImage {
                image_url: format!("nytimes800k:{rel}"),
                file: root.join(&rel),
                caption,
                credit,
            });
        }
        articles.push(CollectionArticle {
            outlet: Outlet::NyTimes.as_str().to_owned(),
            url,
            headline: obj
                .get("headline")
                .and_then(|h| h.get("main"))
                .and_then(Value::as_str)
                .map(str::to_owned),
            published_at: obj.get("pub_date").and_then(mongo_date),
            section: obj
                .get("section_name")
                .and_then(Value::as_str)
                .map(str::to_owned),
            images,
        });
    }
    Ok(articles)
}

/// The rows of one collection article: its images read from disk and
/// checked like fetched ones (`max_bytes` is the fetcher's body cap).
pub fn rows(
    kind: Collection,
    a: &CollectionArticle,
    limits: &ImageLimits,
    max_bytes: u64,
) -> (tables::articles::Row, Vec<tables::pairs::Row>) {
    let source = kind.source();
    let aid = article_id(&a.url);
    let mut article = tables::articles::Row {
        id: aid.clone(),
        outlet: a.outlet.clone(),
        source: source.to_owned(),
        url: a.url.clone(),
        canonical_url: a.url.clone(),
        headline: a.headline.clone(),
        published_at: a.published_at.clone(),
        section: a.section.clone(),
        authors: Vec::new(),
        adapter: Some(source.to_owned()),
        n_images: i32::try_from(a.images.len()).unwrap_or(i32::MAX),
        status: FetchStatus::Success.as_str().to_owned(),
        error_class: None,
        error_message: None,
        http_status: None,
    };
    if a.images.is_empty() {
        article.status = ErrorClass::NoImages.status().as_str().to_owned();
        article.error_class = Some(ErrorClass::NoImages.as_str().to_owned());
        article.error_message = Some(format!("no caption entry in this {source} record"));
    }
    let mut pairs = Vec::with_capacity(a.images.len());
    for (pos, img) in a.images.iter().enumerate() {
        let mut p = tables::pairs::Row {
            id: pair_id(&a.url, &img.image_url),
            article_id: aid.clone(),
            outlet: a.outlet.clone(),
            source: source.to_owned(),
            article_url: a.url.clone(),
            image_url: img.image_url.clone(),
            position: i32::try_from(pos).unwrap_or(i32::MAX),
            // Both collections keep an article's images in page order, the
            // lead first.
            is_lead: pos == 0,
            caption: img.caption.clone(),
            credit: img.credit.clone(),
            alt: None,
            bytes: None,
            sha256: None,
            width: None,
            height: None,
            content_type: None,
            status: FetchStatus::Success.as_str().to_owned(),
            error_class: None,
            error_message: None,
            http_status: None,
            // No request is made for a local file.
            attempts: 0,
        };
        match read_image(&img.file, limits, max_bytes) {
            Ok((bytes, w, h, mime)) => {
                p.sha256 = Some(sha256_hex(&bytes));
                p.width = i32::try_from(w).ok();
                p.height = i32::try_from(h).ok();
                p.content_type = mime.map(str::to_owned);
                p.bytes = Some(bytes);
            }
            Err((class, message)) => {
                p.status = class.status().as_str().to_owned();
                p.error_class = Some(class.as_str().to_owned());
                p.error_message = Some(message);
            }
        }
        pairs.push(p);
    }
    pairs.sort_by(|x, y| x.id.cmp(&y.id).then(x.image_url.cmp(&y.image_url)));
    pairs.dedup_by(|x, y| x.id == y.id);
    (article, pairs)
}

type ImageRead = (Vec<u8>, u32, u32, Option<&'static str>);

fn read_image(
    file: &Path,
    limits: &ImageLimits,
    max_bytes: u64,
) -> std::result::Result<ImageRead, (ErrorClass, String)> {
    let meta = std::fs::metadata(file).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            (
                ErrorClass::NotFound,
                format!("image file {} does not exist", file.display()),
            )
        } else {
            (ErrorClass::BodyRead, format!("{}: {e}", file.display()))
        }
    })?;
    if meta.len() > max_bytes {
        return Err((
            ErrorClass::BodyTooLarge,
            format!("{} is over the {max_bytes} byte cap", file.display()),
        ));
    }
    let bytes = std::fs::read(file)
        .map_err(|e| (ErrorClass::BodyRead, format!("{}: {e}", file.display())))?;
    if bytes.is_empty() {
        return Err((
            ErrorClass::EmptyBody,
            format!("{} is empty", file.display()),
        ));
    }
    let info = check_image(&bytes, limits)?;
    Ok((bytes, info.width, info.height, Some(info.mime)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mongo_dates_in_every_export_shape() {
        let v: Value = serde_json::json!({"$date": {"$numberLong": "1556712000000"}});
        assert_eq!(mongo_date(&v).as_deref(), Some("2019-05-01T12:00:00Z"));
        let v: Value = serde_json::json!({"$date": "2019-05-01T12:00:00Z"});
        assert_eq!(mongo_date(&v).as_deref(), Some("2019-05-01T12:00:00Z"));
        assert_eq!(rfc3339_from_millis(-1000), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn paths_stay_inside_the_collection() {
        let p = Path::new("data.json");
        assert_eq!(
            relative(p, 1, "./bbc/images/1.jpg").unwrap(),
            "bbc/images/1.jpg"
        );
        assert!(relative(p, 1, "../etc/passwd").is_err());
        assert!(relative(p, 1, "/etc/passwd").is_err());
    }
}
