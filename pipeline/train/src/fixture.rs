//! Small synthetic input tables (`pairs`, `pairs_curated`, `splits`, `subjects`) and the
//! published dataset files made from them, written through the step runner, for tests and
//! benchmarks that must run before (or without) the dataset steps. Images are drawn shapes
//! whose colour and form follow the caption's words, so a model can learn something from
//! them. [`PublishStep`] stands in for the `export` step: it publishes the kept pairs' own
//! bytes, as `anchor split --original-images` does.

use std::sync::Arc;

use anchor_core::PartStats;
use anchor_core::step::{BoxError, PartSink, RunOptions, Step, StepCtx, StepId};
use anchor_core::store::PartWriter;
use anchor_core::tables::{self, TableDef, dataset, pairs, pairs_curated, splits, subjects};
use arrow_array::builder::{ListBuilder, StringBuilder};
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

impl StepId for FixtureStep {
    const NAME: &'static str = "fixture";
    const VERSION: u32 = 1;
}

impl Step for FixtureStep {
    fn params(&self) -> serde_json::Result<serde_json::Value> {
        Ok(serde_json::json!({"n": self.n, "seed": self.seed}))
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
        let text: ArrayRef = Arc::new(StringArray::from(vec!["fixture"; n]));
        let zeros: ArrayRef = Arc::new(arrow_array::Float64Array::from(vec![0.0; n]));
        let sizes: ArrayRef = Arc::new(arrow_array::Int64Array::from_iter_values(
            rows.iter().map(|r| r.png.len() as i64),
        ));
        let kept_column: ArrayRef =
            Arc::new(BooleanArray::from((0..n).map(kept).collect::<Vec<_>>()));
        sink.write(
            pairs_curated::NAME,
            &batch(
                pairs_curated::schema(),
                vec![
                    (pairs_curated::ID, ids.clone()),
                    (pairs_curated::CAPTION, captions.clone()),
                    (pairs_curated::CAPTION_RAW, captions.clone()),
                    (pairs_curated::SUBSET, subset_column(n)),
                    (pairs_curated::KEPT, kept_column),
                    // What the export step requires of a kept pair.
                    (pairs_curated::SHA256, text.clone()),
                    (pairs_curated::PHASH, text.clone()),
                    (pairs_curated::DHASH, text.clone()),
                    (pairs_curated::DUP_CLUSTER_ID, ids.clone()),
                    (pairs_curated::FILE_SIZE, sizes),
                    (pairs_curated::ASPECT_RATIO, zeros.clone()),
                    (pairs_curated::BLUR, zeros.clone()),
                    (pairs_curated::ENTROPY, zeros.clone()),
                    (pairs_curated::DARK, zeros.clone()),
                    (pairs_curated::LIGHT, zeros.clone()),
                    (pairs_curated::NSFW, zeros),
                ],
                n,
            )?,
        )?;
        // As in the pipeline, only kept pairs get a split.
        let split_rows: Vec<splits::Row> = rows
            .iter()
            .enumerate()
            .filter(|(i, _)| kept(*i))
            .map(|(_, r)| splits::Row {
                id: r.id.clone(),
                split: r.split.into(),
                subset: SUBSET.into(),
                outlet: "fixture".into(),
                group_key: r.id.clone(),
                previous_split: None,
            })
            .collect();
        sink.write(splits::NAME, &splits::to_batch(&split_rows)?)?;
        let subject_rows: Vec<subjects::Row> = rows
            .iter()
            .map(|r| subjects::Row {
                id: r.id.clone(),
                caption: r.caption.clone(),
                subjects: r
                    .subjects
                    .iter()
                    .map(|(text, start, end, weight)| subjects::Subject {
                        text: text.clone(),
                        start: *start,
                        end: *end,
                        weight: *weight,
                        kind: if *start == 0 { "person" } else { "place" }.into(),
                    })
                    .collect(),
                raw: "{}".into(),
                backend: "heuristic".into(),
                model_id: "fixture".into(),
                prompt_version: None,
                error_class: None,
                error_message: None,
            })
            .collect();
        sink.write(subjects::NAME, &subjects::to_batch(&subject_rows)?)?;
        Ok(PartStats {
            rows_out: n as u64,
            ..Default::default()
        })
    }
}

/// Every fixture caption names a person.
const SUBSET: &str = "entity";

fn subset_column(n: usize) -> ArrayRef {
    Arc::new(StringArray::from(vec![SUBSET; n]))
}

/// Whether fixture row `i` survives curation (every tenth train row is dropped, to
/// exercise the `kept` filter).
fn kept(i: usize) -> bool {
    i % 10 != 7
}

/// The stand-in for the `export` step (and named so): publishes the kept fixture rows,
/// with their original bytes, to `dataset/entity/<split>-00000-of-00001.parquet`.
pub struct PublishStep {
    /// Rows.
    pub n: usize,
    /// Seed.
    pub seed: u64,
}

impl StepId for PublishStep {
    const NAME: &'static str = anchor_core::published::EXPORT_STEP;
    const VERSION: u32 = 1;
}

impl Step for PublishStep {
    fn params(&self) -> serde_json::Result<serde_json::Value> {
        Ok(serde_json::json!({"fixture": {"n": self.n, "seed": self.seed}}))
    }
    fn inputs(&self) -> Vec<&'static str> {
        vec![pairs::NAME, pairs_curated::NAME, splits::NAME]
    }
    fn outputs(&self) -> Vec<&'static TableDef> {
        Vec::new()
    }
    fn plan(&self, _ctx: &StepCtx) -> std::result::Result<usize, BoxError> {
        Ok(1)
    }
    fn run_part(
        &self,
        _part: usize,
        ctx: &StepCtx,
        _sink: &mut PartSink,
    ) -> std::result::Result<PartStats, BoxError> {
        let rows = rows(self.n, self.seed)?;
        let mut by_split: std::collections::BTreeMap<&str, Vec<&FixtureRow>> =
            std::collections::BTreeMap::new();
        for (i, r) in rows.iter().enumerate() {
            if kept(i) {
                by_split.entry(r.split).or_default().push(r);
            }
        }
        let mut stats = PartStats::default();
        for (split, rows) in by_split {
            let n = rows.len();
            let bytes: ArrayRef = Arc::new(BinaryArray::from_iter_values(
                rows.iter().map(|r| r.png.as_slice()),
            ));
            let names: ArrayRef = Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| format!("{}.png", r.id)),
            ));
            let image: ArrayRef = Arc::new(StructArray::new(
                tables::image_fields(),
                vec![bytes, names],
                None,
            ));
            let ids: ArrayRef = Arc::new(StringArray::from_iter_values(rows.iter().map(|r| &r.id)));
            let captions: ArrayRef = Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| &r.caption),
            ));
            let split_column: ArrayRef = Arc::new(StringArray::from(vec![split; n]));
            let b = batch(
                dataset::schema(),
                vec![
                    (dataset::ID, ids),
                    (dataset::IMAGE, image),
                    (dataset::CAPTION, captions),
                    (dataset::SUBSET, subset_column(n)),
                    (dataset::SPLIT, split_column),
                ],
                n,
            )?;
            let path = anchor_core::published::dataset_dir(ctx.out())
                .join(SUBSET)
                .join(format!("{split}-00000-of-00001.parquet"));
            let mut w = PartWriter::create_at(
                path,
                &dataset::DEF,
                ctx.fingerprint(),
                Some(0),
                dataset::schema(),
            )?;
            w.write(&b)?;
            w.commit()?;
            stats.rows_out += n as u64;
        }
        Ok(stats)
    }
}

/// Writes the fixture tables and their published dataset under `out` (idempotent).
pub fn write_tables(out: &std::path::Path, n: usize, seed: u64) -> Result<()> {
    anchor_core::step::run(&FixtureStep { n, seed }, out, &RunOptions::default())?;
    anchor_core::step::run(&PublishStep { n, seed }, out, &RunOptions::default())?;
    Ok(())
}
