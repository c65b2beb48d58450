//! Runs the real SmolLM2-135M GGUF (fetched by `make annotate` / `scripts/fetch-models.sh`)
//! on news captions. Skips with a message when the file is absent.

use std::path::PathBuf;

use anchor_annotate::{Backend, GgufBackend, GgufOptions};

const MODEL: &str = "data/models/SmolLM2-135M-Instruct.Q4_1.gguf";
const SHA256: &str = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53";

fn model_path() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(MODEL);
    p.exists().then_some(p)
}

#[test]
fn smollm2_annotates_real_captions() {
    let Some(path) = model_path() else {
        eprintln!("skipping: {MODEL} not found (run scripts/fetch-models.sh, see DESIGN.md)");
        return;
    };
    let mut b = GgufBackend::load(&path, GgufOptions::default()).unwrap();
    assert_eq!(b.model_id(), SHA256);
    // SmolLM2: 30 blocks x 7 matrices are Q4_1 and requantised; the tied embedding is Q8_0.
    assert_eq!(b.load_info().requantised, 210);
    let captions = [
        "Chancellor Angela Merkel arrives for talks in Brussels.",
        "Firefighters battle a wildfire near Athens, Greece, on Tuesday.",
        "A fisherman repairs his nets on the harbour wall at dawn.",
        "Lionel Messi lifts the World Cup trophy at Lusail Stadium in Qatar.",
    ];
    let mut total = anchor_annotate::GenStats::default();
    for c in captions {
        let a = b.annotate(c).unwrap();
        assert!(a.error.is_none(), "{c}: {:?}", a.error);
        assert!(!a.subjects.is_empty(), "{c}: {}", a.raw);
        for s in &a.subjects {
            s.validate(c).unwrap();
        }
        eprintln!("{c}\n  -> {}", a.raw);
        total += a.stats;
    }
    // The few-shot model names the obvious subject of an entity caption.
    let a = b.annotate(captions[0]).unwrap();
    assert!(
        a.subjects.iter().any(|s| s.text.contains("Merkel")),
        "{}",
        a.raw
    );
    eprintln!(
        "prefix {} tok in {:.2}s; prompt {:.1} tok/s, generation {:.1} tok/s, {:.2} captions/s",
        b.load_info().prefix_tokens,
        b.load_info().prefix_secs,
        total.prompt_tok_per_s(),
        total.gen_tok_per_s(),
        total.captions_per_s()
    );
}
