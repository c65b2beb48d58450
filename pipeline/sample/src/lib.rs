//! The `sample` step of SAFE (ANCHOR, arXiv 2404.10141): images for dataset captions under
//! the paper's compared configurations, written to the `generations` table.
//!
//! Reads `pairs_curated` (caption, subset, outlet of kept rows), `splits` (which captions
//! are in the sampled split, `test` by default) and `subjects` (the spans and weights that
//! the weighted configurations up-weight and `prefix` spells out). Writes `generations`: one
//! row per (caption id, configuration, seed), sorted by (configuration, id, seed), each with
//! a PNG in the Hugging Face `Image` struct.
//!
//! Configurations ([`Configuration`]): `base`, `weighting` (subject weighting at inference
//! only), `lora`, `lora+weighting`, `safe` (the LoRA trained with weighting, sampled with it)
//! and `prefix` ("A photo of X, Y. caption"). Weights come from `anchor train`'s manifest
//! (`<out>/train/models/manifest.json`) or from `--base`/`--lora`; their content ids are part
//! of the fingerprint, so new weights make the step stale.
//!
//! Invariants: same fingerprint ⇒ same bytes on the same device kind (seeded noise drawn on
//! the CPU, f32 throughout, fixed PNG settings, fixed part slices); this crate never imports
//! another step crate. The device is not part of the fingerprint: CPU and CUDA agree to float
//! rounding, not bit for bit, and a run on either keeps the other's output.
//!
//! ```no_run
//! use anchor_sample::{ModelChoice, ModelSet, SampleParams, SampleStep, needed_loras};
//! use std::path::Path;
//! # fn main() -> anchor_sample::Result<()> {
//! let out = Path::new("data/out");
//! let params = SampleParams::paper();
//! let models = ModelSet::resolve(out, &ModelChoice::default(), &needed_loras(&params.configurations))?;
//! let vocab = Path::new("data/models/open-clip/bpe_simple_vocab_16e6.txt.gz").to_path_buf();
//! let step = SampleStep::new(params, models, vocab, candle_core::Device::Cpu)?;
//! anchor_core::step::run(&step, out, &Default::default())?;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

pub mod configuration;
mod error;
pub mod inputs;
pub mod model;
pub mod png;
pub mod step;
pub mod testing;

pub use configuration::{Configuration, SchedulerKind, WeightingKind};
pub use error::{Error, Result};
pub use model::{
    Manifest, ModelChoice, ModelSet, Pipeline, RgbImage, SamplerSettings, needed_loras,
};
pub use step::{SampleParams, SamplePlan, SampleStep};

/// One image for a free prompt (`anchor sample --prompt`) under `configuration`: its LoRA
/// (which the pipeline's models must hold), its subject weighting (the fixed weight, on
/// every occurrence of each of `subjects` in the prompt; a phrase not in the prompt is an
/// error) or its prefix, computed on the device `pipeline` was loaded on. Returns the PNG
/// bytes, the prompt as encoded and whether it was truncated.
pub fn generate_png(
    pipeline: &Pipeline,
    configuration: Configuration,
    prompt: &str,
    subjects: &[String],
    seed: u64,
    settings: &SamplerSettings,
) -> Result<(Vec<u8>, String, bool)> {
    let mut spans = Vec::new();
    for s in subjects {
        if s.is_empty() {
            return Err(Error::Config("empty --subject".into()));
        }
        let found: Vec<_> = prompt.match_indices(s.as_str()).collect();
        if found.is_empty() {
            return Err(Error::Config(format!(
                "--subject {s:?} does not occur in the prompt"
            )));
        }
        if configuration.weighted() {
            spans.extend(found.into_iter().map(|(i, _)| anchor_sd::SubjectSpan {
                chars: i..i + s.len(),
                weight: anchor_sd::FIXED_SUBJECT_WEIGHT,
            }));
        }
    }
    pipeline.models().check_resolution(settings.resolution)?;
    let names: Vec<&str> = subjects.iter().map(String::as_str).collect();
    let text = configuration.prompt(prompt, &names);
    let unet = pipeline.unet(configuration.lora())?;
    let fitted = pipeline.prompt(&text, &spans, anchor_sd::Weighting::default())?;
    let truncated = fitted.truncated;
    let images = pipeline.generate(&unet, &[fitted], &[seed], settings)?;
    let image = images
        .first()
        .ok_or_else(|| Error::Config("the sampler returned no image".into()))?;
    Ok((png::encode_png(image, "prompt.png")?, text, truncated))
}
