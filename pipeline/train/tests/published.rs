//! Training reads the images the export step published (the entropy crop), not the
//! original `pairs` bytes, and only the files of the export's last complete run.

use std::collections::BTreeMap;

use anchor_core::step::{self, RunOptions};
use anchor_core::store::TableReader;
use anchor_core::tables::{pairs, splits, subjects};
use anchor_filters::crop::CropParams;
use anchor_split::export::{ExportParams, ExportStep};
use anchor_train::data;

type TestResult = Result<(), Box<dyn std::error::Error>>;

#[test]
fn train_examples_are_the_published_crops() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let out = tmp.path();
    anchor_train::fixture::write_tables(out, 30, 7)?;
    let pairs_table = TableReader::open(out, pairs::NAME, Some(pairs::schema()))?;
    let originals: BTreeMap<String, Vec<u8>> =
        anchor_core::tables::read_rows(&pairs_table, None, pairs::from_batch)?
            .into_iter()
            .filter_map(|r| Some((r.id, r.bytes?)))
            .collect();

    // The fixture's stand-in publishes the original bytes.
    let open = |t: &str, s| TableReader::open(out, t, Some(s));
    let mut dropped = BTreeMap::new();
    let before = data::examples(
        out,
        &open(splits::NAME, splits::schema())?,
        Some(&open(subjects::NAME, subjects::schema())?),
        &mut dropped,
    )?;
    assert!(!before.is_empty());
    for e in &before {
        assert_eq!(Some(&e.image), originals.get(&e.id), "{}", e.id);
    }

    // The real export replaces them with the entropy crop (JPEG, square, never upscaled).
    let export = ExportStep::new(ExportParams {
        crop: CropParams::default(),
        original_images: false,
    });
    let opts = RunOptions {
        force: true,
        ..RunOptions::default()
    };
    step::run(&export, out, &opts)?;
    let mut dropped = BTreeMap::new();
    let after = data::examples(
        out,
        &open(splits::NAME, splits::schema())?,
        Some(&open(subjects::NAME, subjects::schema())?),
        &mut dropped,
    )?;
    assert_eq!(
        after.iter().map(|e| &e.id).collect::<Vec<_>>(),
        before.iter().map(|e| &e.id).collect::<Vec<_>>()
    );
    assert_eq!(dropped.get("not_exported"), None);
    for e in &after {
        assert_ne!(Some(&e.image), originals.get(&e.id), "{}", e.id);
        let img = image::load_from_memory_with_format(&e.image, image::ImageFormat::Jpeg)?;
        // The fixture images are 48x64: the crop is the 48 px square.
        assert_eq!((img.width(), img.height()), (48, 48), "{}", e.id);
        assert!(!e.subjects.is_empty(), "{}", e.id);
        let (plain, _) = data::preprocess(&e.id, &e.image, 16)?;
        assert_eq!(plain.len(), 3 * 16 * 16);
    }
    Ok(())
}

#[test]
fn training_without_a_published_dataset_names_the_step_to_run() -> TestResult {
    let tmp = tempfile::tempdir()?;
    let e = anchor_core::published::read_split(tmp.path(), "train").unwrap_err();
    assert!(e.to_string().contains("anchor split"), "{e}");
    Ok(())
}
