//! Small synthetic input tables (`pairs`, `pairs_curated`, `splits`, `subjects`) written
//! through the step runner, for tests and benchmarks that must run before (or without) the
//! dataset steps. Images are drawn shapes whose colour and form follow the caption's words,
//! so a model can learn something from them.

use std::sync::Arc;

use anchor_core::PartStats;
use anchor_core::step::{BoxError, PartSink, RunOptions, Step, StepCtx};
use anchor_core::tables::{self, TableDef, pairs, pairs_curated, splits, subjects};
use arrow_array::builder::{
    Float64Builder, ListBuilder, StringBuilder, StructBuilder, UInt32Builder,
};
use arrow_array::{
    ArrayRef, BinaryArray, BooleanArray, RecordBatch, StringArray, StructArray, new_null_array,
};
use arrow_schema::{DataType, Field, SchemaRef};

use crate::error::{Error, Result};
use crate::rng::Rng;

const PEOPLE: &[&str] = &[
    "Angela Merkel",
    "Joe Biden",
    "Greta Thunberg",
    "Emmanuel Macron",
];
const PLACES: &[&str] = &["Brussels", "Washington", "the harbour", "Paris"];
const COLORS: &[[u8; 3]] = &[[200, 40, 40], [40, 60, 200], [40, 170, 60], [220, 180, 30]];

/// One synthetic row.
#[derive(Debug, Clone)]
pub struct FixtureRow {
    /// Pair id.
    pub id: String,
    /// Caption.
    pub caption: String,
    /// PNG bytes.
    pub png: Vec<u8>,
    /// Split.
    pub split: &'static str,
    /// Subject spans (byte offsets) and weights.
    pub subjects: Vec<(String, u32, u32, f64)>,
}

/// `n` rows, a pure function of `(n, seed)`; about 80% train, 10% validation, 10% test.
pub fn rows(n: usize, seed: u64) -> Result<Vec<FixtureRow>> {
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let mut rng = Rng::new(seed, i as u64);
        let p = rng.below(PEOPLE.len() as u64) as usize;
        let q = rng.below(PLACES.len() as u64) as usize;
        let person = PEOPLE[p];
        let place = PLACES[q];
        let caption = format!("{person} arrives in {place} for talks");
        let start_place = caption.find(place).unwrap_or(0) as u32;
        let subjects = vec![
            (person.to_string(), 0, person.len() as u32, 1.3),
            (
                place.to_string(),
                start_place,
                start_place + place.len() as u32,
                1.1,
            ),
        ];
        let size = 48u32;
        let bg = COLORS[q];
        let fg = COLORS[(p + 1) % COLORS.len()];
        let cx = 12.0 + rng.uniform() * 24.0;
        let cy = 12.0 + rng.uniform() * 24.0;
        let r = 6.0 + rng.uniform() * 8.0;
        let img = image::RgbImage::from_fn(size, size + 16, |x, y| {
            let (dx, dy) = (x as f64 - cx, y as f64 - cy);
            let inside = if p.is_multiple_of(2) {
                dx * dx + dy * dy < r * r
            } else {
                dx.abs() < r && dy.abs() < r
            };
            if inside {
                image::Rgb(fg)
            } else {
                image::Rgb(bg)
            }
        });
        let mut png = Vec::new();
        img.write_to(&mut std::io::Cursor::new(&mut png), image::ImageFormat::Png)
            .map_err(|e| Error::Input {
                what: "fixture image".into(),
                reason: e.to_string(),
            })?;
        let split = match i % 10 {
            8 => "validation",
            9 => "test",
            _ => "train",
        };
        out.push(FixtureRow {
            id: format!("fx{i:05}"),
            caption,
            png,
            split,
            subjects,
        });
    }
    Ok(out)
}

/// A column of `len` default (or null) values of `field`'s type.
fn filler(field: &Field, len: usize) -> Result<ArrayRef> {
    if field.is_nullable() {
        return Ok(new_null_array(field.data_type(), len));
    }
    let arr: ArrayRef = match field.data_type() {
        DataType::Utf8 => Arc::new(StringArray::from(vec!["fixture"; len])),
        DataType::Int32 => Arc::new(arrow_array::Int32Array::from(vec![0; len])),
        DataType::Int64 => Arc::new(arrow_array::Int64Array::from(vec![0; len])),
        DataType::Float64 => Arc::new(arrow_array::Float64Array::from(vec![0.0; len])),
        DataType::Boolean => Arc::new(BooleanArray::from(vec![false; len])),
        DataType::List(item) => {
            let mut b = ListBuilder::new(StringBuilder::new()).with_field(item.clone());
            for _ in 0..len {
                b.append(true);
            }
            Arc::new(b.finish())
        }
        other => {
            return Err(Error::Input {
                what: "fixture".into(),
                reason: format!("no filler for non-null {other} column {}", field.name()),
            });
        }
    };
    Ok(arr)
}

fn batch(schema: SchemaRef, given: Vec<(&str, ArrayRef)>, len: usize) -> Result<RecordBatch> {
    let cols = schema
        .fields()
        .iter()
        .map(|f| match given.iter().find(|(n, _)| *n == f.name()) {
            Some((_, a)) => Ok(a.clone()),
            None => filler(f, len),
        })
        .collect::<Result<Vec<_>>>()?;
    RecordBatch::try_new(schema, cols).map_err(|e| Error::Input {
        what: "fixture batch".into(),
        reason: e.to_string(),
    })
}

/// A step that writes the fixture tables in one part.
pub struct FixtureStep {
    /// Rows.
    pub n: usize,
    /// Seed.
    pub seed: u64,
}

impl Step for FixtureStep {
    fn name(&self) -> &'static str {
        "fixture"
    }
    fn version(&self) -> u32 {
        1
    }
    fn params(&self) -> serde_json::Value {
        serde_json::json!({"n": self.n, "seed": self.seed})
    }
    fn outputs(&self) -> Vec<&'static TableDef> {
        vec![
            &tables::pairs::DEF,
            &tables::pairs_curated::DEF,
            &tables::splits::DEF,
            &tables::subjects::DEF,
        ]
    }
    fn plan(&self, _ctx: &StepCtx) -> std::result::Result<usize, BoxError> {
        Ok(1)
    }
    fn run_part(
        &self,
        _part: usize,
        _ctx: &StepCtx,
        sink: &mut PartSink,
    ) -> std::result::Result<PartStats, BoxError> {
        let rows = rows(self.n, self.seed)?;
        let n = rows.len();
        let ids: ArrayRef = Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r.id)));
        let captions: ArrayRef = Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| &r.caption),
        ));
        let bytes = BinaryArray::from_iter_values(rows.iter().map(|r| r.png.as_slice()));
        let paths: ArrayRef = new_null_array(&DataType::Utf8, n);
        let image: ArrayRef = Arc::new(StructArray::new(
            tables::image_fields(),
            vec![Arc::new(bytes), paths],
            None,
        ));
        let status: ArrayRef = Arc::new(StringArray::from(vec!["success"; n]));
        sink.write(
            pairs::NAME,
            &batch(
                pairs::schema(),
                vec![
                    (pairs::ID, ids.clone()),
                    (pairs::CAPTION, captions.clone()),
                    (pairs::IMAGE, image),
                    (pairs::STATUS, status),
                ],
                n,
            )?,
        )?;
        // Every tenth train row is dropped by curation, to exercise the `kept` filter.
        let kept: ArrayRef = Arc::new(BooleanArray::from(
            (0..n).map(|i| i % 10 != 7).collect::<Vec<_>>(),
        ));
        sink.write(
            pairs_curated::NAME,
            &batch(
                pairs_curated::schema(),
                vec![
                    (pairs_curated::ID, ids.clone()),
                    (pairs_curated::CAPTION, captions.clone()),
                    (pairs_curated::CAPTION_RAW, captions.clone()),
                    (pairs_curated::KEPT, kept),
                ],
                n,
            )?,
        )?;
        let split: ArrayRef = Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.split)));
        sink.write(
            splits::NAME,
            &batch(
                splits::schema(),
                vec![(splits::ID, ids.clone()), (splits::SPLIT, split)],
                n,
            )?,
        )?;
        let subjects_type = subjects::schema()
            .field_with_name(subjects::SUBJECTS)
            .map(|f| f.data_type().clone())
            .map_err(|e| Error::Input {
                what: "subjects schema".into(),
                reason: e.to_string(),
            })?;
        let DataType::List(item) = subjects_type else {
            return Err(Box::new(Error::Input {
                what: "subjects schema".into(),
                reason: "subjects is not a list".into(),
            }));
        };
        let DataType::Struct(fields) = item.data_type().clone() else {
            return Err(Box::new(Error::Input {
                what: "subjects schema".into(),
                reason: "subjects items are not structs".into(),
            }));
        };
        let sb = StructBuilder::new(
            fields.clone(),
            vec![
                Box::new(StringBuilder::new()),
                Box::new(UInt32Builder::new()),
                Box::new(UInt32Builder::new()),
                Box::new(Float64Builder::new()),
                Box::new(StringBuilder::new()),
            ],
        );
        let mut lb = ListBuilder::new(sb).with_field(item.clone());
        for r in &rows {
            let s = lb.values();
            for (text, start, end, w) in &r.subjects {
                let missing = || Error::Input {
                    what: "fixture subjects".into(),
                    reason: "struct builder field has an unexpected type".into(),
                };
                s.field_builder::<StringBuilder>(0)
                    .ok_or_else(missing)?
                    .append_value(text);
                s.field_builder::<UInt32Builder>(1)
                    .ok_or_else(missing)?
                    .append_value(*start);
                s.field_builder::<UInt32Builder>(2)
                    .ok_or_else(missing)?
                    .append_value(*end);
                s.field_builder::<Float64Builder>(3)
                    .ok_or_else(missing)?
                    .append_value(*w);
                s.field_builder::<StringBuilder>(4)
                    .ok_or_else(missing)?
                    .append_value(if *start == 0 { "person" } else { "place" });
                s.append(true);
            }
            lb.append(true);
        }
        let subj: ArrayRef = Arc::new(lb.finish());
        let raw: ArrayRef = Arc::new(StringArray::from(vec!["{}"; n]));
        let backend: ArrayRef = Arc::new(StringArray::from(vec!["heuristic"; n]));
        let model: ArrayRef = Arc::new(StringArray::from(vec!["fixture"; n]));
        sink.write(
            subjects::NAME,
            &batch(
                subjects::schema(),
                vec![
                    (subjects::ID, ids),
                    (subjects::CAPTION, captions),
                    (subjects::SUBJECTS, subj),
                    (subjects::RAW, raw),
                    (subjects::BACKEND, backend),
                    (subjects::MODEL_ID, model),
                ],
                n,
            )?,
        )?;
        Ok(PartStats {
            rows_out: n as u64,
            ..Default::default()
        })
    }
}

/// Writes the fixture tables under `out` (idempotent).
pub fn write_tables(out: &std::path::Path, n: usize, seed: u64) -> Result<()> {
    anchor_core::step::run(&FixtureStep { n, seed }, out, &RunOptions::default())?;
    Ok(())
}
