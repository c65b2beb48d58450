//! Table `generations`: images generated for dataset captions under the paper's
//! configurations, one row per (caption, configuration, seed).
//!
//! Written by `sample`, read by `eval`. Sorted by (`configuration`, `id`, `seed`).

use std::sync::{Arc, OnceLock};

use arrow_array::{BooleanArray, Float64Array, Int32Array, Int64Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use super::{TableDef, batch, image_array, image_type, strs};
use crate::columns::{Columns, opt_bool, opt_f64, opt_i32, opt_i64};
use crate::error::Result;

/// Table name.
pub const NAME: &str = "generations";

/// the caption's dataset id (`pairs.id`)
pub const ID: &str = "id";
/// `base`, `weighting`, `lora`, `lora+weighting`, `safe` or `prefix`
pub const CONFIGURATION: &str = "configuration";
/// noise seed
pub const SEED: &str = "seed";
/// denoising steps
pub const STEPS: &str = "steps";
/// classifier-free guidance scale
pub const GUIDANCE: &str = "guidance";
/// sampler: `ddim` or `euler`
pub const SCHEDULER: &str = "scheduler";
/// the text given to the text encoder (the caption, or the `prefix` form)
pub const PROMPT: &str = "prompt";
/// the caption's split
pub const SPLIT: &str = "split";
/// `entity` or `non_entity`
pub const SUBSET: &str = "subset";
/// outlet of the caption
pub const OUTLET: &str = "outlet";
/// topic of the caption's article (`pairs_curated.topic`)
pub const TOPIC: &str = "topic";
/// identity of the weights used: base model digest, plus the LoRA file's sha256 when one is applied
pub const MODEL_ID: &str = "model_id";
/// whether the prompt exceeded 77 CLIP tokens and was truncated
pub const TRUNCATED: &str = "truncated";
/// image width
pub const WIDTH: &str = "width";
/// image height
pub const HEIGHT: &str = "height";
/// Hugging Face `Image` struct: PNG bytes and `<configuration>/<id>-<seed>.png`
pub const IMAGE: &str = "image";

/// The declared schema.
pub fn schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            Arc::new(Schema::new(vec![
                Field::new(ID, DataType::Utf8, false),
                Field::new(CONFIGURATION, DataType::Utf8, false),
                Field::new(SEED, DataType::Int64, false),
                Field::new(STEPS, DataType::Int32, false),
                Field::new(GUIDANCE, DataType::Float64, false),
                Field::new(SCHEDULER, DataType::Utf8, false),
                Field::new(PROMPT, DataType::Utf8, false),
                Field::new(SPLIT, DataType::Utf8, false),
                Field::new(SUBSET, DataType::Utf8, false),
                Field::new(OUTLET, DataType::Utf8, false),
                Field::new(TOPIC, DataType::Utf8, false),
                Field::new(MODEL_ID, DataType::Utf8, false),
                Field::new(TRUNCATED, DataType::Boolean, false),
                Field::new(WIDTH, DataType::Int32, false),
                Field::new(HEIGHT, DataType::Int32, false),
                Field::new(IMAGE, image_type(), false),
            ]))
        })
        .clone()
}

/// The table's declaration.
pub const DEF: TableDef = TableDef {
    name: NAME,
    schema,
    row_group_rows: 128,
};

/// One row of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The caption's dataset id.
    pub id: String,
    /// The configuration.
    pub configuration: String,
    /// Noise seed.
    pub seed: i64,
    /// Denoising steps.
    pub steps: i32,
    /// Guidance scale.
    pub guidance: f64,
    /// Sampler.
    pub scheduler: String,
    /// The text given to the text encoder.
    pub prompt: String,
    /// The caption's split.
    pub split: String,
    /// `entity` or `non_entity`.
    pub subset: String,
    /// Outlet.
    pub outlet: String,
    /// Topic of the caption's article.
    pub topic: String,
    /// Identity of the weights.
    pub model_id: String,
    /// Whether the prompt was truncated.
    pub truncated: bool,
    /// Image width.
    pub width: i32,
    /// Image height.
    pub height: i32,
    /// PNG bytes.
    pub png: Vec<u8>,
    /// `<configuration>/<id>-<seed>.png`.
    pub path: String,
}

/// Rows to a batch of the declared schema.
pub fn to_batch(rows: &[Row]) -> Result<RecordBatch> {
    batch(
        NAME,
        schema(),
        vec![
            strs(rows.iter().map(|r| r.id.as_str())),
            strs(rows.iter().map(|r| r.configuration.as_str())),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.seed))),
            Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.steps))),
            Arc::new(Float64Array::from_iter_values(
                rows.iter().map(|r| r.guidance),
            )),
            strs(rows.iter().map(|r| r.scheduler.as_str())),
            strs(rows.iter().map(|r| r.prompt.as_str())),
            strs(rows.iter().map(|r| r.split.as_str())),
            strs(rows.iter().map(|r| r.subset.as_str())),
            strs(rows.iter().map(|r| r.outlet.as_str())),
            strs(rows.iter().map(|r| r.topic.as_str())),
            strs(rows.iter().map(|r| r.model_id.as_str())),
            Arc::new(
                rows.iter()
                    .map(|r| Some(r.truncated))
                    .collect::<BooleanArray>(),
            ),
            Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.width))),
            Arc::new(Int32Array::from_iter_values(rows.iter().map(|r| r.height))),
            image_array(
                NAME,
                rows.iter()
                    .map(|r| (Some(r.png.as_slice()), Some(r.path.as_str()))),
            )?,
        ],
    )
}

/// Rows of a batch (any string and binary layout); a null in a non-null column is an error
/// naming it. This copies the images: readers that stream many images use
/// [`crate::columns::Columns::image`] on the batch instead.
pub fn from_batch(b: &RecordBatch) -> Result<Vec<Row>> {
    let c = Columns::new(b, NAME);
    let (id, configuration, scheduler, prompt) = (
        c.strings(ID)?,
        c.strings(CONFIGURATION)?,
        c.strings(SCHEDULER)?,
        c.strings(PROMPT)?,
    );
    let (split, subset, outlet, topic, model_id) = (
        c.strings(SPLIT)?,
        c.strings(SUBSET)?,
        c.strings(OUTLET)?,
        c.strings(TOPIC)?,
        c.strings(MODEL_ID)?,
    );
    let (seed, steps, guidance, truncated) = (
        c.int64(SEED)?,
        c.int32(STEPS)?,
        c.float64(GUIDANCE)?,
        c.boolean(TRUNCATED)?,
    );
    let (width, height, image) = (c.int32(WIDTH)?, c.int32(HEIGHT)?, c.image(IMAGE)?);
    (0..b.num_rows())
        .map(|i| {
            let s = |col: &str, v: &crate::columns::Strings<'_>| {
                c.required(col, i, v.get(i)).map(str::to_owned)
            };
            Ok(Row {
                id: s(ID, &id)?,
                configuration: s(CONFIGURATION, &configuration)?,
                seed: c.required(SEED, i, opt_i64(seed, i))?,
                steps: c.required(STEPS, i, opt_i32(steps, i))?,
                guidance: c.required(GUIDANCE, i, opt_f64(guidance, i))?,
                scheduler: s(SCHEDULER, &scheduler)?,
                prompt: s(PROMPT, &prompt)?,
                split: s(SPLIT, &split)?,
                subset: s(SUBSET, &subset)?,
                outlet: s(OUTLET, &outlet)?,
                topic: s(TOPIC, &topic)?,
                model_id: s(MODEL_ID, &model_id)?,
                truncated: c.required(TRUNCATED, i, opt_bool(truncated, i))?,
                width: c.required(WIDTH, i, opt_i32(width, i))?,
                height: c.required(HEIGHT, i, opt_i32(height, i))?,
                png: c.required(IMAGE, i, image.bytes(i))?.to_vec(),
                path: c.required(IMAGE, i, image.path(i))?.to_owned(),
            })
        })
        .collect()
}
