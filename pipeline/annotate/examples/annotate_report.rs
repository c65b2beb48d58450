//! Quality and speed report over the labelled set:
//! `cargo run -p anchor-annotate --example annotate_report [-- MODEL.gguf [LIMIT [PROMPTS [SUBSET [DETAIL]]]]]`
//! (PROMPTS: comma-separated versions or prompt files, e.g. `rank-v19,few-shot-v1`, default
//! `few-shot-v1,zero-shot-v1`; SUBSET one of
//! `eval::SUBSETS` or `real`, default `all`; DETAIL `detail` prints each caption's misses).
//! Prints the Markdown table (heuristic, then gguf per prompt) and tokens/s.

use std::path::PathBuf;

use anchor_annotate::eval::{
    LabelledCaption, Prediction, builtin_labelled, evaluate_detailed, markdown_table, select,
    top_subject,
};
use anchor_annotate::{GgufBackend, GgufOptions, HeuristicBackend, Prompt};

/// One line per caption: gold spans missed, predicted spans not gold, main hit or miss.
fn detail(name: &str, set: &[LabelledCaption], preds: &[Prediction]) {
    for (c, p) in set.iter().zip(preds) {
        let gold: Vec<&str> = c.subjects.iter().map(|g| g.text.as_str()).collect();
        let pred: Vec<&str> = p.subjects.iter().map(|s| s.text.as_str()).collect();
        let missed: Vec<&&str> = gold.iter().filter(|g| !pred.contains(g)).collect();
        let extra: Vec<&&str> = pred.iter().filter(|s| !gold.contains(s)).collect();
        let top = top_subject(&p.subjects).map(|s| s.text.as_str());
        let main_ok = c.main.as_deref() == top;
        println!(
            "{name} {} main {} (gold {:?}, top {:?}) missed {:?} extra {:?}",
            c.id,
            if main_ok { "ok" } else { "MISS" },
            c.main,
            top,
            missed,
            extra
        );
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let model = args
        .next()
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("data/models/SmolLM2-135M-Instruct.Q4_1.gguf"));
    let limit: usize = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(usize::MAX);
    let prompts = args
        .next()
        .unwrap_or_else(|| "few-shot-v1,zero-shot-v1".to_string());
    let subset = args.next().unwrap_or_else(|| "all".to_string());
    let show = args.next().as_deref() == Some("detail");
    let set: Vec<_> = select(&builtin_labelled()?, &subset)
        .into_iter()
        .take(limit)
        .collect();
    let (mut rows, preds) = evaluate_detailed(&mut HeuristicBackend, &set)?;
    if show {
        detail("heuristic", &set, &preds);
    }
    if model.exists() {
        for version in prompts.split(',').filter(|v| !v.is_empty()) {
            let prompt = if version.ends_with(".toml") {
                Prompt::load(version.as_ref())?
            } else {
                Prompt::builtin(version)?
            };
            let opts = GgufOptions {
                prompt,
                ..GgufOptions::default()
            };
            let mut b = GgufBackend::load(&model, opts)?;
            let info = b.load_info();
            let (r, preds) = evaluate_detailed(&mut b, &set)?;
            if show {
                detail(version, &set, &preds);
            }
            let Some(s) = r.first().map(|row| row.stats) else {
                eprintln!("no captions in subset {subset}");
                break;
            };
            println!(
                "gguf {version}: load {:.2}s ({} tensors requantised), prefix {} tok in {:.2}s; \
                 {} captions, prompt {} tok at {:.1} tok/s, generation {} tok at {:.1} tok/s, {:.2} captions/s",
                info.load_secs,
                info.requantised,
                info.prefix_tokens,
                info.prefix_secs,
                s.captions,
                s.prompt_tokens,
                s.prompt_tok_per_s(),
                s.gen_tokens,
                s.gen_tok_per_s(),
                s.captions_per_s()
            );
            rows.extend(r);
        }
    } else {
        eprintln!("{} not found: gguf rows skipped", model.display());
    }
    println!("\n{}", markdown_table(&rows));
    Ok(())
}
