//! Quality and speed report over the labelled set:
//! `cargo run -p anchor-annotate --example annotate_report [-- MODEL.gguf [LIMIT [PROMPTS]]]`
//! (PROMPTS: comma-separated versions, default `few-shot-v1,zero-shot-v1`).
//! Prints the Markdown table (heuristic, gguf few-shot, gguf zero-shot) and tokens/s.

use std::path::PathBuf;

use anchor_annotate::eval::{builtin_labelled, evaluate, markdown_table};
use anchor_annotate::{GgufBackend, GgufOptions, HeuristicBackend, Prompt};

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
    let set: Vec<_> = builtin_labelled()?.into_iter().take(limit).collect();
    let mut rows = evaluate(&mut HeuristicBackend, &set)?;
    if model.exists() {
        for version in prompts.split(',') {
            let opts = GgufOptions {
                prompt: Prompt::builtin(version)?,
                ..GgufOptions::default()
            };
            let mut b = GgufBackend::load(&model, opts)?;
            let info = b.load_info();
            let r = evaluate(&mut b, &set)?;
            let s = r[0].stats;
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
