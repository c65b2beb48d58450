//! Reading the published dataset: the files the `export` step writes under
//! `<out>/dataset/<subset>/<split>-NNNNN-of-MMMMM.parquet` (columns of
//! [`crate::tables::dataset`]), so that later steps see exactly the images that were
//! published (the entropy crop, or the originals with `--original-images`).
//!
//! Only the files of the export step's last complete run are read: each file carries the
//! fingerprint of the run that wrote it, and files of earlier runs that the `card` step has
//! not removed are skipped.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use arrow_array::RecordBatch;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::columns::Columns;
use crate::error::{Error, IoContext, Result};
use crate::ledger::{self, StepStatus};
use crate::tables::dataset;

/// The step that publishes the dataset.
pub const EXPORT_STEP: &str = "export";

/// The folder of the published dataset under `out`.
pub fn dataset_dir(out: &Path) -> PathBuf {
    out.join(dataset::NAME)
}

/// One published row: what training needs of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Published {
    /// Pair id.
    pub id: String,
    /// `entity` or `non_entity`.
    pub subset: String,
    /// Cleaned caption.
    pub caption: String,
    /// The published image bytes (JPEG of the crop by default).
    pub image: Vec<u8>,
}

/// The fingerprint of the export step's last complete run: the identity of what is
/// published. An error names the step to run when there is none.
pub fn export_fingerprint(out: &Path) -> Result<String> {
    match ledger::read_record(out, EXPORT_STEP)? {
        Some(r) if r.status == StepStatus::Complete => Ok(r.fingerprint),
        Some(_) => Err(Error::InputNotReady {
            table: dataset::NAME.to_owned(),
            reason: format!("step {EXPORT_STEP} is partial; finish it (`anchor split`) first"),
        }),
        None => Err(Error::InputNotReady {
            table: dataset::NAME.to_owned(),
            reason: format!("step {EXPORT_STEP} has not run; run `anchor split` first"),
        }),
    }
}

/// The files of `split` that the export run with `fingerprint` wrote, sorted by path.
pub fn files(out: &Path, split: &str, fingerprint: &str) -> Result<Vec<PathBuf>> {
    let root = dataset_dir(out);
    let prefix = format!("{split}-");
    let mut found = Vec::new();
    let subsets = match std::fs::read_dir(&root) {
        Ok(d) => d,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(Error::io(&root, e)),
    };
    for subset in subsets {
        let subset = subset.at(&root)?.path();
        if !subset.is_dir() {
            continue;
        }
        for entry in std::fs::read_dir(&subset).at(&subset)? {
            let path = entry.at(&subset)?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with(&prefix)
                && name.ends_with(".parquet")
                && crate::store::file_fingerprint(&path, dataset::NAME)?.as_deref()
                    == Some(fingerprint)
            {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

fn builder(path: &Path) -> Result<ParquetRecordBatchReaderBuilder<File>> {
    let file = File::open(path).at(path)?;
    ParquetRecordBatchReaderBuilder::try_new(file).map_err(|source| Error::Parquet {
        table: dataset::NAME.to_owned(),
        path: path.to_path_buf(),
        source,
    })
}

/// The published rows of `split` from the export step's last complete run, by id.
pub fn read_split(out: &Path, split: &str) -> Result<BTreeMap<String, Published>> {
    let fingerprint = export_fingerprint(out)?;
    let mut rows = BTreeMap::new();
    for path in files(out, split, &fingerprint)? {
        let b = builder(&path)?;
        let cols = [
            dataset::ID,
            dataset::SUBSET,
            dataset::CAPTION,
            dataset::IMAGE,
        ];
        let mask = ProjectionMask::columns(b.parquet_schema(), cols);
        let reader = b
            .with_projection(mask)
            .with_batch_size(64)
            .build()
            .map_err(|source| Error::Parquet {
                table: dataset::NAME.to_owned(),
                path: path.clone(),
                source,
            })?;
        for batch in reader {
            let batch = batch.map_err(|source| Error::Arrow {
                table: format!("{} ({})", dataset::NAME, path.display()),
                source,
            })?;
            for r in from_batch(&batch)? {
                rows.insert(r.id.clone(), r);
            }
        }
    }
    Ok(rows)
}

/// The (`id`, `subset`, `caption`, `image`) of a batch of published rows (any string and
/// binary layout); a null is an error naming the column and row.
pub fn from_batch(b: &RecordBatch) -> Result<Vec<Published>> {
    let c = Columns::new(b, dataset::NAME);
    let (id, subset, caption) = (
        c.strings(dataset::ID)?,
        c.strings(dataset::SUBSET)?,
        c.strings(dataset::CAPTION)?,
    );
    let image = c.image(dataset::IMAGE)?;
    (0..b.num_rows())
        .map(|i| {
            Ok(Published {
                id: c.required(dataset::ID, i, id.get(i))?.to_owned(),
                subset: c.required(dataset::SUBSET, i, subset.get(i))?.to_owned(),
                caption: c.required(dataset::CAPTION, i, caption.get(i))?.to_owned(),
                image: c.required(dataset::IMAGE, i, image.bytes(i))?.to_vec(),
            })
        })
        .collect()
}
