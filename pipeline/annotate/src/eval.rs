//! Quality report: span-level precision / recall / F1 and main-subject recall of a backend
//! against the labelled set (`data/annotate/labelled.jsonl`), by subset, as a Markdown table.
//!
//! A predicted subject counts as correct when its byte span equals a gold span exactly
//! (`span` columns); the `typed` columns also require the same kind. Answers rejected with
//! an error class count as predicting nothing (so they cost recall) and are counted apart.
//!
//! **Main-subject recall**: over the captions whose label names a main subject (what the
//! photo is mostly of), the share whose top predicted subject has exactly the main subject's
//! span. The top predicted subject is the one with the highest weight, the earliest in the
//! caption on ties; a caption with no prediction is a miss.
//!
//! Subsets: `written` (captions written for the project), `real-tune` and `real-heldout`
//! (real outlet captions, split by page; prompts and rules are tuned on `real-tune` only),
//! and the paper's `entity` / `non_entity` across all sources.

use std::collections::BTreeMap;
use std::ops::AddAssign;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::backend::{Backend, GenStats};
use crate::subject::{Kind, Subject, WEIGHT_NEUTRAL};
use crate::{Error, Result};

/// The labelled set shipped with the crate.
pub const LABELLED_JSONL: &str = include_str!("../../../data/annotate/labelled.jsonl");

/// Report subsets, in report order.
pub const SUBSETS: [&str; 6] = [
    "all",
    "written",
    "real-tune",
    "real-heldout",
    "entity",
    "non_entity",
];

/// A hand-labelled subject.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct GoldSubject {
    /// Exact text as in the caption (first word-bounded occurrence).
    pub text: String,
    /// Kind.
    pub kind: Kind,
}

fn written() -> String {
    "written".to_string()
}

/// One labelled caption.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct LabelledCaption {
    /// Stable id (`lab-001` written, `real-001` real).
    pub id: String,
    /// `written` (composed for the project) or `real` (a saved outlet page's caption).
    #[serde(default = "written")]
    pub source: String,
    /// For real captions, the saved page (`bbc/2019-....html` under tests/fixtures/outlets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
    /// For real captions, `tune` or `heldout` (fixed per page).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split: Option<String>,
    /// `entity` or `non_entity`, the paper's two subsets.
    pub subset: String,
    /// The caption.
    pub caption: String,
    /// Gold subjects.
    pub subjects: Vec<GoldSubject>,
    /// The main subject's text (one of `subjects`), when labelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub main: Option<String>,
}

impl LabelledCaption {
    /// Gold subjects located in the caption.
    pub fn gold(&self) -> std::result::Result<Vec<Subject>, crate::subject::SpanError> {
        self.subjects
            .iter()
            .map(|g| Subject::locate(&self.caption, &g.text, WEIGHT_NEUTRAL, g.kind))
            .collect()
    }

    /// The gold main subject located in the caption, when labelled.
    pub fn gold_main(&self) -> std::result::Result<Option<Subject>, crate::subject::SpanError> {
        let Some(text) = &self.main else {
            return Ok(None);
        };
        let kind = self
            .subjects
            .iter()
            .find(|g| &g.text == text)
            .map_or(Kind::Other, |g| g.kind);
        Subject::locate(&self.caption, text, WEIGHT_NEUTRAL, kind).map(Some)
    }

    /// The source subset: `written`, `real-tune` or `real-heldout`.
    pub fn group(&self) -> &'static str {
        match (self.source.as_str(), self.split.as_deref()) {
            ("real", Some("heldout")) => "real-heldout",
            ("real", _) => "real-tune",
            _ => "written",
        }
    }

    /// True when the caption belongs to `subset` (any of [`SUBSETS`], or `real` for both
    /// real splits).
    pub fn in_subset(&self, subset: &str) -> bool {
        match subset {
            "all" => true,
            "real" => self.source == "real",
            "entity" | "non_entity" => self.subset == subset,
            g => self.group() == g,
        }
    }

    fn check(&self) -> std::result::Result<(), String> {
        if self.subset != "entity" && self.subset != "non_entity" {
            return Err(format!("subset {:?} is not entity/non_entity", self.subset));
        }
        match (self.source.as_str(), self.split.as_deref()) {
            ("written", None) => {}
            ("written", Some(s)) => return Err(format!("written caption with split {s:?}")),
            ("real", Some("tune" | "heldout")) if self.page.is_some() => {}
            ("real", _) => return Err("real caption needs a page and split tune/heldout".into()),
            (s, _) => return Err(format!("source {s:?} is not written/real")),
        }
        if let Some(m) = &self.main
            && !self.subjects.iter().any(|g| &g.text == m)
        {
            return Err(format!("main {m:?} is not one of the subjects"));
        }
        self.gold().map_err(|e| e.to_string())?;
        Ok(())
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
        c.check().map_err(bad)?;
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

/// The captions of `set` in `subset` (see [`LabelledCaption::in_subset`]).
pub fn select(set: &[LabelledCaption], subset: &str) -> Vec<LabelledCaption> {
    set.iter()
        .filter(|c| c.in_subset(subset))
        .cloned()
        .collect()
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

/// Main-subject hits over the captions that have a labelled main subject.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct MainScore {
    /// Captions whose top predicted subject is the gold main subject.
    pub hits: u64,
    /// Captions with a labelled main subject.
    pub total: u64,
}

impl MainScore {
    /// `hits / total`; `None` when no caption has a labelled main subject.
    pub fn recall(&self) -> Option<f64> {
        (self.total > 0).then(|| self.hits as f64 / self.total as f64)
    }
}

impl AddAssign for MainScore {
    fn add_assign(&mut self, o: Self) {
        self.hits += o.hits;
        self.total += o.total;
    }
}

/// The predicted subject with the highest weight, the earliest in the caption on ties.
pub fn top_subject(pred: &[Subject]) -> Option<&Subject> {
    pred.iter()
        .fold(None, |best: Option<&Subject>, s| match best {
            Some(b) if b.weight > s.weight || (b.weight == s.weight && b.start <= s.start) => {
                Some(b)
            }
            _ => Some(s),
        })
}

/// Scores the main subject: counts one caption when `main` is labelled, a hit when the top
/// predicted subject has its exact span.
pub fn score_main(main: Option<&Subject>, pred: &[Subject]) -> MainScore {
    let Some(m) = main else {
        return MainScore::default();
    };
    let hit = top_subject(pred).is_some_and(|t| t.start == m.start && t.end == m.end);
    MainScore {
        hits: u64::from(hit),
        total: 1,
    }
}

/// One row of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportRow {
    /// Backend name, with its prompt version when it has one.
    pub backend: String,
    /// One of [`SUBSETS`].
    pub subset: String,
    /// Captions scored.
    pub captions: u64,
    /// Exact-span score.
    pub span: Score,
    /// Exact-span-and-kind score.
    pub typed: Score,
    /// Main-subject score.
    pub main: MainScore,
    /// Answers rejected with an error class.
    pub errors: u64,
    /// Token and timing totals.
    #[serde(skip)]
    pub stats: GenStats,
}

/// What a backend answered for one labelled caption.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    /// The labelled caption's id.
    pub id: String,
    /// Predicted subjects.
    pub subjects: Vec<Subject>,
    /// Error class of a rejected answer.
    pub error: Option<String>,
}

/// Runs `backend` over the labelled set and scores it by subset plus `all`.
pub fn evaluate(backend: &mut dyn Backend, set: &[LabelledCaption]) -> Result<Vec<ReportRow>> {
    evaluate_detailed(backend, set).map(|(rows, _)| rows)
}

/// [`evaluate`], also returning each caption's prediction (in `set` order).
pub fn evaluate_detailed(
    backend: &mut dyn Backend,
    set: &[LabelledCaption],
) -> Result<(Vec<ReportRow>, Vec<Prediction>)> {
    let label = match backend.prompt_version() {
        Some(v) => format!("{} ({v})", backend.name()),
        None => backend.name().to_string(),
    };
    let mut rows: BTreeMap<String, ReportRow> = BTreeMap::new();
    let mut preds = Vec::with_capacity(set.len());
    for c in set {
        let bad = |e: crate::subject::SpanError| Error::Labelled {
            path: "labelled".into(),
            line: 0,
            detail: format!("{}: {e}", c.id),
        };
        let gold = c.gold().map_err(bad)?;
        let main = c.gold_main().map_err(bad)?;
        let ann = backend.annotate(&c.caption)?;
        for subset in SUBSETS.iter().filter(|s| c.in_subset(s)) {
            let row = rows.entry(subset.to_string()).or_insert_with(|| ReportRow {
                backend: label.clone(),
                subset: subset.to_string(),
                captions: 0,
                span: Score::default(),
                typed: Score::default(),
                main: MainScore::default(),
                errors: 0,
                stats: GenStats::default(),
            });
            row.captions += 1;
            row.span += score(&gold, &ann.subjects, false);
            row.typed += score(&gold, &ann.subjects, true);
            row.main += score_main(main.as_ref(), &ann.subjects);
            row.errors += u64::from(ann.error.is_some());
            row.stats += ann.stats;
        }
        preds.push(Prediction {
            id: c.id.clone(),
            error: ann.error.as_ref().map(|e| e.class.as_str().to_string()),
            subjects: ann.subjects,
        });
    }
    let out = SUBSETS.iter().filter_map(|k| rows.remove(*k)).collect();
    Ok((out, preds))
}

/// Renders report rows as a Markdown table.
pub fn markdown_table(rows: &[ReportRow]) -> String {
    let mut s = String::from(
        "| backend | subset | captions | span P | span R | span F1 | typed F1 | main R | errors |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for r in rows {
        let main = match r.main.recall() {
            Some(m) => format!("{m:.3} ({}/{})", r.main.hits, r.main.total),
            None => "-".to_string(),
        };
        s.push_str(&format!(
            "| {} | {} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {} | {} |\n",
            r.backend,
            r.subset,
            r.captions,
            r.span.precision(),
            r.span.recall(),
            r.span.f1(),
            r.typed.f1(),
            main,
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
    fn real_captions_have_pages_splits_and_a_main_subject() {
        let set = builtin_labelled().unwrap();
        let real: Vec<_> = set.iter().filter(|c| c.source == "real").collect();
        assert!(real.len() >= 80, "{}", real.len());
        let held = real.iter().filter(|c| c.group() == "real-heldout").count();
        // Both sides big enough to say something.
        assert!(
            held >= 40 && real.len() - held >= 40,
            "heldout {held} of {}",
            real.len()
        );
        for c in &real {
            assert!(
                c.gold_main().unwrap().is_some(),
                "{} has no main subject",
                c.id
            );
        }
        // The split is by page: no page has captions on both sides.
        for c in &real {
            for d in &real {
                if c.page == d.page {
                    assert_eq!(c.split, d.split, "{} / {}", c.id, d.id);
                }
            }
        }
        assert!(set.iter().filter(|c| c.source == "written").count() >= 140);
    }

    #[test]
    fn labelled_lines_check_source_split_and_main() {
        let ok = r#"{"id":"r","source":"real","page":"p.html","split":"heldout","subset":"entity","caption":"Rain in Spain","subjects":[{"text":"Rain","kind":"other"},{"text":"Spain","kind":"place"}],"main":"Spain"}"#;
        let set = parse_labelled(ok, Path::new("t")).unwrap();
        assert_eq!(set[0].group(), "real-heldout");
        assert_eq!(set[0].gold_main().unwrap().unwrap().start, 8);
        for bad in [
            ok.replace(r#""main":"Spain""#, r#""main":"Rain in""#),
            ok.replace(r#""split":"heldout","#, ""),
            ok.replace("heldout", "test"),
            ok.replace(r#""source":"real""#, r#""source":"web""#),
            ok.replace(r#""source":"real""#, r#""source":"written""#),
        ] {
            assert!(parse_labelled(&bad, Path::new("t")).is_err(), "{bad}");
        }
        // Written captions without the new fields still parse.
        let old = r#"{"id":"x","subset":"entity","caption":"Rain in Spain","subjects":[{"text":"Spain","kind":"place"}]}"#;
        let c = &parse_labelled(old, Path::new("t")).unwrap()[0];
        assert_eq!((c.group(), c.main.clone()), ("written", None));
    }

    #[test]
    fn main_recall_takes_the_heaviest_then_earliest_prediction() {
        let cap = "Angela Merkel meets Emmanuel Macron in Paris";
        let s = |t: &str, w| Subject::locate(cap, t, w, Kind::Person).unwrap();
        let main = s("Emmanuel Macron", 1.0);
        let hit = MainScore { hits: 1, total: 1 };
        let miss = MainScore { hits: 0, total: 1 };
        // Heaviest wins wherever it is.
        let pred = [s("Angela Merkel", 1.1), s("Emmanuel Macron", 1.21)];
        assert_eq!(score_main(Some(&main), &pred), hit);
        // Equal weights: the earliest.
        let pred = [s("Angela Merkel", 1.1), s("Emmanuel Macron", 1.1)];
        assert_eq!(score_main(Some(&main), &pred), miss);
        let pred = [s("Emmanuel Macron", 1.1), s("Angela Merkel", 1.1)];
        assert_eq!(top_subject(&pred).unwrap().text, "Angela Merkel");
        // A partial span is a miss, nothing predicted is a miss, no label counts nothing.
        assert_eq!(score_main(Some(&main), &[s("Macron", 1.4641)]), miss);
        assert_eq!(score_main(Some(&main), &[]), miss);
        assert_eq!(score_main(None, &pred), MainScore::default());
        let mut m = hit;
        m += miss;
        assert_eq!(m.recall(), Some(0.5));
        assert_eq!(MainScore::default().recall(), None);
    }

    #[test]
    fn heuristic_report_has_all_subsets() {
        let set = builtin_labelled().unwrap();
        let (rows, preds) = evaluate_detailed(&mut HeuristicBackend, &set).unwrap();
        let subsets: Vec<&str> = rows.iter().map(|r| r.subset.as_str()).collect();
        assert_eq!(subsets, SUBSETS);
        assert_eq!(preds.len(), set.len());
        assert_eq!(rows[0].captions as usize, set.len());
        assert_eq!(
            rows[1].captions + rows[2].captions + rows[3].captions,
            rows[0].captions
        );
        assert_eq!(rows[4].captions + rows[5].captions, rows[0].captions);
        // Main recall is counted on the captions that label a main subject.
        let with_main = set.iter().filter(|c| c.main.is_some()).count() as u64;
        assert_eq!(rows[0].main.total, with_main);
        assert_eq!(rows[2].main.total + rows[3].main.total, with_main);
        // A real baseline: well above zero, well below perfect.
        let f1 = rows[0].span.f1();
        assert!(f1 > 0.3 && f1 < 0.95, "heuristic F1 {f1}");
        let md = markdown_table(&rows);
        assert!(md.starts_with("| backend | subset |"));
        assert!(md.contains("| heuristic | real-heldout |"), "{md}");
        assert!(
            md.contains("| heuristic | written | 154 |") && md.contains(" | - | "),
            "{md}"
        );
        assert_eq!(md.lines().count(), 2 + rows.len());
        println!("{md}");
    }
}
