//! `dataset/topics.png`: published pairs per topic, one panel per subset, each topic's bar
//! split by outlet, with the count at its end and the outlets' colours in a legend.

use std::collections::BTreeSet;
use std::path::Path;

use anchor_plot::{Canvas, INK, PALETTE};
use anchor_text::Topic;

use crate::SUBSETS;
use crate::card::Counts;

const WIDTH: u32 = 760;
/// Font pixels per glyph pixel.
const SCALE: u32 = 2;
const LEGEND_H: u32 = 28;
const TITLE_H: u32 = 22;
const ROW_H: u32 = 16;
const BAR_H: u32 = 11;
const PANEL_GAP: u32 = 12;
const LABEL_W: u32 = 110;
/// Room right of the longest bar for its count.
const COUNT_W: u32 = 70;

/// Draws the figure of `counts` into a PNG at `path`.
pub(crate) fn write_png(path: &Path, counts: &Counts) -> std::io::Result<()> {
    let outlets: Vec<&str> = counts
        .keys()
        .map(|(_, _, o, _)| o.as_str())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let color = |outlet: &str| {
        let i = outlets.iter().position(|o| *o == outlet).unwrap_or(0);
        PALETTE[i % PALETTE.len()]
    };
    let panel_h = TITLE_H + ROW_H * Topic::ALL.len() as u32 + PANEL_GAP;
    let height = LEGEND_H + panel_h * SUBSETS.len() as u32;
    let mut canvas = Canvas::new(WIDTH, height);

    let mut x = 8;
    for outlet in &outlets {
        canvas.fill(x, 8, 12, 10, color(outlet));
        canvas.text(x + 16, 8, outlet, SCALE, INK);
        x += 16 + Canvas::text_width(outlet, SCALE) + 18;
    }

    let count = |subset: &str, topic: Topic, outlet: &str| -> u64 {
        counts
            .iter()
            .filter(|((su, _, o, t), _)| su == subset && o == outlet && *t == topic)
            .map(|(_, n)| n)
            .sum()
    };
    let row_total =
        |subset: &str, topic: Topic| outlets.iter().map(|o| count(subset, topic, o)).sum::<u64>();
    // One scale for both panels, so their bars compare.
    let longest = SUBSETS
        .iter()
        .flat_map(|s| Topic::ALL.map(|t| row_total(s, t)))
        .max()
        .unwrap_or(0)
        .max(1);
    let bar_room = f64::from(WIDTH - LABEL_W - COUNT_W);

    for (k, subset) in SUBSETS.iter().enumerate() {
        let top = LEGEND_H + k as u32 * panel_h;
        let published: u64 = Topic::ALL.iter().map(|t| row_total(subset, *t)).sum();
        canvas.text(
            8,
            top + 4,
            &format!("{subset}: {published} pairs"),
            SCALE,
            INK,
        );
        let axis_x = f64::from(LABEL_W - 4);
        let rows_top = top + TITLE_H;
        canvas.line(
            (axis_x, f64::from(rows_top)),
            (
                axis_x,
                f64::from(rows_top + ROW_H * Topic::ALL.len() as u32),
            ),
            INK,
        );
        for (i, topic) in Topic::ALL.iter().enumerate() {
            let y = rows_top + i as u32 * ROW_H;
            canvas.text(8, y + 1, topic.as_str(), SCALE, INK);
            let mut start = 0u64;
            for outlet in &outlets {
                let n = count(subset, *topic, outlet);
                let px = |v: u64| (v as f64 / longest as f64 * bar_room).round() as u32;
                let (x0, x1) = (px(start), px(start + n));
                canvas.fill(LABEL_W + x0, y, x1 - x0, BAR_H, color(outlet));
                start += n;
            }
            let end = (start as f64 / longest as f64 * bar_room).round() as u32;
            canvas.text(LABEL_W + end + 6, y + 1, &start.to_string(), SCALE, INK);
        }
    }
    canvas.save_png(path)
}
