//! `anchor train --plot`: the loss curves of `train_log` as a PNG, one panel per
//! configuration (log-scale loss against step, min and max labelled), drawn on an
//! [`anchor_plot::Canvas`].

use std::collections::BTreeMap;
use std::path::Path;

use anchor_plot::{Canvas, INK, PALETTE};

use crate::error::{Error, Result};

const W: u32 = 720;
const PANEL_H: u32 = 180;
const MARGIN: u32 = 40;
/// Font pixels per glyph pixel.
const SCALE: u32 = 2;

/// Draws `curves` (configuration -> (step, loss) points) into a PNG at `path`.
pub fn write_loss_png(path: &Path, curves: &BTreeMap<String, Vec<(f64, f64)>>) -> Result<()> {
    if curves.is_empty() {
        return Err(Error::Input {
            what: "train_log".into(),
            reason: "no rows to plot".into(),
        });
    }
    let h = PANEL_H * curves.len() as u32;
    let mut img = Canvas::new(W, h);
    let colors = [PALETTE[0], PALETTE[3], PALETTE[2], PALETTE[4]];
    let axis = INK;
    for (k, (name, pts)) in curves.iter().enumerate() {
        let top = k as u32 * PANEL_H;
        let (x0, x1) = (MARGIN as f64, (W - 12) as f64);
        let (y0, y1) = ((top + 24) as f64, (top + PANEL_H - 22) as f64);
        img.line((x0, y1), (x1, y1), axis);
        img.line((x0, y0), (x0, y1), axis);
        let finite: Vec<(f64, f64)> = pts
            .iter()
            .copied()
            .filter(|(_, l)| l.is_finite() && *l > 0.0)
            .collect();
        let color = colors[k % colors.len()];
        img.text(MARGIN, top + 6, &format!("{name} loss"), SCALE, color);
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
            img.line(to_px(w[0]), to_px(w[1]), color);
        }
        if finite.len() == 1 {
            let (x, y) = to_px(finite[0]);
            img.line((x - 2.0, y), (x + 2.0, y), color);
        }
        img.text(200, top + 6, &format!("max {:.4}", lmax.exp()), SCALE, axis);
        img.text(340, top + 6, &format!("min {:.4}", lmin.exp()), SCALE, axis);
        img.text(480, top + 6, &format!("steps {}", smax as u64), SCALE, axis);
    }
    img.save_png(path).map_err(|e| Error::io(path, e))
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
