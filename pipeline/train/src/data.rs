//! The training set: the `train` split as the export step published it (cleaned captions
//! and the published images, by default the entropy-based salient square) with (for `safe`)
//! the subjects, and the image preprocessing (resize, center crop, flip).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use anchor_core::store::TableReader;
use anchor_core::tables::{splits, subjects};

use crate::error::{Error, Result};

/// The split trained on.
pub const TRAIN_SPLIT: &str = "train";

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

/// The `train` split as the export step published it: each id of the split in the
/// `splits` table with the published caption and image (the entropy crop by default), and,
/// with `subjects`, its annotated subjects. An annotated caption replaces the published one
/// (the spans refer to it). Sorted by id; an id the export did not publish is counted as
/// `not_exported` in `dropped`.
pub fn examples(
    out: &Path,
    splits_table: &TableReader,
    subjects_table: Option<&TableReader>,
    dropped: &mut BTreeMap<String, u64>,
) -> Result<Vec<Example>> {
    let ids = splits::ids_in_split(splits_table, TRAIN_SPLIT)?;
    let mut published = anchor_core::published::read_split(out, TRAIN_SPLIT)?;
    let mut subs: HashMap<String, subjects::Row> = match subjects_table {
        Some(t) => subjects::read(t)?
            .into_iter()
            .filter(|r| ids.contains(&r.id))
            .map(|r| (r.id.clone(), r))
            .collect(),
        None => HashMap::new(),
    };
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        let Some(p) = published.remove(&id) else {
            *dropped.entry("not_exported".into()).or_default() += 1;
            continue;
        };
        let (caption, subjects) = match subs.remove(&id) {
            Some(r) => (
                r.caption,
                r.subjects
                    .into_iter()
                    .map(|s| Subject {
                        start: s.start as usize,
                        end: s.end as usize,
                        weight: s.weight as f32,
                    })
                    .collect(),
            ),
            None => (p.caption, Vec::new()),
        };
        out.push(Example {
            id,
            caption,
            image: p.image,
            subjects,
        });
    }
    Ok(out)
}

/// Decodes `bytes`, resizes the shorter side to `res` (bilinear, as diffusers'
/// `transforms.Resize`) and center-crops to `res`×`res`. A published crop is square, so
/// the center crop only acts on images published with `--original-images`. Returns CHW floats in [-1, 1] for
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
