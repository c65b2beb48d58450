//! The sample step as a library: model resolution from the train manifest, a run on a
//! tiny random model, and subject weighting (fixed vs the annotator's weights).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anchor_core::step::{self, Outcome, RunOptions};
use anchor_sample::testing::{FixtureCaption, write_inputs, write_random_base};
use anchor_sample::{
    Configuration, Error, ModelChoice, ModelSet, SampleParams, SamplePlan, SampleStep,
    WeightingKind, needed_loras,
};
use arrow_array::cast::AsArray;

type TestResult = Result<(), Box<dyn std::error::Error>>;
/// (configuration, id, PNG bytes) per row.
type Images = Result<Vec<(String, String, Vec<u8>)>, Box<dyn std::error::Error>>;

fn vocab() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/models/open-clip/bpe_simple_vocab_16e6.txt.gz");
    if p.is_file() {
        Some(p)
    } else {
        eprintln!(
            "skipping: {} is missing (scripts/fetch-models.sh clip-vocab)",
            p.display()
        );
        None
    }
}

#[test]
fn missing_base_and_lora_name_what_to_run() -> TestResult {
    let dir = tempfile::tempdir()?;
    let out = dir.path().join("out");
    let none = ModelSet::resolve(&out, &ModelChoice::default(), &BTreeMap::new());
    assert!(matches!(none, Err(Error::NoBase { .. })), "{none:?}");
    assert!(
        none.err()
            .is_some_and(|e| e.is_user_error() && e.to_string().contains("make train"))
    );

    let base = dir.path().join("model");
    write_random_base(&base)?;
    let choice = ModelChoice {
        base: Some(base.clone()),
        loras: BTreeMap::new(),
    };
    let needed = needed_loras(&[Configuration::Base, Configuration::Safe]);
    let err = ModelSet::resolve(&out, &choice, &needed)
        .map(|_| ())
        .map_err(|e| e.to_string());
    let msg = err.err().unwrap_or_default();
    assert!(
        msg.contains("configuration safe needs the `safe` LoRA"),
        "{msg}"
    );
    assert!(msg.contains("make train"), "{msg}");

    // The base digest is a content id: a copy has the same one.
    let models = ModelSet::resolve(&out, &choice, &BTreeMap::new())?;
    let copy = dir.path().join("copy");
    for sub in ["unet", "vae", "text_encoder"] {
        std::fs::create_dir_all(copy.join(sub))?;
        for entry in std::fs::read_dir(base.join(sub))? {
            let entry = entry?;
            std::fs::copy(entry.path(), copy.join(sub).join(entry.file_name()))?;
        }
    }
    let copied = ModelSet::resolve(
        &out,
        &ModelChoice {
            base: Some(copy),
            loras: BTreeMap::new(),
        },
        &BTreeMap::new(),
    )?;
    assert_eq!(models.base_id, copied.base_id);
    assert_eq!(models.base_id.len(), 64, "{}", models.base_id);
    Ok(())
}

fn images(out: &Path) -> Images {
    let reader = anchor_core::store::TableReader::open(out, "generations", None)?;
    let mut rows = Vec::new();
    for batch in reader.read_all(None, 1024) {
        let b = batch?;
        let conf = b
            .column_by_name("configuration")
            .ok_or("configuration")?
            .as_string::<i32>()
            .clone();
        let id = b
            .column_by_name("id")
            .ok_or("id")?
            .as_string::<i32>()
            .clone();
        let image = b
            .column_by_name("image")
            .ok_or("image")?
            .as_struct()
            .clone();
        let bytes = image
            .column_by_name("bytes")
            .ok_or("bytes")?
            .as_binary::<i32>()
            .clone();
        for i in 0..b.num_rows() {
            rows.push((
                conf.value(i).to_owned(),
                id.value(i).to_owned(),
                bytes.value(i).to_vec(),
            ));
        }
    }
    Ok(rows)
}

fn run(dir: &Path, vocab: &Path, weighting: WeightingKind) -> Images {
    let out = dir.join(format!("out-{weighting:?}"));
    let base = dir.join("model");
    write_inputs(
        &out,
        &[FixtureCaption {
            id: "a1".into(),
            caption: "Angela Merkel in Brussels".into(),
            split: "test".into(),
            subset: "entity".into(),
            outlet: "bbc".into(),
            topic: "world".into(),
            kept: true,
            // Weight 1.0 from the annotator: `llm` leaves it as is, `fixed` raises it to 1.21.
            subjects: Some(vec![("Angela Merkel".into(), 1.0)]),
        }],
    )?;
    let params = SampleParams {
        configurations: vec![Configuration::Weighting, Configuration::Base],
        plan: SamplePlan {
            seeds: vec![7],
            steps: 2,
            ..SamplePlan::default()
        },
        resolution: 16,
        weighting,
        ..SampleParams::paper()
    };
    let models = ModelSet::resolve(
        &out,
        &ModelChoice {
            base: Some(base),
            loras: BTreeMap::new(),
        },
        &BTreeMap::new(),
    )?;
    let step = SampleStep::new(
        params,
        models,
        vocab.to_path_buf(),
        candle_core::Device::Cpu,
    )?;
    let outcome = step::run(&step, &out, &RunOptions::default())?;
    let Outcome::Complete { stats, rows, .. } = outcome else {
        return Err(format!("expected a complete run, got {outcome:?}").into());
    };
    assert_eq!(rows.get("generations"), Some(&2));
    assert_eq!(stats.counters.get("images"), Some(&2));
    let again = step::run(&step, &out, &RunOptions::default())?;
    assert!(matches!(again, Outcome::UpToDate { .. }), "{again:?}");
    images(&out)
}

#[test]
fn fixed_weighting_raises_subjects_and_llm_keeps_the_annotators_weights() -> TestResult {
    let Some(vocab) = vocab() else { return Ok(()) };
    let dir = tempfile::tempdir()?;
    write_random_base(&dir.path().join("model"))?;
    let fixed = run(dir.path(), &vocab, WeightingKind::Fixed)?;
    let llm = run(dir.path(), &vocab, WeightingKind::Llm)?;
    let names: Vec<&str> = fixed.iter().map(|(c, _, _)| c.as_str()).collect();
    assert_eq!(names, vec!["base", "weighting"]);
    assert_ne!(fixed[0].2, fixed[1].2, "fixed 1.21 must change the image");
    assert_eq!(
        llm[0].2, llm[1].2,
        "an annotator weight of 1.0 must change nothing"
    );
    assert_eq!(
        fixed[0].2, llm[0].2,
        "base does not depend on the weighting source"
    );
    Ok(())
}

#[test]
fn a_blocked_step_explains_itself_when_run() -> TestResult {
    let dir = tempfile::tempdir()?;
    let step = SampleStep::blocked(SampleParams::paper(), "no base model".into());
    assert!(step.models().is_none());
    write_inputs(
        dir.path(),
        &[FixtureCaption {
            id: "a1".into(),
            caption: "x".into(),
            split: "test".into(),
            subset: "non_entity".into(),
            outlet: "bbc".into(),
            topic: "world".into(),
            kept: true,
            subjects: Some(vec![]),
        }],
    )?;
    let err = step::run(&step, dir.path(), &RunOptions::default()).map(|_| ());
    let msg = err.err().map(|e| e.to_string()).unwrap_or_default();
    assert!(msg.contains("no base model"), "{msg}");
    Ok(())
}

/// The model id, then the UNet outputs with and without the configuration's weights.
type Predictions = Result<(String, Vec<f32>, Vec<f32>), Box<dyn std::error::Error>>;

/// A fully fine-tuned UNet (`anchor train --full`) given where a LoRA would go replaces the
/// base's UNet: an exact copy of the base behaves as the base, a changed copy does not, and
/// the model id names it as a UNet.
#[test]
fn a_full_unet_file_replaces_the_base_unet() -> TestResult {
    let Some(vocab) = vocab() else {
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    let base = dir.path().join("model");
    write_random_base(&base)?;
    let dev = candle_core::Device::Cpu;
    let base_file = base.join("unet/diffusion_pytorch_model.safetensors");
    let weights = candle_core::safetensors::load(&base_file, &dev)?;
    let same = dir.path().join("same.safetensors");
    candle_core::safetensors::save(&weights, &same)?;
    let changed = dir.path().join("changed.safetensors");
    let mut w2 = weights.clone();
    let key = "conv_out.bias";
    let bumped = (w2.get(key).ok_or("no conv_out.bias")? + 0.5)?;
    w2.insert(key.to_string(), bumped);
    candle_core::safetensors::save(&w2, &changed)?;

    let needed = needed_loras(&[Configuration::Lora]);
    let out = dir.path().join("out");
    let predict = |file: &Path| -> Predictions {
        let models = ModelSet::resolve(
            &out,
            &ModelChoice {
                base: Some(base.clone()),
                loras: BTreeMap::from([("lora".to_string(), file.to_path_buf())]),
            },
            &needed,
        )?;
        let id = models.model_id(Some("lora"));
        let pipeline = anchor_sample::Pipeline::load(&models, &vocab, &dev)?;
        let x = candle_core::Tensor::ones((1, 4, 2, 2), candle_core::DType::F32, &dev)?;
        let t = candle_core::Tensor::new(&[500f32], &dev)?;
        let ctx = pipeline.text().empty().clone();
        let flat =
            |u: &anchor_sd::UNet2DConditionModel| -> Result<Vec<f32>, Box<dyn std::error::Error>> {
                Ok(u.forward(&x, &t, &ctx)?.flatten_all()?.to_vec1()?)
            };
        Ok((
            id,
            flat(&*pipeline.unet(Some("lora"))?)?,
            flat(&*pipeline.unet(None)?)?,
        ))
    };
    let (id, tuned, plain) = predict(&same)?;
    assert!(id.contains("+unet:"), "{id}");
    assert_eq!(tuned, plain);
    let (_, tuned, plain) = predict(&changed)?;
    let max = tuned
        .iter()
        .zip(&plain)
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    assert!(
        (max - 0.5).abs() < 1e-4,
        "conv_out.bias + 0.5 moved the output by {max}"
    );
    Ok(())
}

#[test]
fn batched_captions_match_each_caption_denoised_alone() -> TestResult {
    let Some(vocab) = vocab() else { return Ok(()) };
    let dir = tempfile::tempdir()?;
    let base = dir.path().join("model");
    write_random_base(&base)?;
    let models = ModelSet::resolve(
        &dir.path().join("out"),
        &ModelChoice {
            base: Some(base),
            loras: BTreeMap::new(),
        },
        &BTreeMap::new(),
    )?;
    let pipeline = anchor_sample::Pipeline::load(&models, &vocab, &candle_core::Device::Cpu)?;
    let unet = pipeline.unet(None)?;
    let texts = [
        ("Angela Merkel in Brussels", Some(0..13)),
        ("Rain falls on an empty street at dusk", None),
        ("A crowd waits outside the station", Some(2..7)),
    ];
    let prompts = texts
        .iter()
        .map(|(text, span)| {
            let spans: Vec<anchor_sd::SubjectSpan> = span
                .iter()
                .map(|chars| anchor_sd::SubjectSpan {
                    chars: chars.clone(),
                    weight: anchor_sd::FIXED_SUBJECT_WEIGHT,
                })
                .collect();
            pipeline.prompt(text, &spans, anchor_sd::Weighting::default())
        })
        .collect::<Result<Vec<_>, _>>()?;
    let seeds = [7u64, 11, 7];
    let settings = |steps| anchor_sample::SamplerSettings {
        steps,
        guidance: 7.5,
        scheduler: anchor_sample::SchedulerKind::Ddim,
        resolution: 16,
    };
    // (max |batched - alone|, max |latent|) over the three captions.
    let compare = |steps| -> Result<(f32, f32, candle_core::Tensor), Box<dyn std::error::Error>> {
        let batched = pipeline.denoise_latents(&unet, &prompts, &seeds, &settings(steps))?;
        assert_eq!(batched.dims()[0], 3);
        let mut worst = 0f32;
        for (i, (prompt, seed)) in prompts.iter().zip(seeds).enumerate() {
            let alone = pipeline.denoise_latents(
                &unet,
                std::slice::from_ref(prompt),
                &[seed],
                &settings(steps),
            )?;
            let diff = (batched.get(i)? - alone.get(0)?)?
                .abs()?
                .flatten_all()?
                .max(0)?
                .to_scalar::<f32>()?;
            worst = worst.max(diff);
        }
        let scale = batched.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>()?;
        eprintln!("{steps} steps: max |batched - alone| {worst:e}, max |latent| {scale}");
        Ok((worst, scale, batched))
    };
    // One guided step (one UNet call of 2B rows): the batch changes only the matmul
    // blocking, so rows agree to float rounding.
    let (one, _, _) = compare(1)?;
    assert!(one <= 1e-5, "one batched step differs by {one}");
    // Over several steps the sampler amplifies that rounding (a random UNet predicts
    // large noise); it stays a rounding-sized fraction of the latents.
    let (worst, scale, batched) = compare(3)?;
    assert!(
        worst <= 1e-4 * scale,
        "batched latents differ by {worst} (max |latent| {scale})"
    );
    // The same seed with different captions gives different images: rows do not mix.
    let apart = (batched.get(0)? - batched.get(2)?)?
        .abs()?
        .flatten_all()?
        .max(0)?
        .to_scalar::<f32>()?;
    assert!(
        apart > 1e-3,
        "captions 0 and 2 gave the same latents ({apart})"
    );
    Ok(())
}
