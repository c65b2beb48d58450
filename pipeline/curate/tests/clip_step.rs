//! The `score` step's CLIP columns through the real runner: a tiny random CLIP folder
//! (`anchor_clip::write_random_model`) fills `clip_similarity` and `clip_iqa`; without
//! weights they are null and counted as `clip_off`; the weights' sha256, not their path, is
//! in the parameters; `curate` carries the columns and drops below `min_clip_iqa`.
//! Needs `make models` (the photos, open_nsfw and the CLIP vocabulary); skips without them.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anchor_clip::ClipWeights;
use anchor_clip::{TextConfig, VisionConfig};
use anchor_core::PartStats;
use anchor_core::step::{self, BoxError, Outcome, PartSink, RunOptions, Step, StepCtx, StepId};
use anchor_core::store::TableReader;
use anchor_core::tables::{TableDef, articles, image_fields, pairs, pairs_curated, pairs_scored};
use anchor_curate::clip::{ClipScoring, float32_column, opt_f32};
use anchor_curate::curate::{CurateParams, CurateStep};
use anchor_curate::score::{ScoreParams, ScoreStep};
use anchor_filters::nsfw_runtime::NsfwRuntime;
use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Int32Array, Int64Array, RecordBatch, StringArray,
    StructArray, new_null_array,
};
use arrow_schema::DataType;

const PHOTOS: [&str; 5] = [
    "astronaut.png",
    "chelsea.png",
    "coffee.png",
    "motorcycle_left.png",
    "rocket.jpg",
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

struct Models {
    nsfw: PathBuf,
    vocab: PathBuf,
    photos: Vec<Vec<u8>>,
}

fn models() -> Option<Models> {
    let nsfw = repo().join("data/models/open-nsfw.onnx");
    let vocab = repo().join("data/models/open-clip/bpe_simple_vocab_16e6.txt.gz");
    let photos: Vec<PathBuf> = PHOTOS
        .iter()
        .map(|p| repo().join("data/models/photos").join(p))
        .collect();
    if let Some(missing) = [&nsfw, &vocab]
        .into_iter()
        .chain(&photos)
        .find(|p| !p.exists())
    {
        eprintln!("skipping: {} absent (make models)", missing.display());
        return None;
    }
    Some(Models {
        nsfw,
        vocab,
        photos: photos.iter().map(|p| std::fs::read(p).unwrap()).collect(),
    })
}

fn tiny_clip(dir: &Path) {
    anchor_clip::write_random_model(
        dir,
        &TextConfig {
            hidden_size: 16,
            intermediate_size: 32,
            num_hidden_layers: 1,
            num_attention_heads: 2,
            ..TextConfig::default()
        },
        &VisionConfig {
            hidden_size: 16,
            intermediate_size: 32,
            num_hidden_layers: 1,
            num_attention_heads: 2,
            patch_size: 32,
            ..VisionConfig::default()
        },
        8,
        0,
    )
    .unwrap();
}

/// A batch of `def` with `given` columns; the others null, or a neutral value when required.
fn batch(def: &TableDef, n: usize, given: Vec<(&str, ArrayRef)>) -> RecordBatch {
    let schema = (def.schema)();
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|f| {
            if let Some((_, a)) = given.iter().find(|(name, _)| *name == f.name()) {
                return a.clone();
            }
            if f.is_nullable() {
                return new_null_array(f.data_type(), n);
            }
            match f.data_type() {
                DataType::Utf8 => Arc::new(StringArray::from(vec![""; n])) as ArrayRef,
                DataType::Int32 => Arc::new(Int32Array::from(vec![0; n])),
                DataType::Int64 => Arc::new(Int64Array::from(vec![0; n])),
                DataType::Boolean => Arc::new(BooleanArray::from(vec![false; n])),
                DataType::List(_) => {
                    let mut b = ListBuilder::new(StringBuilder::new());
                    for _ in 0..n {
                        b.append(true);
                    }
                    Arc::new(b.finish())
                }
                other => panic!("fixture: no default for {} ({other})", f.name()),
            }
        })
        .collect();
    RecordBatch::try_new(schema, columns).unwrap()
}

fn strings<S: AsRef<str>>(v: impl IntoIterator<Item = S>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(v))
}

/// Writes `pairs` and `articles` as the scrape would, through the runner.
struct Inputs {
    photos: Vec<Vec<u8>>,
}

impl StepId for Inputs {
    const NAME: &'static str = "scrape";
    const VERSION: u32 = 1;
}

impl Step for Inputs {
    fn params(&self) -> serde_json::Result<serde_json::Value> {
        Ok(serde_json::json!({"photos": self.photos.len()}))
    }
    fn outputs(&self) -> Vec<&'static TableDef> {
        vec![&pairs::DEF, &articles::DEF]
    }
    fn plan(&self, _ctx: &StepCtx) -> Result<usize, BoxError> {
        Ok(1)
    }
    fn run_part(&self, _: usize, _: &StepCtx, sink: &mut PartSink) -> Result<PartStats, BoxError> {
        // One pair per photo plus one failed download; the last photo has an empty caption.
        let n = self.photos.len() + 1;
        let ids: Vec<String> = (0..n).map(|i| format!("p{i}")).collect();
        let mut captions: Vec<String> = (0..n)
            .map(|i| format!("Officials meet reporters in Brussels on day {i} of the summit talks"))
            .collect();
        captions[n - 2] = String::new();
        let mut bytes: Vec<Option<&[u8]>> =
            self.photos.iter().map(|p| Some(p.as_slice())).collect();
        bytes.push(None);
        let mut status = vec!["success"; n];
        status[n - 1] = "http_error";
        let image: ArrayRef = Arc::new(StructArray::new(
            image_fields(),
            vec![
                Arc::new(BinaryArray::from_iter(bytes.iter().copied())) as ArrayRef,
                strings(ids.iter().map(|i| format!("{i}.img"))),
            ],
            None,
        ));
        let shas = strings(ids.iter().map(|i| format!("sha-{i}")));
        let pairs_batch = batch(
            &pairs::DEF,
            n,
            vec![
                (pairs::ID, strings(&ids)),
                (
                    pairs::ARTICLE_ID,
                    strings(ids.iter().map(|i| format!("a{i}"))),
                ),
                (pairs::OUTLET, strings(vec!["bbc"; n])),
                (pairs::CAPTION, strings(&captions)),
                (pairs::IMAGE, image),
                (pairs::SHA256, shas),
                (pairs::STATUS, strings(&status)),
            ],
        );
        sink.write(pairs::NAME, &pairs_batch)?;
        let articles_batch = batch(
            &articles::DEF,
            n,
            vec![
                (articles::ID, strings(ids.iter().map(|i| format!("a{i}")))),
                (
                    articles::PUBLISHED_AT,
                    strings(vec!["2024-01-01T00:00:00Z"; n]),
                ),
            ],
        );
        sink.write(articles::NAME, &articles_batch)?;
        Ok(PartStats::default())
    }
}

fn opts() -> RunOptions {
    RunOptions {
        progress: false,
        jobs: 1,
        ..RunOptions::default()
    }
}

fn score_step(m: &Models, clip: Option<ClipScoring>) -> ScoreStep {
    let mut params = ScoreParams::new(m.nsfw.clone(), NsfwRuntime::Tract);
    params.clip = clip;
    ScoreStep::new(params)
}

fn counters(outcome: &Outcome) -> std::collections::BTreeMap<String, u64> {
    match outcome {
        Outcome::Complete { stats, .. } => stats.counters.clone(),
        other => panic!("expected a computed run, got {other:?}"),
    }
}

/// (id, clip_similarity, clip_iqa, image_error or drop_reason) of every row of `table`.
type ClipRow = (String, Option<f32>, Option<f32>, Option<String>);

fn read_clip(out: &Path, table: &str, reason: &str) -> Vec<ClipRow> {
    let reader = TableReader::open(out, table, None).unwrap();
    let mut rows = Vec::new();
    for b in reader.read_all(None, 1024) {
        let b = b.unwrap();
        let ids = b.column_by_name("id").unwrap();
        let ids = ids.as_any().downcast_ref::<StringArray>().unwrap();
        let why = b.column_by_name(reason).unwrap();
        let why = why.as_any().downcast_ref::<StringArray>().unwrap();
        let sim = float32_column(&b, table, "clip_similarity").unwrap();
        let iqa = float32_column(&b, table, "clip_iqa").unwrap();
        for r in 0..b.num_rows() {
            rows.push((
                ids.value(r).to_owned(),
                opt_f32(sim, r),
                opt_f32(iqa, r),
                (!why.is_null(r)).then(|| why.value(r).to_owned()),
            ));
        }
    }
    rows
}

#[test]
fn clip_columns_are_filled_with_weights_and_null_without() {
    let Some(m) = models() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("out");
    let clip_dir = tmp.path().join("clip");
    tiny_clip(&clip_dir);
    step::run(
        &Inputs {
            photos: m.photos.clone(),
        },
        &out,
        &opts(),
    )
    .unwrap();

    // Without weights: every row null, and the stats say CLIP was off.
    let off = score_step(&m, None);
    let off_params = off.params().expect("params");
    assert!(off_params.get("clip").is_none(), "{off_params}");
    let outcome = step::run(&off, &out, &opts()).unwrap();
    assert_eq!(counters(&outcome).get("clip_off"), Some(&6));
    let rows = read_clip(&out, pairs_scored::NAME, pairs_scored::IMAGE_ERROR);
    assert_eq!(rows.len(), 6);
    assert!(
        rows.iter().all(|r| r.1.is_none() && r.2.is_none()),
        "{rows:?}"
    );

    // With weights: the sha256 is a parameter, the folder is not; the step re-runs.
    let weights = ClipWeights::hashed(&clip_dir, &m.vocab).unwrap();
    let on = score_step(&m, Some(ClipScoring::new(weights.clone())));
    let params = on.params().expect("params");
    assert_eq!(params["clip"]["sha256"], weights.sha256.as_str());
    assert_eq!(params["clip"]["iqa_prompts"][0], "Good photo.");
    assert!(
        !params.to_string().contains(clip_dir.to_str().unwrap()),
        "{params}"
    );
    let outcome = step::run(&on, &out, &opts()).unwrap();
    assert_eq!(counters(&outcome).get("clip_scored"), Some(&5));
    let rows = read_clip(&out, pairs_scored::NAME, pairs_scored::IMAGE_ERROR);
    eprintln!("pairs_scored with CLIP: {rows:?}");
    for (id, sim, iqa, err) in &rows {
        match id.as_str() {
            // The failed download has no pixels.
            "p5" => assert!(sim.is_none() && iqa.is_none() && err.is_some(), "{id}"),
            // The empty caption: image quality but no similarity.
            "p4" => assert!(sim.is_none() && iqa.is_some(), "{id}"),
            _ => assert!(sim.is_some() && iqa.is_some(), "{id}"),
        }
        if let Some(s) = sim {
            assert!((-1.0..=1.0).contains(s), "{id}: similarity {s}");
        }
        if let Some(q) = iqa {
            assert!((0.0..=1.0).contains(q), "{id}: iqa {q}");
        }
    }
    // The images and captions differ, so their similarities do. (CLIP-IQA of a random model
    // often saturates at 1: 100 × a cosine gap of random prompt embeddings is large.)
    let sims: Vec<f32> = rows.iter().filter_map(|r| r.1).collect();
    assert!(sims.iter().any(|&s| s != sims[0]), "{sims:?}");
    // Same inputs, same weights: up to date.
    let again = step::run(
        &score_step(&m, Some(ClipScoring::new(weights))),
        &out,
        &opts(),
    )
    .unwrap();
    assert!(matches!(again, Outcome::UpToDate { .. }), "{again:?}");

    // curate carries the columns, then drops below the CLIP thresholds with their reasons.
    let curate = |min_clip_iqa: f64, min_clip_similarity: f64| {
        let mut p = CurateParams::new(m.vocab.clone());
        p.min_clip_iqa = min_clip_iqa;
        p.min_clip_similarity = min_clip_similarity;
        step::run(&CurateStep::new(p), &out, &opts()).unwrap();
        read_clip(&out, pairs_curated::NAME, pairs_curated::DROP_REASON)
    };
    let curated = curate(0.0, 0.0);
    assert_eq!(
        curated.iter().map(|r| (&r.0, r.1, r.2)).collect::<Vec<_>>(),
        rows.iter().map(|r| (&r.0, r.1, r.2)).collect::<Vec<_>>()
    );
    assert!(
        !curated
            .iter()
            .any(|r| r.3.as_deref().is_some_and(|w| w.starts_with("low_clip")))
    );
    let reason = |rows: &[ClipRow], id: &str| -> Option<String> {
        rows.iter().find(|r| r.0 == id).and_then(|r| r.3.clone())
    };
    // Pairs that reach the CLIP-IQA filter: not dropped by an image filter before it.
    let image_filters = [
        "not_downloaded",
        "undecodable",
        "placeholder",
        "too_small",
        "extreme_aspect",
        "blurry",
        "low_information",
        "too_dark",
        "too_bright",
        "nsfw",
    ];
    let reach_iqa: Vec<&ClipRow> = curated
        .iter()
        .filter(|r| !r.3.as_deref().is_some_and(|w| image_filters.contains(&w)))
        .collect();
    assert!(reach_iqa.len() >= 3, "{curated:?}");
    let iqas: Vec<f32> = reach_iqa.iter().filter_map(|r| r.2).collect();
    let (lo, hi) = iqas
        .iter()
        .fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    // Just above the highest score: every pair that reaches the filter is dropped by it.
    let all_low = curate(f64::from(hi) + 1e-3, 0.0);
    for r in &reach_iqa {
        assert_eq!(
            reason(&all_low, &r.0).as_deref(),
            Some("low_clip_iqa"),
            "{all_low:?}"
        );
    }
    // At the lowest score: the lowest pair is not below it, so it passes.
    let at_lo = curate(f64::from(lo), 0.0);
    let lowest = reach_iqa.iter().find(|r| r.2 == Some(lo)).unwrap();
    assert_ne!(reason(&at_lo, &lowest.0).as_deref(), Some("low_clip_iqa"));

    // Pairs that reach the similarity filter: kept, or dropped only as duplicates after it.
    let reach_sim: Vec<&ClipRow> = curated
        .iter()
        .filter(|r| r.3.as_deref().is_none_or(|w| w.ends_with("_duplicate")))
        .collect();
    let sims: Vec<f32> = reach_sim.iter().filter_map(|r| r.1).collect();
    let (lo, hi) = sims
        .iter()
        .fold((f32::MAX, f32::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    assert!(lo < hi, "need distinct similarities among {reach_sim:?}");
    let threshold = (f64::from(lo) + f64::from(hi)) / 2.0;
    let dropped = curate(0.0, threshold);
    eprintln!("min_clip_similarity {threshold}: {dropped:?}");
    for r in &reach_sim {
        let low = r.1.is_some_and(|s| f64::from(s) < threshold);
        let now = reason(&dropped, &r.0);
        assert_eq!(
            now.as_deref() == Some("low_clip_similarity"),
            low,
            "{now:?} at {threshold}"
        );
    }
}
