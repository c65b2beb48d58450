//! Table `metrics`: evaluation results, one row per (run, base, configuration, metric,
//! subset, outlet, topic).
//!
//! Written by `eval`. Sorted by (`run`, `base`, `configuration`, `metric`, `subset`,
//! `outlet`, `topic`).

use std::sync::{Arc, OnceLock};

use arrow_array::{Float64Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use super::{TableDef, batch, strs};
use crate::columns::{Columns, opt_f64, opt_i64};
use crate::error::Result;
use crate::store::TableReader;

/// Table name.
pub const NAME: &str = "metrics";

/// the label of the evaluation run (`anchor eval --run`), so runs and ablations share a table
pub const RUN: &str = "run";
/// the base model the configuration was sampled from: its digest, the part of `generations.model_id` before any `+`
pub const BASE: &str = "base";
/// `base`, `weighting`, `lora`, `lora+weighting`, `safe` or `prefix`
pub const CONFIGURATION: &str = "configuration";
/// `fid`, `fid_clip`, `kid`, `clip_score`, `subject_similarity`, `subject_hit_rate`, ...
pub const METRIC: &str = "metric";
/// `all`, `entity` or `non_entity`
pub const SUBSET: &str = "subset";
/// `all` or an outlet name
pub const OUTLET: &str = "outlet";
/// `all` or a topic (`pairs_curated.topic`)
pub const TOPIC: &str = "topic";
/// the metric's value
pub const VALUE: &str = "value";
/// standard deviation where the metric has one (KID over subsets, CLIP score over images)
pub const STD: &str = "std";
/// generated images scored
pub const N_GENERATED: &str = "n_generated";
/// real reference images (0 for reference-free metrics)
pub const N_REFERENCE: &str = "n_reference";

/// The declared schema.
pub fn schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new(RUN, DataType::Utf8, false),
                Field::new(BASE, DataType::Utf8, false),
                Field::new(CONFIGURATION, DataType::Utf8, false),
                Field::new(METRIC, DataType::Utf8, false),
                Field::new(SUBSET, DataType::Utf8, false),
                Field::new(OUTLET, DataType::Utf8, false),
                Field::new(TOPIC, DataType::Utf8, false),
                Field::new(VALUE, DataType::Float64, false),
                Field::new(STD, DataType::Float64, true),
                Field::new(N_GENERATED, DataType::Int64, false),
                Field::new(N_REFERENCE, DataType::Int64, false),
            ]))
        })
        .clone()
}

/// The table's declaration.
pub const DEF: TableDef = TableDef {
    name: NAME,
    schema,
    row_group_rows: 8192,
};

/// One row of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The run's label.
    pub run: String,
    /// The base model's digest.
    pub base: String,
    /// `base`, `weighting`, `lora`, `lora+weighting`, `safe` or `prefix`.
    pub configuration: String,
    /// `fid`, `kid`, ...
    pub metric: String,
    /// `all`, `entity` or `non_entity`.
    pub subset: String,
    /// `all` or an outlet.
    pub outlet: String,
    /// `all` or a topic.
    pub topic: String,
    /// The value.
    pub value: f64,
    /// Its standard deviation, where it has one.
    pub std: Option<f64>,
    /// Generated images scored.
    pub n_generated: i64,
    /// Real reference images.
    pub n_reference: i64,
}

/// The value of `subset`, `outlet` and `topic` meaning "every".
pub const ALL: &str = "all";

impl Row {
    /// Whether the row covers every outlet and topic (a whole subset, or with `subset`
    /// `all` the whole configuration): the rows of the overall table, which the per-outlet
    /// and per-topic rows must not be mixed into.
    pub fn is_overall(&self) -> bool {
        self.outlet == ALL && self.topic == ALL
    }
}

/// Rows to a batch of the declared schema (in the given order).
pub fn to_batch(rows: &[Row]) -> Result<RecordBatch> {
    batch(
        NAME,
        schema(),
        vec![
            strs(rows.iter().map(|r| r.run.as_str())),
            strs(rows.iter().map(|r| r.base.as_str())),
            strs(rows.iter().map(|r| r.configuration.as_str())),
            strs(rows.iter().map(|r| r.metric.as_str())),
            strs(rows.iter().map(|r| r.subset.as_str())),
            strs(rows.iter().map(|r| r.outlet.as_str())),
            strs(rows.iter().map(|r| r.topic.as_str())),
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.value))),
            Arc::new(rows.iter().map(|r| r.std).collect::<Float64Array>()),
            Arc::new(Int64Array::from_iter_values(
                rows.iter().map(|r| r.n_generated),
            )),
            Arc::new(Int64Array::from_iter_values(
                rows.iter().map(|r| r.n_reference),
            )),
        ],
    )
}

/// Rows of a batch (any string layout); a null in a non-null column is an error naming it.
pub fn from_batch(b: &RecordBatch) -> Result<Vec<Row>> {
    let c = Columns::new(b, NAME);
    let (run, base) = (c.strings(RUN)?, c.strings(BASE)?);
    let (configuration, metric, subset, outlet, topic) = (
        c.strings(CONFIGURATION)?,
        c.strings(METRIC)?,
        c.strings(SUBSET)?,
        c.strings(OUTLET)?,
        c.strings(TOPIC)?,
    );
    let (value, std) = (c.float64(VALUE)?, c.float64(STD)?);
    let (n_generated, n_reference) = (c.int64(N_GENERATED)?, c.int64(N_REFERENCE)?);
    (0..b.num_rows())
        .map(|i| {
            Ok(Row {
                run: c.required(RUN, i, run.get(i))?.to_owned(),
                base: c.required(BASE, i, base.get(i))?.to_owned(),
                configuration: c
                    .required(CONFIGURATION, i, configuration.get(i))?
                    .to_owned(),
                metric: c.required(METRIC, i, metric.get(i))?.to_owned(),
                subset: c.required(SUBSET, i, subset.get(i))?.to_owned(),
                outlet: c.required(OUTLET, i, outlet.get(i))?.to_owned(),
                topic: c.required(TOPIC, i, topic.get(i))?.to_owned(),
                value: c.required(VALUE, i, opt_f64(value, i))?,
                std: opt_f64(std, i),
                n_generated: c.required(N_GENERATED, i, opt_i64(n_generated, i))?,
                n_reference: c.required(N_REFERENCE, i, opt_i64(n_reference, i))?,
            })
        })
        .collect()
}

/// Every row of the table `reader` reads, in part order.
pub fn read(reader: &TableReader) -> Result<Vec<Row>> {
    super::read_rows(reader, None, from_batch)
}
