//! Hugging Face `datasets` features metadata for a Parquet schema.
//!
//! `datasets` reads the `huggingface` key of the Arrow schema metadata
//! (`{"info": {"features": {...}}}`) to restore feature types that Arrow cannot express; without
//! it, an `image` column would load as a plain struct of bytes and path instead of decoding to
//! a PIL image.

use std::collections::HashMap;
use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef};
use serde_json::{Value, json};

/// The metadata key `datasets` reads.
pub const METADATA_KEY: &str = "huggingface";

/// The `datasets` feature of one field; `image_columns` are declared as `Image`.
pub fn feature(field: &Field, image_columns: &[&str]) -> Option<Value> {
    if image_columns.contains(&field.name().as_str()) {
        return Some(json!({"_type": "Image"}));
    }
    value_feature(field.data_type())
}

fn value_feature(dt: &DataType) -> Option<Value> {
    let dtype = match dt {
        DataType::Utf8 => "string",
        DataType::LargeUtf8 => "large_string",
        DataType::Boolean => "bool",
        DataType::Int32 => "int32",
        DataType::Int64 => "int64",
        DataType::UInt32 => "uint32",
        DataType::Float32 => "float32",
        DataType::Float64 => "float64",
        DataType::Binary => "binary",
        DataType::List(item) => {
            return Some(json!({"feature": value_feature(item.data_type())?, "_type": "List"}));
        }
        DataType::Struct(fields) => {
            let mut out = serde_json::Map::new();
            for f in fields {
                out.insert(f.name().clone(), value_feature(f.data_type())?);
            }
            return Some(Value::Object(out));
        }
        _ => return None,
    };
    Some(json!({"dtype": dtype, "_type": "Value"}))
}

/// `schema` with every field nullable and the `huggingface` features metadata added (every
/// field must map to a feature; the error names the first one that does not).
pub fn with_features(schema: &Schema, image_columns: &[&str]) -> Result<SchemaRef, String> {
    let mut features = serde_json::Map::new();
    for field in schema.fields() {
        let f = feature(field, image_columns)
            .ok_or_else(|| format!("column {} has no datasets feature", field.name()))?;
        features.insert(field.name().clone(), f);
    }
    let info = json!({"info": {"features": Value::Object(features)}});
    let mut metadata: HashMap<String, String> = schema.metadata().clone().into();
    metadata.insert(METADATA_KEY.to_owned(), info.to_string());
    // `datasets` takes a feature from the metadata only when its Arrow field equals the file's,
    // nullability included, and its features are always nullable.
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| f.as_ref().clone().with_nullable(true))
        .collect();
    Ok(Arc::new(Schema::new_with_metadata(fields, metadata)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_list_and_values_map_to_datasets_features() {
        let schema = anchor_core::tables::dataset::schema();
        let with = with_features(&schema, &["image"]).expect("every column maps");
        let meta: Value = serde_json::from_str(&with.metadata()[METADATA_KEY]).expect("valid JSON");
        let f = &meta["info"]["features"];
        assert_eq!(f["image"], json!({"_type": "Image"}));
        assert_eq!(f["id"], json!({"dtype": "string", "_type": "Value"}));
        assert_eq!(
            f["other_captions"],
            json!({"feature": {"dtype": "string", "_type": "Value"}, "_type": "List"})
        );
        assert_eq!(f["nsfw"]["dtype"], "float64");
        assert_eq!(f.as_object().map(|o| o.len()), Some(schema.fields().len()));
    }

    #[test]
    fn unsupported_types_are_named() {
        let schema = Schema::new(vec![Field::new("t", DataType::Date32, false)]);
        let err = with_features(&schema, &[]).expect_err("Date32 is not mapped");
        assert!(err.contains("column t"), "{err}");
    }
}
