//! The `split` step: leak-free, stable train/val/test assignment of the kept pairs.
//!
//! A *group* is a connected component of the graph whose edges join pairs of the same article
//! and pairs of the same near-duplicate cluster, so no article and no near-duplicate cluster
//! spans two splits. The group key is its smallest pair id; by default the split is picked from
//! the key's SHA-256 against the configured ratios, so it depends on nothing else.
//!
//! Assignments are remembered in `<out>/split/assignments.json`. When data is added, a pair
//! keeps the split it had; a new group with no history gets its hash split; a group that now
//! merges pairs from different splits takes the split of its oldest member (earliest
//! publication, then smallest id), and each moved pair records `previous_split`. `--reassign`
//! ignores the history, and `--by date` (a temporal split: the newest articles are test)
//! never uses it.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anchor_core::PartStats;
use anchor_core::columns::{Columns, opt_str};
use anchor_core::ledger;
use anchor_core::step::{BoxError, PartSink, Step, StepCtx, StepId};
use anchor_core::tables::{TableDef, pairs_curated, splits};
use anchor_core::time::unix_seconds;
use anchor_filters::dedup::UnionFind;
use arrow_array::builder::StringBuilder;
use arrow_array::{ArrayRef, RecordBatch};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Error, Result, SPLITS};

/// How groups are assigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SplitBy {
    /// By the hash of the group key (stable as data grows).
    #[default]
    Hash,
    /// Temporal: groups ordered by their newest publication time; the newest are test.
    Date,
}

/// Parameters of the `split` step. A config section gives them by these names (absent keys:
/// 80/10/10 by hash, the remembered assignment kept); ratios that do not sum to 1 are
/// refused there as in [`SplitParams::new`].
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "UncheckedSplit")]
pub struct SplitParams {
    /// Fractions of train, val and test; they sum to 1.
    pub ratios: [f64; 3],
    /// Hash or date assignment.
    pub by: SplitBy,
    /// Ignore the remembered assignment (hash mode).
    pub reassign: bool,
}

impl SplitParams {
    /// Checks the ratios.
    pub fn new(ratios: [f64; 3], by: SplitBy, reassign: bool) -> Result<Self> {
        let sum: f64 = ratios.iter().sum();
        if ratios.iter().any(|r| !r.is_finite() || *r < 0.0) || (sum - 1.0).abs() > 1e-6 {
            return Err(Error::Config(format!(
                "split ratios {ratios:?} must be non-negative and sum to 1 (train, val, test)"
            )));
        }
        Ok(SplitParams {
            ratios,
            by,
            reassign,
        })
    }
}

/// The split keys as written, before the ratios are checked.
#[derive(Deserialize)]
#[serde(default)]
struct UncheckedSplit {
    ratios: [f64; 3],
    by: SplitBy,
    reassign: bool,
}

impl Default for UncheckedSplit {
    fn default() -> Self {
        UncheckedSplit {
            ratios: [0.8, 0.1, 0.1],
            by: SplitBy::Hash,
            reassign: false,
        }
    }
}

impl TryFrom<UncheckedSplit> for SplitParams {
    type Error = Error;

    fn try_from(u: UncheckedSplit) -> Result<Self> {
        SplitParams::new(u.ratios, u.by, u.reassign)
    }
}

/// The `split` step.
pub struct SplitStep {
    params: SplitParams,
}

impl SplitStep {
    /// A step with `params`.
    pub fn new(params: SplitParams) -> Self {
        SplitStep { params }
    }
}

/// Where the remembered assignment lives.
pub fn assignments_path(out: &Path) -> PathBuf {
    ledger::step_dir(out, SplitStep::NAME).join("assignments.json")
}

#[derive(Debug, Clone)]
struct Kept {
    id: String,
    article_id: String,
    cluster: Option<String>,
    subset: String,
    outlet: String,
    published: Option<i64>,
}

/// One pair's assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assigned {
    /// Pair id.
    pub id: String,
    /// `train`, `val` or `test`.
    pub split: &'static str,
    /// Group key (smallest id of the group).
    pub group_key: String,
    /// The split the pair had before a merge moved it.
    pub previous_split: Option<String>,
}

/// The split of a group key under `ratios`: the first 8 bytes of
/// sha256("anchor-split\n" + key) as a fraction of 2^64, against the cumulative ratios.
pub fn hash_split(key: &str, ratios: &[f64; 3]) -> &'static str {
    let digest = Sha256::digest(format!("anchor-split\n{key}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    let u = u64::from_be_bytes(first) as f64 / 18_446_744_073_709_551_616.0;
    if u < ratios[0] {
        SPLITS[0]
    } else if u < ratios[0] + ratios[1] {
        SPLITS[1]
    } else {
        SPLITS[2]
    }
}

fn static_split(name: &str) -> Option<&'static str> {
    SPLITS.iter().copied().find(|s| *s == name)
}

/// Groups `kept` and assigns every pair; `history` is the remembered id → split.
fn assign(
    kept: &[Kept],
    params: &SplitParams,
    history: &BTreeMap<String, String>,
) -> Vec<Assigned> {
    let n = kept.len();
    let mut uf = UnionFind::new(n);
    let mut first_of_article: HashMap<&str, u32> = HashMap::new();
    let mut first_of_cluster: HashMap<&str, u32> = HashMap::new();
    for (i, k) in kept.iter().enumerate() {
        let i = i as u32;
        if let Some(&j) = first_of_article.get(k.article_id.as_str()) {
            uf.union(i, j);
        } else {
            first_of_article.insert(&k.article_id, i);
        }
        if let Some(c) = k.cluster.as_deref() {
            if let Some(&j) = first_of_cluster.get(c) {
                uf.union(i, j);
            } else {
                first_of_cluster.insert(c, i);
            }
        }
    }
    let mut groups: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for i in 0..n {
        groups.entry(uf.find(i as u32)).or_default().push(i);
    }
    let mut out: Vec<Assigned> = Vec::with_capacity(n);
    let mut group_list: Vec<Vec<usize>> = groups.into_values().collect();
    if params.by == SplitBy::Date {
        // Newest publication time of the group; unknown times sort oldest.
        let newest = |g: &Vec<usize>| g.iter().filter_map(|&i| kept[i].published).max();
        let key = |g: &Vec<usize>| g.iter().map(|&i| kept[i].id.as_str()).min().unwrap_or("");
        group_list.sort_by(|a, b| newest(a).cmp(&newest(b)).then(key(a).cmp(key(b))));
        let total = n as f64;
        let mut done = 0usize;
        for g in &group_list {
            let position = done as f64 / total.max(1.0);
            let split = if position < params.ratios[0] {
                SPLITS[0]
            } else if position < params.ratios[0] + params.ratios[1] {
                SPLITS[1]
            } else {
                SPLITS[2]
            };
            let group_key = key(g).to_owned();
            for &i in g {
                out.push(Assigned {
                    id: kept[i].id.clone(),
                    split,
                    group_key: group_key.clone(),
                    previous_split: None,
                });
            }
            done += g.len();
        }
    } else {
        for g in &group_list {
            let group_key = g
                .iter()
                .map(|&i| kept[i].id.as_str())
                .min()
                .unwrap_or("")
                .to_owned();
            let remembered: Vec<(usize, &'static str)> = if params.reassign {
                Vec::new()
            } else {
                g.iter()
                    .filter_map(|&i| {
                        history
                            .get(&kept[i].id)
                            .and_then(|s| static_split(s))
                            .map(|s| (i, s))
                    })
                    .collect()
            };
            let split = match remembered.iter().min_by(|(a, _), (b, _)| {
                let (ka, kb) = (&kept[*a], &kept[*b]);
                // Oldest first; unknown publication times come after known ones.
                match (ka.published, kb.published) {
                    (Some(x), Some(y)) => x.cmp(&y),
                    (Some(_), None) => std::cmp::Ordering::Less,
                    (None, Some(_)) => std::cmp::Ordering::Greater,
                    (None, None) => std::cmp::Ordering::Equal,
                }
                .then(ka.id.cmp(&kb.id))
            }) {
                Some((_, s)) => *s,
                None => hash_split(&group_key, &params.ratios),
            };
            for &i in g {
                let before = remembered
                    .iter()
                    .find(|(j, _)| *j == i)
                    .map(|(_, s)| *s)
                    .filter(|s| *s != split);
                out.push(Assigned {
                    id: kept[i].id.clone(),
                    split,
                    group_key: group_key.clone(),
                    previous_split: before.map(str::to_owned),
                });
            }
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

fn read_kept(ctx: &StepCtx) -> Result<Vec<Kept>> {
    let reader = ctx.reader(pairs_curated::NAME)?;
    let cols = [
        pairs_curated::ID,
        pairs_curated::ARTICLE_ID,
        pairs_curated::DUP_CLUSTER_ID,
        pairs_curated::SUBSET,
        pairs_curated::OUTLET,
        pairs_curated::PUBLISHED_AT,
        pairs_curated::KEPT,
    ];
    let mut kept = Vec::new();
    for batch in reader.read_all(Some(&cols), 8192) {
        let batch = batch?;
        let c = Columns::new(&batch, pairs_curated::NAME);
        let id = c.utf8(pairs_curated::ID)?;
        let article = c.utf8(pairs_curated::ARTICLE_ID)?;
        let cluster = c.utf8(pairs_curated::DUP_CLUSTER_ID)?;
        let subset = c.utf8(pairs_curated::SUBSET)?;
        let outlet = c.utf8(pairs_curated::OUTLET)?;
        let published = c.utf8(pairs_curated::PUBLISHED_AT)?;
        let keep = c.boolean(pairs_curated::KEPT)?;
        for r in 0..batch.num_rows() {
            if !keep.value(r) {
                continue;
            }
            kept.push(Kept {
                id: id.value(r).to_owned(),
                article_id: article.value(r).to_owned(),
                cluster: opt_str(cluster, r).map(str::to_owned),
                subset: subset.value(r).to_owned(),
                outlet: outlet.value(r).to_owned(),
                published: opt_str(published, r).and_then(unix_seconds),
            });
        }
    }
    kept.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(kept)
}

impl StepId for SplitStep {
    /// Step name.
    const NAME: &'static str = "split";
    /// Bump when output semantics change.
    const VERSION: u32 = 1;
}

impl Step for SplitStep {
    fn params(&self) -> serde_json::Result<serde_json::Value> {
        serde_json::to_value(&self.params)
    }
    fn inputs(&self) -> Vec<&'static str> {
        vec![pairs_curated::NAME]
    }
    fn outputs(&self) -> Vec<&'static TableDef> {
        vec![&splits::DEF]
    }
    fn plan(&self, _ctx: &StepCtx) -> Result<usize, BoxError> {
        Ok(1)
    }

    fn run_part(
        &self,
        _part: usize,
        ctx: &StepCtx,
        sink: &mut PartSink,
    ) -> Result<PartStats, BoxError> {
        let kept = read_kept(ctx)?;
        let history_path = assignments_path(ctx.out());
        let history: BTreeMap<String, String> =
            ledger::read_json(&history_path)?.unwrap_or_default();
        let assigned = assign(&kept, &self.params, &history);
        let mut stats = PartStats::default();
        let by_id: HashMap<&str, &Kept> = kept.iter().map(|k| (k.id.as_str(), k)).collect();
        let mut id_b = StringBuilder::new();
        let mut split_b = StringBuilder::new();
        let mut subset_b = StringBuilder::new();
        let mut outlet_b = StringBuilder::new();
        let mut key_b = StringBuilder::new();
        let mut prev_b = StringBuilder::new();
        let mut remembered = history;
        for a in &assigned {
            let k = by_id.get(a.id.as_str()).ok_or_else(|| {
                Error::Inconsistent(format!("assigned pair {} is not a kept pair", a.id))
            })?;
            id_b.append_value(&a.id);
            split_b.append_value(a.split);
            subset_b.append_value(&k.subset);
            outlet_b.append_value(&k.outlet);
            key_b.append_value(&a.group_key);
            prev_b.append_option(a.previous_split.as_deref());
            stats.count(&format!("split.{}", a.split), 1);
            if a.previous_split.is_some() {
                stats.count("moved", 1);
            }
            if self.params.by == SplitBy::Hash {
                remembered.insert(a.id.clone(), a.split.to_owned());
            }
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(id_b.finish()),
            Arc::new(split_b.finish()),
            Arc::new(subset_b.finish()),
            Arc::new(outlet_b.finish()),
            Arc::new(key_b.finish()),
            Arc::new(prev_b.finish()),
        ];
        let batch = RecordBatch::try_new(splits::schema(), columns).map_err(Error::from)?;
        sink.write(splits::NAME, &batch)?;
        // Written before the part commits: a kill in between leaves a history that maps the
        // same inputs to the same splits, so the rerun is identical.
        if self.params.by == SplitBy::Hash {
            ledger::write_json_atomic(&history_path, &remembered)?;
        }
        Ok(stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(id: &str, article: &str, cluster: Option<&str>, published: Option<i64>) -> Kept {
        Kept {
            id: id.into(),
            article_id: article.into(),
            cluster: cluster.map(str::to_owned),
            subset: "entity".into(),
            outlet: "bbc".into(),
            published,
        }
    }

    fn params() -> SplitParams {
        SplitParams::new([0.8, 0.1, 0.1], SplitBy::Hash, false).expect("valid ratios")
    }

    #[test]
    fn articles_and_clusters_never_span_splits() {
        // a1 and a2 share cluster c; a2 and a3 share article; so all four are one group.
        let rows = vec![
            kept("a1", "art1", Some("c"), None),
            kept("a2", "art2", Some("c"), None),
            kept("a3", "art2", None, None),
            kept("b1", "art9", None, None),
        ];
        let out = assign(&rows, &params(), &BTreeMap::new());
        let split_of = |id: &str| out.iter().find(|a| a.id == id).map(|a| a.split);
        assert_eq!(split_of("a1"), split_of("a2"));
        assert_eq!(split_of("a2"), split_of("a3"));
        assert!(
            out.iter()
                .filter(|a| a.id.starts_with('a'))
                .all(|a| a.group_key == "a1")
        );
        assert_eq!(
            out.iter()
                .find(|a| a.id == "b1")
                .map(|a| a.group_key.as_str()),
            Some("b1")
        );
    }

    #[test]
    fn hash_split_follows_the_ratios() {
        let ratios = [0.8, 0.1, 0.1];
        let mut counts = [0usize; 3];
        for i in 0..20_000 {
            let s = hash_split(&format!("{i:016x}"), &ratios);
            counts[SPLITS.iter().position(|x| *x == s).unwrap_or(0)] += 1;
        }
        assert!((15_600..16_400).contains(&counts[0]), "{counts:?}");
        assert!((1_800..2_200).contains(&counts[1]), "{counts:?}");
        assert!((1_800..2_200).contains(&counts[2]), "{counts:?}");
    }

    #[test]
    fn history_is_kept_and_merges_take_the_oldest_members_split() {
        let rows = vec![
            kept("x1", "artx", None, Some(100)),
            kept("y1", "arty", None, Some(50)),
        ];
        let mut history = BTreeMap::new();
        history.insert("x1".to_owned(), "val".to_owned());
        history.insert("y1".to_owned(), "test".to_owned());
        let out = assign(&rows, &params(), &history);
        assert_eq!(out[0].split, "val");
        assert_eq!(out[1].split, "test");
        // New data joins them through a shared cluster: y1 is older, so test wins.
        let merged = vec![
            kept("x1", "artx", Some("c"), Some(100)),
            kept("y1", "arty", Some("c"), Some(50)),
            kept("z1", "artz", Some("c"), Some(200)),
        ];
        let out = assign(&merged, &params(), &history);
        assert!(out.iter().all(|a| a.split == "test"), "{out:?}");
        assert_eq!(out[0].previous_split.as_deref(), Some("val"));
        assert_eq!(out[1].previous_split, None);
        assert_eq!(out[2].previous_split, None, "a new pair did not move");
    }

    #[test]
    fn date_split_puts_the_newest_groups_in_test() {
        let rows: Vec<Kept> = (0..10)
            .map(|i| {
                kept(
                    &format!("p{i}"),
                    &format!("a{i}"),
                    None,
                    Some(i64::from(i) * 10),
                )
            })
            .collect();
        let p = SplitParams::new([0.8, 0.1, 0.1], SplitBy::Date, false).expect("valid");
        let out = assign(&rows, &p, &BTreeMap::new());
        let split_of = |id: &str| out.iter().find(|a| a.id == id).map(|a| a.split);
        assert_eq!(split_of("p0"), Some("train"));
        assert_eq!(split_of("p8"), Some("val"));
        assert_eq!(split_of("p9"), Some("test"));
    }

    #[test]
    fn bad_ratios_are_rejected() {
        assert!(SplitParams::new([0.5, 0.1, 0.1], SplitBy::Hash, false).is_err());
        assert!(SplitParams::new([1.2, -0.1, -0.1], SplitBy::Hash, false).is_err());
    }
}
