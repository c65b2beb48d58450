//! Typed rows of the `articles` and `pairs` tables and their record batches.

use std::sync::Arc;

use anchor_core::tables::{articles, image_fields, pairs};
use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::{
    ArrayRef, BinaryArray, BooleanArray, Int32Array, Int64Array, RecordBatch, StringArray,
    StructArray,
};

use crate::error::{Error, Result};

/// One `articles` row.
#[derive(Debug, Clone, PartialEq)]
pub struct ArticleRow {
    /// Article id.
    pub id: String,
    /// Outlet name.
    pub outlet: String,
    /// Source name.
    pub source: String,
    /// URL requested.
    pub url: String,
    /// Canonical URL.
    pub canonical_url: String,
    /// Headline.
    pub headline: Option<String>,
    /// Publication time.
    pub published_at: Option<String>,
    /// Section.
    pub section: Option<String>,
    /// Authors.
    pub authors: Vec<String>,
    /// Adapter that parsed the page.
    pub adapter: Option<String>,
    /// Captioned images found.
    pub n_images: i32,
    /// Final status.
    pub status: String,
    /// Error class.
    pub error_class: Option<String>,
    /// Error detail.
    pub error_message: Option<String>,
    /// HTTP status.
    pub http_status: Option<i32>,
}

/// One `pairs` row.
#[derive(Debug, Clone, PartialEq)]
pub struct PairRow {
    /// Pair id.
    pub id: String,
    /// Article id.
    pub article_id: String,
    /// Outlet name.
    pub outlet: String,
    /// Source name.
    pub source: String,
    /// Canonical article URL.
    pub article_url: String,
    /// Canonical image URL.
    pub image_url: String,
    /// Position in the article.
    pub position: i32,
    /// Lead image flag.
    pub is_lead: bool,
    /// Caption.
    pub caption: String,
    /// Credit.
    pub credit: Option<String>,
    /// Alt text.
    pub alt: Option<String>,
    /// Original bytes (success only).
    pub bytes: Option<Vec<u8>>,
    /// sha256 of the bytes.
    pub sha256: Option<String>,
    /// Width.
    pub width: Option<i32>,
    /// Height.
    pub height: Option<i32>,
    /// Content-Type.
    pub content_type: Option<String>,
    /// Final status.
    pub status: String,
    /// Error class.
    pub error_class: Option<String>,
    /// Error detail.
    pub error_message: Option<String>,
    /// HTTP status.
    pub http_status: Option<i32>,
    /// Requests made.
    pub attempts: i32,
}

fn strings<'a>(it: impl Iterator<Item = Option<&'a str>>) -> ArrayRef {
    Arc::new(it.collect::<StringArray>())
}

fn table_err(table: &str, e: impl std::fmt::Display) -> Error {
    Error::Table {
        table: table.to_owned(),
        detail: e.to_string(),
    }
}

/// `articles` rows to a batch of the declared schema.
pub fn articles_batch(rows: &[ArticleRow]) -> Result<RecordBatch> {
    let mut authors = ListBuilder::new(StringBuilder::new()).with_field(Arc::new(
        arrow_schema::Field::new("item", arrow_schema::DataType::Utf8, true),
    ));
    for r in rows {
        for a in &r.authors {
            authors.values().append_value(a);
        }
        authors.append(true);
    }
    let columns: Vec<ArrayRef> = vec![
        strings(rows.iter().map(|r| Some(r.id.as_str()))),
        strings(rows.iter().map(|r| Some(r.outlet.as_str()))),
        strings(rows.iter().map(|r| Some(r.source.as_str()))),
        strings(rows.iter().map(|r| Some(r.url.as_str()))),
        strings(rows.iter().map(|r| Some(r.canonical_url.as_str()))),
        strings(rows.iter().map(|r| r.headline.as_deref())),
        strings(rows.iter().map(|r| r.published_at.as_deref())),
        strings(rows.iter().map(|r| r.section.as_deref())),
        Arc::new(authors.finish()),
        strings(rows.iter().map(|r| r.adapter.as_deref())),
        Arc::new(
            rows.iter()
                .map(|r| Some(r.n_images))
                .collect::<Int32Array>(),
        ),
        strings(rows.iter().map(|r| Some(r.status.as_str()))),
        strings(rows.iter().map(|r| r.error_class.as_deref())),
        strings(rows.iter().map(|r| r.error_message.as_deref())),
        Arc::new(rows.iter().map(|r| r.http_status).collect::<Int32Array>()),
    ];
    RecordBatch::try_new(articles::schema(), columns).map_err(|e| table_err(articles::NAME, e))
}

/// `pairs` rows to a batch of the declared schema.
pub fn pairs_batch(rows: &[PairRow]) -> Result<RecordBatch> {
    let bytes: ArrayRef = Arc::new(
        rows.iter()
            .map(|r| r.bytes.as_deref())
            .collect::<BinaryArray>(),
    );
    let paths: ArrayRef = Arc::new(StringArray::new_null(rows.len()));
    let validity: arrow_buffer::NullBuffer = rows.iter().map(|r| r.bytes.is_some()).collect();
    let image = StructArray::try_new(image_fields(), vec![bytes, paths], Some(validity))
        .map_err(|e| table_err(pairs::NAME, e))?;
    let columns: Vec<ArrayRef> = vec![
        strings(rows.iter().map(|r| Some(r.id.as_str()))),
        strings(rows.iter().map(|r| Some(r.article_id.as_str()))),
        strings(rows.iter().map(|r| Some(r.outlet.as_str()))),
        strings(rows.iter().map(|r| Some(r.source.as_str()))),
        strings(rows.iter().map(|r| Some(r.article_url.as_str()))),
        strings(rows.iter().map(|r| Some(r.image_url.as_str()))),
        Arc::new(
            rows.iter()
                .map(|r| Some(r.position))
                .collect::<Int32Array>(),
        ),
        Arc::new(
            rows.iter()
                .map(|r| Some(r.is_lead))
                .collect::<BooleanArray>(),
        ),
        strings(rows.iter().map(|r| Some(r.caption.as_str()))),
        strings(rows.iter().map(|r| r.credit.as_deref())),
        strings(rows.iter().map(|r| r.alt.as_deref())),
        Arc::new(image),
        strings(rows.iter().map(|r| r.sha256.as_deref())),
        Arc::new(
            rows.iter()
                .map(|r| r.bytes.as_ref().map(|b| b.len() as i64))
                .collect::<Int64Array>(),
        ),
        Arc::new(rows.iter().map(|r| r.width).collect::<Int32Array>()),
        Arc::new(rows.iter().map(|r| r.height).collect::<Int32Array>()),
        strings(rows.iter().map(|r| r.content_type.as_deref())),
        strings(rows.iter().map(|r| Some(r.status.as_str()))),
        strings(rows.iter().map(|r| r.error_class.as_deref())),
        strings(rows.iter().map(|r| r.error_message.as_deref())),
        Arc::new(rows.iter().map(|r| r.http_status).collect::<Int32Array>()),
        Arc::new(
            rows.iter()
                .map(|r| Some(r.attempts))
                .collect::<Int32Array>(),
        ),
    ];
    RecordBatch::try_new(pairs::schema(), columns).map_err(|e| table_err(pairs::NAME, e))
}
