//! `anchor annotate`: name each kept caption's key subjects into the `subjects` table;
//! `--caption` annotates captions (the model loads once) and prints one JSON line each;
//! `--report` scores backends on the labelled set.

use std::path::PathBuf;
use std::time::Duration;

use anchor_annotate::Requant;
use anchor_annotate::eval::{builtin_labelled, evaluate_detailed, markdown_table, select};
use anchor_annotate::step::{AnnotateParams, AnnotateStep, BackendSpec, summary};
use anchor_annotate::{OpenAiOptions, Prompt};
use anchor_core::step::{Outcome, Step, StepId};
use anyhow::Context;
use serde::{Deserialize, Serialize};

use crate::app::{App, user_error};
use crate::args::StepArgs;

/// The default model file, under `paths.models`.
pub const DEFAULT_MODEL_FILE: &str = "SmolLM2-135M-Instruct.Q4_1.gguf";

/// `[annotate]` in the config file; every key is also a flag of `anchor annotate`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct AnnotateConfig {
    /// `gguf`, `openai` or `heuristic`.
    pub backend: String,
    /// GGUF model file; empty = `<paths.models>/SmolLM2-135M-Instruct.Q4_1.gguf`.
    pub model: String,
    /// Built-in prompt version (`rank-v19`, `rank-v18`, `rank-v17`, `rank-v16`, `rank-v15`, `rank-v14`, `rank-v13`, `rank-v12`, `rank-v11`, `rank-v10`, `rank-v9`, `rank-v8`, `rank-v7`, `rank-v6`, `rank-v5`, `rank-v4`, `rank-v3`, `rank-v2`, `rank-v1`, `few-shot-v1`, `zero-shot-v1`) or a prompt TOML file.
    pub prompt: String,
    /// Requantise low-bit GGUF weights at load: `q8_0` (fast on CPU) or `keep`.
    pub requant: String,
    /// At most this many subjects per caption (gguf).
    pub max_subjects: usize,
    /// Kept captions per part (the resume and shard unit).
    pub captions_per_part: usize,
    /// OpenAI-compatible base URL (`http://HOST:PORT/v1`).
    pub endpoint: String,
    /// Model name sent to the server.
    pub served_model: String,
    /// Concurrent requests (openai).
    pub concurrency: usize,
    /// Attempts per caption, first included (openai).
    pub max_attempts: u32,
    /// Seconds per request attempt (openai).
    pub timeout_s: f64,
}

impl Default for AnnotateConfig {
    fn default() -> Self {
        AnnotateConfig {
            backend: "gguf".into(),
            model: String::new(),
            prompt: "rank-v19".into(),
            requant: "q8_0".into(),
            max_subjects: 6,
            captions_per_part: anchor_annotate::step::DEFAULT_CAPTIONS_PER_PART,
            endpoint: "http://127.0.0.1:8000/v1".into(),
            served_model: "default".into(),
            concurrency: 8,
            max_attempts: 3,
            timeout_s: 60.0,
        }
    }
}

/// Arguments of `anchor annotate`.
#[derive(Debug, clap::Args)]
pub struct AnnotateArgs {
    /// Backend: gguf (local model, default), openai (OpenAI-compatible server) or heuristic.
    #[arg(long, value_parser = ["gguf", "openai", "heuristic"])]
    pub backend: Option<String>,
    /// GGUF model file [default: <paths.models>/SmolLM2-135M-Instruct.Q4_1.gguf].
    #[arg(long, value_name = "PATH")]
    pub model: Option<PathBuf>,
    /// Prompt: rank-v19, rank-v18, rank-v17, rank-v16, rank-v15, rank-v14, rank-v13, rank-v12, rank-v11, rank-v10, rank-v9, rank-v8, rank-v7, rank-v6, rank-v5, rank-v4, rank-v3, rank-v2, rank-v1, few-shot-v1, zero-shot-v1, or a prompt TOML file.
    #[arg(long)]
    pub prompt: Option<String>,
    /// OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1.
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// Model name sent to the OpenAI-compatible server.
    #[arg(long, value_name = "NAME")]
    pub served_model: Option<String>,
    /// Concurrent requests to the server.
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// Kept captions per part.
    #[arg(long, value_name = "N")]
    pub captions_per_part: Option<usize>,
    /// Annotate this caption and print one JSON line (`subjects`, `raw`, ...); repeat it for
    /// several captions (the model loads once); `-` reads captions from stdin, one per line.
    #[arg(long, value_name = "TEXT", conflicts_with = "report")]
    pub caption: Vec<String>,
    /// Score backends on the labelled set; print and write <out>/annotate/report.md.
    #[arg(long)]
    pub report: bool,
    /// Backends of the report, comma-separated [default: heuristic,gguf].
    #[arg(long, value_name = "A,B", requires = "report")]
    pub backends: Option<String>,
    /// Score only this subset of the labelled set: all, written, real, real-tune,
    /// real-heldout, entity or non_entity [default: all].
    #[arg(long, value_name = "SUBSET", requires = "report", value_parser = ["all", "written", "real", "real-tune", "real-heldout", "entity", "non_entity"])]
    pub subset: Option<String>,
    /// Time the gguf backend on the first N labelled captions and print JSON lines with
    /// the exact prompt texts and per-caption token counts (scripts/bench-annotate.sh).
    #[arg(long, value_name = "N", conflicts_with_all = ["caption", "report"])]
    pub bench: Option<usize>,
    /// Step flags.
    #[command(flatten)]
    pub step: StepArgs,
}

/// The effective `[annotate]` settings: config file, scale, `--set`, then flags.
pub fn config(app: &App, args: Option<&AnnotateArgs>) -> anyhow::Result<AnnotateConfig> {
    let mut cfg: AnnotateConfig = app.doc.section("annotate")?;
    if let Some(a) = args {
        if let Some(v) = &a.backend {
            cfg.backend = v.clone();
        }
        if let Some(v) = &a.model {
            cfg.model = v.display().to_string();
        }
        if let Some(v) = &a.prompt {
            cfg.prompt = v.clone();
        }
        if let Some(v) = &a.endpoint {
            cfg.endpoint = v.clone();
        }
        if let Some(v) = &a.served_model {
            cfg.served_model = v.clone();
        }
        if let Some(v) = a.concurrency {
            cfg.concurrency = v;
        }
        if let Some(v) = a.captions_per_part {
            cfg.captions_per_part = v;
        }
    }
    Ok(cfg)
}

fn prompt(cfg: &AnnotateConfig) -> anyhow::Result<Prompt> {
    let p = if cfg.prompt.ends_with(".toml") {
        Prompt::load(cfg.prompt.as_ref())
    } else {
        Prompt::builtin(&cfg.prompt)
    };
    p.map_err(|e| user_error(format!("annotate.prompt: {e}")))
}

/// The backend `name` with the settings of `cfg`.
pub fn backend_spec(app: &App, cfg: &AnnotateConfig, name: &str) -> anyhow::Result<BackendSpec> {
    Ok(match name {
        "heuristic" => BackendSpec::Heuristic,
        "gguf" => BackendSpec::Gguf {
            path: if cfg.model.is_empty() {
                app.paths.models.join(DEFAULT_MODEL_FILE)
            } else {
                PathBuf::from(&cfg.model)
            },
            requant: match cfg.requant.as_str() {
                "q8_0" => Requant::Q8_0,
                "keep" => Requant::Keep,
                other => {
                    return Err(user_error(format!(
                        "annotate.requant {other:?}: expected q8_0 or keep"
                    )));
                }
            },
            prompt: prompt(cfg)?,
            max_subjects: cfg.max_subjects.max(1),
        },
        "openai" => {
            if !(cfg.timeout_s.is_finite() && cfg.timeout_s > 0.0) {
                return Err(user_error(format!(
                    "annotate.timeout_s {}: expected a positive number of seconds",
                    cfg.timeout_s
                )));
            }
            BackendSpec::OpenAi(OpenAiOptions {
                base_url: cfg.endpoint.clone(),
                model: cfg.served_model.clone(),
                api_key: std::env::var("OPENAI_API_KEY")
                    .ok()
                    .filter(|k| !k.is_empty()),
                prompt: prompt(cfg)?,
                concurrency: cfg.concurrency.max(1),
                max_attempts: cfg.max_attempts.max(1),
                timeout: Duration::from_secs_f64(cfg.timeout_s),
                ..OpenAiOptions::default()
            })
        }
        other => {
            return Err(user_error(format!(
                "annotate backend {other:?}: expected gguf, openai or heuristic"
            )));
        }
    })
}

/// Builds the step from resolved settings.
pub fn build(app: &App, cfg: &AnnotateConfig) -> anyhow::Result<AnnotateStep> {
    if cfg.captions_per_part == 0 {
        return Err(user_error("annotate.captions_per_part must be at least 1"));
    }
    Ok(AnnotateStep::new(AnnotateParams {
        backend: backend_spec(app, cfg, &cfg.backend)?,
        captions_per_part: cfg.captions_per_part,
    }))
}

/// The step as configured (for `status`, `repair` and chains).
pub fn build_from_config(app: &App) -> anyhow::Result<Box<dyn Step>> {
    Ok(Box::new(build(app, &config(app, None)?)?))
}

/// `anchor annotate` with no flags beyond the step flags (for chains).
pub fn run_configured(app: &App, step_args: &StepArgs) -> anyhow::Result<()> {
    run_step(app, &build(app, &config(app, None)?)?, step_args)
}

fn run_step(app: &App, step: &AnnotateStep, step_args: &StepArgs) -> anyhow::Result<()> {
    // A missing model is the user's to fix; say so before the runner wraps it.
    step.identity().map_err(|e| user_error(e.to_string()))?;
    let outcome = app.run_step(step, step_args)?;
    if let Outcome::Complete { stats, .. } = &outcome
        && !app.quiet
    {
        let s = summary(stats);
        let errors: Vec<String> = stats
            .counters
            .iter()
            .filter_map(|(k, v)| k.strip_prefix("error_").map(|c| format!("{c} {v}")))
            .collect();
        println!(
            "annotate: {} captions from cache, {} annotated ({:.2} captions/s, prompt {:.0} tok/s, generation {:.1} tok/s){}",
            s["cached"],
            s["annotated"],
            s["captions_per_s"],
            s["prompt_tok_per_s"],
            s["gen_tok_per_s"],
            if errors.is_empty() {
                String::new()
            } else {
                format!("; rejected answers: {}", errors.join(", "))
            }
        );
    }
    Ok(())
}

/// Runs `anchor annotate`.
pub fn run(args: &AnnotateArgs, app: &App) -> anyhow::Result<()> {
    let cfg = config(app, Some(args))?;
    if !args.caption.is_empty() {
        return captions(app, &cfg, &args.caption);
    }
    if args.report {
        return report(
            app,
            &cfg,
            args.backends.as_deref(),
            args.subset.as_deref().unwrap_or("all"),
        );
    }
    if let Some(n) = args.bench {
        return bench(app, &cfg, n);
    }
    run_step(app, &build(app, &cfg)?, &args.step)
}

/// The captions of `--caption`, with each `-` replaced by stdin's non-empty lines.
fn caption_list(args: &[String]) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    let mut stdin_read = false;
    for a in args {
        if a != "-" {
            out.push(a.clone());
            continue;
        }
        if stdin_read {
            continue;
        }
        stdin_read = true;
        for line in std::io::stdin().lines() {
            let line = line.context("reading captions from stdin")?;
            if !line.trim().is_empty() {
                out.push(line);
            }
        }
    }
    Ok(out)
}

fn captions(app: &App, cfg: &AnnotateConfig, args: &[String]) -> anyhow::Result<()> {
    use std::io::Write;
    let spec = backend_spec(app, cfg, &cfg.backend)?;
    let identity = spec.identity().map_err(|e| user_error(e.to_string()))?;
    let mut backend = spec.build()?;
    let list = caption_list(args)?;
    let mut stdout = std::io::stdout().lock();
    for caption in &list {
        let a = backend.annotate(caption)?;
        let out = serde_json::json!({
            "caption": caption,
            "subjects": a.subjects,
            "raw": a.raw,
            "backend": identity.backend,
            "model_id": identity.model_id,
            "prompt_version": identity.prompt_version,
            "error_class": a.error.as_ref().map(|e| e.class.as_str()),
            "error_message": a.error.as_ref().map(|e| e.detail.clone()),
            "seconds": a.stats.prompt_secs + a.stats.gen_secs,
        });
        // One flushed line per caption, so a pipe sees each answer as it comes.
        writeln!(stdout, "{out}")?;
        stdout.flush()?;
    }
    Ok(())
}

fn report(
    app: &App,
    cfg: &AnnotateConfig,
    backends: Option<&str>,
    subset: &str,
) -> anyhow::Result<()> {
    let names: Vec<&str> = backends
        .unwrap_or("heuristic,gguf")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if names.is_empty() {
        return Err(user_error("--backends lists no backend"));
    }
    let set = select(&builtin_labelled()?, subset);
    let dir = app.out().join(anchor_annotate::step::AnnotateStep::NAME);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut rows = Vec::new();
    let mut speed = Vec::new();
    for name in names {
        let spec = backend_spec(app, cfg, name)?;
        spec.identity().map_err(|e| user_error(e.to_string()))?;
        let mut backend = spec.build()?;
        if !app.quiet {
            eprintln!("annotate --report: {name} over {} captions", set.len());
        }
        let (r, preds) =
            evaluate_detailed(backend.as_mut(), &set).with_context(|| format!("backend {name}"))?;
        // Each caption's answer, for reading the errors behind the figures.
        let lines: Vec<String> = preds
            .iter()
            .map(serde_json::to_string)
            .collect::<Result<_, _>>()?;
        let pred_path = dir.join(format!("report-{name}.jsonl"));
        std::fs::write(&pred_path, lines.join("\n") + "\n")
            .with_context(|| format!("writing {}", pred_path.display()))?;
        if let Some(all) = r.first()
            && name != "heuristic"
        {
            let s = all.stats;
            speed.push(format!(
                "- {}: {:.2} captions/s, prompt {:.0} tok/s, generation {:.1} tok/s ({} prompt + {} generated tokens)",
                all.backend,
                s.captions_per_s(),
                s.prompt_tok_per_s(),
                s.gen_tok_per_s(),
                s.prompt_tokens,
                s.gen_tokens
            ));
        }
        rows.extend(r);
    }
    let mut md = format!(
        "# Subject extraction on the labelled set\n\n{} hand-labelled captions (data/annotate/labelled.jsonl, subset `{subset}`): \
         `written` were composed for the project; `real-tune` and `real-heldout` are real outlet captions, \
         split by page (prompts and rules are tuned on `real-tune` only). \
         Span P/R/F1: a predicted subject counts when its byte span equals a gold span; \
         typed F1 also requires the same kind. Main R (main-subject recall): over the captions with a labelled \
         main subject (what the photo is mostly of), the share whose top predicted subject (highest weight, \
         earliest in the caption on ties) has exactly the main subject's span; `-` when no caption has one. \
         Rejected answers predict nothing.\n\n{}",
        set.len(),
        markdown_table(&rows)
    );
    if !speed.is_empty() {
        md.push_str("\nSpeed (measured during the report):\n\n");
        md.push_str(&speed.join("\n"));
        md.push('\n');
    }
    let path = dir.join("report.md");
    std::fs::write(&path, &md).with_context(|| format!("writing {}", path.display()))?;
    print!("{md}");
    if !app.quiet {
        eprintln!("annotate --report: written to {}", path.display());
    }
    Ok(())
}

/// One JSON line for the model, then one per caption: the texts llama.cpp must replay and
/// what our backend measured on them.
fn bench(app: &App, cfg: &AnnotateConfig, n: usize) -> anyhow::Result<()> {
    let BackendSpec::Gguf {
        path,
        requant,
        prompt,
        max_subjects,
    } = backend_spec(app, cfg, "gguf")?
    else {
        unreachable!("backend_spec(\"gguf\") builds a gguf spec")
    };
    anchor_annotate::step::check_model(&path).map_err(|e| user_error(e.to_string()))?;
    let opts = anchor_annotate::GgufOptions {
        requant,
        prompt,
        max_subjects,
        ..anchor_annotate::GgufOptions::default()
    };
    let mut b = anchor_annotate::GgufBackend::load(&path, opts)?;
    let info = b.load_info();
    let set = builtin_labelled()?;
    let (prefix, _) = b.prompt_texts("");
    println!(
        "{}",
        serde_json::json!({
            "model": path.display().to_string(),
            "requant": anchor_annotate::step::requant_name(requant),
            "load_s": info.load_secs,
            "prefix": prefix,
            "prefix_tokens": info.prefix_tokens,
            "prefix_s": info.prefix_secs,
        })
    );
    for c in set.iter().take(n) {
        let a = anchor_annotate::Backend::annotate(&mut b, &c.caption)?;
        let (_, suffix) = b.prompt_texts(&c.caption);
        println!(
            "{}",
            serde_json::json!({
                "caption": c.caption,
                "suffix": suffix,
                "answer": a.raw,
                "valid": a.error.is_none(),
                "prompt_tokens": a.stats.prompt_tokens,
                "prompt_s": a.stats.prompt_secs,
                "gen_tokens": a.stats.gen_tokens,
                "forced_tokens": a.stats.forced_tokens,
                "gen_s": a.stats.gen_secs,
            })
        );
    }
    Ok(())
}
