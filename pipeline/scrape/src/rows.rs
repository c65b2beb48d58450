//! Typed rows of the `articles` and `pairs` tables and their record batches.

use std::sync::Arc;

use anchor_core::tables::{articles, image_fields, pairs};
use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Int32Array, Int64Array, ListArray, RecordBatch,
    StringArray, StructArray,
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

/// Typed access to the columns of a batch read back from a committed part
/// (`--retry-failed` reads the previous rows to keep them unchanged).
struct Columns<'a> {
    table: &'static str,
    batch: &'a RecordBatch,
}

impl<'a> Columns<'a> {
    fn column<T: 'static>(&self, name: &str) -> Result<&'a T> {
        self.batch
            .column_by_name(name)
            .and_then(|c| c.as_any().downcast_ref::<T>())
            .ok_or_else(|| table_err(self.table, format!("column {name:?} missing or mistyped")))
    }

    fn strings(&self, name: &str) -> Result<Vec<Option<String>>> {
        let a = self.column::<StringArray>(name)?;
        Ok((0..a.len())
            .map(|i| (!a.is_null(i)).then(|| a.value(i).to_owned()))
            .collect())
    }

    fn required(&self, name: &str) -> Result<Vec<String>> {
        self.strings(name)?
            .into_iter()
            .map(|s| s.ok_or_else(|| table_err(self.table, format!("null in column {name:?}"))))
            .collect()
    }

    fn ints(&self, name: &str) -> Result<Vec<Option<i32>>> {
        let a = self.column::<Int32Array>(name)?;
        Ok((0..a.len())
            .map(|i| (!a.is_null(i)).then(|| a.value(i)))
            .collect())
    }
}

/// `articles` rows back from a batch written by [`articles_batch`].
pub fn articles_from_batch(batch: &RecordBatch) -> Result<Vec<ArticleRow>> {
    let c = Columns {
        table: articles::NAME,
        batch,
    };
    let authors_col = c.column::<ListArray>(articles::AUTHORS)?;
    let mut authors = Vec::with_capacity(batch.num_rows());
    for i in 0..authors_col.len() {
        let list = authors_col.value(i);
        let values = list
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| table_err(articles::NAME, "authors are not strings"))?;
        authors.push(
            (0..values.len())
                .filter(|j| !values.is_null(*j))
                .map(|j| values.value(j).to_owned())
                .collect::<Vec<String>>(),
        );
    }
    let ids = c.required(articles::ID)?;
    let outlets = c.required(articles::OUTLET)?;
    let sources = c.required(articles::SOURCE)?;
    let urls = c.required(articles::URL)?;
    let canonicals = c.required(articles::CANONICAL_URL)?;
    let headlines = c.strings(articles::HEADLINE)?;
    let published = c.strings(articles::PUBLISHED_AT)?;
    let sections = c.strings(articles::SECTION)?;
    let adapters = c.strings(articles::ADAPTER)?;
    let n_images = c.ints(articles::N_IMAGES)?;
    let statuses = c.required(articles::STATUS)?;
    let classes = c.strings(articles::ERROR_CLASS)?;
    let messages = c.strings(articles::ERROR_MESSAGE)?;
    let http = c.ints(articles::HTTP_STATUS)?;
    let mut rows = Vec::with_capacity(ids.len());
    for (i, id) in ids.into_iter().enumerate() {
        // Every column has num_rows entries (checked by arrow when the batch
        // was decoded), so indexing by row is in bounds.
        rows.push(ArticleRow {
            id,
            outlet: outlets[i].clone(),
            source: sources[i].clone(),
            url: urls[i].clone(),
            canonical_url: canonicals[i].clone(),
            headline: headlines[i].clone(),
            published_at: published[i].clone(),
            section: sections[i].clone(),
            authors: authors.get(i).cloned().unwrap_or_default(),
            adapter: adapters[i].clone(),
            n_images: n_images[i].unwrap_or(0),
            status: statuses[i].clone(),
            error_class: classes[i].clone(),
            error_message: messages[i].clone(),
            http_status: http[i],
        });
    }
    Ok(rows)
}

/// `pairs` rows back from a batch written by [`pairs_batch`].
pub fn pairs_from_batch(batch: &RecordBatch) -> Result<Vec<PairRow>> {
    let c = Columns {
        table: pairs::NAME,
        batch,
    };
    let image = c.column::<StructArray>(pairs::IMAGE)?;
    let image_bytes = image
        .column_by_name("bytes")
        .and_then(|b| b.as_any().downcast_ref::<BinaryArray>())
        .ok_or_else(|| table_err(pairs::NAME, "image.bytes missing or mistyped"))?;
    let bytes: Vec<Option<Vec<u8>>> = (0..image.len())
        .map(|i| {
            (!image.is_null(i) && !image_bytes.is_null(i)).then(|| image_bytes.value(i).to_vec())
        })
        .collect();
    let lead = c.column::<BooleanArray>(pairs::IS_LEAD)?;
    let ids = c.required(pairs::ID)?;
    let article_ids = c.required(pairs::ARTICLE_ID)?;
    let outlets = c.required(pairs::OUTLET)?;
    let sources = c.required(pairs::SOURCE)?;
    let article_urls = c.required(pairs::ARTICLE_URL)?;
    let image_urls = c.required(pairs::IMAGE_URL)?;
    let positions = c.ints(pairs::POSITION)?;
    let captions = c.required(pairs::CAPTION)?;
    let credits = c.strings(pairs::CREDIT)?;
    let alts = c.strings(pairs::ALT)?;
    let shas = c.strings(pairs::SHA256)?;
    let widths = c.ints(pairs::WIDTH)?;
    let heights = c.ints(pairs::HEIGHT)?;
    let types = c.strings(pairs::CONTENT_TYPE)?;
    let statuses = c.required(pairs::STATUS)?;
    let classes = c.strings(pairs::ERROR_CLASS)?;
    let messages = c.strings(pairs::ERROR_MESSAGE)?;
    let http = c.ints(pairs::HTTP_STATUS)?;
    let attempts = c.ints(pairs::ATTEMPTS)?;
    let mut rows = Vec::with_capacity(ids.len());
    for (i, id) in ids.into_iter().enumerate() {
        // All columns have num_rows entries, so indexing by row is in bounds.
        rows.push(PairRow {
            id,
            article_id: article_ids[i].clone(),
            outlet: outlets[i].clone(),
            source: sources[i].clone(),
            article_url: article_urls[i].clone(),
            image_url: image_urls[i].clone(),
            position: positions[i].unwrap_or(0),
            is_lead: !lead.is_null(i) && lead.value(i),
            caption: captions[i].clone(),
            credit: credits[i].clone(),
            alt: alts[i].clone(),
            bytes: bytes.get(i).cloned().flatten(),
            sha256: shas[i].clone(),
            width: widths[i],
            height: heights[i],
            content_type: types[i].clone(),
            status: statuses[i].clone(),
            error_class: classes[i].clone(),
            error_message: messages[i].clone(),
            http_status: http[i],
            attempts: attempts[i].unwrap_or(0),
        });
    }
    Ok(rows)
}
