//! Table `train_log`: the deterministic training curve, one row per optimiser step.
//!
//! Written by `train`, read by `eval` and the notebooks. Sorted by (`configuration`, `step`).

use std::sync::{Arc, OnceLock};

use arrow_schema::{DataType, Field, Schema, SchemaRef};

use super::TableDef;

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
