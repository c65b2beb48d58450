//! Table `train_log`: the deterministic training curve, one row per optimiser step.
//!
//! Written by `train`, read by `eval` and the notebooks. Sorted by (`configuration`, `step`).

use std::sync::{Arc, OnceLock};

use arrow_array::{Float64Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use super::{TableDef, batch, strs};
use crate::columns::{Columns, opt_f64, opt_i64};
use crate::error::Result;
use crate::store::TableReader;

/// Table name.
pub const NAME: &str = "train_log";

/// what was trained: `vae`, `unet` (the demo base), `lora` or `safe`
pub const CONFIGURATION: &str = "configuration";
/// optimiser step, from 1
pub const STEP: &str = "step";
/// epoch the step's batch came from, from 0
pub const EPOCH: &str = "epoch";
/// training loss of the step (mean over accumulated micro-batches)
pub const LOSS: &str = "loss";
/// learning rate used for the step
pub const LR: &str = "lr";
/// global gradient norm before clipping
pub const GRAD_NORM: &str = "grad_norm";

/// The declared schema.
pub fn schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new(CONFIGURATION, DataType::Utf8, false),
                Field::new(STEP, DataType::Int64, false),
                Field::new(EPOCH, DataType::Int64, false),
                Field::new(LOSS, DataType::Float64, false),
                Field::new(LR, DataType::Float64, false),
                Field::new(GRAD_NORM, DataType::Float64, false),
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
    /// What was trained.
    pub configuration: String,
    /// Optimiser step, from 1.
    pub step: i64,
    /// Epoch of the step's batch, from 0.
    pub epoch: i64,
    /// Training loss.
    pub loss: f64,
    /// Learning rate.
    pub lr: f64,
    /// Gradient norm before clipping.
    pub grad_norm: f64,
}

/// Rows to a batch of the declared schema.
pub fn to_batch(rows: &[Row]) -> Result<RecordBatch> {
    batch(
        NAME,
        schema(),
        vec![
            strs(rows.iter().map(|r| r.configuration.as_str())),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.step))),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.epoch))),
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.loss))),
            Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.lr))),
            Arc::new(Float64Array::from_iter_values(
                rows.iter().map(|r| r.grad_norm),
            )),
        ],
    )
}

/// Rows of a batch (any string layout); a null in a non-null column is an error naming it.
pub fn from_batch(b: &RecordBatch) -> Result<Vec<Row>> {
    let c = Columns::new(b, NAME);
    let configuration = c.strings(CONFIGURATION)?;
    let (step, epoch) = (c.int64(STEP)?, c.int64(EPOCH)?);
    let (loss, lr, grad_norm) = (c.float64(LOSS)?, c.float64(LR)?, c.float64(GRAD_NORM)?);
    (0..b.num_rows())
        .map(|i| {
            Ok(Row {
                configuration: c
                    .required(CONFIGURATION, i, configuration.get(i))?
                    .to_owned(),
                step: c.required(STEP, i, opt_i64(step, i))?,
                epoch: c.required(EPOCH, i, opt_i64(epoch, i))?,
                loss: c.required(LOSS, i, opt_f64(loss, i))?,
                lr: c.required(LR, i, opt_f64(lr, i))?,
                grad_norm: c.required(GRAD_NORM, i, opt_f64(grad_norm, i))?,
            })
        })
        .collect()
}

/// Every row of the table `reader` reads, in part order.
pub fn read(reader: &TableReader) -> Result<Vec<Row>> {
    super::read_rows(reader, None, from_batch)
}
