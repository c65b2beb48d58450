//! Table `generations`: images generated for dataset captions under the paper's
//! configurations, one row per (caption, configuration, seed).
//!
//! Written by `sample`, read by `eval`. Sorted by (`configuration`, `id`, `seed`).

use std::sync::{Arc, OnceLock};

use arrow_schema::{DataType, Field, Schema, SchemaRef};

use super::{TableDef, image_type};

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
