//! Table `subjects`: one row per caption with the key visual subjects an LLM (or the
//! heuristic baseline) named in it, each an exact span of the caption with a compel weight.
//!
//! Written by `annotate` (library: `anchor-annotate`), read by `safe` (weighted text
//! conditioning) and `eval` (Entity/Non-Entity analysis). Rows are sorted by `id`. Token
//! counts and timings are step stats, not columns: under greedy decoding the table is
//! byte-identical across reruns. A rejected answer stays as a row with an empty `subjects`
//! list and its `error_class`.

use std::sync::{Arc, OnceLock};

use arrow_array::{
    Array, ArrayRef, Float64Array, ListArray, RecordBatch, StructArray, UInt32Array,
};
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef};

use super::{TableDef, batch, opt_strs, strs};
use crate::columns::{Columns, opt_f64, struct_batch};
use crate::error::{Error, Result};
use crate::store::TableReader;

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

/// The values of [`SUBJECT_KIND`].
pub const KINDS: [&str; 6] = [
    "person",
    "organisation",
    "place",
    "object",
    "event",
    "other",
];

/// One subject of a caption.
#[derive(Debug, Clone, PartialEq)]
pub struct Subject {
    /// Exactly `caption[start..end]`.
    pub text: String,
    /// Byte offset of the first byte.
    pub start: u32,
    /// Byte offset one past the last byte.
    pub end: u32,
    /// Compel weight.
    pub weight: f64,
    /// One of [`KINDS`].
    pub kind: String,
}

/// One row of the table.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// `pairs.id`.
    pub id: String,
    /// The annotated caption.
    pub caption: String,
    /// Subjects in caption order.
    pub subjects: Vec<Subject>,
    /// The model's raw answer.
    pub raw: String,
    /// Backend name.
    pub backend: String,
    /// Model identity.
    pub model_id: String,
    /// Prompt version.
    pub prompt_version: Option<String>,
    /// Class of a rejected answer.
    pub error_class: Option<String>,
    /// Detail of a rejected answer.
    pub error_message: Option<String>,
}

/// The one rule every reader and writer of the table applies to a subject: a non-empty
/// span on character boundaries of `caption` that holds exactly `text`, a finite positive
/// weight and a known kind. A subject breaking it is an error naming the row, never skipped:
/// a span that does not hold its text would weight the wrong tokens.
pub fn check_subject(caption: &str, s: &Subject) -> std::result::Result<(), String> {
    let (start, end) = (s.start as usize, s.end as usize);
    if start >= end {
        return Err(format!("subject {:?}: empty span {start}..{end}", s.text));
    }
    match caption.get(start..end) {
        None => {
            return Err(format!(
                "subject {:?}: span {start}..{end} is not within the {}-byte caption \
                 (or not on character boundaries)",
                s.text,
                caption.len()
            ));
        }
        Some(t) if t != s.text => {
            return Err(format!(
                "subject {:?}: span {start}..{end} holds {t:?}",
                s.text
            ));
        }
        Some(_) => {}
    }
    if !(s.weight.is_finite() && s.weight > 0.0) {
        return Err(format!(
            "subject {:?}: weight {} is not positive",
            s.text, s.weight
        ));
    }
    if !KINDS.contains(&s.kind.as_str()) {
        return Err(format!("subject {:?}: unknown kind {:?}", s.text, s.kind));
    }
    Ok(())
}

fn check_row(r: &Row) -> Result<()> {
    for s in &r.subjects {
        check_subject(&r.caption, s).map_err(|detail| Error::Row {
            table: NAME.to_owned(),
            id: r.id.clone(),
            detail,
        })?;
    }
    Ok(())
}

/// Rows to a batch of the declared schema; a subject breaking [`check_subject`] is an error.
pub fn to_batch(rows: &[Row]) -> Result<RecordBatch> {
    for r in rows {
        check_row(r)?;
    }
    build(rows)
}

/// The batch of `rows`, unchecked (tests build bad files with it).
pub(super) fn build(rows: &[Row]) -> Result<RecordBatch> {
    let fields = subject_fields();
    let all: Vec<&Subject> = rows.iter().flat_map(|r| r.subjects.iter()).collect();
    let values = StructArray::try_new(
        fields.clone(),
        vec![
            strs(all.iter().map(|s| s.text.as_str())),
            Arc::new(UInt32Array::from_iter_values(all.iter().map(|s| s.start))) as ArrayRef,
            Arc::new(UInt32Array::from_iter_values(all.iter().map(|s| s.end))),
            Arc::new(Float64Array::from_iter_values(all.iter().map(|s| s.weight))),
            strs(all.iter().map(|s| s.kind.as_str())),
        ],
        None,
    )
    .map_err(|source| Error::Arrow {
        table: NAME.to_owned(),
        source,
    })?;
    let item = Arc::new(Field::new("item", DataType::Struct(fields), false));
    let offsets = arrow_buffer::OffsetBuffer::from_lengths(rows.iter().map(|r| r.subjects.len()));
    let list = ListArray::try_new(item, offsets, Arc::new(values), None).map_err(|source| {
        Error::Arrow {
            table: NAME.to_owned(),
            source,
        }
    })?;
    batch(
        NAME,
        schema(),
        vec![
            strs(rows.iter().map(|r| r.id.as_str())),
            strs(rows.iter().map(|r| r.caption.as_str())),
            Arc::new(list),
            strs(rows.iter().map(|r| r.raw.as_str())),
            strs(rows.iter().map(|r| r.backend.as_str())),
            strs(rows.iter().map(|r| r.model_id.as_str())),
            opt_strs(rows.iter().map(|r| r.prompt_version.as_deref())),
            opt_strs(rows.iter().map(|r| r.error_class.as_deref())),
            opt_strs(rows.iter().map(|r| r.error_message.as_deref())),
        ],
    )
}

/// Rows of a batch (any string layout). A null in a non-null column, a wrong type, or a
/// subject breaking [`check_subject`] is an error naming the column or the row's id.
pub fn from_batch(b: &RecordBatch) -> Result<Vec<Row>> {
    let c = Columns::new(b, NAME);
    let ids = c.strings(ID)?;
    let caps = c.strings(CAPTION)?;
    let raws = c.strings(RAW)?;
    let backends = c.strings(BACKEND)?;
    let models = c.strings(MODEL_ID)?;
    let prompts = c.strings(PROMPT_VERSION)?;
    let classes = c.strings(ERROR_CLASS)?;
    let messages = c.strings(ERROR_MESSAGE)?;
    let list = c.list(SUBJECTS)?;
    let items = list.values();
    let items = items
        .as_any()
        .downcast_ref::<StructArray>()
        .ok_or_else(|| Error::Column {
            table: NAME.to_owned(),
            column: SUBJECTS.to_owned(),
            detail: format!("expected a list of structs, found {}", list.data_type()),
        })?;
    let item_batch = struct_batch(items, NAME)?;
    let ic = Columns::new(&item_batch, NAME);
    let texts = ic.strings(SUBJECT_TEXT)?;
    let starts = ic.uint32(SUBJECT_START)?;
    let ends = ic.uint32(SUBJECT_END)?;
    let weights = ic.float64(SUBJECT_WEIGHT)?;
    let kinds = ic.strings(SUBJECT_KIND)?;
    let offsets = list.value_offsets();
    let mut rows = Vec::with_capacity(b.num_rows());
    for i in 0..b.num_rows() {
        let req = |s: &crate::columns::Strings<'_>, col: &str| {
            c.required(col, i, s.get(i)).map(str::to_owned)
        };
        let mut subjects = Vec::new();
        if !list.is_null(i) {
            for j in offsets[i] as usize..offsets[i + 1] as usize {
                let field = |col: &str| format!("{SUBJECTS}.{col}");
                if items.is_null(j) {
                    return Err(c.null_at(SUBJECTS, i));
                }
                subjects.push(Subject {
                    text: c
                        .required(&field(SUBJECT_TEXT), i, texts.get(j))?
                        .to_owned(),
                    start: c.required(&field(SUBJECT_START), i, u32_at(starts, j))?,
                    end: c.required(&field(SUBJECT_END), i, u32_at(ends, j))?,
                    weight: c.required(&field(SUBJECT_WEIGHT), i, opt_f64(weights, j))?,
                    kind: c
                        .required(&field(SUBJECT_KIND), i, kinds.get(j))?
                        .to_owned(),
                });
            }
        }
        let row = Row {
            id: req(&ids, ID)?,
            caption: req(&caps, CAPTION)?,
            subjects,
            raw: req(&raws, RAW)?,
            backend: req(&backends, BACKEND)?,
            model_id: req(&models, MODEL_ID)?,
            prompt_version: prompts.get(i).map(str::to_owned),
            error_class: classes.get(i).map(str::to_owned),
            error_message: messages.get(i).map(str::to_owned),
        };
        check_row(&row)?;
        rows.push(row);
    }
    Ok(rows)
}

fn u32_at(a: &UInt32Array, i: usize) -> Option<u32> {
    (!a.is_null(i)).then(|| a.value(i))
}

/// Every row of the table `reader` reads, in part order.
pub fn read(reader: &TableReader) -> Result<Vec<Row>> {
    super::read_rows(reader, None, from_batch)
}
