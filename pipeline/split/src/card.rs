//! The `card` step: the dataset card and its two summary tables, written beside the export.
//!
//! - `dataset/README.md`: Hugging Face's YAML header (`configs` with one `data_files` entry per
//!   split, `dataset_info` with example counts and bytes per split), counts per outlet, split and subset, the
//!   filtering funnel per outlet, and the notice that the images remain their publishers'
//!   copyright;
//! - `dataset/funnel.parquet`: pairs per (reason, outlet), `kept` included;
//! - `dataset/stats.parquet`: pairs per (subset, split, outlet, topic);
//! - `dataset/topics.png`: the topics of the published pairs, one panel per subset, each bar
//!   split by outlet (the card's "Topics" table as a figure).
//!
//! It also removes published files that the current `export` run did not write (from an
//! earlier run with a different number of parts, say), so the folder is exactly the dataset.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;

use anchor_core::PartStats;
use anchor_core::columns::{Columns, opt_str};
use anchor_core::ledger;
use anchor_core::step::{BoxError, PartSink, Step, StepCtx, StepId};
use anchor_core::tables::{TableDef, pairs_curated, splits};
use anchor_filters::DropReason;
use anchor_text::Topic;
use arrow_array::builder::{Int32Builder, Int64Builder, StringBuilder};
use arrow_array::{Array, ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema};

use crate::export::{self, ExportStep, FILE_BYTES_PREFIX, FILE_COUNTER_PREFIX};
use crate::{Error, Result, SPLITS, SUBSETS};

/// The `card` step.
#[derive(Debug, Default)]
pub struct CardStep;

/// One published file: its rows and its size on disk.
#[derive(Debug, Clone, Copy, Default)]
struct FileFacts {
    rows: u64,
    bytes: u64,
}

/// Reads the files the complete `export` run wrote, from its part markers.
fn exported_files(out: &Path) -> Result<BTreeMap<String, FileFacts>> {
    if ledger::complete_record(out, ExportStep::NAME)?.is_none() {
        return Err(Error::Inconsistent(
            "the export step has not completed; run `anchor split` (it runs split, export, card)"
                .to_owned(),
        ));
    }
    let mut files = BTreeMap::new();
    for marker in ledger::read_markers(out, ExportStep::NAME)?.values() {
        for (name, rows) in &marker.stats.counters {
            if let Some(file) = name.strip_prefix(FILE_COUNTER_PREFIX) {
                files
                    .entry(file.to_owned())
                    .or_insert_with(FileFacts::default)
                    .rows = *rows;
            } else if let Some(file) = name.strip_prefix(FILE_BYTES_PREFIX) {
                files
                    .entry(file.to_owned())
                    .or_insert_with(FileFacts::default)
                    .bytes = *rows;
            }
        }
    }
    Ok(files)
}

/// Removes shard files the export no longer lists and the hidden temporaries that a killed
/// run left, in the subset folders and beside the card (its README, figure and tables).
fn remove_unlisted(dir: &Path, files: &BTreeMap<String, FileFacts>) -> Result<usize> {
    let mut removed = 0;
    for folder in std::iter::once(None).chain(SUBSETS.iter().map(Some)) {
        let sub = folder.map_or_else(|| dir.to_path_buf(), |s| dir.join(s));
        let Ok(entries) = std::fs::read_dir(&sub) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let stale = folder.is_some_and(|subset| {
                name.ends_with(".parquet") && !files.contains_key(&format!("{subset}/{name}"))
            });
            let temp = name.starts_with('.') && name.ends_with(".tmp");
            if stale || temp {
                std::fs::remove_file(entry.path()).map_err(|source| Error::Io {
                    path: entry.path(),
                    source,
                })?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}

/// Writes `path` whole or not at all: `write` fills a temporary file beside it, which then
/// replaces it.
fn replace_file(path: &Path, write: impl FnOnce(&Path) -> std::io::Result<()>) -> Result<()> {
    let tmp = ledger::unique_temporary(path);
    write(&tmp).map_err(|source| Error::Io {
        path: tmp.clone(),
        source,
    })?;
    std::fs::rename(&tmp, path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Published pairs per (subset, split, outlet, topic).
pub(crate) type Counts = BTreeMap<(String, String, String, Topic), u64>;

/// The topic figure's file name, beside the card.
pub const TOPICS_PNG: &str = "topics.png";

/// The "Topics" section: published pairs per topic, by outlet and by subset.
fn topics_table(body: &mut String, outlets: &BTreeSet<&str>, counts: &Counts) {
    let total: u64 = counts.values().sum();
    let _ = writeln!(
        body,
        "\n## Topics\n\nThe article's section, mapped to a fixed set of topics (`topic`; the \
         mapping is documented with the `pairs_curated` table of the anchor repository). \
         Published pairs per topic:\n\n![Published pairs per topic, by subset and outlet]({TOPICS_PNG})\n"
    );
    let _ = write!(body, "| topic |");
    for o in outlets {
        let _ = write!(body, " {o} |");
    }
    for subset in SUBSETS {
        let _ = write!(body, " {subset} |");
    }
    let _ = writeln!(
        body,
        " total | share |\n|---|{}---|---|",
        "---|".repeat(outlets.len() + SUBSETS.len())
    );
    for topic in Topic::ALL {
        let of = |keep: &dyn Fn(&str, &str) -> bool| -> u64 {
            counts
                .iter()
                .filter(|((su, _, o, t), _)| *t == topic && keep(su, o))
                .map(|(_, n)| n)
                .sum()
        };
        let row_total = of(&|_, _| true);
        if row_total == 0 {
            continue;
        }
        let _ = write!(body, "| {topic} |");
        for outlet in outlets {
            let _ = write!(body, " {} |", of(&|_, o| o == *outlet));
        }
        for subset in SUBSETS {
            let _ = write!(body, " {} |", of(&|su, _| su == subset));
        }
        let share = 100.0 * row_total as f64 / total.max(1) as f64;
        let _ = writeln!(body, " {row_total} | {share:.1}% |");
    }
}

/// Per-pair facts the card counts.
struct Counted {
    outlet: String,
    reason: String,
    split: Option<String>,
    subset: String,
    topic: Topic,
    /// Has a CLIP-IQA score (curate ran with CLIP weights and decoded the image).
    clip: bool,
}

fn read_counted(ctx: &StepCtx) -> Result<Vec<Counted>> {
    let mut split_of: BTreeMap<String, String> = BTreeMap::new();
    for batch in ctx.reader(splits::NAME)?.read_all(None, 8192) {
        let batch = batch?;
        let c = Columns::new(&batch, splits::NAME);
        let (id, split) = (c.utf8(splits::ID)?, c.utf8(splits::SPLIT)?);
        for r in 0..batch.num_rows() {
            split_of.insert(id.value(r).to_owned(), split.value(r).to_owned());
        }
    }
    let mut out = Vec::new();
    let cols = [
        pairs_curated::ID,
        pairs_curated::OUTLET,
        pairs_curated::SUBSET,
        pairs_curated::TOPIC,
        pairs_curated::DROP_REASON,
        pairs_curated::CLIP_IQA,
    ];
    for batch in ctx.reader(pairs_curated::NAME)?.read_all(Some(&cols), 8192) {
        let batch = batch?;
        let c = Columns::new(&batch, pairs_curated::NAME);
        let id = c.utf8(pairs_curated::ID)?;
        let outlet = c.utf8(pairs_curated::OUTLET)?;
        let subset = c.utf8(pairs_curated::SUBSET)?;
        let topic = c.utf8(pairs_curated::TOPIC)?;
        let reason = c.utf8(pairs_curated::DROP_REASON)?;
        let clip = crate::export::float32(&batch, pairs_curated::CLIP_IQA)?;
        for r in 0..batch.num_rows() {
            out.push(Counted {
                outlet: outlet.value(r).to_owned(),
                reason: opt_str(reason, r).unwrap_or("kept").to_owned(),
                split: split_of.get(id.value(r)).cloned(),
                subset: subset.value(r).to_owned(),
                topic: topic_of(id.value(r), topic.value(r))?,
                clip: !clip.is_null(r),
            });
        }
    }
    Ok(out)
}

/// A `pairs_curated` row's topic; a name outside [`Topic::ALL`] (a table curate did not
/// write) is an error naming the row, not a count that no table row shows.
fn topic_of(id: &str, name: &str) -> Result<Topic> {
    Topic::parse(name).ok_or_else(|| {
        Error::Inconsistent(format!(
            "{} row {id}: topic {name:?} is not one of the topics; run `anchor curate --force`",
            pairs_curated::NAME
        ))
    })
}

/// Funnel order: every drop reason in the order curate applies them, then `kept`.
fn stage_of(reason: &str) -> i32 {
    DropReason::ALL
        .iter()
        .position(|r| r.as_str() == reason)
        .map_or(DropReason::ALL.len() as i32, |p| p as i32)
}

fn write_parquet(path: &Path, batch: &RecordBatch) -> Result<()> {
    let def = TableDef {
        name: "dataset_summary",
        schema: anchor_core::tables::dataset::schema,
        row_group_rows: 8192,
    };
    let mut w = anchor_core::store::PartWriter::create_at(
        path.to_path_buf(),
        &def,
        "",
        None,
        batch.schema(),
    )?;
    w.write(batch)?;
    w.commit()?;
    Ok(())
}

fn funnel_batch(funnel: &BTreeMap<(i32, String, String), u64>) -> Result<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("stage", DataType::Int32, false),
        Field::new("reason", DataType::Utf8, false),
        Field::new("outlet", DataType::Utf8, false),
        Field::new("pairs", DataType::Int64, false),
    ]));
    let mut stage = Int32Builder::new();
    let mut reason = StringBuilder::new();
    let mut outlet = StringBuilder::new();
    let mut n = Int64Builder::new();
    for ((s, r, o), c) in funnel {
        stage.append_value(*s);
        reason.append_value(r);
        outlet.append_value(o);
        n.append_value(i64::try_from(*c).unwrap_or(i64::MAX));
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(stage.finish()),
        Arc::new(reason.finish()),
        Arc::new(outlet.finish()),
        Arc::new(n.finish()),
    ];
    Ok(RecordBatch::try_new(schema, cols)?)
}

fn stats_batch(counts: &Counts) -> Result<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("subset", DataType::Utf8, false),
        Field::new("split", DataType::Utf8, false),
        Field::new("outlet", DataType::Utf8, false),
        Field::new("topic", DataType::Utf8, false),
        Field::new("pairs", DataType::Int64, false),
    ]));
    let mut subset = StringBuilder::new();
    let mut split = StringBuilder::new();
    let mut outlet = StringBuilder::new();
    let mut topic = StringBuilder::new();
    let mut n = Int64Builder::new();
    // Rows by topic name, as the table's other columns sort.
    let mut rows: Vec<_> = counts.iter().collect();
    rows.sort_by_key(|((su, sp, o, t), _)| (su, sp, o, t.as_str()));
    for ((su, sp, o, t), c) in rows {
        subset.append_value(su);
        split.append_value(sp);
        outlet.append_value(o);
        topic.append_value(t.as_str());
        n.append_value(i64::try_from(*c).unwrap_or(i64::MAX));
    }
    let cols: Vec<ArrayRef> = vec![
        Arc::new(subset.finish()),
        Arc::new(split.finish()),
        Arc::new(outlet.finish()),
        Arc::new(topic.finish()),
        Arc::new(n.finish()),
    ];
    Ok(RecordBatch::try_new(schema, cols)?)
}

/// Renders the card.
fn render(
    files: &BTreeMap<String, FileFacts>,
    counted: &[Counted],
    funnel: &BTreeMap<(i32, String, String), u64>,
    counts: &Counts,
) -> String {
    let outlets: BTreeSet<&str> = counted.iter().map(|c| c.outlet.as_str()).collect();
    let mut yaml = String::new();
    yaml.push_str("---\nlicense: other\nlicense_name: publishers-copyright\n");
    yaml.push_str("pretty_name: ANCHOR news caption–image dataset\n");
    yaml.push_str("language:\n- en\ntask_categories:\n- text-to-image\n- image-to-text\n");
    yaml.push_str("tags:\n- news\n- captions\n- anchor\nconfigs:\n");
    let mut info = String::from("dataset_info:\n");
    for subset in SUBSETS {
        let present: Vec<&str> = SPLITS
            .iter()
            .copied()
            .filter(|split| {
                files
                    .keys()
                    .any(|f| f.starts_with(&format!("{subset}/{split}-")))
            })
            .collect();
        if present.is_empty() {
            continue;
        }
        let _ = writeln!(yaml, "- config_name: {subset}\n  data_files:");
        let _ = writeln!(info, "- config_name: {subset}\n  splits:");
        let mut subset_bytes = 0u64;
        for split in present {
            let _ = writeln!(
                yaml,
                "  - split: {split}\n    path: {subset}/{split}-*.parquet"
            );
            let (n, bytes) = files
                .iter()
                .filter(|(f, _)| f.starts_with(&format!("{subset}/{split}-")))
                .fold((0u64, 0u64), |(n, b), (_, f)| (n + f.rows, b + f.bytes));
            subset_bytes += bytes;
            let _ = writeln!(
                info,
                "  - name: {split}\n    num_bytes: {bytes}\n    num_examples: {n}"
            );
        }
        // The published files are the download; `num_bytes` counts their bytes on disk.
        let _ = writeln!(
            info,
            "  download_size: {subset_bytes}\n  dataset_size: {subset_bytes}"
        );
    }
    let mut body = String::new();
    let total = counted.len();
    let kept = counted.iter().filter(|c| c.reason == "kept").count();
    let _ = writeln!(
        body,
        "# ANCHOR news caption–image dataset\n\n\
         Caption–image pairs from news outlets, built with `anchor` \
         (a reproduction of ANCHOR, arXiv 2404.10141): scraped, deduplicated (exact and \
         perceptual-hash near duplicates, no near-duplicate cluster or article across splits), \
         filtered for quality and NSFW content, with cleaned captions and credits kept apart. \
         {kept} of {total} scraped pairs are kept.\n\n\
         ## Copyright\n\n\
         **The images and captions remain the copyright of their publishers** (the outlet named \
         in `outlet`, and the photographer or agency in `credit`). They are distributed for \
         non-commercial research only; check each publisher's terms before any other use.\n\n\
         ## Loading\n\n\
         ```python\nfrom datasets import load_dataset\n\
         ds = load_dataset(\"parquet\", data_files={{\"train\": \"entity/train-*.parquet\"}})\n\
         # or: load_dataset(\"path/to/dataset\", \"entity\")\n```\n\n\
         Polars: `pl.read_parquet(\"entity/*.parquet\")`; DuckDB: \
         `SELECT * FROM 'entity/*.parquet'`.\n"
    );
    let _ = writeln!(body, "## Pairs per outlet, split and subset\n");
    let _ = write!(body, "| outlet |");
    for subset in SUBSETS {
        for split in SPLITS {
            let _ = write!(body, " {subset}/{split} |");
        }
    }
    let _ = writeln!(body, " total |");
    let _ = writeln!(
        body,
        "|---|{}---|",
        "---|".repeat(SUBSETS.len() * SPLITS.len())
    );
    for outlet in outlets.iter().chain(std::iter::once(&"all")) {
        let _ = write!(body, "| {outlet} |");
        let mut row_total = 0;
        for subset in SUBSETS {
            for split in SPLITS {
                let n: u64 = counts
                    .iter()
                    .filter(|((su, sp, o, _), _)| {
                        su == subset && sp == split && (*outlet == "all" || o == outlet)
                    })
                    .map(|(_, n)| n)
                    .sum();
                row_total += n;
                let _ = write!(body, " {n} |");
            }
        }
        let _ = writeln!(body, " {row_total} |");
    }
    let _ = writeln!(
        body,
        "\n## Filtering funnel\n\nEvery scraped pair is counted once: kept, or under the first \
         filter it failed (in the order applied; duplicates are resolved last, among pairs that \
         passed every other filter).\n"
    );
    let _ = write!(body, "| reason |");
    for o in &outlets {
        let _ = write!(body, " {o} |");
    }
    let _ = writeln!(body, " total |\n|---|{}---|", "---|".repeat(outlets.len()));
    let reasons: BTreeSet<(i32, &str)> = funnel.keys().map(|(s, r, _)| (*s, r.as_str())).collect();
    for (stage, reason) in reasons {
        let _ = write!(body, "| {reason} |");
        let mut sum = 0;
        for o in &outlets {
            let n = funnel
                .get(&(stage, reason.to_owned(), (*o).to_owned()))
                .copied()
                .unwrap_or(0);
            sum += n;
            let _ = write!(body, " {n} |");
        }
        let _ = writeln!(body, " {sum} |");
    }
    topics_table(&mut body, &outlets, counts);
    let clip = counted
        .iter()
        .filter(|c| c.reason == "kept" && c.clip)
        .count();
    let _ = if clip == 0 {
        writeln!(
            body,
            "\nCLIP scores (`clip_similarity`, `clip_iqa`) are null: curate ran without CLIP \
             weights (`anchor curate --clip DIR` fills them)."
        )
    } else {
        writeln!(
            body,
            "\nCLIP scores (`clip_similarity`, `clip_iqa`) are filled for {clip} of the {kept} \
             kept pairs."
        )
    };
    let _ = writeln!(
        body,
        "\nThe columns are documented in `schemas/dataset.md` of the anchor repository; \
         `funnel.parquet` and `stats.parquet` hold the tables above."
    );
    format!("{yaml}{info}---\n\n{body}")
}

impl StepId for CardStep {
    /// Step name.
    const NAME: &'static str = "card";
    /// Bump when output semantics change (3: bytes per split in `dataset_info`; 4: topics).
    const VERSION: u32 = 4;
}

impl Step for CardStep {
    fn params(&self) -> serde_json::Result<serde_json::Value> {
        Ok(serde_json::json!({}))
    }
    fn inputs(&self) -> Vec<&'static str> {
        vec![pairs_curated::NAME, splits::NAME]
    }
    fn outputs(&self) -> Vec<&'static TableDef> {
        Vec::new()
    }
    fn plan(&self, _ctx: &StepCtx) -> std::result::Result<usize, BoxError> {
        Ok(1)
    }

    fn run_part(
        &self,
        _part: usize,
        ctx: &StepCtx,
        _sink: &mut PartSink,
    ) -> std::result::Result<PartStats, BoxError> {
        let out = ctx.out();
        let dir = export::dataset_dir(out);
        let files = exported_files(out)?;
        let removed = remove_unlisted(&dir, &files)?;
        let counted = read_counted(ctx)?;
        let mut funnel: BTreeMap<(i32, String, String), u64> = BTreeMap::new();
        let mut counts = Counts::new();
        for c in &counted {
            *funnel
                .entry((stage_of(&c.reason), c.reason.clone(), c.outlet.clone()))
                .or_default() += 1;
            if let Some(split) = &c.split {
                *counts
                    .entry((c.subset.clone(), split.clone(), c.outlet.clone(), c.topic))
                    .or_default() += 1;
            }
        }
        let exported: u64 = files.values().map(|f| f.rows).sum();
        let in_splits: u64 = counts.values().sum();
        if exported != in_splits {
            return Err(Error::Inconsistent(format!(
                "the export holds {exported} rows but splits assigns {in_splits}; \
                 run `anchor split --force`"
            ))
            .into());
        }
        write_parquet(&dir.join("funnel.parquet"), &funnel_batch(&funnel)?)?;
        write_parquet(&dir.join("stats.parquet"), &stats_batch(&counts)?)?;
        replace_file(&dir.join(TOPICS_PNG), |tmp| {
            crate::topics::write_png(tmp, &counts)
        })?;
        let card = render(&files, &counted, &funnel, &counts);
        replace_file(&dir.join("README.md"), |tmp| std::fs::write(tmp, &card))?;
        let mut stats = PartStats::default();
        stats.count("files", files.len() as u64);
        stats.count("stale_files_removed", removed as u64);
        stats.count("rows", exported);
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_killed_run_s_temporaries_and_unlisted_shards_are_removed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        std::fs::create_dir_all(dir.join("entity")).unwrap();
        let kept = [
            "README.md",
            "stats.parquet",
            "entity/test-00000-of-00001.parquet",
        ];
        let leftovers = [
            ".README.md.41.0.tmp",
            ".topics.png.41.1.tmp",
            "entity/.test-00000-of-00001.parquet.41.2.tmp",
            "entity/train-00000-of-00001.parquet",
        ];
        for name in kept.iter().chain(&leftovers) {
            std::fs::write(dir.join(name), b"x").unwrap();
        }
        let listed = BTreeMap::from([(
            "entity/test-00000-of-00001.parquet".to_owned(),
            FileFacts { rows: 1, bytes: 1 },
        )]);
        assert_eq!(remove_unlisted(dir, &listed).unwrap(), leftovers.len());
        for name in kept {
            assert!(dir.join(name).exists(), "{name} was removed");
        }
        for name in leftovers {
            assert!(!dir.join(name).exists(), "{name} was left");
        }
    }

    #[test]
    fn a_topic_outside_the_set_names_its_row() {
        assert_eq!(topic_of("a1", "sport").ok(), Some(Topic::Sport));
        let e = topic_of("a1", "Sports").unwrap_err().to_string();
        assert!(
            e.contains("pairs_curated row a1") && e.contains("\"Sports\" is not one of the topics"),
            "{e}"
        );
    }
}
