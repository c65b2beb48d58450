//! The training set: the `train` split's kept pairs with their cleaned captions, images and
//! (for `safe`) subjects, and the image preprocessing (resize, center crop, flip).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anchor_core::store::TableReader;
use anchor_core::tables::{pairs, pairs_curated, splits, subjects};
use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::DataType;

use crate::error::{Error, Result};

/// A subject mention: UTF-8 byte range of the caption and the annotator's weight.
#[derive(Debug, Clone, PartialEq)]
pub struct Subject {
    /// Byte range in the caption.
    pub start: usize,
    /// End of the byte range.
    pub end: usize,
    /// The annotator's compel weight.
    pub weight: f32,
}

/// One training example.
#[derive(Debug, Clone)]
pub struct Example {
    /// Pair id.
    pub id: String,
    /// Cleaned caption.
    pub caption: String,
    /// Encoded image bytes.
    pub image: Vec<u8>,
    /// Subjects of the caption (empty when not annotated).
    pub subjects: Vec<Subject>,
}

fn column<'a>(batch: &'a RecordBatch, table: &str, name: &str) -> Result<&'a ArrayRef> {
    batch.column_by_name(name).ok_or_else(|| Error::Input {
        what: format!("table {table}"),
        reason: format!("column {name} is missing"),
    })
}

/// Strings of a Utf8, LargeUtf8 or Utf8View column (Polars writes views).
fn strings(batch: &RecordBatch, table: &str, name: &str) -> Result<Vec<Option<String>>> {
    let col = column(batch, table, name)?;
    let out = match col.data_type() {
        DataType::Utf8 => col
            .as_string::<i32>()
            .iter()
            .map(|s| s.map(str::to_owned))
            .collect(),
        DataType::LargeUtf8 => col
            .as_string::<i64>()
            .iter()
            .map(|s| s.map(str::to_owned))
            .collect(),
        DataType::Utf8View => col
            .as_string_view()
            .iter()
            .map(|s| s.map(str::to_owned))
            .collect(),
        other => {
            return Err(Error::Input {
                what: format!("table {table}"),
                reason: format!("column {name} is {other}, expected a string"),
            });
        }
    };
    Ok(out)
}

fn read_all(reader: &TableReader, cols: &[&str]) -> Result<Vec<RecordBatch>> {
    reader
        .read_all(Some(cols), 1024)
        .collect::<anchor_core::Result<Vec<_>>>()
        .map_err(Error::from)
}

/// Ids of the `train` split.
pub fn train_ids(splits_table: &TableReader) -> Result<BTreeSet<String>> {
    let mut ids = BTreeSet::new();
    for b in read_all(splits_table, &[splits::ID, splits::SPLIT])? {
        let id = strings(&b, splits::NAME, splits::ID)?;
        let split = strings(&b, splits::NAME, splits::SPLIT)?;
        for (id, split) in id.into_iter().zip(split) {
            if let (Some(id), Some("train")) = (id, split.as_deref()) {
                ids.insert(id);
            }
        }
    }
    Ok(ids)
}

/// Cleaned captions of the kept pairs among `ids`.
pub fn kept_captions(
    curated: &TableReader,
    ids: &BTreeSet<String>,
) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for b in read_all(
        curated,
        &[
            pairs_curated::ID,
            pairs_curated::CAPTION,
            pairs_curated::KEPT,
        ],
    )? {
        let id = strings(&b, pairs_curated::NAME, pairs_curated::ID)?;
        let caption = strings(&b, pairs_curated::NAME, pairs_curated::CAPTION)?;
        let kept = column(&b, pairs_curated::NAME, pairs_curated::KEPT)?
            .as_boolean_opt()
            .ok_or_else(|| Error::Input {
                what: format!("table {}", pairs_curated::NAME),
                reason: "column kept is not boolean".into(),
            })?;
        for (i, (id, caption)) in id.into_iter().zip(caption).enumerate() {
            if let (Some(id), Some(caption)) = (id, caption)
                && kept.is_valid(i)
                && kept.value(i)
                && ids.contains(&id)
            {
                out.insert(id, caption);
            }
        }
    }
    Ok(out)
}

/// Image bytes of the pairs among `ids` (rows without bytes are skipped).
pub fn images(
    pairs_table: &TableReader,
    ids: &BTreeSet<String>,
) -> Result<HashMap<String, Vec<u8>>> {
    let mut out = HashMap::new();
    for b in read_all(pairs_table, &[pairs::ID, pairs::IMAGE])? {
        let id = strings(&b, pairs::NAME, pairs::ID)?;
        let image = column(&b, pairs::NAME, pairs::IMAGE)?
            .as_struct_opt()
            .ok_or_else(|| Error::Input {
                what: format!("table {}", pairs::NAME),
                reason: "column image is not a struct<bytes, path>".into(),
            })?;
        let bytes = image.column_by_name("bytes").ok_or_else(|| Error::Input {
            what: format!("table {}", pairs::NAME),
            reason: "image struct has no bytes field".into(),
        })?;
        let get = |i: usize| -> Option<Vec<u8>> {
            if image.is_null(i) || bytes.is_null(i) {
                return None;
            }
            match bytes.data_type() {
                DataType::Binary => Some(bytes.as_binary::<i32>().value(i).to_vec()),
                DataType::LargeBinary => Some(bytes.as_binary::<i64>().value(i).to_vec()),
                DataType::BinaryView => Some(bytes.as_binary_view().value(i).to_vec()),
                _ => None,
            }
        };
        for (i, id) in id.into_iter().enumerate() {
            if let Some(id) = id
                && ids.contains(&id)
                && let Some(b) = get(i)
            {
                out.insert(id, b);
            }
        }
    }
    Ok(out)
}

/// Subjects per id: the caption they were annotated on and their spans.
pub fn subjects_by_id(
    table: &TableReader,
    ids: &BTreeSet<String>,
) -> Result<HashMap<String, (String, Vec<Subject>)>> {
    let mut out = HashMap::new();
    for b in read_all(
        table,
        &[subjects::ID, subjects::CAPTION, subjects::SUBJECTS],
    )? {
        let id = strings(&b, subjects::NAME, subjects::ID)?;
        let caption = strings(&b, subjects::NAME, subjects::CAPTION)?;
        let list = column(&b, subjects::NAME, subjects::SUBJECTS)?
            .as_list_opt::<i32>()
            .ok_or_else(|| Error::Input {
                what: format!("table {}", subjects::NAME),
                reason: "column subjects is not a list".into(),
            })?;
        for (i, (id, caption)) in id.into_iter().zip(caption).enumerate() {
            let (Some(id), Some(caption)) = (id, caption) else {
                continue;
            };
            if !ids.contains(&id) || list.is_null(i) {
                continue;
            }
            let items = list.value(i);
            let items = items.as_struct_opt().ok_or_else(|| Error::Input {
                what: format!("table {}", subjects::NAME),
                reason: "subjects items are not structs".into(),
            })?;
            let field = |name: &str| {
                items.column_by_name(name).ok_or_else(|| Error::Input {
                    what: format!("table {}", subjects::NAME),
                    reason: format!("subject struct has no {name}"),
                })
            };
            let starts = field(subjects::SUBJECT_START)?
                .as_primitive_opt::<arrow_array::types::UInt32Type>();
            let ends =
                field(subjects::SUBJECT_END)?.as_primitive_opt::<arrow_array::types::UInt32Type>();
            let weights = field(subjects::SUBJECT_WEIGHT)?
                .as_primitive_opt::<arrow_array::types::Float64Type>();
            let (Some(starts), Some(ends), Some(weights)) = (starts, ends, weights) else {
                return Err(Error::Input {
                    what: format!("table {}", subjects::NAME),
                    reason: "subject start/end/weight have unexpected types".into(),
                });
            };
            let mut spans = Vec::with_capacity(items.len());
            for j in 0..items.len() {
                let (s, e) = (starts.value(j) as usize, ends.value(j) as usize);
                if s >= e || e > caption.len() {
                    return Err(Error::Input {
                        what: format!("subjects of {id}"),
                        reason: format!("span {s}..{e} outside a {}-byte caption", caption.len()),
                    });
                }
                spans.push(Subject {
                    start: s,
                    end: e,
                    weight: weights.value(j) as f32,
                });
            }
            out.insert(id, (caption, spans));
        }
    }
    Ok(out)
}

/// Joins the tables into examples sorted by id. With `subjects`, an annotated caption
/// replaces the curated one (the spans refer to it). Drops are counted by reason.
pub fn examples(
    splits_table: &TableReader,
    curated: &TableReader,
    pairs_table: &TableReader,
    subjects_table: Option<&TableReader>,
    dropped: &mut BTreeMap<String, u64>,
) -> Result<Vec<Example>> {
    let ids = train_ids(splits_table)?;
    let captions = kept_captions(curated, &ids)?;
    let kept_ids: BTreeSet<String> = captions.keys().cloned().collect();
    *dropped.entry("not_kept".into()).or_default() += (ids.len() - kept_ids.len()) as u64;
    let mut imgs = images(pairs_table, &kept_ids)?;
    let mut subs = match subjects_table {
        Some(t) => subjects_by_id(t, &kept_ids)?,
        None => HashMap::new(),
    };
    let mut out = Vec::with_capacity(captions.len());
    for (id, caption) in captions {
        let Some(image) = imgs.remove(&id) else {
            *dropped.entry("no_image".into()).or_default() += 1;
            continue;
        };
        let (caption, subjects) = match subs.remove(&id) {
            Some((c, s)) => (c, s),
            None => (caption, Vec::new()),
        };
        out.push(Example {
            id,
            caption,
            image,
            subjects,
        });
    }
    Ok(out)
}

/// Decodes `bytes`, resizes the shorter side to `res` (bilinear, as diffusers'
/// `transforms.Resize`) and center-crops to `res`×`res`. Returns CHW floats in [-1, 1] for
/// the image and its horizontal mirror.
pub fn preprocess(id: &str, bytes: &[u8], res: usize) -> Result<(Vec<f32>, Vec<f32>)> {
    let bad = |reason: String| Error::Input {
        what: format!("image of {id}"),
        reason,
    };
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| bad(e.to_string()))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(16_384);
    limits.max_image_height = Some(16_384);
    limits.max_alloc = Some(512 << 20);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| bad(e.to_string()))?.to_rgb8();
    let (w, h) = img.dimensions();
    if w == 0 || h == 0 {
        return Err(bad("empty image".into()));
    }
    let r = res as u32;
    let scale = r as f64 / w.min(h) as f64;
    let (nw, nh) = (
        ((w as f64 * scale).round() as u32).max(r),
        ((h as f64 * scale).round() as u32).max(r),
    );
    let resized = image::imageops::resize(&img, nw, nh, image::imageops::FilterType::Triangle);
    let (x0, y0) = ((nw - r) / 2, (nh - r) / 2);
    let crop = image::imageops::crop_imm(&resized, x0, y0, r, r).to_image();
    let n = res * res;
    let mut plain = vec![0f32; 3 * n];
    let mut flipped = vec![0f32; 3 * n];
    for (x, y, p) in crop.enumerate_pixels() {
        let (x, y) = (x as usize, y as usize);
        for c in 0..3 {
            let v = p.0[c] as f32 / 127.5 - 1.0;
            plain[c * n + y * res + x] = v;
            flipped[c * n + y * res + (res - 1 - x)] = v;
        }
    }
    Ok((plain, flipped))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_and_flip() -> Result<()> {
        // A 6x4 image: left half black, right half white.
        let img = image::RgbImage::from_fn(6, 4, |x, _| {
            if x < 3 {
                image::Rgb([0, 0, 0])
            } else {
                image::Rgb([255, 255, 255])
            }
        });
        let mut bytes = Vec::new();
        img.write_to(
            &mut std::io::Cursor::new(&mut bytes),
            image::ImageFormat::Png,
        )
        .map_err(|e| Error::Input {
            what: "test".into(),
            reason: e.to_string(),
        })?;
        let (plain, flipped) = preprocess("t", &bytes, 4)?;
        assert_eq!(plain.len(), 48);
        assert!(plain[0] < -0.9 && plain[3] > 0.9);
        assert!(flipped[0] > 0.9 && flipped[3] < -0.9);
        assert!(preprocess("t", b"not an image", 4).is_err());
        Ok(())
    }
}
