//! `anchor eval` end to end: input tables written by a fixture step, the real
//! FID Inception weights, the tables, grids and notes, "up to date", and the
//! refusal of weights this build cannot load.

#[path = "../../pipeline/eval/tests/fixtures/mod.rs"]
pub(crate) mod fixtures;

use std::path::PathBuf;

use crate::util::{Run, TestDir};

fn eval(dir: &TestDir, model: &std::path::Path) -> std::process::Command {
    let mut cmd = dir.anchor();
    cmd.args(["eval", "--kid-subsets", "5", "--inception"])
        .arg(model);
    cmd
}

#[test]
fn eval_writes_metrics_tables_and_grids_then_is_up_to_date() {
    let Some(model) = fixtures::inception() else {
        return;
    };
    let dir = TestDir::new();
    let out = dir.path().join("data/out");
    if fixtures::standard(&out).is_none() {
        return;
    }
    let run = Run::of(&mut eval(&dir, &model)).success();
    let stdout = run.stdout();
    assert!(stdout.contains("eval: done, 2 parts computed"), "{stdout}");
    assert!(
        stdout.contains("note: FID_CLIP, CLIP score and the subject metrics are absent"),
        "{stdout}"
    );

    let md = std::fs::read_to_string(out.join("eval/tables.md")).unwrap();
    assert!(
        md.contains("| configuration | FID | FID Entity | FID Non-Entity | KID |"),
        "{md}"
    );
    let base = md.find("| `base` |").expect("base row");
    let safe = md.find("| `safe` |").expect("safe row");
    assert!(base < safe, "{md}");
    assert!(md.contains("FID_CLIP, CLIP score and the subject metrics are absent"));
    assert!(
        md.contains("Real reference (test split): 8 images (all)"),
        "{md}"
    );
    // FID per topic: the fixture's two topics, 4 test images each across both outlets.
    let topics = md
        .find("## FID by topic (all subsets)")
        .expect("topic table");
    let topic_table = &md[topics..];
    assert!(
        topic_table.contains("| configuration | sport | world |"),
        "{md}"
    );
    assert!(topic_table.contains(" (n=4/4) | "), "{md}");

    let csv = std::fs::read_to_string(out.join("eval/tables.csv")).unwrap();
    let mut lines = csv.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("run,base,configuration,fid,fid_entity,fid_non_entity,kid,kid_std")
    );
    let base_line = format!("default,{},base,", fixtures::BASE_DIGEST);
    let base_fid: f64 = lines
        .next()
        .and_then(|l| l.strip_prefix(&base_line))
        .and_then(|l| l.split(',').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{csv}"));
    assert!(
        base_fid.abs() < 1e-3,
        "FID of the real set against itself: {base_fid}"
    );

    let grid = out.join("eval/grids/grid-000.png");
    let decoded = image_size(&grid);
    // Two configuration columns of 160 px cells with 4 px margins.
    assert_eq!(decoded.0, 4 + 2 * (160 + 4), "{decoded:?}");

    // ANCHOR_E2E_KEEP=DIR keeps this run's outputs for a look (tables, grids).
    if let Some(keep) = std::env::var_os("ANCHOR_E2E_KEEP") {
        let status = std::process::Command::new("cp")
            .arg("-r")
            .arg(&out)
            .arg(&keep)
            .status();
        assert!(status.is_ok_and(|s| s.success()));
    }

    let again = Run::of(&mut eval(&dir, &model)).success();
    assert!(
        again.stdout().contains("eval: up to date"),
        "{}",
        again.stdout()
    );
    assert_eq!(
        std::fs::read_to_string(out.join("eval/tables.md")).unwrap(),
        md
    );

    // `anchor tables` stacks evaluations: a copy of this one, and this folder evaluated
    // again under another label (from the feature cache), in one table.
    let first = dir.path().join("first");
    copy_dir(&out, &first);
    let same = Run::of(dir.anchor().arg("tables").arg(&first).arg(&out));
    assert_eq!(same.code(), Some(2), "{}", same.stderr());
    assert!(
        same.stderr()
            .contains("both hold run \"default\", configuration \"base\""),
        "{}",
        same.stderr()
    );
    let relabelled = Run::of(eval(&dir, &model).args(["--run", "second look"])).success();
    assert!(
        relabelled.stdout().contains("eval: done, 2 parts computed"),
        "{}",
        relabelled.stdout()
    );
    let stacked = dir.path().join("stacked");
    Run::of(
        dir.anchor()
            .arg("tables")
            .arg(&first)
            .arg(&out)
            .arg("--to")
            .arg(&stacked),
    )
    .success();
    let both = std::fs::read_to_string(stacked.join("tables.md")).unwrap();
    let short = &fixtures::BASE_DIGEST[..12];
    for run in ["default", "second look"] {
        for configuration in ["base", "safe"] {
            let line = format!("| {run} | `{short}` | `{configuration}` | ");
            assert_eq!(
                both.matches(&line).count(),
                3,
                "main, outlet, topic: {line}\n{both}"
            );
        }
    }
    let csv = std::fs::read_to_string(stacked.join("tables.csv")).unwrap();
    assert_eq!(csv.lines().count(), 5, "{csv}");
    let bad = Run::of(eval(&dir, &model).args(["--run", "a|b"]));
    assert_eq!(bad.code(), Some(2), "{}", bad.stderr());
    assert!(bad.stderr().contains("--run \"a|b\""), "{}", bad.stderr());
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    let status = std::process::Command::new("cp")
        .arg("-r")
        .arg(from)
        .arg(to)
        .status();
    assert!(
        status.is_ok_and(|s| s.success()),
        "cp -r {}",
        from.display()
    );
}

/// Width and height from a PNG's IHDR chunk.
fn image_size(path: &std::path::Path) -> (u32, u32) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[1..4], b"PNG");
    let be = |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    (be(16), be(20))
}

#[test]
fn clip_weights_this_build_cannot_load_are_refused_before_any_work() {
    let dir = TestDir::new();
    let file = dir.write("weights.pt", "not really");
    // --clip takes a transformers folder; a lone file is named as the mistake.
    let clip = Run::of(dir.anchor().arg("eval").arg("--clip").arg(&file));
    assert_eq!(clip.code(), Some(2), "{}", clip.stderr());
    assert!(clip.stderr().contains("not a folder"), "{}", clip.stderr());
    // A folder whose config this build cannot run is refused by field.
    let cfg = dir.write(
        "gelu-clip/config.json",
        r#"{"model_type": "clip", "text_config": {"hidden_act": "gelu"}}"#,
    );
    let folder = cfg.parent().unwrap();
    let gelu = Run::of(dir.anchor().arg("eval").arg("--clip").arg(folder));
    assert_eq!(gelu.code(), Some(2), "{}", gelu.stderr());
    assert!(
        gelu.stderr().contains("text_config.hidden_act \"gelu\""),
        "{}",
        gelu.stderr()
    );
}

/// The Inception model and a run folder with the standard fixture dataset and the
/// CLIP vocabulary where the CLI looks for it (its models folder).
fn clip_eval_dir() -> Option<(PathBuf, TestDir, PathBuf, Vec<fixtures::Pair>)> {
    let model = fixtures::inception()?;
    let vocab = fixtures::repo().join("data/models/open-clip/bpe_simple_vocab_16e6.txt.gz");
    if !vocab.exists() {
        eprintln!("skipping: {} absent (make models)", vocab.display());
        return None;
    }
    let dir = TestDir::new();
    let out = dir.path().join("data/out");
    let (pairs, _) = fixtures::standard(&out)?;
    let models = dir.path().join("data/models/open-clip");
    std::fs::create_dir_all(&models).unwrap();
    std::fs::copy(&vocab, models.join("bpe_simple_vocab_16e6.txt.gz")).unwrap();
    Some((model, dir, out, pairs))
}

#[test]
fn eval_with_a_clip_folder_writes_fid_clip_and_clip_score() {
    let Some((model, dir, out, pairs)) = clip_eval_dir() else {
        return;
    };
    let subjects: Vec<(String, Vec<String>)> = pairs
        .iter()
        .filter(|p| p.split == "test")
        .map(|p| {
            (
                p.id.clone(),
                vec!["Angela Merkel".into(), "Brussels".into()],
            )
        })
        .collect();
    fixtures::write_subjects(&out, &subjects);
    let clip = dir.path().join("clip");
    let small = |h: usize| (h, 2 * h, 1, 2);
    let (hidden, inter, layers, heads) = small(16);
    anchor_clip::write_random_model(
        &clip,
        &anchor_clip::TextConfig {
            hidden_size: hidden,
            intermediate_size: inter,
            num_hidden_layers: layers,
            num_attention_heads: heads,
            ..Default::default()
        },
        &anchor_clip::VisionConfig {
            hidden_size: hidden,
            intermediate_size: inter,
            num_hidden_layers: layers,
            num_attention_heads: heads,
            ..Default::default()
        },
        6,
        0,
    )
    .unwrap();
    let run = Run::of(eval(&dir, &model).arg("--clip").arg(&clip)).success();
    let stdout = run.stdout();
    assert!(stdout.contains("FID_CLIP"), "{stdout}");
    assert!(!stdout.contains("note: FID_CLIP"), "{stdout}");
    assert!(stdout.contains("note: ImageReward is absent"), "{stdout}");
    let md = std::fs::read_to_string(out.join("eval/tables.md")).unwrap();
    assert!(md.contains("FID_CLIP") && md.contains("CLIP score"), "{md}");
    assert!(
        md.contains("subject_hit_rate") && md.contains("calibrated"),
        "{md}"
    );
    let csv = std::fs::read_to_string(out.join("eval/tables.csv")).unwrap();
    let header = csv.lines().next().unwrap();
    assert!(
        header.contains("fid_clip") && header.contains("clip_score"),
        "{header}"
    );
    // Same inputs and weights: up to date.
    let again = Run::of(eval(&dir, &model).arg("--clip").arg(&clip)).success();
    assert!(again.stdout().contains("up to date"), "{}", again.stdout());

    // An open_clip folder serves the same metrics (the ViT-L/14 clean-fid uses comes so).
    let open_clip = dir.path().join("open-clip");
    anchor_clip::open_clip::write_random_model(&open_clip, &tiny_open_clip(), 4).unwrap();
    let run = Run::of(eval(&dir, &model).arg("--clip").arg(&open_clip)).success();
    assert!(!run.stdout().contains("up to date"), "{}", run.stdout());
    let md = std::fs::read_to_string(out.join("eval/tables.md")).unwrap();
    assert!(md.contains("FID_CLIP") && md.contains("CLIP score"), "{md}");
    assert!(md.contains("open_clip's evaluation transform"), "{md}");
    let csv = std::fs::read_to_string(out.join("eval/tables.csv")).unwrap();
    assert!(csv.lines().next().unwrap().contains("fid_clip"), "{csv}");
}

/// A tiny OpenCLIP of the ViT-H/14 kind (exact GELU).
fn tiny_open_clip() -> anchor_clip::OpenClipConfig {
    let config = serde_json::json!({
        "embed_dim": 8,
        "vision_cfg": {"image_size": 32, "layers": 1, "width": 24, "head_width": 12, "patch_size": 16},
        "text_cfg": {"width": 16, "heads": 2, "layers": 1}
    });
    anchor_clip::OpenClipConfig::from_json(&serde_json::to_vec(&config).unwrap(), "tiny")
        .unwrap()
        .0
}

#[test]
fn eval_with_hps_weights_writes_hpsv2_and_refuses_a_wrong_checkpoint() {
    let Some((model, dir, out, _)) = clip_eval_dir() else {
        return;
    };

    // A lone file is read as HPSv2's ViT-H/14 checkpoint; one that is not is refused
    // before any work, by name.
    let bogus = dir.write("HPS_v2_compressed.pt", "not a checkpoint");
    let refused = Run::of(eval(&dir, &model).arg("--hps").arg(&bogus));
    assert_eq!(refused.code(), Some(2), "{}", refused.stderr());
    assert!(
        refused.stderr().contains("--hps") && refused.stderr().contains("HPS_v2_compressed.pt"),
        "{}",
        refused.stderr()
    );
    assert!(!out.join("eval/tables.md").exists());

    let hps = dir.path().join("hps");
    anchor_clip::open_clip::write_random_model(&hps, &tiny_open_clip(), 1).unwrap();
    let run = Run::of(eval(&dir, &model).arg("--hps").arg(&hps)).success();
    let stdout = run.stdout();
    assert!(stdout.contains("HPSv2"), "{stdout}");
    assert!(!stdout.contains("note: HPSv2"), "{stdout}");
    assert!(stdout.contains("note: ImageReward is absent"), "{stdout}");
    let md = std::fs::read_to_string(out.join("eval/tables.md")).unwrap();
    assert!(md.contains("| HPSv2 |") || md.contains("HPSv2 |"), "{md}");
    assert!(md.contains("HPSv2: mean over generated images"), "{md}");
    let csv = std::fs::read_to_string(out.join("eval/tables.csv")).unwrap();
    let header = csv.lines().next().unwrap();
    assert!(header.contains("hpsv2"), "{header}");
    let again = Run::of(eval(&dir, &model).arg("--hps").arg(&hps)).success();
    assert!(again.stdout().contains("up to date"), "{}", again.stdout());
}

#[test]
fn eval_with_an_image_reward_folder_writes_image_reward_and_refuses_an_incomplete_one() {
    use anchor_clip::image_reward::{self, TextConfig, VisionShape};
    let Some((model, dir, out, _)) = clip_eval_dir() else {
        return;
    };
    let reward = dir.path().join("image-reward");
    let vision = VisionShape {
        image_size: 32,
        patch_size: 16,
        width: 64,
        depth: 1,
        mlp_width: 128,
    };
    let text = TextConfig::bert(32, 1, 2, 64);
    image_reward::write_random_model(&reward, &vision, &text, &["the", "in"], 2).unwrap();

    // Without the vocabulary the folder is refused before any work, naming the file.
    let vocab = reward.join(image_reward::VOCAB_FILE);
    let kept = std::fs::read(&vocab).unwrap();
    std::fs::remove_file(&vocab).unwrap();
    let refused = Run::of(eval(&dir, &model).arg("--image-reward").arg(&reward));
    assert_eq!(refused.code(), Some(2), "{}", refused.stderr());
    assert!(
        refused.stderr().contains("--image-reward") && refused.stderr().contains("vocab.txt"),
        "{}",
        refused.stderr()
    );
    assert!(!out.join("eval/tables.md").exists());
    std::fs::write(&vocab, kept).unwrap();

    let run = Run::of(eval(&dir, &model).arg("--image-reward").arg(&reward)).success();
    let stdout = run.stdout();
    assert!(stdout.contains("ImageReward"), "{stdout}");
    assert!(!stdout.contains("note: ImageReward"), "{stdout}");
    assert!(stdout.contains("note: HPSv2 is absent"), "{stdout}");
    let md = std::fs::read_to_string(out.join("eval/tables.md")).unwrap();
    assert!(md.contains("ImageReward |"), "{md}");
    assert!(
        md.contains("ImageReward: mean over generated images"),
        "{md}"
    );
    let csv = std::fs::read_to_string(out.join("eval/tables.csv")).unwrap();
    assert!(
        csv.lines().next().unwrap().contains("image_reward"),
        "{csv}"
    );
    let again = Run::of(eval(&dir, &model).arg("--image-reward").arg(&reward)).success();
    assert!(again.stdout().contains("up to date"), "{}", again.stdout());
}
