//! The durable annotation cache under `<out>/annotate/cache/`.
//!
//! Results are keyed by (sha256 of the caption, backend, model id, prompt version, variant),
//! where the variant folds in every other setting that changes an answer (requantisation,
//! subject cap, prompt text fingerprint). A re-run, a resumed run after `kill -9`, or a run
//! over more data looks every caption up first and only annotates the misses; changing the
//! prompt version changes the key of exactly the rows that used the prompt.
//!
//! Storage is append-only JSON Lines, one file per writer slot (`part-NNNNN.jsonl`, the step's
//! part index, so two processes of a sharded run never append to the same file). Each batch
//! of records is written and `fsync`ed before the part that needs it is committed. A crash
//! can leave a torn last line: readers skip any line that does not parse, and the next
//! append first terminates it with a newline so it cannot swallow the next record.
//!
//! Transient failures (`timeout`, `transport`) are never cached, so a later run retries them.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::parse::ErrorClass;
use crate::subject::Subject;
use crate::{Error, Result};

/// Who produced an answer: everything but the caption that its cache key covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    /// Backend name (`gguf`, `openai`, `heuristic`).
    pub backend: String,
    /// Model identity (GGUF sha256, served model name, heuristic version).
    pub model_id: String,
    /// Prompt version; `None` for the heuristic.
    pub prompt_version: Option<String>,
    /// Other output-changing settings, canonicalised (e.g. `requant=q8_0;max_subjects=6`).
    pub variant: String,
}

impl Identity {
    /// The cache key of `caption` under this identity.
    pub fn key(&self, caption: &str) -> String {
        self.key_from_sha(&caption_sha256(caption))
    }

    fn key_from_sha(&self, caption_sha256: &str) -> String {
        let mut h = Sha256::new();
        h.update(caption_sha256.as_bytes());
        for part in [
            self.backend.as_str(),
            self.model_id.as_str(),
            self.prompt_version.as_deref().unwrap_or(""),
            self.variant.as_str(),
        ] {
            h.update([0]);
            h.update(part.as_bytes());
        }
        hex::encode(h.finalize())
    }
}

/// sha256 of a caption's UTF-8 bytes, hex.
pub fn caption_sha256(caption: &str) -> String {
    hex::encode(Sha256::digest(caption.as_bytes()))
}

/// One cached answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// Valid subjects (empty when `error_class` is set).
    pub subjects: Vec<Subject>,
    /// The raw answer text.
    pub raw: String,
    /// Stable error class of a rejected answer.
    pub error_class: Option<String>,
    /// Detail of a rejected answer.
    pub error_message: Option<String>,
}

impl Entry {
    /// Whether this answer may be cached: transient failures are retried by the next run.
    pub fn cacheable(&self) -> bool {
        !matches!(
            self.error_class.as_deref(),
            Some(c) if c == ErrorClass::Timeout.as_str() || c == ErrorClass::Transport.as_str()
        )
    }
}

/// A line of a cache file.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Record {
    key: String,
    caption_sha256: String,
    #[serde(flatten)]
    identity: Identity,
    #[serde(flatten)]
    entry: Entry,
}

/// What opening the cache found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Cache files read.
    pub files: usize,
    /// Records loaded.
    pub records: usize,
    /// Lines skipped because they did not parse (a torn write after a crash).
    pub skipped: usize,
}

/// The cache: every record of every file in memory, new ones appended durably.
#[derive(Debug)]
pub struct Cache {
    dir: PathBuf,
    map: Mutex<HashMap<String, Entry>>,
    report: LoadReport,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> Error + '_ {
    move |source| Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Cache {
    /// Opens (and creates) the cache folder and loads every `*.jsonl` file in it.
    pub fn open(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(io_err(dir))?;
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(io_err(dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .collect();
        files.sort();
        let mut map = HashMap::new();
        let mut report = LoadReport {
            files: files.len(),
            ..LoadReport::default()
        };
        for path in &files {
            let mut text = String::new();
            File::open(path)
                .and_then(|mut f| f.read_to_string(&mut text))
                .map_err(io_err(path))?;
            for line in text.lines() {
                if line.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str::<Record>(line) {
                    Ok(r) if r.key == r.identity.key_from_sha(&r.caption_sha256) => {
                        report.records += 1;
                        map.insert(r.key, r.entry);
                    }
                    _ => report.skipped += 1,
                }
            }
        }
        if report.skipped > 0 {
            tracing::warn!(
                dir = %dir.display(),
                skipped = report.skipped,
                "cache lines skipped (torn writes after a crash are expected)"
            );
        }
        Ok(Cache {
            dir: dir.to_path_buf(),
            map: Mutex::new(map),
            report,
        })
    }

    /// What opening found.
    pub fn load_report(&self) -> LoadReport {
        self.report
    }

    /// Number of cached answers.
    pub fn len(&self) -> usize {
        self.map.lock().map_or(0, |m| m.len())
    }

    /// Whether the cache is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The cached answer for `key`.
    pub fn get(&self, key: &str) -> Option<Entry> {
        self.map.lock().ok()?.get(key).cloned()
    }

    /// The file of writer slot `slot`.
    pub fn file_path(&self, slot: usize) -> PathBuf {
        self.dir.join(format!("part-{slot:05}.jsonl"))
    }

    /// Appends `(caption, entry)` answers of `identity` to slot `slot`'s file and syncs it
    /// to disk, then makes them visible to `get`. Uncacheable entries are skipped.
    pub fn append(&self, slot: usize, identity: &Identity, items: &[(&str, &Entry)]) -> Result<()> {
        let mut lines = String::new();
        let mut fresh = Vec::new();
        for (caption, entry) in items {
            if !entry.cacheable() {
                continue;
            }
            let caption_sha256 = caption_sha256(caption);
            let record = Record {
                key: identity.key_from_sha(&caption_sha256),
                caption_sha256,
                identity: identity.clone(),
                entry: (*entry).clone(),
            };
            let line = serde_json::to_string(&record).map_err(|e| Error::Io {
                path: self.file_path(slot),
                source: std::io::Error::other(e),
            })?;
            lines.push_str(&line);
            lines.push('\n');
            fresh.push((record.key, record.entry));
        }
        if fresh.is_empty() {
            return Ok(());
        }
        let path = self.file_path(slot);
        let mut f = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(io_err(&path))?;
        let len = f.metadata().map_err(io_err(&path))?.len();
        if len > 0 {
            // A torn last record (no newline) would otherwise swallow the first new one.
            let mut last = [0u8; 1];
            f.seek(SeekFrom::Start(len - 1))
                .and_then(|_| f.read_exact(&mut last))
                .map_err(io_err(&path))?;
            if last[0] != b'\n' {
                lines.insert(0, '\n');
            }
        }
        f.write_all(lines.as_bytes()).map_err(io_err(&path))?;
        f.sync_data().map_err(io_err(&path))?;
        if let Ok(mut map) = self.map.lock() {
            map.extend(fresh);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::subject::Kind;

    fn ident(prompt: &str) -> Identity {
        Identity {
            backend: "gguf".into(),
            model_id: "abc".into(),
            prompt_version: Some(prompt.into()),
            variant: "requant=q8_0".into(),
        }
    }

    fn entry(caption: &str, text: &str) -> Entry {
        Entry {
            subjects: vec![Subject::locate(caption, text, 1.21, Kind::Place).unwrap()],
            raw: format!("{{\"subjects\":[\"{text}\"]}}"),
            error_class: None,
            error_message: None,
        }
    }

    #[test]
    fn keys_separate_prompt_versions_and_captions() {
        let a = ident("few-shot-v1");
        let b = ident("zero-shot-v1");
        assert_eq!(a.key("Rain in Spain"), a.key("Rain in Spain"));
        assert_ne!(a.key("Rain in Spain"), b.key("Rain in Spain"));
        assert_ne!(a.key("Rain in Spain"), a.key("Rain in Spain."));
        assert_eq!(a.key("x"), a.key_from_sha(&caption_sha256("x")));
    }

    #[test]
    fn survives_a_torn_last_record_and_reloads() {
        let dir = tempfile::tempdir().unwrap();
        let id = ident("few-shot-v1");
        let cap1 = "Rain in Spain";
        let cap2 = "Snow in Oslo";
        let e1 = entry(cap1, "Spain");
        let e2 = entry(cap2, "Oslo");
        {
            let c = Cache::open(dir.path()).unwrap();
            assert!(c.is_empty());
            c.append(0, &id, &[(cap1, &e1)]).unwrap();
            assert_eq!(c.get(&id.key(cap1)), Some(e1.clone()));
        }
        // Simulate a crash mid-write: half a record, no newline.
        let path = dir.path().join("part-00000.jsonl");
        let full = std::fs::read_to_string(&path).unwrap();
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&full.as_bytes()[..full.len() / 2]).unwrap();
        drop(f);
        let c = Cache::open(dir.path()).unwrap();
        assert_eq!(
            c.load_report(),
            LoadReport {
                files: 1,
                records: 1,
                skipped: 1
            }
        );
        // The next append is not glued to the torn line.
        c.append(0, &id, &[(cap2, &e2)]).unwrap();
        let c = Cache::open(dir.path()).unwrap();
        assert_eq!(c.load_report().records, 2);
        assert_eq!(c.get(&id.key(cap2)), Some(e2));
        assert_eq!(c.get(&ident("zero-shot-v1").key(cap1)), None);
    }

    #[test]
    fn transient_failures_are_not_cached() {
        let dir = tempfile::tempdir().unwrap();
        let c = Cache::open(dir.path()).unwrap();
        let id = ident("few-shot-v1");
        let timeout = Entry {
            subjects: vec![],
            raw: String::new(),
            error_class: Some("timeout".into()),
            error_message: Some("slow".into()),
        };
        let invalid = Entry {
            error_class: Some("not_a_span".into()),
            ..timeout.clone()
        };
        c.append(3, &id, &[("a", &timeout), ("b", &invalid)])
            .unwrap();
        assert_eq!(c.get(&id.key("a")), None);
        assert_eq!(c.get(&id.key("b")), Some(invalid));
        assert!(dir.path().join("part-00003.jsonl").exists());
    }
}
