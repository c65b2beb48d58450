//! The `annotate` step: table `pairs_curated` (kept rows) → table `subjects`.
//!
//! - **Parts** are fixed-size chunks of the kept ids in sorted order, so a part's rows depend
//!   only on the data and `captions_per_part`, never on the shard count.
//! - **Cache** ([`crate::cache`]): every answer is appended durably under
//!   `<out>/annotate/cache/` before its part commits. Re-runs after `kill -9`, runs over more
//!   data, and `--force` re-runs look captions up first; a prompt-version change recomputes
//!   exactly the rows whose key changed. Because a cached answer is replayed verbatim, the
//!   table is byte-identical whether a row was computed or replayed.
//! - **Backend** is built lazily (first cache miss), so a fully cached or up-to-date run
//!   never loads a model; one backend serves every part (behind a mutex: the model already
//!   uses every core).
//! - **Stats**: token counts go to `counters`, seconds to `timings` (`prompt_s`, `gen_s`,
//!   `load_s`); tokens/s are their ratios. Never in the table.
//! - `splits` is an input so that a changed split assignment re-fingerprints the step; its
//!   `split` column feeds the per-split counters (`split_train`, ...).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use anchor_core::PartStats;
use anchor_core::step::{BoxError, PartSink, Step, StepCtx, StepId};
use anchor_core::tables::{TableDef, pairs_curated, splits, subjects};
use arrow_array::RecordBatch;
use serde_json::json;

use crate::backend::{Annotation, Backend, GenStats};
use crate::cache::{Cache, Entry, Identity};
use crate::gguf::{GgufBackend, GgufOptions};
use crate::heuristic::{HEURISTIC_VERSION, HeuristicBackend};
use crate::openai::{OpenAiBackend, OpenAiOptions};
use crate::prompt::Prompt;
use crate::subject::{Kind, Subject};
use anchor_llm::Requant;

/// Default captions per part (the resume and shard unit).
pub const DEFAULT_CAPTIONS_PER_PART: usize = 64;

/// Which backend annotates, with its settings.
#[derive(Debug, Clone)]
pub enum BackendSpec {
    /// No model: capitalised spans and noun phrases.
    Heuristic,
    /// A local GGUF model.
    Gguf {
        /// The model file.
        path: PathBuf,
        /// Requantisation at load.
        requant: Requant,
        /// The prompt.
        prompt: Prompt,
        /// At most this many subjects per caption.
        max_subjects: usize,
    },
    /// An OpenAI-compatible server.
    OpenAi(OpenAiOptions),
}

impl BackendSpec {
    /// Stable backend name.
    pub fn name(&self) -> &'static str {
        match self {
            BackendSpec::Heuristic => "heuristic",
            BackendSpec::Gguf { .. } => "gguf",
            BackendSpec::OpenAi(_) => "openai",
        }
    }

    /// The identity of this backend's answers (model sha256 is read from the file). A
    /// missing GGUF file is an error that says how to fetch it.
    pub fn identity(&self) -> Result<Identity, StepError> {
        Ok(match self {
            BackendSpec::Heuristic => Identity {
                backend: "heuristic".into(),
                model_id: HEURISTIC_VERSION.into(),
                prompt_version: None,
                variant: String::new(),
            },
            BackendSpec::Gguf {
                path,
                requant,
                prompt,
                max_subjects,
            } => {
                check_model(path)?;
                Identity {
                    backend: "gguf".into(),
                    model_id: anchor_digest::sha256_file(path).map_err(|source| {
                        crate::Error::Io {
                            path: path.clone(),
                            source,
                        }
                    })?,
                    prompt_version: Some(prompt.version.clone()),
                    variant: format!(
                        "requant={};max_subjects={max_subjects};prompt_sha256={}",
                        requant_name(*requant),
                        prompt.fingerprint()
                    ),
                }
            }
            BackendSpec::OpenAi(o) => Identity {
                backend: "openai".into(),
                model_id: o.model.clone(),
                prompt_version: Some(o.prompt.version.clone()),
                variant: format!(
                    "max_tokens={};prompt_sha256={}",
                    o.max_tokens,
                    o.prompt.fingerprint()
                ),
            },
        })
    }

    /// Builds the backend (loads the model for `gguf`).
    pub fn build(&self) -> Result<Box<dyn Backend + Send>, StepError> {
        Ok(match self {
            BackendSpec::Heuristic => Box::new(HeuristicBackend),
            BackendSpec::Gguf {
                path,
                requant,
                prompt,
                max_subjects,
            } => {
                check_model(path)?;
                let opts = GgufOptions {
                    requant: *requant,
                    prompt: prompt.clone(),
                    max_subjects: *max_subjects,
                    ..GgufOptions::default()
                };
                Box::new(GgufBackend::load(path, opts)?)
            }
            BackendSpec::OpenAi(o) => Box::new(OpenAiBackend::new(o.clone())),
        })
    }

    /// Captions handed to the backend at once (its concurrency for `openai`).
    fn batch(&self) -> usize {
        match self {
            BackendSpec::OpenAi(o) => o.concurrency.max(1),
            _ => 1,
        }
    }
}

/// Stable name of a requantisation mode (`q8_0`, `keep`).
pub fn requant_name(r: Requant) -> &'static str {
    match r {
        Requant::Keep => "keep",
        Requant::Q8_0 => "q8_0",
    }
}

/// A missing model file names the command that fetches it.
pub fn check_model(path: &Path) -> Result<(), StepError> {
    if path.is_file() {
        Ok(())
    } else {
        Err(StepError::MissingModel {
            path: path.to_path_buf(),
        })
    }
}

/// Errors of the step.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// The GGUF file is not there.
    #[error(
        "model file {} not found: run `make annotate` (or `scripts/fetch-models.sh smollm2`) to fetch SmolLM2-135M-Instruct, or pass --model PATH",
        path.display()
    )]
    MissingModel {
        /// The expected path.
        path: PathBuf,
    },
    /// A backend or cache error.
    #[error(transparent)]
    Annotate(#[from] crate::Error),
    /// An input table is unreadable or has the wrong shape.
    #[error("table {table}: {detail}")]
    Input {
        /// Table name.
        table: &'static str,
        /// What is wrong.
        detail: String,
    },
    /// A core (store, arrow) error.
    #[error(transparent)]
    Core(#[from] anchor_core::Error),
    /// Building the output batch failed.
    #[error("building table subjects: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
}

/// The step's parameters.
#[derive(Debug, Clone)]
pub struct AnnotateParams {
    /// The backend.
    pub backend: BackendSpec,
    /// Kept captions per part.
    pub captions_per_part: usize,
}

/// One caption to annotate.
#[derive(Debug, Clone, PartialEq)]
struct Input {
    id: String,
    caption: String,
    subset: String,
    split: Option<String>,
}

/// One row of table `subjects`.
#[derive(Debug, Clone, PartialEq)]
pub struct SubjectRow {
    /// `pairs.id`.
    pub id: String,
    /// The caption.
    pub caption: String,
    /// Valid subjects in caption order.
    pub subjects: Vec<Subject>,
    /// The raw answer.
    pub raw: String,
    /// Backend name.
    pub backend: String,
    /// Model identity.
    pub model_id: String,
    /// Prompt version.
    pub prompt_version: Option<String>,
    /// Error class of a rejected answer.
    pub error_class: Option<String>,
    /// Detail of a rejected answer.
    pub error_message: Option<String>,
}

/// The `annotate` step.
pub struct AnnotateStep {
    params: AnnotateParams,
    identity: Result<Identity, String>,
    inputs: OnceLock<Arc<Vec<Input>>>,
    cache: OnceLock<Arc<Cache>>,
    backend: Mutex<Option<Box<dyn Backend + Send>>>,
    totals: Mutex<GenStats>,
}

impl std::fmt::Debug for AnnotateStep {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnnotateStep")
            .field("params", &self.params)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl AnnotateStep {
    /// A step with these parameters. A missing model file does not fail here (so `anchor
    /// status` works without it); it fails the run, before anything is written.
    pub fn new(params: AnnotateParams) -> Self {
        let identity = params.backend.identity().map_err(|e| e.to_string());
        AnnotateStep {
            params,
            identity,
            inputs: OnceLock::new(),
            cache: OnceLock::new(),
            backend: Mutex::new(None),
            totals: Mutex::new(GenStats::default()),
        }
    }

    /// The identity answers are cached under.
    pub fn identity(&self) -> Result<&Identity, StepError> {
        match &self.identity {
            Ok(i) => Ok(i),
            Err(_) => {
                Err(self
                    .params
                    .backend
                    .identity()
                    .err()
                    .unwrap_or_else(|| StepError::Input {
                        table: "subjects",
                        detail: "backend identity unavailable".into(),
                    }))
            }
        }
    }

    /// Token and timing totals of the captions this process annotated (cache misses).
    pub fn totals(&self) -> GenStats {
        self.totals.lock().map(|t| *t).unwrap_or_default()
    }

    fn cache(&self, ctx: &StepCtx) -> Result<Arc<Cache>, StepError> {
        if let Some(c) = self.cache.get() {
            return Ok(c.clone());
        }
        let c = Arc::new(Cache::open(&cache_dir(ctx.out()))?);
        Ok(self.cache.get_or_init(|| c).clone())
    }

    fn inputs(&self, ctx: &StepCtx) -> Result<Arc<Vec<Input>>, StepError> {
        if let Some(i) = self.inputs.get() {
            return Ok(i.clone());
        }
        let i = Arc::new(read_inputs(ctx)?);
        Ok(self.inputs.get_or_init(|| i).clone())
    }

    /// Annotates `todo` captions (distinct cache misses) with the backend, appending each
    /// batch to the cache before the next.
    fn annotate_misses(
        &self,
        part: usize,
        ctx: &StepCtx,
        identity: &Identity,
        cache: &Cache,
        todo: &[&str],
        stats: &mut PartStats,
    ) -> Result<HashMap<String, Entry>, StepError> {
        let mut out = HashMap::new();
        if todo.is_empty() {
            return Ok(out);
        }
        let mut guard = self.backend.lock().map_err(|_| StepError::Input {
            table: "subjects",
            detail: "backend lock poisoned by a failed part".into(),
        })?;
        if guard.is_none() {
            let t0 = Instant::now();
            let b = self.params.backend.build()?;
            stats.time("load_s", t0.elapsed().as_secs_f64());
            *guard = Some(b);
        }
        let Some(backend) = guard.as_mut() else {
            unreachable!("backend was just built")
        };
        // Another part may have answered a shared caption while this one waited for the lock.
        let mut todo: Vec<&str> = todo.to_vec();
        todo.retain(|c| match cache.get(&identity.key(c)) {
            Some(e) => {
                out.insert(c.to_string(), e);
                stats.count("cached", 1);
                false
            }
            None => true,
        });
        for batch in todo.chunks(self.params.backend.batch()) {
            let answers = backend.annotate_batch(batch)?;
            let entries: Vec<Entry> = answers.into_iter().map(|a| self.record(a, stats)).collect();
            let items: Vec<(&str, &Entry)> = batch.iter().copied().zip(entries.iter()).collect();
            cache.append(part, identity, &items)?;
            for (c, e) in batch.iter().zip(entries) {
                out.insert(c.to_string(), e);
            }
            let t = self.totals();
            ctx.progress().set_message(format!(
                "{} captions annotated, {:.2} captions/s, prompt {:.0} tok/s, generation {:.1} tok/s",
                t.captions,
                t.captions_per_s(),
                t.prompt_tok_per_s(),
                t.gen_tok_per_s()
            ));
        }
        Ok(out)
    }

    fn record(&self, a: Annotation, stats: &mut PartStats) -> Entry {
        let s = a.stats;
        stats.count("annotated", 1);
        stats.count("prompt_tokens", s.prompt_tokens);
        stats.count("gen_tokens", s.gen_tokens);
        stats.count("forced_tokens", s.forced_tokens);
        stats.count("retries", s.retries);
        stats.time("prompt_s", s.prompt_secs);
        stats.time("gen_s", s.gen_secs);
        if let Ok(mut t) = self.totals.lock() {
            *t += s;
        }
        Entry {
            subjects: a.subjects,
            raw: a.raw,
            error_class: a.error.as_ref().map(|e| e.class.as_str().to_string()),
            error_message: a.error.map(|e| e.detail),
        }
    }
}

/// `<out>/annotate/cache`.
pub fn cache_dir(out: &Path) -> PathBuf {
    out.join(AnnotateStep::NAME).join("cache")
}

fn read_inputs(ctx: &StepCtx) -> Result<Vec<Input>, StepError> {
    let split_of = splits::split_of(&ctx.reader(splits::NAME)?)?;
    let kept = pairs_curated::all_kept(&ctx.reader(pairs_curated::NAME)?)?;
    // By id, as the map holds them: parts are cut from this order.
    Ok(kept
        .into_values()
        .map(|pair| Input {
            split: split_of.get(&pair.id).cloned(),
            id: pair.id,
            caption: pair.caption,
            subset: pair.subset,
        })
        .collect())
}

impl StepId for AnnotateStep {
    /// The step's name: its subcommand and its state folder.
    const NAME: &'static str = "annotate";
    /// Bump when the output semantics change.
    const VERSION: u32 = 1;
}

impl Step for AnnotateStep {
    fn params(&self) -> serde_json::Result<serde_json::Value> {
        let ident = match &self.identity {
            Ok(i) => json!(i),
            Err(e) => json!({ "unavailable": e }),
        };
        Ok(json!({
            "identity": ident,
            "captions_per_part": self.params.captions_per_part,
        }))
    }

    fn inputs(&self) -> Vec<&'static str> {
        vec![pairs_curated::NAME, splits::NAME]
    }

    fn outputs(&self) -> Vec<&'static TableDef> {
        vec![&subjects::DEF]
    }

    fn plan(&self, ctx: &StepCtx) -> Result<usize, BoxError> {
        // Fail before the ledger is touched when the model is missing.
        self.identity()?;
        let n = self.inputs(ctx)?.len();
        Ok(n.div_ceil(self.params.captions_per_part.max(1)))
    }

    fn run_part(
        &self,
        part: usize,
        ctx: &StepCtx,
        sink: &mut PartSink,
    ) -> Result<PartStats, BoxError> {
        let identity = self.identity()?;
        let inputs = self.inputs(ctx)?;
        let cache = self.cache(ctx)?;
        let size = self.params.captions_per_part.max(1);
        let chunk = inputs
            .chunks(size)
            .nth(part)
            .ok_or_else(|| format!("part {part} is out of range"))?;
        let mut stats = PartStats {
            rows_in: chunk.len() as u64,
            ..PartStats::default()
        };
        let mut found: HashMap<String, Entry> = HashMap::new();
        let mut todo: Vec<&str> = Vec::new();
        for row in chunk {
            if found.contains_key(&row.caption) || todo.contains(&row.caption.as_str()) {
                continue;
            }
            match cache.get(&identity.key(&row.caption)) {
                Some(e) => {
                    found.insert(row.caption.clone(), e);
                }
                None => todo.push(&row.caption),
            }
        }
        stats.count("cached", (chunk.len() - todo.len()) as u64);
        let fresh = self.annotate_misses(part, ctx, identity, &cache, &todo, &mut stats)?;
        found.extend(fresh);
        let mut rows = Vec::with_capacity(chunk.len());
        for input in chunk {
            let e = found
                .get(&input.caption)
                .ok_or_else(|| format!("no answer for {}", input.id))?;
            if let Some(class) = &e.error_class {
                stats.count(&format!("error_{class}"), 1);
            }
            stats.count(&format!("subset_{}", input.subset), 1);
            match &input.split {
                Some(s) => stats.count(&format!("split_{s}"), 1),
                None => stats.count("split_missing", 1),
            }
            stats.count("subjects", e.subjects.len() as u64);
            rows.push(SubjectRow {
                id: input.id.clone(),
                caption: input.caption.clone(),
                subjects: e.subjects.clone(),
                raw: e.raw.clone(),
                backend: identity.backend.clone(),
                model_id: identity.model_id.clone(),
                prompt_version: identity.prompt_version.clone(),
                error_class: e.error_class.clone(),
                error_message: e.error_message.clone(),
            });
        }
        stats.rows_out = rows.len() as u64;
        sink.write(subjects::NAME, &to_batch(&rows)?)?;
        Ok(stats)
    }
}

/// Rows to a `subjects` record batch (declared schema), through
/// [`anchor_core::tables::subjects::to_batch`].
pub fn to_batch(rows: &[SubjectRow]) -> Result<RecordBatch, StepError> {
    let rows: Vec<subjects::Row> = rows.iter().map(SubjectRow::to_core).collect();
    Ok(subjects::to_batch(&rows)?)
}

/// A `subjects` record batch back to rows, through
/// [`anchor_core::tables::subjects::from_batch`] (which checks every span).
pub fn from_batch(batch: &RecordBatch) -> Result<Vec<SubjectRow>, StepError> {
    subjects::from_batch(batch)?
        .into_iter()
        .map(SubjectRow::from_core)
        .collect()
}

impl SubjectRow {
    fn to_core(&self) -> subjects::Row {
        subjects::Row {
            id: self.id.clone(),
            caption: self.caption.clone(),
            subjects: self
                .subjects
                .iter()
                .map(|s| subjects::Subject {
                    text: s.text.clone(),
                    start: s.start,
                    end: s.end,
                    weight: s.weight,
                    kind: s.kind.as_str().to_owned(),
                })
                .collect(),
            raw: self.raw.clone(),
            backend: self.backend.clone(),
            model_id: self.model_id.clone(),
            prompt_version: self.prompt_version.clone(),
            error_class: self.error_class.clone(),
            error_message: self.error_message.clone(),
        }
    }

    fn from_core(r: subjects::Row) -> Result<Self, StepError> {
        let subs = r
            .subjects
            .into_iter()
            .map(|s| {
                let kind = Kind::parse(&s.kind).ok_or_else(|| StepError::Input {
                    table: subjects::NAME,
                    detail: format!("row {}: subject {:?} has an unknown kind", r.id, s.text),
                })?;
                Ok(Subject {
                    text: s.text,
                    start: s.start,
                    end: s.end,
                    weight: s.weight,
                    kind,
                })
            })
            .collect::<Result<Vec<_>, StepError>>()?;
        Ok(SubjectRow {
            id: r.id,
            caption: r.caption,
            subjects: subs,
            raw: r.raw,
            backend: r.backend,
            model_id: r.model_id,
            prompt_version: r.prompt_version,
            error_class: r.error_class,
            error_message: r.error_message,
        })
    }
}

/// Reads every row of the committed `subjects` table under `out`, in part order.
pub fn read_subjects(out: &Path) -> Result<Vec<SubjectRow>, StepError> {
    let reader =
        anchor_core::store::TableReader::open(out, subjects::NAME, Some(subjects::schema()))?;
    subjects::read(&reader)?
        .into_iter()
        .map(SubjectRow::from_core)
        .collect()
}

/// Per-step totals for a summary line, from summed part stats.
pub fn summary(stats: &PartStats) -> BTreeMap<&'static str, f64> {
    let c = |k: &str| stats.counters.get(k).copied().unwrap_or(0) as f64;
    let t = |k: &str| stats.timings.get(k).copied().unwrap_or(0.0);
    let rate = |n: f64, s: f64| if s > 0.0 { n / s } else { 0.0 };
    BTreeMap::from([
        ("cached", c("cached")),
        ("annotated", c("annotated")),
        ("prompt_tok_per_s", rate(c("prompt_tokens"), t("prompt_s"))),
        ("gen_tok_per_s", rate(c("gen_tokens"), t("gen_s"))),
        (
            "captions_per_s",
            rate(c("annotated"), t("prompt_s") + t("gen_s")),
        ),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_round_trip_through_the_declared_schema() {
        let cap = "Chancellor Angela Merkel arrives for talks in Brussels.";
        let good = SubjectRow {
            id: "a".into(),
            caption: cap.into(),
            subjects: crate::heuristic::extract(cap),
            raw: "{}".into(),
            backend: "heuristic".into(),
            model_id: HEURISTIC_VERSION.into(),
            prompt_version: None,
            error_class: None,
            error_message: None,
        };
        let bad = SubjectRow {
            id: "b".into(),
            subjects: vec![],
            prompt_version: Some("few-shot-v1".into()),
            error_class: Some("not_a_span".into()),
            error_message: Some("subject \"Paris\" is not a span".into()),
            ..good.clone()
        };
        assert!(!good.subjects.is_empty());
        let batch = to_batch(&[good.clone(), bad.clone()]).unwrap();
        assert_eq!(batch.schema(), subjects::schema());
        assert_eq!(from_batch(&batch).unwrap(), vec![good, bad]);
        let empty = to_batch(&[]).unwrap();
        assert_eq!(empty.num_rows(), 0);
    }

    #[test]
    fn missing_model_names_the_fetch_command() {
        let spec = BackendSpec::Gguf {
            path: "/nonexistent/model.gguf".into(),
            requant: Requant::Q8_0,
            prompt: Prompt::default_few_shot(),
            max_subjects: 6,
        };
        let e = spec.identity().unwrap_err().to_string();
        assert!(
            e.contains("make annotate") && e.contains("fetch-models.sh smollm2"),
            "{e}"
        );
        let step = AnnotateStep::new(AnnotateParams {
            backend: spec,
            captions_per_part: 8,
        });
        assert!(step.identity().is_err());
        let params = step.params().expect("params");
        assert!(params["identity"]["unavailable"].is_string());
    }

    #[test]
    fn heuristic_identity_has_no_prompt() {
        let i = BackendSpec::Heuristic.identity().unwrap();
        assert_eq!(i.prompt_version, None);
        assert_eq!(i.model_id, HEURISTIC_VERSION);
    }
}
