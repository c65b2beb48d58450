//! The eval step through the real runner, with the real FID Inception weights,
//! on input tables written by a fixture step (photos from `data/models/photos`).

mod fixtures;

use anchor_core::step::{self, Outcome, RunOptions};
use anchor_eval::FidInception;
use anchor_eval::inception::preprocess::RgbImage;
use anchor_eval::report::{MetricRow, read_metrics};
use anchor_eval::step::{EvalParams, EvalStep, Weights};
use anchor_eval::{Features, kid};
use std::path::Path;

fn eval_step(model: &Path) -> EvalStep {
    let mut params = EvalParams::new(Weights::hashed(model).unwrap());
    params.settings.kid_subsets = 5;
    EvalStep::new(params)
}

/// The row of configuration `c`, metric `m`, subset `s` and outlet `o`, over all topics.
fn find<'a>(rows: &'a [MetricRow], c: &str, m: &str, s: &str, o: &str) -> &'a MetricRow {
    find_topic(rows, c, m, s, o, "all")
}

fn find_topic<'a>(
    rows: &'a [MetricRow],
    c: &str,
    m: &str,
    s: &str,
    o: &str,
    t: &str,
) -> &'a MetricRow {
    rows.iter()
        .find(|r| {
            r.configuration == c && r.metric == m && r.subset == s && r.outlet == o && r.topic == t
        })
        .unwrap_or_else(|| panic!("no row {c} {m} {s} {o} {t} in {rows:#?}"))
}

fn features(net: &FidInception, images: &[&[u8]]) -> Features {
    let decoded: Vec<RgbImage> = images
        .iter()
        .map(|b| RgbImage::decode(b, Path::new("test")).unwrap())
        .collect();
    net.features(&decoded).unwrap()
}

fn counter(outcome: &Outcome, name: &str) -> u64 {
    match outcome {
        Outcome::Complete { stats, .. } => stats.counters.get(name).copied().unwrap_or(0),
        other => panic!("expected a complete run, got {other:?}"),
    }
}

#[test]
fn metrics_through_the_step_match_the_library_rerun_is_up_to_date_and_cache_survives() {
    let Some(model) = fixtures::inception() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let Some((pairs, gens)) = fixtures::standard(out) else {
        return;
    };
    let step = eval_step(&model);
    let first = step::run(&step, out, &RunOptions::default()).unwrap();
    assert_eq!(counter(&first, "real_images"), 8);
    assert_eq!(counter(&first, "real_chunks_computed"), 1);
    let rows = read_metrics(out).unwrap();

    // Sorted by (configuration, metric, subset, outlet, topic), as the schema says.
    let keys: Vec<_> = rows
        .iter()
        .map(|r| (&r.configuration, &r.metric, &r.subset, &r.outlet, &r.topic))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);

    // Every row names the run and the base the configurations were sampled from (the LoRA
    // configurations' model ids name the same base).
    assert!(
        rows.iter()
            .all(|r| r.run == "default" && r.base == fixtures::BASE_DIGEST),
        "{rows:#?}"
    );

    // FID of a set against itself is 0: `base` is the real test images.
    for subset in ["all", "entity", "non_entity"] {
        let r = find(&rows, "base", "fid", subset, "all");
        assert!(r.value.abs() < 1e-3, "base {subset}: {}", r.value);
    }
    let base_bbc = find(&rows, "base", "fid", "all", "bbc");
    assert!(base_bbc.value.abs() < 1e-3);
    assert_eq!((base_bbc.n_generated, base_bbc.n_reference), (4, 4));
    // Topics cross outlets only through `all`.
    assert!(
        !rows.iter().any(|r| r.topic != "all" && r.outlet != "all"),
        "a row split by both outlet and topic"
    );
    let topics: std::collections::BTreeSet<&str> = rows.iter().map(|r| r.topic.as_str()).collect();
    assert_eq!(
        topics.into_iter().collect::<Vec<_>>(),
        ["all", "sport", "world"]
    );

    // The step's numbers are the library's on the same images.
    let net = FidInception::load(&model, &candle_core::Device::Cpu).unwrap();
    let test: Vec<&fixtures::Pair> = pairs.iter().filter(|p| p.split == "test").collect();
    let safe: Vec<&fixtures::Gen> = gens.iter().filter(|g| g.configuration == "safe").collect();
    for (subset, topic) in [
        ("all", "all"),
        ("entity", "all"),
        ("non_entity", "all"),
        ("all", "world"),
        ("entity", "sport"),
    ] {
        let holds =
            |s: &str, t: &str| (subset == "all" || s == subset) && (topic == "all" || t == topic);
        let real_bytes: Vec<&[u8]> = test
            .iter()
            .filter(|p| holds(p.subset, p.topic))
            .map(|p| p.image.as_slice())
            .collect();
        let gen_bytes: Vec<&[u8]> = safe
            .iter()
            .filter(|g| holds(g.subset, g.topic))
            .map(|g| g.image.as_slice())
            .collect();
        let (r, g) = (features(&net, &real_bytes), features(&net, &gen_bytes));
        let want_fid = anchor_eval::fid(&r, &g).unwrap();
        let got = find_topic(&rows, "safe", "fid", subset, "all", topic);
        assert!(
            (got.value - want_fid).abs() <= 1e-4 * want_fid.abs(),
            "safe {subset} {topic}: step {} vs library {want_fid}",
            got.value
        );
        assert!(want_fid > 1.0, "different photos: {want_fid}");
        assert_eq!(got.n_generated as usize, gen_bytes.len());
        assert_eq!(got.n_reference as usize, real_bytes.len());
        let want_kid = kid(&r, &g, 5, 1000, 0).unwrap();
        let got = find_topic(&rows, "safe", "kid", subset, "all", topic);
        assert!(
            (got.value - want_kid.mean).abs() <= 1e-4 * want_kid.mean.abs().max(1e-3),
            "safe kid {subset} {topic}: {} vs {}",
            got.value,
            want_kid.mean
        );
        assert!(got.std.is_some());
    }

    // A second run with the same inputs does nothing.
    let again = step::run(&step, out, &RunOptions::default()).unwrap();
    assert!(matches!(again, Outcome::UpToDate { .. }), "{again:?}");

    // A new configuration reruns the step; the real features (and the old
    // configurations' ones) come from the cache.
    let mut more = gens.clone();
    for g in gens.iter().filter(|g| g.configuration == "safe") {
        more.push(fixtures::Gen {
            configuration: "lora".into(),
            seed: 371,
            ..g.clone()
        });
    }
    fixtures::write_generations(out, &more, "v2");
    let step = eval_step(&model);
    let third = step::run(&step, out, &RunOptions::default()).unwrap();
    assert_eq!(counter(&third, "real_chunks_computed"), 0);
    assert_eq!(counter(&third, "real_chunks_cached"), 1);
    assert_eq!(counter(&third, "generated_chunks_computed"), 0, "{third:?}");
    let rows2 = read_metrics(out).unwrap();
    let lora = find(&rows2, "lora", "fid", "all", "all");
    let safe = find(&rows2, "safe", "fid", "all", "all");
    // Same images as `safe`, so the same FID.
    assert!((lora.value - safe.value).abs() < 1e-9 * safe.value);
    for r in rows.iter() {
        let now = find_topic(
            &rows2,
            &r.configuration,
            &r.metric,
            &r.subset,
            &r.outlet,
            &r.topic,
        );
        assert_eq!(now, r, "an old configuration's row changed");
    }
}

#[test]
fn an_empty_test_split_is_a_clear_error() {
    let Some(model) = fixtures::inception() else {
        return;
    };
    let Some(photos) = fixtures::photos(&["astronaut.png", "coffee.png"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let pairs: Vec<fixtures::Pair> = photos
        .iter()
        .enumerate()
        .map(|(i, b)| fixtures::Pair {
            id: format!("{i:016x}"),
            split: "train",
            subset: "entity",
            outlet: "bbc",
            topic: "world",
            image: b.clone(),
        })
        .collect();
    fixtures::write_dataset(dir.path(), &pairs);
    let gens: Vec<fixtures::Gen> = pairs
        .iter()
        .map(|p| fixtures::Gen {
            id: p.id.clone(),
            configuration: "base".into(),
            seed: 42,
            subset: p.subset,
            outlet: p.outlet,
            topic: p.topic,
            image: p.image.clone(),
        })
        .collect();
    fixtures::write_generations(dir.path(), &gens, "v1");
    let err = step::run(&eval_step(&model), dir.path(), &RunOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("step eval") && err.contains("table splits: no pair is in the test split"),
        "{err}"
    );
}

#[test]
fn a_configuration_sampled_from_two_bases_is_refused() {
    let Some(model) = fixtures::inception() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path();
    let Some((_, gens)) = fixtures::standard(out) else {
        return;
    };
    // Half of `safe` from another base: its FID would mix two models.
    fixtures::write_generations_with(out, &gens, "v2", |g| {
        if g.configuration == "safe" && g.subset == "entity" {
            "0ther-base+lora:safe".to_owned()
        } else {
            fixtures::model_id(&g.configuration)
        }
    });
    let err = step::run(&eval_step(&model), out, &RunOptions::default())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("configuration safe was sampled from 2 base models (0ther-base, 5d41402abc4b2a76b9719d911017c592)"),
        "{err}"
    );
}
