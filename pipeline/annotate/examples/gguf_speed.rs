//! Speed of the `gguf` backend on a few captions:
//! `cargo run -p anchor-annotate --example gguf_speed [-- MODEL.gguf [q8|keep] [N]]`.

use std::path::PathBuf;

use anchor_annotate::Requant;
use anchor_annotate::eval::builtin_labelled;
use anchor_annotate::{Backend, GenStats, GgufBackend, GgufOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let model = PathBuf::from(
        args.next()
            .unwrap_or_else(|| "data/models/SmolLM2-135M-Instruct.Q4_1.gguf".into()),
    );
    let requant = match args.next().as_deref() {
        Some("keep") => Requant::Keep,
        _ => Requant::Q8_0,
    };
    let n: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(8);
    let jump_forward = args.next().as_deref() != Some("nojump");
    let opts = GgufOptions {
        requant,
        jump_forward,
        ..GgufOptions::default()
    };
    let mut b = GgufBackend::load(&model, opts)?;
    let info = b.load_info();
    println!(
        "load {:.2}s, {} tensors requantised, prefix {} tok in {:.2}s ({:.1} tok/s)",
        info.load_secs,
        info.requantised,
        info.prefix_tokens,
        info.prefix_secs,
        info.prefix_tokens as f64 / info.prefix_secs
    );
    let mut total = GenStats::default();
    for c in builtin_labelled()?.iter().take(n) {
        let a = b.annotate(&c.caption)?;
        total += a.stats;
    }
    println!(
        "{} captions: prompt {} tok {:.1} tok/s; generation {} sampled + {} forced tok, {:.1} sampled tok/s (picking {:.2}s of {:.2}s); {:.2} captions/s",
        total.captions,
        total.prompt_tokens,
        total.prompt_tok_per_s(),
        total.gen_tokens,
        total.forced_tokens,
        total.gen_tok_per_s(),
        total.pick_secs,
        total.gen_secs,
        total.captions_per_s()
    );
    Ok(())
}
