//! The `metrics` table's rows and the paper-style tables made from them:
//! `<out>/eval/tables.md` and `<out>/eval/tables.csv`, one row per configuration
//! and one column per metric, overall and per subset (Entity / Non-Entity), then FID by
//! outlet and by topic.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anchor_core::store::TableReader;
use anchor_core::tables::metrics::{self as t, ALL};
use arrow_array::RecordBatch;

use crate::{Error, Result};

/// The paper's configurations, in its table order.
pub const PAPER_ORDER: [&str; 6] = [
    "base",
    "weighting",
    "lora",
    "lora+weighting",
    "safe",
    "prefix",
];

/// One row of the `metrics` table.
pub type MetricRow = t::Row;

/// Rows as a `metrics` record batch (in the given order).
pub fn metrics_batch(rows: &[MetricRow]) -> Result<RecordBatch> {
    Ok(t::to_batch(rows)?)
}

/// Rows of a `metrics` record batch.
pub fn rows_of_batch(batch: &RecordBatch) -> Result<Vec<MetricRow>> {
    Ok(t::from_batch(batch)?)
}

/// Every row of the `metrics` table under `out`.
pub fn read_metrics(out: &Path) -> Result<Vec<MetricRow>> {
    Ok(t::read(&TableReader::open(
        out,
        t::NAME,
        Some(t::schema()),
    )?)?)
}

/// Configurations in the paper's order, then any others by name.
pub fn ordered_configurations<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<String> {
    let set: BTreeSet<&str> = names.into_iter().collect();
    let mut out: Vec<String> = PAPER_ORDER
        .iter()
        .filter(|c| set.contains(**c))
        .map(|c| (*c).to_owned())
        .collect();
    out.extend(
        set.iter()
            .filter(|c| !PAPER_ORDER.contains(c))
            .map(|c| (*c).to_owned()),
    );
    out
}

fn metric_label(metric: &str) -> String {
    match metric {
        "fid" => "FID".into(),
        "kid" => "KID".into(),
        "fid_clip" => "FID_CLIP".into(),
        "clip_score" => "CLIP score".into(),
        "hpsv2" => "HPSv2".into(),
        "image_reward" => "ImageReward".into(),
        other => other.to_owned(),
    }
}

fn subset_label(subset: &str) -> &str {
    match subset {
        "entity" => " Entity",
        "non_entity" => " Non-Entity",
        _ => "",
    }
}

/// Metrics in display order: FID, KID, then the rest by name.
fn ordered_metrics(rows: &[MetricRow]) -> Vec<String> {
    let set: BTreeSet<&str> = rows.iter().map(|r| r.metric.as_str()).collect();
    let mut out: Vec<String> = ["fid", "kid"]
        .iter()
        .filter(|m| set.contains(**m))
        .map(|m| (*m).to_owned())
        .collect();
    out.extend(
        set.iter()
            .filter(|m| !["fid", "kid"].contains(m))
            .map(|m| (*m).to_owned()),
    );
    out
}

fn fmt_value(metric: &str, value: f64) -> String {
    // HPSv2 scores are cosines that differ between models in the third decimal;
    // ImageReward's are reported to four as its paper does.
    let decimals = match metric {
        "kid" => 5,
        "hpsv2" | "image_reward" => 4,
        _ => 3,
    };
    // Round-off leaves FID of a set against itself at ±1e-13; "-0.000" would
    // read as a sign that means something.
    let shown = if value.abs() < 0.5 * 10f64.powi(-decimals) {
        0.0
    } else {
        value
    };
    format!("{shown:.*}", decimals as usize)
}

/// The two files written by [`write_tables`].
#[derive(Debug, Clone)]
pub struct TablePaths {
    /// `tables.md`.
    pub markdown: PathBuf,
    /// `tables.csv`.
    pub csv: PathBuf,
}

/// Where a row sits in the tables: every column but the values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct RowKey<'a> {
    line: Line<'a>,
    metric: &'a str,
    subset: &'a str,
    outlet: &'a str,
    topic: &'a str,
}

impl<'a> RowKey<'a> {
    fn of(row: &'a MetricRow) -> Self {
        RowKey {
            line: Line::of(row),
            metric: &row.metric,
            subset: &row.subset,
            outlet: &row.outlet,
            topic: &row.topic,
        }
    }

    /// The key of `line`'s `metric` over all outlets and topics.
    fn overall(line: Line<'a>, metric: &'a str, subset: &'a str) -> Self {
        RowKey {
            line,
            metric,
            subset,
            outlet: ALL,
            topic: ALL,
        }
    }
}

/// A line of the tables: one configuration of one run on one base.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Line<'a> {
    run: &'a str,
    base: &'a str,
    configuration: &'a str,
}

impl<'a> Line<'a> {
    fn of(row: &'a MetricRow) -> Self {
        Line {
            run: &row.run,
            base: &row.base,
            configuration: &row.configuration,
        }
    }
}

/// Characters of a base digest shown in Markdown (the CSV has it whole).
const SHORT_BASE: usize = 12;

fn short_base(base: &str) -> &str {
    base.get(..SHORT_BASE).unwrap_or(base)
}

/// The lines in table order: by run, then base, then configuration in the paper's order.
fn ordered_lines<'a>(rows: &'a [MetricRow]) -> Vec<Line<'a>> {
    let runs: BTreeSet<(&str, &str)> = rows
        .iter()
        .map(|r| (r.run.as_str(), r.base.as_str()))
        .collect();
    let mut lines = Vec::new();
    for (run, base) in runs {
        let configs = ordered_configurations(
            rows.iter()
                .filter(|r| r.run == run && r.base == base)
                .map(|r| r.configuration.as_str()),
        );
        for c in configs {
            // Borrow the configuration from the rows, not from the ordering's copy.
            if let Some(row) = rows
                .iter()
                .find(|r| r.run == run && r.base == base && r.configuration == c)
            {
                lines.push(Line::of(row));
            }
        }
    }
    lines
}

/// How lines are labelled: by configuration alone when every row has one run and base
/// (named once above the table), else by run, base and configuration.
struct Labels {
    several_runs: bool,
}

impl Labels {
    fn header(&self) -> &'static str {
        if self.several_runs {
            "run | base | configuration"
        } else {
            "configuration"
        }
    }

    fn width(&self) -> usize {
        if self.several_runs { 3 } else { 1 }
    }

    fn cells(&self, line: &Line<'_>) -> String {
        if self.several_runs {
            format!(
                "{} | `{}` | `{}`",
                line.run,
                short_base(line.base),
                line.configuration
            )
        } else {
            format!("`{}`", line.configuration)
        }
    }
}

/// What a breakdown table splits the rows by.
#[derive(Debug, Clone, Copy)]
enum Breakdown {
    Outlet,
    Topic,
}

impl Breakdown {
    fn value(self, row: &MetricRow) -> &str {
        match self {
            Breakdown::Outlet => &row.outlet,
            Breakdown::Topic => &row.topic,
        }
    }

    fn key<'a>(self, line: Line<'a>, value: &'a str) -> RowKey<'a> {
        let overall = RowKey::overall(line, "fid", ALL);
        match self {
            Breakdown::Outlet => RowKey {
                outlet: value,
                ..overall
            },
            Breakdown::Topic => RowKey {
                topic: value,
                ..overall
            },
        }
    }
}

/// "## FID by outlet/topic (all subsets)": one column per value the rows have, each cell
/// the FID with its generated/real image counts. Nothing when no row breaks down by it.
fn breakdown_table(
    md: &mut String,
    breakdown: Breakdown,
    lines: &[Line<'_>],
    labels: &Labels,
    by_key: &BTreeMap<RowKey<'_>, &MetricRow>,
) {
    let values: BTreeSet<&str> = by_key
        .values()
        .filter(|r| r.metric == "fid")
        .map(|r| breakdown.value(r))
        .filter(|v| *v != ALL)
        .collect();
    if values.is_empty() {
        return;
    }
    let name = match breakdown {
        Breakdown::Outlet => "outlet",
        Breakdown::Topic => "topic",
    };
    let _ = writeln!(md, "\n## FID by {name} (all subsets)\n");
    let _ = writeln!(
        md,
        "| {} | {} |",
        labels.header(),
        values.iter().copied().collect::<Vec<_>>().join(" | ")
    );
    let _ = writeln!(md, "|{}", "---|".repeat(values.len() + labels.width()));
    for line in lines {
        let cells: Vec<String> = values
            .iter()
            .map(|v| {
                by_key
                    .get(&breakdown.key(*line, v))
                    .map_or("–".to_owned(), |r| {
                        format!(
                            "{} (n={}/{})",
                            fmt_value("fid", r.value),
                            r.n_generated,
                            r.n_reference
                        )
                    })
            })
            .collect();
        let _ = writeln!(md, "| {} | {} |", labels.cells(line), cells.join(" | "));
    }
}

/// Renders the paper's table as Markdown (with FID per outlet and per topic, and the
/// notes) and as CSV, from `rows`: one line per configuration, or with rows of several
/// runs or bases (the metrics of several evaluations stacked), one per run, base and
/// configuration. `preamble` lines open the Markdown file.
pub fn render_tables(
    rows: &[MetricRow],
    preamble: &[String],
    notes: &[String],
) -> (String, String) {
    let by_key: BTreeMap<RowKey<'_>, &MetricRow> =
        rows.iter().map(|r| (RowKey::of(r), r)).collect();
    let lines = ordered_lines(rows);
    let runs: BTreeSet<(&str, &str)> = lines.iter().map(|l| (l.run, l.base)).collect();
    let labels = Labels {
        several_runs: runs.len() > 1,
    };
    let metrics = ordered_metrics(rows);
    let subsets = [ALL, "entity", "non_entity"];

    let mut md = String::from("# Evaluation\n\n");
    for line in preamble {
        let _ = writeln!(md, "{line}");
    }
    if let (false, Some((run, base))) = (labels.several_runs, runs.first()) {
        let _ = writeln!(md, "Run `{run}`, base model `{}`.", short_base(base));
    }
    if !md.ends_with("\n\n") {
        md.push('\n');
    }
    let mut header = vec![labels.header().to_owned()];
    let mut csv_header = vec![
        "run".to_owned(),
        "base".to_owned(),
        "configuration".to_owned(),
    ];
    for m in &metrics {
        for s in subsets {
            header.push(format!("{}{}", metric_label(m), subset_label(s)));
            let base = if s == ALL {
                m.clone()
            } else {
                format!("{m}_{s}")
            };
            csv_header.push(base.clone());
            if rows.iter().any(|r| &r.metric == m && r.std.is_some()) {
                csv_header.push(format!("{base}_std"));
            }
        }
    }
    header.push("images".into());
    csv_header.push("n_generated".into());
    let _ = writeln!(md, "| {} |", header.join(" | "));
    let _ = writeln!(md, "|{}", "---|".repeat(header.len() - 1 + labels.width()));
    let mut csv = csv_header.join(",") + "\n";
    for line in &lines {
        let mut cells = vec![labels.cells(line)];
        let mut csv_cells = vec![
            csv_field(line.run),
            csv_field(line.base),
            csv_field(line.configuration),
        ];
        for m in &metrics {
            let has_std = rows.iter().any(|r| &r.metric == m && r.std.is_some());
            for s in subsets {
                match by_key.get(&RowKey::overall(*line, m, s)) {
                    Some(r) => {
                        let mut cell = fmt_value(m, r.value);
                        if let Some(sd) = r.std {
                            let _ = write!(cell, " ± {}", fmt_value(m, sd));
                        }
                        cells.push(cell);
                        csv_cells.push(format!("{}", r.value));
                        if has_std {
                            csv_cells.push(r.std.map(|v| format!("{v}")).unwrap_or_default());
                        }
                    }
                    None => {
                        cells.push("–".into());
                        csv_cells.push(String::new());
                        if has_std {
                            csv_cells.push(String::new());
                        }
                    }
                }
            }
        }
        let n = by_key
            .iter()
            .filter(|(k, r)| k.line == *line && r.subset == ALL && r.is_overall())
            .map(|(_, r)| r.n_generated)
            .max()
            .unwrap_or(0);
        cells.push(n.to_string());
        csv_cells.push(n.to_string());
        let _ = writeln!(md, "| {} |", cells.join(" | "));
        csv.push_str(&csv_cells.join(","));
        csv.push('\n');
    }

    breakdown_table(&mut md, Breakdown::Outlet, &lines, &labels, &by_key);
    breakdown_table(&mut md, Breakdown::Topic, &lines, &labels, &by_key);

    // FID's count: reference-free metrics count 0 and the hit rate counts the images
    // with subjects.
    for (run, base) in &runs {
        let references: BTreeMap<&str, i64> = rows
            .iter()
            .filter(|r| r.run == *run && r.base == *base && r.metric == "fid" && r.is_overall())
            .map(|r| (r.subset.as_str(), r.n_reference))
            .collect();
        if references.is_empty() {
            continue;
        }
        let of = if labels.several_runs {
            format!(" of run {run} (base `{}`)", short_base(base))
        } else {
            String::new()
        };
        let _ = writeln!(
            md,
            "\nReal reference (test split){of}: {}.",
            subsets
                .iter()
                .filter_map(|s| references.get(s).map(|n| format!("{n} images ({s})")))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if !notes.is_empty() {
        let _ = writeln!(md, "\n## Notes\n");
        for note in notes {
            let _ = writeln!(md, "- {note}");
        }
    }
    (md, csv)
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

/// Writes `tables.md` and `tables.csv` into `dir`.
pub fn write_tables(
    dir: &Path,
    rows: &[MetricRow],
    preamble: &[String],
    notes: &[String],
) -> Result<TablePaths> {
    let (md, csv) = render_tables(rows, preamble, notes);
    std::fs::create_dir_all(dir).map_err(|source| Error::Write {
        path: dir.to_path_buf(),
        source,
    })?;
    let paths = TablePaths {
        markdown: dir.join("tables.md"),
        csv: dir.join("tables.csv"),
    };
    for (path, text) in [(&paths.markdown, md), (&paths.csv, csv)] {
        std::fs::write(path, text).map_err(|source| Error::Write {
            path: path.clone(),
            source,
        })?;
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(c: &str, m: &str, s: &str, o: &str, v: f64, std: Option<f64>) -> MetricRow {
        MetricRow {
            run: "default".into(),
            base: "0123456789abcdef".into(),
            configuration: c.into(),
            metric: m.into(),
            subset: s.into(),
            outlet: o.into(),
            topic: "all".into(),
            value: v,
            std,
            n_generated: 4,
            n_reference: 9,
        }
    }

    #[test]
    fn batch_round_trips_and_tables_follow_paper_order() {
        let rows = vec![
            row("safe", "fid", "all", "all", 12.5, None),
            row("safe", "fid", "entity", "all", 13.0, None),
            row("safe", "kid", "all", "all", 0.01, Some(0.002)),
            row("base", "fid", "all", "all", 20.25, None),
            row("base", "fid", "all", "bbc", 30.0, None),
            MetricRow {
                topic: "sport".into(),
                ..row("base", "fid", "all", "all", 41.5, None)
            },
            row("x-custom", "fid", "all", "all", 1.0, None),
            MetricRow {
                n_reference: 0,
                ..row("x-custom", "clip_score", "all", "all", 30.0, None)
            },
        ];
        let batch = metrics_batch(&rows).unwrap();
        assert_eq!(rows_of_batch(&batch).unwrap(), rows);
        let (md, csv) = render_tables(&rows, &["pre".into()], &["why absent".into()]);
        assert_eq!(fmt_value("fid", -2e-13), "0.000");
        assert_eq!(fmt_value("kid", -0.1072616), "-0.10726");
        let base = md.find("| `base`").unwrap();
        let safe = md.find("| `safe`").unwrap();
        let custom = md.find("| `x-custom`").unwrap();
        assert!(base < safe && safe < custom, "{md}");
        assert!(
            md.contains("| FID | FID Entity | FID Non-Entity | KID |"),
            "{md}"
        );
        assert!(md.contains("0.01000 ± 0.00200"), "{md}");
        assert!(
            md.contains("## FID by outlet") && md.contains("30.000 (n=4/9)"),
            "{md}"
        );
        // The topic row has its own table and does not stand in for the overall FID.
        assert!(
            md.contains("## FID by topic (all subsets)\n\n| configuration | sport |"),
            "{md}"
        );
        assert!(md.contains("| `base` | 41.500 (n=4/9) |"), "{md}");
        assert!(md.contains("| `safe` | – |"), "{md}");
        assert!(
            md.contains("Real reference (test split): 9 images (all)"),
            "{md}"
        );
        assert!(md.contains("- why absent"));
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(
            lines[0],
            "run,base,configuration,fid,fid_entity,fid_non_entity,kid,kid_std,kid_entity,kid_entity_std,kid_non_entity,kid_non_entity_std,clip_score,clip_score_entity,clip_score_non_entity,n_generated"
        );
        let run = "default,0123456789abcdef";
        assert_eq!(lines[1], format!("{run},base,20.25,,,,,,,,,,,,4"));
        assert_eq!(lines[2], format!("{run},safe,12.5,13,,0.01,0.002,,,,,,,,4"));
        assert_eq!(lines[3], format!("{run},x-custom,1,,,,,,,,,30,,,4"));
        assert!(
            md.contains("Run `default`, base model `0123456789ab`."),
            "{md}"
        );
    }

    /// Metrics of two evaluations stacked (another run on another base): one line per run,
    /// base and configuration, each with its own numbers, and a reference line per run.
    #[test]
    fn stacked_runs_get_a_line_each() {
        let mut rows = vec![
            row("base", "fid", "all", "all", 20.0, None),
            row("safe", "fid", "all", "all", 10.0, None),
            row("safe", "fid", "all", "bbc", 11.0, None),
        ];
        let other = |r: MetricRow| MetricRow {
            run: "sd21".into(),
            base: "fedcba9876543210".into(),
            n_reference: 7,
            ..r
        };
        rows.push(other(row("base", "fid", "all", "all", 30.0, None)));
        rows.push(other(row("safe", "fid", "all", "bbc", 12.0, None)));
        let (md, csv) = render_tables(&rows, &[], &[]);
        assert!(
            md.contains("| run | base | configuration | FID | FID Entity | FID Non-Entity | images |\n|---|---|---|---|---|---|---|\n"),
            "{md}"
        );
        assert!(
            md.contains("| default | `0123456789ab` | `base` | 20.000 | – | – | 4 |"),
            "{md}"
        );
        assert!(
            md.contains("| default | `0123456789ab` | `safe` | 10.000 | – | – | 4 |"),
            "{md}"
        );
        assert!(
            md.contains("| sd21 | `fedcba987654` | `base` | 30.000 | – | – | 4 |"),
            "{md}"
        );
        assert!(
            md.contains("| sd21 | `fedcba987654` | `safe` | – | – | – | 0 |"),
            "{md}"
        );
        assert!(
            md.contains("| sd21 | `fedcba987654` | `safe` | 12.000 (n=4/7) |"),
            "{md}"
        );
        assert!(!md.contains("Run `"), "{md}");
        assert!(
            md.contains(
                "Real reference (test split) of run default (base `0123456789ab`): 9 images (all)."
            ),
            "{md}"
        );
        assert!(
            md.contains(
                "Real reference (test split) of run sd21 (base `fedcba987654`): 7 images (all)."
            ),
            "{md}"
        );
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 5, "{csv}");
        assert_eq!(lines[3], "sd21,fedcba9876543210,base,30,,,4");
    }
}
