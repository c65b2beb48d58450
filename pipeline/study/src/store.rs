//! The votes of a study: the `votes` table, rewritten whole and atomically after each vote
//! (tagged with the study's fingerprint, so votes of another study are never mixed in),
//! and each vote's time in `study/timing.json`, for the report's statistics only.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use anchor_core::step::StepId;
use anchor_core::store::{PartWriter, TableReader, file_fingerprint, part_file_name, table_dir};
use anchor_core::tables::{study_pairs, votes};

use crate::{Error, Result};

/// Where the vote times live, under the output folder.
pub const TIMING_FILE: &str = "study/timing.json";

/// The longest rater id accepted.
pub const MAX_RATER_LEN: usize = 64;

/// Whether `rater` is an acceptable rater id: 1 to 64 letters, digits, `-`, `_`, `.` or `@`.
pub fn valid_rater(rater: &str) -> bool {
    !rater.is_empty()
        && rater.len() <= MAX_RATER_LEN
        && rater
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'))
}

/// The committed study: its rows and the fingerprint of the run that wrote them.
#[derive(Debug, Clone)]
pub struct Study {
    /// The pairs, in `pair_id` order.
    pub pairs: Vec<study_pairs::Row>,
    /// The `study` step's fingerprint.
    pub fingerprint: String,
}

impl Study {
    /// Reads the study under `out`; an error says to run `anchor study make` when there is
    /// none.
    pub fn load(out: &Path) -> Result<Self> {
        let not_made = || {
            Error::Input(format!(
                "no complete study under {}: run `anchor study make` first",
                out.display()
            ))
        };
        let record = anchor_core::ledger::complete_record(out, crate::make::StudyStep::NAME)?
            .ok_or_else(not_made)?;
        let reader = TableReader::open(out, study_pairs::NAME, Some(study_pairs::schema()))?;
        let mut pairs = study_pairs::read(&reader)?;
        pairs.sort_by(|a, b| a.pair_id.cmp(&b.pair_id));
        if pairs.is_empty() {
            return Err(not_made());
        }
        Ok(Study {
            pairs,
            fingerprint: record.fingerprint,
        })
    }
}

/// The votes so far, and where they are written.
#[derive(Debug)]
pub struct VoteStore {
    out: PathBuf,
    fingerprint: String,
    rows: Vec<votes::Row>,
    voted: HashSet<(String, String)>,
    timing: BTreeMap<String, Vec<u64>>,
}

fn votes_file(out: &Path) -> PathBuf {
    table_dir(out, votes::NAME).join(part_file_name(0))
}

/// The votes under `out` that belong to the study with `fingerprint` (none when there is
/// no votes table yet). Votes of another study are refused, naming the file.
pub fn read_votes(out: &Path, fingerprint: &str) -> Result<Vec<votes::Row>> {
    let path = votes_file(out);
    if !path.exists() {
        return Ok(Vec::new());
    }
    let tagged = file_fingerprint(&path, votes::NAME)?;
    if tagged.as_deref() != Some(fingerprint) {
        return Err(Error::Input(format!(
            "{} holds the votes of another study (the study was made again since): move it \
             away to start a new round of votes",
            path.display()
        )));
    }
    let reader = TableReader::open(out, votes::NAME, Some(votes::schema()))?;
    Ok(votes::read(&reader)?)
}

impl VoteStore {
    /// The votes of `study` under `out`, checked against its pairs.
    pub fn open(out: &Path, study: &Study) -> Result<Self> {
        let rows = read_votes(out, &study.fingerprint)?;
        let known: HashSet<&str> = study.pairs.iter().map(|p| p.pair_id.as_str()).collect();
        let mut voted = HashSet::new();
        for row in &rows {
            if !known.contains(row.pair_id.as_str()) {
                return Err(Error::Input(format!(
                    "a vote of {} names pair {}, which the study does not have",
                    row.rater, row.pair_id
                )));
            }
            voted.insert((row.rater.clone(), row.pair_id.clone()));
        }
        let timing = read_timing(out)?;
        Ok(VoteStore {
            out: out.to_path_buf(),
            fingerprint: study.fingerprint.clone(),
            rows,
            voted,
            timing,
        })
    }

    /// Every vote, sorted by (rater, position).
    pub fn rows(&self) -> &[votes::Row] {
        &self.rows
    }

    /// Whether `rater` has answered `pair_id`.
    pub fn has_voted(&self, rater: &str, pair_id: &str) -> bool {
        self.voted.contains(&(rater.to_owned(), pair_id.to_owned()))
    }

    /// How many pairs `rater` has answered.
    pub fn count(&self, rater: &str) -> usize {
        self.rows.iter().filter(|r| r.rater == rater).count()
    }

    /// Records a vote and writes the table and the timing before returning, so an
    /// answered vote survives any stop. A second vote of a rater on a pair is refused.
    pub fn record(
        &mut self,
        rater: &str,
        pair_id: &str,
        subjects: &str,
        quality: &str,
        millis: u64,
    ) -> Result<()> {
        if self.has_voted(rater, pair_id) {
            return Err(Error::Input(format!(
                "{rater} has already answered {pair_id}"
            )));
        }
        let row = votes::Row {
            rater: rater.to_owned(),
            pair_id: pair_id.to_owned(),
            position: self.count(rater) as i64,
            subjects: subjects.to_owned(),
            quality: quality.to_owned(),
        };
        let mut rows = self.rows.clone();
        rows.push(row);
        rows.sort_by(|a, b| (&a.rater, a.position).cmp(&(&b.rater, b.position)));
        let mut timing = self.timing.clone();
        timing.entry(rater.to_owned()).or_default().push(millis);
        self.write(&rows, &timing)?;
        self.rows = rows;
        self.timing = timing;
        self.voted.insert((rater.to_owned(), pair_id.to_owned()));
        Ok(())
    }

    fn write(&self, rows: &[votes::Row], timing: &BTreeMap<String, Vec<u64>>) -> Result<()> {
        let mut writer = PartWriter::create_at(
            votes_file(&self.out),
            &votes::DEF,
            &self.fingerprint,
            Some(0),
            votes::schema(),
        )?;
        writer.write(&votes::to_batch(rows)?)?;
        writer.commit()?;
        let path = self.out.join(TIMING_FILE);
        let dir = path.parent().unwrap_or(&self.out);
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let tmp = anchor_core::ledger::unique_temporary(&path);
        let text = serde_json::to_vec(timing)
            .map_err(|e| Error::Input(format!("serialising vote times: {e}")))?;
        std::fs::write(&tmp, text).map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))
    }
}

/// The vote times under `out`, in milliseconds by rater (empty when none were kept).
pub fn read_timing(out: &Path) -> Result<BTreeMap<String, Vec<u64>>> {
    let path = out.join(TIMING_FILE);
    match std::fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| Error::Input(format!("{}: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(Error::io(path, e)),
    }
}
