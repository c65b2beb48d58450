//! Table `subjects`: one row per caption with the key visual subjects an LLM (or the
//! heuristic baseline) named in it, each an exact span of the caption with a compel weight.
//!
//! Written by `annotate` (library: `anchor-annotate`), read by `safe` (weighted text
//! conditioning) and `eval` (Entity/Non-Entity analysis). Rows are sorted by `id`. Token
//! counts and timings are step stats, not columns: under greedy decoding the table is
//! byte-identical across reruns. A rejected answer stays as a row with an empty `subjects`
//! list and its `error_class`.

use std::sync::{Arc, OnceLock};

use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef};

use super::TableDef;

/// Table name.
pub const NAME: &str = "subjects";

/// The dataset row's id (`pairs.id`).
pub const ID: &str = "id";
/// The caption that was annotated.
pub const CAPTION: &str = "caption";
/// The subjects: `list<struct{text, start, end, weight, kind}>`.
pub const SUBJECTS: &str = "subjects";
/// Subject text, exactly `caption[start..end]`.
pub const SUBJECT_TEXT: &str = "text";
/// Byte offset of the subject's first byte in the caption (UTF-8).
pub const SUBJECT_START: &str = "start";
/// Byte offset one past the subject's last byte.
pub const SUBJECT_END: &str = "end";
/// Compel weight `1.1^k`, `k` in 0..=4.
pub const SUBJECT_WEIGHT: &str = "weight";
/// `person`, `organisation`, `place`, `object`, `event` or `other`.
pub const SUBJECT_KIND: &str = "kind";
/// The model's raw answer text.
pub const RAW: &str = "raw";
/// Backend name: `gguf`, `openai` or `heuristic`.
pub const BACKEND: &str = "backend";
/// Model identity: GGUF sha256, served model name, or heuristic version.
pub const MODEL_ID: &str = "model_id";
/// Prompt version (`few-shot-v1`); null for the heuristic.
pub const PROMPT_VERSION: &str = "prompt_version";
/// Stable class of a rejected answer (`not_a_span`, `invalid_json`, `timeout`, ...).
pub const ERROR_CLASS: &str = "error_class";
/// Human-readable detail of a rejected answer.
pub const ERROR_MESSAGE: &str = "error_message";

/// The fields of one subject struct.
pub fn subject_fields() -> Fields {
    Fields::from(vec![
        Field::new(SUBJECT_TEXT, DataType::Utf8, false),
        Field::new(SUBJECT_START, DataType::UInt32, false),
        Field::new(SUBJECT_END, DataType::UInt32, false),
        Field::new(SUBJECT_WEIGHT, DataType::Float64, false),
        Field::new(SUBJECT_KIND, DataType::Utf8, false),
    ])
}

/// The declared schema.
pub fn schema() -> SchemaRef {
    static SCHEMA: OnceLock<SchemaRef> = OnceLock::new();
    SCHEMA
        .get_or_init(|| {
            let item = Field::new("item", DataType::Struct(subject_fields()), false);
            Arc::new(Schema::new(vec![
                Field::new(ID, DataType::Utf8, false),
                Field::new(CAPTION, DataType::Utf8, false),
                Field::new(SUBJECTS, DataType::List(Arc::new(item)), false),
                Field::new(RAW, DataType::Utf8, false),
                Field::new(BACKEND, DataType::Utf8, false),
                Field::new(MODEL_ID, DataType::Utf8, false),
                Field::new(PROMPT_VERSION, DataType::Utf8, true),
                Field::new(ERROR_CLASS, DataType::Utf8, true),
                Field::new(ERROR_MESSAGE, DataType::Utf8, true),
            ]))
        })
        .clone()
}

/// The table's declaration. Rows are small (text only).
pub const DEF: TableDef = TableDef {
    name: NAME,
    schema,
    row_group_rows: 8192,
};
