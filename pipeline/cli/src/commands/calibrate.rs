//! The near-duplicate calibration report: precision and recall of the pHash and dHash
//! detectors at each Hamming radius against the demo generator's ground truth.
//!
//! Truth: two downloaded images are the same photo when the demo generator made them from the
//! same base photo (`demo_truth.photo`): crops, rescales, re-encodes and wire copies of it.
//! Prediction at radius r: identical SHA-256, or hash distance ≤ r. Every pair of decoded images
//! is compared (the report is for the demo's few hundred images, not the 70K dataset).

use std::collections::HashMap;
use std::fmt::Write as _;

use anchor_core::columns::{Columns, opt_str};
use anchor_core::store;
use anchor_core::tables::pairs_curated;
use anchor_filters::hash::Hash64;
use anyhow::Context;

use crate::app::App;

/// Largest number of images compared all-pairs.
const MAX_IMAGES: usize = 20_000;

struct Image {
    phash: u64,
    dhash: u64,
    sha: String,
    photo: String,
}

/// Writes `<out>/curate/calibration.md` and prints it, when the demo ground truth exists.
pub fn report_if_demo(app: &App) -> anyhow::Result<()> {
    let truth_path = app.out().join("demo_truth").join("demo_truth.parquet");
    if !truth_path.is_file() {
        return Ok(());
    }
    let mut photo_of: HashMap<String, String> = HashMap::new();
    for batch in store::read_file(&truth_path)? {
        let c = Columns::new(&batch, "demo_truth");
        let (url, kind, photo) = (c.utf8("url")?, c.utf8("kind")?, c.utf8("photo")?);
        for r in 0..batch.num_rows() {
            if kind.value(r) == "image"
                && let Some(p) = opt_str(photo, r)
            {
                photo_of.insert(url.value(r).to_owned(), p.to_owned());
            }
        }
    }
    let curated = app.out().join(pairs_curated::NAME);
    let reader = store::TableReader::open_dir(&curated, pairs_curated::NAME, None)
        .context("reading pairs_curated for the calibration report")?;
    let mut images = Vec::new();
    let cols = [
        pairs_curated::IMAGE_URL,
        pairs_curated::PHASH,
        pairs_curated::DHASH,
        pairs_curated::SHA256,
    ];
    for batch in reader.read_all(Some(&cols), 8192) {
        let batch = batch?;
        let c = Columns::new(&batch, pairs_curated::NAME);
        let url = c.utf8(pairs_curated::IMAGE_URL)?;
        let ph = c.utf8(pairs_curated::PHASH)?;
        let dh = c.utf8(pairs_curated::DHASH)?;
        let sha = c.utf8(pairs_curated::SHA256)?;
        for r in 0..batch.num_rows() {
            let (Some(p), Some(d), Some(photo)) = (
                opt_str(ph, r).and_then(Hash64::from_hex),
                opt_str(dh, r).and_then(Hash64::from_hex),
                photo_of.get(url.value(r)),
            ) else {
                continue;
            };
            images.push(Image {
                phash: p.0,
                dhash: d.0,
                sha: opt_str(sha, r).unwrap_or_default().to_owned(),
                photo: photo.clone(),
            });
        }
    }
    if images.len() < 2 || images.len() > MAX_IMAGES {
        return Ok(());
    }
    const RADII: usize = 33;
    // [hash][radius] → (true positives, predicted positives)
    let mut counts = [[(0u64, 0u64); RADII]; 2];
    let mut truth_pairs = 0u64;
    for i in 0..images.len() {
        for j in i + 1..images.len() {
            let (a, b) = (&images[i], &images[j]);
            let same = a.photo == b.photo;
            truth_pairs += u64::from(same);
            let exact = !a.sha.is_empty() && a.sha == b.sha;
            for (h, d) in [
                (a.phash ^ b.phash).count_ones(),
                (a.dhash ^ b.dhash).count_ones(),
            ]
            .into_iter()
            .enumerate()
            {
                for (r, slot) in counts[h].iter_mut().enumerate() {
                    if exact || d as usize <= r {
                        slot.1 += 1;
                        slot.0 += u64::from(same);
                    }
                }
            }
        }
    }
    let chosen = crate::commands::curate::config(app, None)?
        .tool
        .near_duplicate_radius as usize;
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Near-duplicate calibration\n\n{} decoded demo images, {} same-photo pairs in the \
         generator's ground truth. Precision and recall of \"same SHA-256 or Hamming distance \
         ≤ r\"; the configured pHash radius is marked.\n\n\
         | r | pHash precision | pHash recall | pHash F1 | dHash precision | dHash recall | dHash F1 |\n\
         |---|---|---|---|---|---|---|",
        images.len(),
        truth_pairs
    );
    for r in (0..RADII).step_by(2).chain(std::iter::once(chosen)) {
        if r >= RADII || (r % 2 == 0 && r == chosen && md.contains(&format!("| {r}* |"))) {
            continue;
        }
        let mark = if r == chosen { "*" } else { "" };
        let _ = write!(md, "| {r}{mark} |");
        for slot in [counts[0][r], counts[1][r]] {
            let (tp, pred) = slot;
            let p = if pred == 0 {
                1.0
            } else {
                tp as f64 / pred as f64
            };
            let rc = if truth_pairs == 0 {
                1.0
            } else {
                tp as f64 / truth_pairs as f64
            };
            let f1 = if p + rc == 0.0 {
                0.0
            } else {
                2.0 * p * rc / (p + rc)
            };
            let _ = write!(md, " {p:.3} | {rc:.3} | {f1:.3} |");
        }
        let _ = writeln!(md);
    }
    let dir = app.out().join("curate");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("calibration.md");
    std::fs::write(&path, &md).with_context(|| format!("writing {}", path.display()))?;
    if !app.quiet {
        let (tp, pred) = counts[0][chosen.min(RADII - 1)];
        println!(
            "near-duplicate calibration (pHash radius {chosen}): precision {:.3}, recall {:.3} over {} images; table in {}",
            if pred == 0 {
                1.0
            } else {
                tp as f64 / pred as f64
            },
            if truth_pairs == 0 {
                1.0
            } else {
                tp as f64 / truth_pairs as f64
            },
            images.len(),
            path.display()
        );
    }
    Ok(())
}
