//! Quality report: span-level precision / recall / F1 of a backend against the labelled set
//! (`data/annotate/labelled.jsonl`), by subset, as a Markdown table.
//!
//! A predicted subject counts as correct when its byte span equals a gold span exactly
//! (`span` columns); the `typed` columns also require the same kind. Answers rejected with
//! an error class count as predicting nothing (so they cost recall) and are counted apart.

use std::collections::BTreeMap;
use std::ops::AddAssign;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::backend::{Backend, GenStats};
use crate::subject::{Kind, Subject, WEIGHT_NEUTRAL};
use crate::{Error, Result};

/// The labelled set shipped with the crate.
pub const LABELLED_JSONL: &str = include_str!("../../../data/annotate/labelled.jsonl");

/// A hand-labelled subject.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct GoldSubject {
    /// Exact text as in the caption (first word-bounded occurrence).
    pub text: String,
    /// Kind.
    pub kind: Kind,
}

/// One labelled caption.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct LabelledCaption {
    /// Stable id (`lab-001`).
    pub id: String,
    /// `entity` or `non_entity`, the paper's two subsets.
    pub subset: String,
    /// The caption.
    pub caption: String,
    /// Gold subjects.
    pub subjects: Vec<GoldSubject>,
}

impl LabelledCaption {
    /// Gold subjects located in the caption.
    pub fn gold(&self) -> std::result::Result<Vec<Subject>, crate::subject::SpanError> {
        self.subjects
            .iter()
            .map(|g| Subject::locate(&self.caption, &g.text, WEIGHT_NEUTRAL, g.kind))
            .collect()
    }
}

/// Parses a labelled JSONL text; every gold subject must be a span of its caption.
pub fn parse_labelled(text: &str, path: &Path) -> Result<Vec<LabelledCaption>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let bad = |detail: String| Error::Labelled {
            path: path.to_path_buf(),
            line: i + 1,
            detail,
        };
        let c: LabelledCaption = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
        if c.subset != "entity" && c.subset != "non_entity" {
            return Err(bad(format!(
                "subset {:?} is not entity/non_entity",
                c.subset
            )));
        }
        c.gold().map_err(|e| bad(e.to_string()))?;
        out.push(c);
    }
    Ok(out)
}

/// Loads the labelled set from a file.
pub fn load_labelled(path: &Path) -> Result<Vec<LabelledCaption>> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_labelled(&text, path)
}

/// The labelled set shipped with the crate.
pub fn builtin_labelled() -> Result<Vec<LabelledCaption>> {
    parse_labelled(LABELLED_JSONL, Path::new("data/annotate/labelled.jsonl"))
}

/// True/false positive and false negative counts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Score {
    /// Predicted spans that are gold.
    pub tp: u64,
    /// Predicted spans that are not gold.
    pub fp: u64,
    /// Gold spans not predicted.
    pub fn_: u64,
}

impl Score {
    /// Precision (1 when nothing was predicted and nothing was gold).
    pub fn precision(&self) -> f64 {
        frac(self.tp, self.tp + self.fp)
    }
    /// Recall.
    pub fn recall(&self) -> f64 {
        frac(self.tp, self.tp + self.fn_)
    }
    /// Harmonic mean of precision and recall.
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

fn frac(a: u64, b: u64) -> f64 {
    if b == 0 { 1.0 } else { a as f64 / b as f64 }
}

impl AddAssign for Score {
    fn add_assign(&mut self, o: Self) {
        self.tp += o.tp;
        self.fp += o.fp;
        self.fn_ += o.fn_;
    }
}

/// Scores predicted against gold subjects by exact span (and kind when `typed`).
pub fn score(gold: &[Subject], pred: &[Subject], typed: bool) -> Score {
    let same = |g: &Subject, p: &Subject| {
        g.start == p.start && g.end == p.end && (!typed || g.kind == p.kind)
    };
    let tp = pred
        .iter()
        .filter(|p| gold.iter().any(|g| same(g, p)))
        .count() as u64;
    let hit_gold = gold
        .iter()
        .filter(|g| pred.iter().any(|p| same(g, p)))
        .count() as u64;
    Score {
        tp,
        fp: pred.len() as u64 - tp,
        fn_: gold.len() as u64 - hit_gold,
    }
}

/// One row of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportRow {
    /// Backend name, with its prompt version when it has one.
    pub backend: String,
    /// `entity`, `non_entity` or `all`.
    pub subset: String,
    /// Captions scored.
    pub captions: u64,
    /// Exact-span score.
    pub span: Score,
    /// Exact-span-and-kind score.
    pub typed: Score,
    /// Answers rejected with an error class.
    pub errors: u64,
    /// Token and timing totals.
    #[serde(skip)]
    pub stats: GenStats,
}

/// Runs `backend` over the labelled set and scores it by subset plus `all`.
pub fn evaluate(backend: &mut dyn Backend, set: &[LabelledCaption]) -> Result<Vec<ReportRow>> {
    let label = match backend.prompt_version() {
        Some(v) => format!("{} ({v})", backend.name()),
        None => backend.name().to_string(),
    };
    let mut rows: BTreeMap<String, ReportRow> = BTreeMap::new();
    for c in set {
        let gold = c.gold().map_err(|e| Error::Labelled {
            path: "labelled".into(),
            line: 0,
            detail: format!("{}: {e}", c.id),
        })?;
        let ann = backend.annotate(&c.caption)?;
        for subset in [c.subset.as_str(), "all"] {
            let row = rows.entry(subset.to_string()).or_insert_with(|| ReportRow {
                backend: label.clone(),
                subset: subset.to_string(),
                captions: 0,
                span: Score::default(),
                typed: Score::default(),
                errors: 0,
                stats: GenStats::default(),
            });
            row.captions += 1;
            row.span += score(&gold, &ann.subjects, false);
            row.typed += score(&gold, &ann.subjects, true);
            row.errors += u64::from(ann.error.is_some());
            row.stats += ann.stats;
        }
    }
    // Order: all, entity, non_entity.
    let mut out: Vec<ReportRow> = Vec::new();
    for k in ["all", "entity", "non_entity"] {
        if let Some(r) = rows.remove(k) {
            out.push(r);
        }
    }
    Ok(out)
}

/// Renders report rows as a Markdown table.
pub fn markdown_table(rows: &[ReportRow]) -> String {
    let mut s = String::from(
        "| backend | subset | captions | span P | span R | span F1 | typed F1 | errors |\n\
         |---|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {} |\n",
            r.backend,
            r.subset,
            r.captions,
            r.span.precision(),
            r.span.recall(),
            r.span.f1(),
            r.typed.f1(),
            r.errors
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heuristic::HeuristicBackend;

    #[test]
    fn labelled_set_is_valid_and_balanced() {
        let set = builtin_labelled().unwrap();
        assert!(set.len() >= 140, "{}", set.len());
        let ne = set.iter().filter(|c| c.subset == "non_entity").count();
        assert!(ne >= 30 && ne < set.len() - 60, "non_entity {ne}");
        let mut ids: Vec<&str> = set.iter().map(|c| c.id.as_str()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), set.len(), "ids are unique");
        for c in &set {
            assert!(!c.subjects.is_empty(), "{} has no subjects", c.id);
        }
    }

    #[test]
    fn bad_labelled_lines_name_their_line() {
        let text = "{\"id\":\"x\",\"subset\":\"entity\",\"caption\":\"Rain in Spain\",\"subjects\":[{\"text\":\"Spain\",\"kind\":\"place\"}]}\n\
                    {\"id\":\"y\",\"subset\":\"entity\",\"caption\":\"Rain in Spain\",\"subjects\":[{\"text\":\"France\",\"kind\":\"place\"}]}\n";
        match parse_labelled(text, Path::new("t.jsonl")) {
            Err(Error::Labelled { line, .. }) => assert_eq!(line, 2),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn scores_count_exact_spans() {
        let cap = "Angela Merkel meets Emmanuel Macron in Paris";
        let s = |t: &str, k| Subject::locate(cap, t, 1.0, k).unwrap();
        let gold = vec![
            s("Angela Merkel", Kind::Person),
            s("Emmanuel Macron", Kind::Person),
            s("Paris", Kind::Place),
        ];
        let pred = vec![
            s("Angela Merkel", Kind::Person),
            s("Macron", Kind::Person),
            s("Paris", Kind::Other),
        ];
        let sp = score(&gold, &pred, false);
        assert_eq!(
            sp,
            Score {
                tp: 2,
                fp: 1,
                fn_: 1
            }
        );
        assert!((sp.f1() - 2.0 / 3.0).abs() < 1e-9);
        assert_eq!(
            score(&gold, &pred, true),
            Score {
                tp: 1,
                fp: 2,
                fn_: 2
            }
        );
    }

    #[test]
    fn heuristic_report_has_all_subsets() {
        let set = builtin_labelled().unwrap();
        let rows = evaluate(&mut HeuristicBackend, &set).unwrap();
        let subsets: Vec<&str> = rows.iter().map(|r| r.subset.as_str()).collect();
        assert_eq!(subsets, ["all", "entity", "non_entity"]);
        assert_eq!(rows[0].captions as usize, set.len());
        assert_eq!(rows[1].captions + rows[2].captions, rows[0].captions);
        // A real baseline: well above zero, well below perfect.
        let f1 = rows[0].span.f1();
        assert!(f1 > 0.3 && f1 < 0.95, "heuristic F1 {f1}");
        let md = markdown_table(&rows);
        assert!(md.starts_with("| backend | subset |"));
        assert_eq!(md.lines().count(), 2 + rows.len());
        println!("{md}");
    }
}
