//! The `articles` and `pairs` rows the scrape step writes, and their record batches: the
//! codecs of [`anchor_core::tables::articles`] and [`anchor_core::tables::pairs`] under the
//! names the rest of the crate uses.

use anchor_core::tables::{articles, pairs};
use arrow_array::RecordBatch;

use crate::error::Result;

/// One `articles` row.
pub type ArticleRow = articles::Row;

/// One `pairs` row.
pub type PairRow = pairs::Row;

/// `articles` rows to a batch of the declared schema.
pub fn articles_batch(rows: &[ArticleRow]) -> Result<RecordBatch> {
    Ok(articles::to_batch(rows)?)
}

/// `pairs` rows to a batch of the declared schema.
pub fn pairs_batch(rows: &[PairRow]) -> Result<RecordBatch> {
    Ok(pairs::to_batch(rows)?)
}

/// `articles` rows back from a committed part (`--retry-failed` keeps the previous rows).
pub fn articles_from_batch(batch: &RecordBatch) -> Result<Vec<ArticleRow>> {
    Ok(articles::from_batch(batch)?)
}

/// `pairs` rows back from a committed part.
pub fn pairs_from_batch(batch: &RecordBatch) -> Result<Vec<PairRow>> {
    Ok(pairs::from_batch(batch)?)
}
