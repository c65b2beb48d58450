//! The eval step with CLIP weights: a tiny random CLIP folder written by
//! `anchor_clip::write_random_model`, the real FID Inception weights, and the
//! photo fixtures. The step's `fid_clip` and `clip_score` rows must be the
//! numbers computed directly through `anchor-clip` on the same images and
//! captions; likewise the `hpsv2` rows with a tiny random OpenCLIP written by
//! `anchor_clip::open_clip::write_random_model`.

mod fixtures;

use anchor_clip::image_reward::{self, ImageRewardWeights, VisionShape};
use anchor_clip::open_clip::{OpenClipConfig, write_random_model};
use anchor_clip::{Clip, TextConfig, VisionConfig};
use anchor_clip::{ClipModelWeights, OpenClipWeights};
use anchor_core::step::{self, Outcome, RunOptions};
use anchor_eval::clip_score::{cosine, mean_clip_score};
use anchor_eval::report::{MetricRow, read_metrics};
use anchor_eval::step::{EvalParams, EvalStep, Weights, absent_metric_notes, calibrate_threshold};
use anchor_eval::{Features, fid};
use std::path::{Path, PathBuf};

fn vocab() -> Option<PathBuf> {
    let p = fixtures::repo().join("data/models/open-clip/bpe_simple_vocab_16e6.txt.gz");
    if p.exists() {
        Some(p)
    } else {
        eprintln!("skipping: {} absent (make models)", p.display());
        None
    }
}

fn tiny_clip(dir: &Path) {
    let text = TextConfig {
        hidden_size: 16,
        intermediate_size: 32,
        num_hidden_layers: 1,
        num_attention_heads: 2,
        ..TextConfig::default()
    };
    let vision = VisionConfig {
        hidden_size: 16,
        intermediate_size: 32,
        num_hidden_layers: 1,
        num_attention_heads: 2,
        ..VisionConfig::default()
    };
    anchor_clip::write_random_model(dir, &text, &vision, 6, 0).unwrap();
}

const PHRASES: [&str; 8] = [
    "Angela Merkel",
    "the European Commission",
    "a cat",
    "the moon",
    "Brussels",
    "coins",
    "a rocket launch",
    "Grace Hopper",
];

/// Two subjects per test pair (none for the train pairs).
fn subjects_of(i: usize) -> Vec<String> {
    vec![PHRASES[i % 8].to_owned(), PHRASES[(i + 3) % 8].to_owned()]
}

fn find<'a>(rows: &'a [MetricRow], c: &str, m: &str, s: &str, o: &str) -> &'a MetricRow {
    rows.iter()
        .find(|r| {
            r.configuration == c
                && r.metric == m
                && r.subset == s
                && r.outlet == o
                && r.topic == "all"
        })
        .unwrap_or_else(|| panic!("no row {c} {m} {s} {o}"))
}

fn embed(clip: &Clip, images: &[&[u8]]) -> Vec<Vec<f32>> {
    let decoded: Vec<image::DynamicImage> = images
        .iter()
        .map(|b| image::load_from_memory(b).unwrap())
        .collect();
    clip.image_embeddings(&decoded).unwrap()
}

#[test]
fn clip_rows_are_the_library_numbers_and_the_real_features_are_cached() {
    let (Some(model), Some(vocab)) = (fixtures::inception(), vocab()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let clip_dir = dir.path().join("clip");
    tiny_clip(&clip_dir);
    let Some((pairs, gens)) = fixtures::standard(&out) else {
        return;
    };
    let test_ids: Vec<String> = pairs
        .iter()
        .filter(|p| p.split == "test")
        .map(|p| p.id.clone())
        .collect();
    let subject_rows: Vec<(String, Vec<String>)> = test_ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.clone(), subjects_of(i)))
        .collect();
    fixtures::write_subjects(&out, &subject_rows);
    let mut params = EvalParams::new(Weights::hashed(&model).unwrap());
    params.settings.kid_subsets = 2;
    params.clip = Some(ClipModelWeights::hashed(&clip_dir, &vocab).unwrap());
    let step = EvalStep::new(params.clone());
    let first = step::run(&step, &out, &RunOptions::default()).unwrap();
    let Outcome::Complete { stats, .. } = &first else {
        panic!("{first:?}")
    };
    assert_eq!(stats.counters.get("real_clip_chunks_computed"), Some(&1));
    let rows = read_metrics(&out).unwrap();
    for r in rows
        .iter()
        .filter(|r| r.metric == "fid_clip" || r.metric == "clip_score")
    {
        assert!(r.value.is_finite(), "{r:?}");
    }
    for c in ["base", "safe"] {
        for s in ["all", "entity", "non_entity"] {
            find(&rows, c, "fid_clip", s, "all");
            let cs = find(&rows, c, "clip_score", s, "all");
            assert_eq!(cs.n_reference, 0);
            assert!(cs.std.is_some_and(f64::is_finite));
        }
    }
    // The real images against themselves.
    assert!(find(&rows, "base", "fid_clip", "all", "all").value.abs() < 1e-3);

    let clip = Clip::load(&clip_dir, Some(&vocab)).unwrap();
    let test: Vec<&fixtures::Pair> = pairs.iter().filter(|p| p.split == "test").collect();
    let safe: Vec<&fixtures::Gen> = gens.iter().filter(|g| g.configuration == "safe").collect();
    let real = embed(
        &clip,
        &test.iter().map(|p| p.image.as_slice()).collect::<Vec<_>>(),
    );
    let generated = embed(
        &clip,
        &safe.iter().map(|g| g.image.as_slice()).collect::<Vec<_>>(),
    );
    let want_fid = fid(
        &Features::from_rows(&real).unwrap(),
        &Features::from_rows(&generated).unwrap(),
    )
    .unwrap();
    let got = find(&rows, "safe", "fid_clip", "all", "all");
    assert!(want_fid > 1e-3, "different photos: {want_fid}");
    assert!(
        (got.value - want_fid).abs() <= 1e-4 * want_fid,
        "fid_clip: step {} vs library {want_fid}",
        got.value
    );

    // CLIP score against each image's own caption, and against shifted captions.
    let own: Vec<String> = safe.iter().map(|g| fixtures::caption(&g.id)).collect();
    let shifted: Vec<String> = (0..safe.len())
        .map(|i| fixtures::caption(&safe[(i + 1) % safe.len()].id))
        .collect();
    let score = |captions: &[String]| {
        let texts: Vec<&str> = captions.iter().map(String::as_str).collect();
        let t = clip.text_embeddings(&texts).unwrap();
        mean_clip_score(
            generated
                .iter()
                .zip(&t)
                .map(|(i, t)| (i.as_slice(), t.as_slice())),
        )
        .unwrap()
    };
    let (want_own, want_shifted) = (score(&own), score(&shifted));
    let got = find(&rows, "safe", "clip_score", "all", "all");
    assert!(
        (got.value - want_own).abs() < 1e-6 * want_own.max(1.0),
        "clip_score: step {} vs library {want_own}",
        got.value
    );
    assert!(
        (got.value - want_shifted).abs() > 1e-6,
        "a shuffled caption gives the same score ({want_shifted}): captions are not joined by id"
    );

    // Subject metrics: the threshold calibrated on the real images (own subjects
    // vs the next image's), then similarity and hit rate of `safe` over its pairs.
    let sims = |img: &[f32], i: usize| -> Vec<f64> {
        let phrases = subjects_of(i);
        let texts: Vec<&str> = phrases.iter().map(String::as_str).collect();
        clip.text_embeddings(&texts)
            .unwrap()
            .iter()
            .map(|t| anchor_eval::clip_score::clip_score(img, t).unwrap())
            .collect()
    };
    // Real rows come in id order, the order of `test_ids`.
    let (mut matched, mut mismatched) = (Vec::new(), Vec::new());
    for i in 0..real.len() {
        matched.extend(sims(&real[i], i));
        mismatched.extend(sims(&real[i], (i + 1) % real.len()));
    }
    let threshold = calibrate_threshold(&matched, &mismatched).unwrap();
    // `safe` images are in test-pair order too (ids sorted).
    let safe_sims: Vec<f64> = (0..generated.len())
        .flat_map(|i| sims(&generated[i], i))
        .collect();
    let mean = safe_sims.iter().sum::<f64>() / safe_sims.len() as f64;
    let hit = safe_sims.iter().filter(|&&x| x >= threshold).count() as f64 / safe_sims.len() as f64;
    let got = find(&rows, "safe", "subject_similarity", "all", "all");
    assert!(
        (got.value - mean).abs() < 1e-6 * mean.max(1.0),
        "{} vs {mean}",
        got.value
    );
    assert_eq!(got.n_generated, 8);
    let got = find(&rows, "safe", "subject_hit_rate", "all", "all");
    assert!(
        (got.value - hit).abs() < 1e-12,
        "{} vs {hit} (threshold {threshold})",
        got.value
    );
    assert_eq!(got.n_reference, 8);
    assert!((0.0..=1.0).contains(&got.value));

    // Only what is still absent is named.
    let notes = absent_metric_notes(&params).join("\n");
    assert!(
        !notes.contains("FID_CLIP") && !notes.contains("subject") && notes.contains("--hps"),
        "{notes}"
    );

    // A second run with the same inputs is up to date; a forced one reads the
    // CLIP features from the cache.
    let again = step::run(&EvalStep::new(params.clone()), &out, &RunOptions::default()).unwrap();
    assert!(matches!(again, Outcome::UpToDate { .. }), "{again:?}");
    let forced = RunOptions {
        force: true,
        ..RunOptions::default()
    };
    let third = step::run(&EvalStep::new(params), &out, &forced).unwrap();
    let Outcome::Complete { stats, .. } = &third else {
        panic!("{third:?}")
    };
    assert_eq!(stats.counters.get("real_clip_chunks_cached"), Some(&1));
    assert_eq!(stats.counters.get("real_clip_chunks_computed"), None);
    assert_eq!(read_metrics(&out).unwrap(), rows);
}

fn tiny_open_clip() -> OpenClipConfig {
    let json = serde_json::json!({
        "embed_dim": 8,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 24, "head_width": 12, "patch_size": 16},
        "text_cfg": {"width": 16, "heads": 2, "layers": 1}
    });
    OpenClipConfig::from_json(&serde_json::to_vec(&json).unwrap(), "tiny")
        .unwrap()
        .0
}

#[test]
fn hpsv2_rows_are_the_library_cosines_of_each_image_and_its_caption() {
    let (Some(model), Some(vocab)) = (fixtures::inception(), vocab()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let hps_dir = dir.path().join("hps");
    write_random_model(&hps_dir, &tiny_open_clip(), 3).unwrap();
    let Some((_, gens)) = fixtures::standard(&out) else {
        return;
    };
    let mut params = EvalParams::new(Weights::hashed(&model).unwrap());
    params.settings.kid_subsets = 2;
    let weights = OpenClipWeights::hashed(&hps_dir, None, &vocab).unwrap();
    params.hps = Some(weights.clone());
    let first = step::run(&EvalStep::new(params.clone()), &out, &RunOptions::default()).unwrap();
    let Outcome::Complete { stats, .. } = &first else {
        panic!("{first:?}")
    };
    // Only generated images are embedded: HPSv2 needs no reference.
    assert_eq!(stats.counters.get("real_hps_chunks_computed"), None);
    assert!(stats.counters.contains_key("generated_hps_chunks_computed"));
    let rows = read_metrics(&out).unwrap();
    assert!(rows.iter().all(|r| r.metric != "clip_score"));

    let hps = weights.load_on(&candle_core::Device::Cpu).unwrap();
    let safe: Vec<&fixtures::Gen> = gens.iter().filter(|g| g.configuration == "safe").collect();
    let images: Vec<image::DynamicImage> = safe
        .iter()
        .map(|g| image::load_from_memory(&g.image).unwrap())
        .collect();
    let image_embeddings = hps.image_embeddings(&images).unwrap();
    let score = |captions: &[String]| {
        let texts: Vec<&str> = captions.iter().map(String::as_str).collect();
        let t = hps.text_embeddings(&texts).unwrap();
        let s: Vec<f64> = image_embeddings
            .iter()
            .zip(&t)
            .map(|(i, t)| cosine(i, t).unwrap())
            .collect();
        s.iter().sum::<f64>() / s.len() as f64
    };
    check_caption_metric(&rows, "hpsv2", &safe, 1e-6, score);
    assert!(!absent_metric_notes(&params).join("\n").contains("HPSv2"));
    // A forced run reads the HPSv2 image features from the cache.
    forced_rerun_reads_the_cache(params, &out, "hps", &rows);
}

/// Checks the `metric` rows of `safe` against `score` (the library's mean over `safe`'s
/// images of the given captions): equal with the images' own captions within `tol`,
/// different with the captions shifted by one image (so captions are joined by id),
/// generated-only, and present for each subset.
fn check_caption_metric(
    rows: &[MetricRow],
    metric: &str,
    safe: &[&fixtures::Gen],
    tol: f64,
    score: impl Fn(&[String]) -> f64,
) {
    let own: Vec<String> = safe.iter().map(|g| fixtures::caption(&g.id)).collect();
    let shifted: Vec<String> = (0..safe.len())
        .map(|i| fixtures::caption(&safe[(i + 1) % safe.len()].id))
        .collect();
    let (want, want_shifted) = (score(&own), score(&shifted));
    let got = find(rows, "safe", metric, "all", "all");
    assert!(
        (got.value - want).abs() < tol,
        "{metric}: step {} vs library {want}",
        got.value
    );
    assert!(
        (got.value - want_shifted).abs() > tol,
        "{metric}: a shuffled caption gives the same score: captions are not joined by id"
    );
    assert_eq!(got.n_reference, 0);
    assert_eq!(got.n_generated, safe.len() as i64);
    assert!(got.std.is_some_and(|s| s.is_finite() && s > 0.0));
    for s in ["entity", "non_entity"] {
        find(rows, "base", metric, s, "all");
    }
}

/// Runs the step again, forced, and checks that the `counter` chunks come from the cache
/// and the metrics are unchanged.
fn forced_rerun_reads_the_cache(params: EvalParams, out: &Path, counter: &str, rows: &[MetricRow]) {
    let forced = RunOptions {
        force: true,
        ..RunOptions::default()
    };
    let again = step::run(&EvalStep::new(params), out, &forced).unwrap();
    let Outcome::Complete { stats, .. } = &again else {
        panic!("{again:?}")
    };
    assert_eq!(
        stats
            .counters
            .get(&format!("generated_{counter}_chunks_computed")),
        None
    );
    assert!(
        stats
            .counters
            .contains_key(&format!("generated_{counter}_chunks_cached"))
    );
    assert_eq!(read_metrics(out).unwrap(), rows);
}

fn tiny_image_reward(dir: &Path) {
    let vision = VisionShape {
        image_size: 32,
        patch_size: 16,
        width: 64,
        depth: 1,
        mlp_width: 128,
    };
    let text = image_reward::TextConfig::bert(32, 1, 2, 64);
    let words = [
        "the", "in", "of", "and", "a", "on", "at", "for", "with", "##s",
    ];
    image_reward::write_random_model(dir, &vision, &text, &words, 5).unwrap();
}

#[test]
fn image_reward_rows_are_the_library_rewards_of_each_image_and_its_caption() {
    let Some(model) = fixtures::inception() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let reward_dir = dir.path().join("image-reward");
    tiny_image_reward(&reward_dir);
    let Some((_, gens)) = fixtures::standard(&out) else {
        return;
    };
    let mut params = EvalParams::new(Weights::hashed(&model).unwrap());
    params.settings.kid_subsets = 2;
    let weights = ImageRewardWeights::hashed(&reward_dir).unwrap();
    params.image_reward = Some(weights.clone());
    let first = step::run(&EvalStep::new(params.clone()), &out, &RunOptions::default()).unwrap();
    let Outcome::Complete { stats, .. } = &first else {
        panic!("{first:?}")
    };
    // Only generated images are scored: ImageReward needs no reference.
    assert_eq!(
        stats.counters.get("real_image_reward_chunks_computed"),
        None
    );
    assert!(
        stats
            .counters
            .contains_key("generated_image_reward_chunks_computed")
    );
    let rows = read_metrics(&out).unwrap();

    let reward = weights.load_on(&candle_core::Device::Cpu).unwrap();
    let safe: Vec<&fixtures::Gen> = gens.iter().filter(|g| g.configuration == "safe").collect();
    let images: Vec<image::DynamicImage> = safe
        .iter()
        .map(|g| image::load_from_memory(&g.image).unwrap())
        .collect();
    let mean_reward = |captions: &[String]| {
        let texts: Vec<&str> = captions.iter().map(String::as_str).collect();
        let s = reward.scores(&images, &texts).unwrap();
        s.iter().sum::<f64>() / s.len() as f64
    };
    check_caption_metric(&rows, "image_reward", &safe, 1e-5, mean_reward);
    let notes = absent_metric_notes(&params).join("\n");
    assert!(
        !notes.contains("ImageReward") && notes.contains("HPSv2"),
        "{notes}"
    );
    // A forced run reads the rewards from the cache.
    forced_rerun_reads_the_cache(params, &out, "image_reward", &rows);
}
