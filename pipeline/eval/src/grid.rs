//! PNG grids comparing configurations (columns) on the same captions and seeds
//! (rows), each row labelled with its caption id and seed, written under
//! `<out>/eval/grids/grid-NNN.png` from the `generations` table.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use anchor_core::columns::{Columns, opt_i64};
use anchor_core::store::TableReader;
use anchor_core::tables::generations as g;
use image::imageops::FilterType;
use image::{Rgb, RgbImage};

use crate::font::{GLYPH_H, draw_text, text_width};
use crate::report::ordered_configurations;
use crate::{Error, Result};

const MARGIN: u32 = 4;
const LABEL_H: u32 = GLYPH_H + 5;
const BACKGROUND: Rgb<u8> = Rgb([255, 255, 255]);
const INK: Rgb<u8> = Rgb([20, 20, 20]);
const MISSING: Rgb<u8> = Rgb([200, 200, 200]);

/// How grids are laid out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GridOptions {
    /// Side of one thumbnail, in pixels.
    pub cell: u32,
    /// (caption, seed) rows per grid file.
    pub rows_per_grid: usize,
    /// Grid files at most.
    pub max_grids: usize,
}

impl Default for GridOptions {
    fn default() -> Self {
        GridOptions {
            cell: 160,
            rows_per_grid: 6,
            max_grids: 4,
        }
    }
}

type Key = (String, i64);

/// Writes the grids into `dir` (removing grids of an earlier run beyond the new
/// count) and returns their paths. Rows are (caption id, seed) pairs, those that
/// every configuration generated first, in (id, seed) order; a configuration
/// missing a row shows a grey cell.
pub fn write_grids(out: &Path, dir: &Path, opts: &GridOptions) -> Result<Vec<PathBuf>> {
    let reader = TableReader::open(out, g::NAME, Some(g::schema()))?;
    let t = g::NAME;
    let mut present: BTreeMap<Key, BTreeSet<String>> = BTreeMap::new();
    let mut configs = BTreeSet::new();
    for batch in reader.read_all(Some(&[g::ID, g::CONFIGURATION, g::SEED]), 8192) {
        let batch = batch?;
        let k = Columns::new(&batch, t);
        let (ids, cs, seeds) = (
            k.strings(g::ID)?,
            k.strings(g::CONFIGURATION)?,
            k.int64(g::SEED)?,
        );
        for i in 0..batch.num_rows() {
            let c = k.required(g::CONFIGURATION, i, cs.get(i))?.to_owned();
            configs.insert(c.clone());
            let key = (
                k.required(g::ID, i, ids.get(i))?.to_owned(),
                k.required(g::SEED, i, opt_i64(seeds, i))?,
            );
            present.entry(key).or_default().insert(c);
        }
    }
    let configs = ordered_configurations(configs.iter().map(String::as_str));
    let mut keys: Vec<(&Key, usize)> = present.iter().map(|(k, v)| (k, v.len())).collect();
    // Complete rows first; the sort is stable, so (id, seed) order within.
    keys.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    let chosen: BTreeSet<Key> = keys
        .iter()
        .take(opts.rows_per_grid.max(1) * opts.max_grids)
        .map(|(k, _)| (*k).clone())
        .collect();
    let order: Vec<Key> = keys
        .iter()
        .map(|(k, _)| (*k).clone())
        .filter(|k| chosen.contains(k))
        .collect();

    let cell = opts.cell.max(16);
    let mut thumbs: BTreeMap<(Key, String), RgbImage> = BTreeMap::new();
    for batch in reader.read_all(Some(&[g::ID, g::CONFIGURATION, g::SEED, g::IMAGE]), 64) {
        let batch = batch?;
        let k = Columns::new(&batch, t);
        let (ids, cs, seeds) = (
            k.strings(g::ID)?,
            k.strings(g::CONFIGURATION)?,
            k.int64(g::SEED)?,
        );
        let images = k.image(g::IMAGE)?;
        for i in 0..batch.num_rows() {
            let key = (
                k.required(g::ID, i, ids.get(i))?.to_owned(),
                k.required(g::SEED, i, opt_i64(seeds, i))?,
            );
            let Some(bytes) = images.bytes(i) else {
                continue;
            };
            if !chosen.contains(&key) {
                continue;
            }
            let c = k.required(g::CONFIGURATION, i, cs.get(i))?.to_owned();
            let name = format!("generations/{c}/{}-{}", key.0, key.1);
            let img = image::load_from_memory(bytes).map_err(|source| Error::Image {
                path: PathBuf::from(name),
                source,
            })?;
            thumbs.insert((key, c), thumbnail(&img.to_rgb8(), cell));
        }
    }

    std::fs::create_dir_all(dir).map_err(|source| Error::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut written = Vec::new();
    for (page, rows) in order.chunks(opts.rows_per_grid.max(1)).enumerate() {
        let img = compose(&configs, rows, &thumbs, cell);
        let path = dir.join(format!("grid-{page:03}.png"));
        img.save(&path).map_err(|source| Error::Encode {
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    remove_stale(dir, written.len())?;
    Ok(written)
}

fn thumbnail(img: &RgbImage, cell: u32) -> RgbImage {
    let (w, h) = img.dimensions();
    let scale = cell as f64 / w.max(h).max(1) as f64;
    let (tw, th) = (
        ((w as f64 * scale).round() as u32).clamp(1, cell),
        ((h as f64 * scale).round() as u32).clamp(1, cell),
    );
    let small = image::imageops::resize(img, tw, th, FilterType::Triangle);
    let mut out = RgbImage::from_pixel(cell, cell, BACKGROUND);
    image::imageops::overlay(
        &mut out,
        &small,
        i64::from((cell - tw) / 2),
        i64::from((cell - th) / 2),
    );
    out
}

fn compose(
    configs: &[String],
    rows: &[Key],
    thumbs: &BTreeMap<(Key, String), RgbImage>,
    cell: u32,
) -> RgbImage {
    let cols = configs.len() as u32;
    let width = MARGIN + cols * (cell + MARGIN);
    let height = MARGIN + LABEL_H + rows.len() as u32 * (LABEL_H + cell + MARGIN);
    let mut img = RgbImage::from_pixel(width, height, BACKGROUND);
    for (j, c) in configs.iter().enumerate() {
        let x = MARGIN + j as u32 * (cell + MARGIN);
        let label = fit(c, cell);
        let centred = x + cell.saturating_sub(text_width(&label, 1)) / 2;
        draw_text(&mut img, centred, MARGIN, &label, 1, INK);
    }
    for (r, key) in rows.iter().enumerate() {
        let y = MARGIN + LABEL_H + r as u32 * (LABEL_H + cell + MARGIN);
        let label = fit(&format!("{} seed {}", key.0, key.1), width - 2 * MARGIN);
        draw_text(&mut img, MARGIN, y + 2, &label, 1, INK);
        for (j, c) in configs.iter().enumerate() {
            let x = MARGIN + j as u32 * (cell + MARGIN);
            let (x, y) = (i64::from(x), i64::from(y + LABEL_H));
            match thumbs.get(&(key.clone(), c.clone())) {
                Some(t) => image::imageops::overlay(&mut img, t, x, y),
                None => {
                    let grey = RgbImage::from_pixel(cell, cell, MISSING);
                    image::imageops::overlay(&mut img, &grey, x, y);
                }
            }
        }
    }
    img
}

/// `text`, cut to fit `width` pixels.
fn fit(text: &str, width: u32) -> String {
    let max = (width / text_width("x", 1)) as usize;
    text.chars().take(max).collect()
}

fn remove_stale(dir: &Path, keep: usize) -> Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let index = name
            .strip_prefix("grid-")
            .and_then(|s| s.strip_suffix(".png"))
            .and_then(|s| s.parse::<usize>().ok());
        if index.is_some_and(|i| i >= keep) {
            std::fs::remove_file(entry.path()).map_err(|source| Error::Write {
                path: entry.path(),
                source,
            })?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_places_thumbnails_and_grey_for_missing() {
        let configs = vec!["base".to_owned(), "safe".to_owned()];
        let key: Key = ("abc".into(), 42);
        let mut thumbs = BTreeMap::new();
        let red = RgbImage::from_pixel(100, 50, Rgb([255, 0, 0]));
        thumbs.insert((key.clone(), "base".to_owned()), thumbnail(&red, 32));
        let img = compose(&configs, &[key], &thumbs, 32);
        assert_eq!(img.width(), MARGIN + 2 * (32 + MARGIN));
        assert_eq!(img.height(), MARGIN + LABEL_H + LABEL_H + 32 + MARGIN);
        let y_mid = MARGIN + LABEL_H + LABEL_H + 16;
        // The 100x50 image fits as 32x16, centred: red in the middle row.
        assert_eq!(*img.get_pixel(MARGIN + 16, y_mid), Rgb([255, 0, 0]));
        assert_eq!(
            *img.get_pixel(MARGIN + 16, MARGIN + 2 * LABEL_H + 1),
            BACKGROUND
        );
        assert_eq!(*img.get_pixel(2 * MARGIN + 32 + 16, y_mid), MISSING);
    }
}
