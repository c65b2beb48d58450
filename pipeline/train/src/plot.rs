//! `anchor train --plot`: the loss curves of `train_log` as a PNG, one panel per
//! configuration (log-scale loss against step, min and max labelled), drawn with the `image`
//! crate and a 3x5 pixel font so no plotting stack is needed.

use std::collections::BTreeMap;
use std::path::Path;

use image::{Rgb, RgbImage};

use crate::error::{Error, Result};

const W: u32 = 720;
const PANEL_H: u32 = 180;
const MARGIN: u32 = 40;

/// 3x5 glyphs, one row per entry (bit 2 = left column).
fn glyph(c: char) -> [u8; 5] {
    match c {
        '0' => [7, 5, 5, 5, 7],
        '1' => [2, 6, 2, 2, 7],
        '2' => [7, 1, 7, 4, 7],
        '3' => [7, 1, 7, 1, 7],
        '4' => [5, 5, 7, 1, 1],
        '5' => [7, 4, 7, 1, 7],
        '6' => [7, 4, 7, 5, 7],
        '7' => [7, 1, 1, 1, 1],
        '8' => [7, 5, 7, 5, 7],
        '9' => [7, 5, 7, 1, 7],
        '.' => [0, 0, 0, 0, 2],
        '-' => [0, 0, 7, 0, 0],
        ':' => [0, 2, 0, 2, 0],
        '=' => [0, 7, 0, 7, 0],
        'a' => [2, 5, 7, 5, 5],
        'e' => [7, 4, 6, 4, 7],
        'f' => [7, 4, 6, 4, 4],
        'l' => [4, 4, 4, 4, 7],
        'n' => [6, 5, 5, 5, 5],
        'o' => [7, 5, 5, 5, 7],
        'p' => [7, 5, 7, 4, 4],
        'r' => [6, 5, 6, 5, 5],
        's' => [7, 4, 7, 1, 7],
        't' => [7, 2, 2, 2, 2],
        'u' => [5, 5, 5, 5, 7],
        'v' => [5, 5, 5, 5, 2],
        'x' => [5, 5, 2, 5, 5],
        'm' => [5, 7, 7, 5, 5],
        'i' => [2, 0, 2, 2, 2],
        'g' => [7, 4, 5, 5, 7],
        'c' => [7, 4, 4, 4, 7],
        _ => [0, 0, 0, 0, 0],
    }
}

fn text(img: &mut RgbImage, x: u32, y: u32, s: &str, color: Rgb<u8>) {
    let scale = 2;
    for (i, c) in s.chars().enumerate() {
        let g = glyph(c.to_ascii_lowercase());
        for (row, bits) in g.iter().enumerate() {
            for col in 0..3 {
                if bits & (4 >> col) != 0 {
                    for dy in 0..scale {
                        for dx in 0..scale {
                            let px = x + (i as u32 * 4 + col) * scale + dx;
                            let py = y + row as u32 * scale + dy;
                            if px < img.width() && py < img.height() {
                                img.put_pixel(px, py, color);
                            }
                        }
                    }
                }
            }
        }
    }
}

fn line(img: &mut RgbImage, (x0, y0): (f64, f64), (x1, y1): (f64, f64), color: Rgb<u8>) {
    let steps = ((x1 - x0).abs().max((y1 - y0).abs()).ceil() as usize).max(1);
    for i in 0..=steps {
        let t = i as f64 / steps as f64;
        let (x, y) = (x0 + (x1 - x0) * t, y0 + (y1 - y0) * t);
        if x >= 0.0 && y >= 0.0 && (x as u32) < img.width() && (y as u32) < img.height() {
            img.put_pixel(x as u32, y as u32, color);
        }
    }
}

/// Draws `curves` (configuration -> (step, loss) points) into a PNG at `path`.
pub fn write_loss_png(path: &Path, curves: &BTreeMap<String, Vec<(f64, f64)>>) -> Result<()> {
    if curves.is_empty() {
        return Err(Error::Input {
            what: "train_log".into(),
            reason: "no rows to plot".into(),
        });
    }
    let h = PANEL_H * curves.len() as u32;
    let mut img = RgbImage::from_pixel(W, h, Rgb([255, 255, 255]));
    let colors = [
        Rgb([31, 119, 180]),
        Rgb([214, 39, 40]),
        Rgb([44, 160, 44]),
        Rgb([148, 103, 189]),
    ];
    let axis = Rgb([60, 60, 60]);
    for (k, (name, pts)) in curves.iter().enumerate() {
        let top = k as u32 * PANEL_H;
        let (x0, x1) = (MARGIN as f64, (W - 12) as f64);
        let (y0, y1) = ((top + 24) as f64, (top + PANEL_H - 22) as f64);
        line(&mut img, (x0, y1), (x1, y1), axis);
        line(&mut img, (x0, y0), (x0, y1), axis);
        let finite: Vec<(f64, f64)> = pts
            .iter()
            .copied()
            .filter(|(_, l)| l.is_finite() && *l > 0.0)
            .collect();
        let color = colors[k % colors.len()];
        text(&mut img, MARGIN, top + 6, &format!("{name} loss"), color);
        if finite.is_empty() {
            continue;
        }
        let smax = finite.iter().map(|p| p.0).fold(1.0, f64::max);
        let lmin = finite
            .iter()
            .map(|p| p.1.ln())
            .fold(f64::INFINITY, f64::min);
        let lmax = finite
            .iter()
            .map(|p| p.1.ln())
            .fold(f64::NEG_INFINITY, f64::max);
        let span = (lmax - lmin).max(1e-9);
        let to_px = |(s, l): (f64, f64)| {
            (
                x0 + (s / smax) * (x1 - x0),
                y1 - ((l.ln() - lmin) / span) * (y1 - y0),
            )
        };
        for w in finite.windows(2) {
            line(&mut img, to_px(w[0]), to_px(w[1]), color);
        }
        if finite.len() == 1 {
            let (x, y) = to_px(finite[0]);
            line(&mut img, (x - 2.0, y), (x + 2.0, y), color);
        }
        text(
            &mut img,
            200,
            top + 6,
            &format!("max {:.4}", lmax.exp()),
            axis,
        );
        text(
            &mut img,
            340,
            top + 6,
            &format!("min {:.4}", lmin.exp()),
            axis,
        );
        text(
            &mut img,
            480,
            top + 6,
            &format!("steps {}", smax as u64),
            axis,
        );
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    img.save_with_format(path, image::ImageFormat::Png)
        .map_err(|e| Error::Input {
            what: path.display().to_string(),
            reason: e.to_string(),
        })
}

/// Reads `train_log` under `out` as configuration -> (step, loss) points.
pub fn read_curves(out: &Path) -> Result<BTreeMap<String, Vec<(f64, f64)>>> {
    use anchor_core::tables::train_log;
    let reader =
        anchor_core::store::TableReader::open(out, train_log::NAME, Some(train_log::schema()))?;
    let mut curves: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for r in train_log::read(&reader)? {
        curves
            .entry(r.configuration)
            .or_default()
            .push((r.step as f64, r.loss));
    }
    Ok(curves)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_a_png_with_one_panel_per_configuration() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let p = dir.path().join("loss.png");
        let curves = BTreeMap::from([
            (
                "lora".to_string(),
                vec![(1.0, 1.0), (2.0, 0.5), (3.0, 0.25)],
            ),
            ("safe".to_string(), vec![(1.0, 0.9)]),
        ]);
        write_loss_png(&p, &curves)?;
        let img = image::open(&p).map_err(|e| Error::Input {
            what: "png".into(),
            reason: e.to_string(),
        })?;
        assert_eq!((img.width(), img.height()), (W, 2 * PANEL_H));
        assert!(write_loss_png(&p, &BTreeMap::new()).is_err());
        Ok(())
    }
}
