//! The ledger: what each step last produced, and from what.
//!
//! ```text
//! <out>/<step>/ledger.json            the step's record (fingerprint, status, output manifests)
//! <out>/<step>/parts/part-NNNNN.json  one completion marker per committed part
//! <out>/<step>/stats.json             summed part statistics of the last complete run
//! ```
//!
//! A part counts as committed when its marker exists, carries the current
//! fingerprint and its files pass the cheap integrity check. Markers are
//! written after the part's data files are renamed into place, so a crash
//! between the two merely re-runs the part.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, IoContext, Result};
use crate::stats::PartStats;
use crate::store::{PartFile, sync_dir};

/// Where a step's record lives.
pub fn step_dir(out: &Path, step: &str) -> PathBuf {
    out.join(step)
}

/// Path of a step's ledger record.
pub fn record_path(out: &Path, step: &str) -> PathBuf {
    step_dir(out, step).join("ledger.json")
}

/// Folder of a step's part markers.
pub fn markers_dir(out: &Path, step: &str) -> PathBuf {
    step_dir(out, step).join("parts")
}

/// Path of the marker of part `index`.
pub fn marker_path(out: &Path, step: &str, index: usize) -> PathBuf {
    markers_dir(out, step).join(format!("part-{index:05}.json"))
}

/// Path of the step's summed statistics.
pub fn stats_path(out: &Path, step: &str) -> PathBuf {
    step_dir(out, step).join("stats.json")
}

/// Whether a step's last run finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    /// Some parts may be committed; the step has not finished.
    Partial,
    /// Every part is committed and the output manifests are final.
    Complete,
}

/// The committed parts of one output table, in index order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableManifest {
    /// Table name.
    pub table: String,
    /// sha256 over the table name and its parts' content hashes; what
    /// downstream steps fold into their own fingerprints.
    pub fingerprint: String,
    /// The part files.
    pub parts: Vec<PartFile>,
}

impl TableManifest {
    /// Builds a manifest and its content fingerprint.
    pub fn new(table: &str, parts: Vec<PartFile>) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(table.as_bytes());
        for part in &parts {
            hasher.update(b"\n");
            hasher.update(part.file.as_bytes());
            hasher.update(b" ");
            hasher.update(part.sha256.as_bytes());
        }
        TableManifest {
            table: table.to_owned(),
            fingerprint: hex::encode(hasher.finalize()),
            parts,
        }
    }

    /// Total rows over all parts.
    pub fn rows(&self) -> u64 {
        self.parts.iter().map(|p| p.rows).sum()
    }
}

/// A step's ledger record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    /// Step name.
    pub step: String,
    /// Step version (bumped when output semantics change).
    pub version: u32,
    /// sha256 of (name, version, canonical params, input fingerprints).
    pub fingerprint: String,
    /// The canonical parameters.
    pub params: serde_json::Value,
    /// Input table name → that table's fingerprint.
    pub inputs: BTreeMap<String, String>,
    /// Number of parts the work is cut into.
    pub n_parts: usize,
    /// Whether the run finished.
    pub status: StepStatus,
    /// The tables the step writes.
    #[serde(default)]
    pub tables: Vec<String>,
    /// Output table manifests (complete runs only).
    #[serde(default)]
    pub outputs: BTreeMap<String, TableManifest>,
}

/// The completion marker of one part.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PartMarker {
    /// Step name.
    pub step: String,
    /// Fingerprint of the run that committed the part.
    pub fingerprint: String,
    /// Part index.
    pub part: usize,
    /// Output table name → the part file written for it.
    pub files: BTreeMap<String, PartFile>,
    /// What the part did.
    pub stats: PartStats,
}

/// The fingerprint of a step run.
pub fn fingerprint(
    step: &str,
    version: u32,
    params: &serde_json::Value,
    inputs: &BTreeMap<String, String>,
) -> String {
    // serde_json's Value keeps object keys sorted (no preserve_order feature),
    // so this serialisation is canonical.
    let doc = serde_json::json!({
        "step": step,
        "version": version,
        "params": params,
        "inputs": inputs,
    });
    hex::encode(Sha256::digest(doc.to_string().as_bytes()))
}

/// A hidden temporary name beside `path`, unique to this process and call.
///
/// Shards (processes) and parts (threads) may write the same file at the same
/// time; each must rename its own complete copy, so a name unique per process
/// alone is not enough.
pub fn unique_temporary(path: &Path) -> PathBuf {
    static CALLS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    path.with_file_name(format!(".{name}.{}.{call}.tmp", std::process::id()))
}

/// Writes `value` as pretty JSON to `path` atomically (temp file + rename).
pub fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).at(dir)?;
    let mut text = serde_json::to_string_pretty(value).map_err(|e| Error::Ledger {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })?;
    text.push('\n');
    let tmp = unique_temporary(path);
    {
        use std::io::Write;
        let mut file = fs::File::create(&tmp).at(&tmp)?;
        file.write_all(text.as_bytes()).at(&tmp)?;
        file.sync_all().at(&tmp)?;
    }
    fs::rename(&tmp, path).at(path)?;
    sync_dir(Some(dir));
    Ok(())
}

/// Reads JSON from `path`; `Ok(None)` when the file does not exist.
pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Option<T>> {
    match fs::read_to_string(path) {
        Ok(text) => serde_json::from_str(&text)
            .map(Some)
            .map_err(|e| Error::Ledger {
                path: path.to_path_buf(),
                detail: format!("unreadable ({e}); delete it to start the step afresh"),
            }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(path, e)),
    }
}

/// A step's record, if it has one.
pub fn read_record(out: &Path, step: &str) -> Result<Option<StepRecord>> {
    read_json(&record_path(out, step))
}

/// A step's record when its last run completed; `None` when it never ran or stopped
/// part-way (each caller says what to run).
pub fn complete_record(out: &Path, step: &str) -> Result<Option<StepRecord>> {
    Ok(read_record(out, step)?.filter(|r| r.status == StepStatus::Complete))
}

/// Every marker of a step, by part index (whatever their fingerprint).
pub fn read_markers(out: &Path, step: &str) -> Result<BTreeMap<usize, PartMarker>> {
    let dir = markers_dir(out, step);
    let mut markers = BTreeMap::new();
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(markers),
        Err(e) => return Err(Error::io(&dir, e)),
    };
    for entry in entries {
        let entry = entry.at(&dir)?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(index) = name
            .strip_prefix("part-")
            .and_then(|s| s.strip_suffix(".json"))
            .and_then(|s| s.parse::<usize>().ok())
        else {
            continue;
        };
        if let Some(marker) = read_json::<PartMarker>(&entry.path())? {
            markers.insert(index, marker);
        }
    }
    Ok(markers)
}

/// Finds the complete step record that produced `table`.
pub fn find_table(out: &Path, table: &str) -> Result<(StepRecord, TableManifest)> {
    let entries = match fs::read_dir(out) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Error::InputNotReady {
                table: table.to_owned(),
                reason: format!("output directory {} does not exist", out.display()),
            });
        }
        Err(e) => return Err(Error::io(out, e)),
    };
    let mut partial_producer = None;
    let mut names: Vec<PathBuf> = entries.filter_map(|e| e.ok().map(|e| e.path())).collect();
    names.sort();
    for dir in names {
        let path = dir.join("ledger.json");
        let Some(record) = read_json::<StepRecord>(&path)? else {
            continue;
        };
        if let Some(manifest) = record.outputs.get(table)
            && record.status == StepStatus::Complete
        {
            let manifest = manifest.clone();
            return Ok((record, manifest));
        }
        if record.status == StepStatus::Partial && record.tables.iter().any(|t| t == table) {
            partial_producer = Some(record.step.clone());
        }
    }
    Err(Error::InputNotReady {
        table: table.to_owned(),
        reason: match partial_producer {
            Some(step) => {
                format!("no complete run has produced it (step {step} is partial; finish it first)")
            }
            None => "no step has produced it".to_owned(),
        },
    })
}
