//! The `study` step: `generations` + `pairs` → `study_pairs`.
//!
//! For each pair of configurations compared (every pair, or each configuration against
//! one, `against`), `per_pair` (caption, seed) items that both configurations have an
//! image for are drawn at random; within a configuration pair, each configuration is on
//! the left in half the items (the odd one out decided by the seed). One attention check
//! follows every `attention_every` comparisons: a configuration's image for the caption
//! beside its image, same seed, for another caption, on a random side. Items are shuffled;
//! raters later see them in an order of their own.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use anchor_core::PartStats;
use anchor_core::columns::{Columns, opt_i64};
use anchor_core::rng::Rng;
use anchor_core::step::{BoxError, PartSink, Step, StepCtx, StepId};
use anchor_core::tables::{self, TableDef, generations as gen_t, pairs as pairs_t, study_pairs};
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// What the study holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StudyParams {
    /// Configurations compared; empty = every configuration in `generations`.
    pub configurations: Vec<String>,
    /// Compare each configuration with this one only (the paper's SAFE against each
    /// baseline); `None` = every pair of configurations.
    pub against: Option<String>,
    /// (caption, seed) items per configuration pair.
    pub per_pair: usize,
    /// One attention check per this many comparisons; 0 = none.
    pub attention_every: usize,
    /// Seed of every draw.
    pub seed: u64,
}

impl Default for StudyParams {
    fn default() -> Self {
        StudyParams {
            configurations: Vec::new(),
            against: None,
            per_pair: 50,
            attention_every: 10,
            seed: 0,
        }
    }
}

/// One image of an item: (configuration, caption id); the seed is the item's.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct Side {
    configuration: String,
    id: String,
}

/// An item before its caption and images are looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Item {
    attention: bool,
    caption_id: String,
    seed: i64,
    left: Side,
    right: Side,
    expected: Option<&'static str>,
}

/// Which configurations have an image for each (caption id, seed).
type Available = BTreeMap<(String, i64), BTreeSet<String>>;

/// The configuration pairs compared, each as (a, b) in a fixed order.
fn configuration_pairs(
    configurations: &BTreeSet<String>,
    against: Option<&str>,
) -> Result<Vec<(String, String)>> {
    if configurations.len() < 2 {
        return Err(Error::Input(format!(
            "a study compares at least two configurations; generations has {}",
            configurations.len()
        )));
    }
    match against {
        Some(a) => {
            if !configurations.contains(a) {
                return Err(Error::Config(format!(
                    "--against {a}: not among the configurations compared ({})",
                    configurations
                        .iter()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            Ok(configurations
                .iter()
                .filter(|c| c.as_str() != a)
                .map(|c| (a.to_owned(), c.clone()))
                .collect())
        }
        None => {
            let all: Vec<&String> = configurations.iter().collect();
            let mut pairs = Vec::new();
            for (i, a) in all.iter().enumerate() {
                for b in &all[i + 1..] {
                    pairs.push(((*a).clone(), (*b).clone()));
                }
            }
            Ok(pairs)
        }
    }
}

/// A stream of draws for one purpose, reproducible from the seed and `label`.
fn stream(seed: u64, label: &str) -> Rng {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(label.as_bytes());
    let mut word = [0u8; 8];
    word.copy_from_slice(&digest[..8]);
    Rng::new(seed, u64::from_le_bytes(word))
}

/// The study's items, in the order they are numbered.
fn plan_items(available: &Available, params: &StudyParams) -> Result<Vec<Item>> {
    let mut configurations: BTreeSet<String> = available.values().flatten().cloned().collect();
    if !params.configurations.is_empty() {
        let wanted: BTreeSet<String> = params.configurations.iter().cloned().collect();
        if let Some(missing) = wanted.difference(&configurations).next() {
            return Err(Error::Input(format!(
                "configuration {missing} has no images in generations (it has: {})",
                configurations
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        configurations = wanted;
    }
    if params.per_pair == 0 {
        return Err(Error::Config("per_pair must be at least 1".into()));
    }
    let pairs = configuration_pairs(&configurations, params.against.as_deref())?;
    let mut items = Vec::new();
    for (a, b) in &pairs {
        let mut both: Vec<&(String, i64)> = available
            .iter()
            .filter(|(_, configs)| configs.contains(a) && configs.contains(b))
            .map(|(key, _)| key)
            .collect();
        if both.len() < params.per_pair {
            return Err(Error::Input(format!(
                "{a} and {b} share images for {} (caption, seed) items, fewer than per_pair = {}",
                both.len(),
                params.per_pair
            )));
        }
        let mut rng = stream(params.seed, &format!("compare {a} {b}"));
        let order = rng.permutation(both.len());
        both = order
            .iter()
            .take(params.per_pair)
            .map(|&i| both[i])
            .collect();
        // Alternate sides, starting at random, so each is on the left in half the items.
        let offset = rng.below(2) as usize;
        for (j, (id, seed)) in both.into_iter().enumerate() {
            let side = |configuration: &String| Side {
                configuration: configuration.clone(),
                id: id.clone(),
            };
            let (left, right) = if (j + offset).is_multiple_of(2) {
                (side(a), side(b))
            } else {
                (side(b), side(a))
            };
            items.push(Item {
                attention: false,
                caption_id: id.clone(),
                seed: *seed,
                left,
                right,
                expected: None,
            });
        }
    }
    if params.attention_every > 0 {
        let checks = items.len().div_ceil(params.attention_every);
        let mut rng = stream(params.seed, "attention");
        let compared = items.len();
        for _ in 0..checks {
            let base = &items[rng.below(compared as u64) as usize];
            let configuration = if rng.below(2) == 0 {
                &base.left.configuration
            } else {
                &base.right.configuration
            };
            // Another caption with an image of the same configuration and seed.
            let others: Vec<&String> = available
                .iter()
                .filter(|((id, seed), configs)| {
                    *seed == base.seed && *id != base.caption_id && configs.contains(configuration)
                })
                .map(|((id, _), _)| id)
                .collect();
            if others.is_empty() {
                return Err(Error::Input(format!(
                    "no attention check for {}: {configuration} has no other caption with seed {}",
                    base.caption_id, base.seed
                )));
            }
            let other = others[rng.below(others.len() as u64) as usize].clone();
            let own = Side {
                configuration: configuration.clone(),
                id: base.caption_id.clone(),
            };
            let distractor = Side {
                configuration: configuration.clone(),
                id: other,
            };
            let (left, right, expected) = if rng.below(2) == 0 {
                (own, distractor, "left")
            } else {
                (distractor, own, "right")
            };
            let check = Item {
                attention: true,
                caption_id: base.caption_id.clone(),
                seed: base.seed,
                left,
                right,
                expected: Some(expected),
            };
            items.push(check);
        }
    }
    let order = stream(params.seed, "order").permutation(items.len());
    Ok(order.into_iter().map(|i| items[i].clone()).collect())
}

/// The `study` step.
#[derive(Debug, Clone)]
pub struct StudyStep {
    params: StudyParams,
}

impl StudyStep {
    /// A step with `params`.
    pub fn new(params: StudyParams) -> Self {
        StudyStep { params }
    }

    /// The parameters.
    pub fn params(&self) -> &StudyParams {
        &self.params
    }

    /// Calls `visit` with each generation's caption id, configuration, seed and (with
    /// `images`) its encoded image.
    fn each_generation(
        &self,
        ctx: &StepCtx,
        images: bool,
        mut visit: impl FnMut(&str, &str, i64, Option<&[u8]>) -> Result<()>,
    ) -> Result<()> {
        let t = gen_t::NAME;
        let mut cols = vec![gen_t::ID, gen_t::CONFIGURATION, gen_t::SEED];
        if images {
            cols.push(gen_t::IMAGE);
        }
        for batch in ctx
            .reader(t)?
            .read_all(Some(&cols), if images { 256 } else { 8192 })
        {
            let batch = batch?;
            let c = Columns::new(&batch, t);
            let (ids, configs, seeds) = (
                c.strings(gen_t::ID)?,
                c.strings(gen_t::CONFIGURATION)?,
                c.int64(gen_t::SEED)?,
            );
            let image = if images {
                Some(c.image(gen_t::IMAGE)?)
            } else {
                None
            };
            for i in 0..batch.num_rows() {
                let id = c.required(gen_t::ID, i, ids.get(i))?;
                let config = c.required(gen_t::CONFIGURATION, i, configs.get(i))?;
                let seed = c.required(gen_t::SEED, i, opt_i64(seeds, i))?;
                visit(id, config, seed, image.and_then(|im| im.bytes(i)))?;
            }
        }
        Ok(())
    }

    fn available(&self, ctx: &StepCtx) -> Result<Available> {
        let mut available = Available::new();
        self.each_generation(ctx, false, |id, config, seed, _| {
            available
                .entry((id.to_owned(), seed))
                .or_default()
                .insert(config.to_owned());
            Ok(())
        })?;
        Ok(available)
    }

    /// The captions of `ids`, from `pairs`.
    fn captions(&self, ctx: &StepCtx, ids: &BTreeSet<&str>) -> Result<HashMap<String, String>> {
        let mut captions = HashMap::new();
        let t = pairs_t::NAME;
        for batch in ctx
            .reader(t)?
            .read_all(Some(&[pairs_t::ID, pairs_t::CAPTION]), 8192)
        {
            let batch = batch?;
            let c = Columns::new(&batch, t);
            let (id, caption) = (c.strings(pairs_t::ID)?, c.strings(pairs_t::CAPTION)?);
            for i in 0..batch.num_rows() {
                let id = c.required(pairs_t::ID, i, id.get(i))?;
                if ids.contains(id) {
                    let text = c.required(pairs_t::CAPTION, i, caption.get(i))?;
                    captions.insert(id.to_owned(), text.to_owned());
                }
            }
        }
        if let Some(missing) = ids.iter().find(|id| !captions.contains_key(**id)) {
            return Err(Error::Input(format!(
                "generated images of caption {missing} have no row in pairs (and so no caption)"
            )));
        }
        Ok(captions)
    }

    /// The encoded images of `wanted` (configuration, caption id, seed).
    fn images(
        &self,
        ctx: &StepCtx,
        wanted: &BTreeSet<(&str, &str, i64)>,
    ) -> Result<HashMap<(String, String, i64), Vec<u8>>> {
        let mut images = HashMap::new();
        self.each_generation(ctx, true, |id, config, seed, bytes| {
            if !wanted.contains(&(config, id, seed)) {
                return Ok(());
            }
            let bytes = bytes.ok_or_else(|| {
                Error::Input(format!(
                    "{config}/{id}-{seed} has no image bytes in {}",
                    gen_t::NAME
                ))
            })?;
            images.insert((config.to_owned(), id.to_owned(), seed), bytes.to_vec());
            Ok(())
        })?;
        Ok(images)
    }

    fn run(&self, ctx: &StepCtx, sink: &mut PartSink) -> Result<PartStats> {
        let available = self.available(ctx)?;
        let items = plan_items(&available, &self.params)?;
        let caption_ids: BTreeSet<&str> = items.iter().map(|i| i.caption_id.as_str()).collect();
        let captions = self.captions(ctx, &caption_ids)?;
        let wanted: BTreeSet<(&str, &str, i64)> = items
            .iter()
            .flat_map(|i| {
                [&i.left, &i.right].map(|s| (s.configuration.as_str(), s.id.as_str(), i.seed))
            })
            .collect();
        let images = self.images(ctx, &wanted)?;
        let take = |side: &Side, seed: i64| {
            let key = (side.configuration.clone(), side.id.clone(), seed);
            // An image can show in several items (a comparison and attention checks).
            images.get(&key).cloned().ok_or_else(|| {
                Error::Input(format!(
                    "{}/{}-{seed} is listed but its image was not found",
                    side.configuration, side.id
                ))
            })
        };
        let mut rows = Vec::with_capacity(items.len());
        let mut stats = PartStats::default();
        for (n, item) in items.iter().enumerate() {
            let kind = if item.attention {
                study_pairs::ATTENTION
            } else {
                study_pairs::COMPARE
            };
            stats.count(&format!("{kind}_pairs"), 1);
            rows.push(study_pairs::Row {
                pair_id: format!("q{:05}", n + 1),
                kind: kind.to_owned(),
                caption_id: item.caption_id.clone(),
                caption: captions[&item.caption_id].clone(),
                seed: item.seed,
                left_configuration: item.left.configuration.clone(),
                right_configuration: item.right.configuration.clone(),
                left_id: item.left.id.clone(),
                right_id: item.right.id.clone(),
                expected: item.expected.map(str::to_owned),
                left_image: take(&item.left, item.seed)?,
                right_image: take(&item.right, item.seed)?,
            });
        }
        stats.rows_in = available.values().map(|c| c.len() as u64).sum();
        stats.rows_out = rows.len() as u64;
        sink.write(study_pairs::NAME, &study_pairs::to_batch(&rows)?)?;
        Ok(stats)
    }
}

impl StepId for StudyStep {
    /// Step name.
    const NAME: &'static str = "study";
    /// Bump when the output semantics change.
    const VERSION: u32 = 1;
}

impl Step for StudyStep {
    fn params(&self) -> serde_json::Result<serde_json::Value> {
        serde_json::to_value(&self.params)
    }

    fn inputs(&self) -> Vec<&'static str> {
        vec![gen_t::NAME, pairs_t::NAME]
    }

    fn outputs(&self) -> Vec<&'static TableDef> {
        vec![&tables::study_pairs::DEF]
    }

    fn plan(&self, _ctx: &StepCtx) -> std::result::Result<usize, BoxError> {
        Ok(1)
    }

    fn run_part(
        &self,
        _part: usize,
        ctx: &StepCtx,
        sink: &mut PartSink,
    ) -> std::result::Result<PartStats, BoxError> {
        Ok(self.run(ctx, sink)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn available(configs: &[&str], captions: usize, seeds: &[i64]) -> Available {
        let mut a = Available::new();
        for c in 0..captions {
            for &seed in seeds {
                a.insert(
                    (format!("c{c:02}"), seed),
                    configs.iter().map(|s| (*s).to_owned()).collect(),
                );
            }
        }
        a
    }

    fn params(per_pair: usize, attention_every: usize) -> StudyParams {
        StudyParams {
            per_pair,
            attention_every,
            seed: 7,
            ..StudyParams::default()
        }
    }

    #[test]
    fn every_configuration_pair_gets_the_same_items_balanced_left_and_right() {
        let a = available(&["base", "lora", "safe"], 10, &[42, 371]);
        let items = plan_items(&a, &params(6, 4)).unwrap();
        let compare: Vec<&Item> = items.iter().filter(|i| !i.attention).collect();
        assert_eq!(compare.len(), 3 * 6);
        let mut per_pair: BTreeMap<(String, String), (usize, usize)> = BTreeMap::new();
        for i in &compare {
            let (l, r) = (&i.left.configuration, &i.right.configuration);
            assert_ne!(l, r);
            assert_eq!(i.left.id, i.right.id);
            let key = if l < r {
                (l.clone(), r.clone())
            } else {
                (r.clone(), l.clone())
            };
            let e = per_pair.entry(key.clone()).or_default();
            e.0 += 1;
            e.1 += usize::from(*l == key.0);
        }
        assert_eq!(per_pair.len(), 3);
        for ((a, b), (n, a_left)) in &per_pair {
            assert_eq!(*n, 6, "{a} vs {b}");
            assert_eq!(*a_left, 3, "{a} vs {b}: on the left in half the items");
        }
        // No (caption, seed) repeats within a configuration pair.
        let distinct: BTreeSet<_> = compare
            .iter()
            .map(|i| {
                let mut c = [i.left.configuration.clone(), i.right.configuration.clone()];
                c.sort();
                (c, i.caption_id.clone(), i.seed)
            })
            .collect();
        assert_eq!(distinct.len(), compare.len());
        // Attention checks: ceil(18 / 4) = 5, one configuration, another caption, same seed.
        let checks: Vec<&Item> = items.iter().filter(|i| i.attention).collect();
        assert_eq!(checks.len(), 5);
        for c in checks {
            assert_eq!(c.left.configuration, c.right.configuration);
            let (own, other) = match c.expected {
                Some("left") => (&c.left, &c.right),
                Some("right") => (&c.right, &c.left),
                e => panic!("{e:?}"),
            };
            assert_eq!(own.id, c.caption_id);
            assert_ne!(other.id, c.caption_id);
        }
        // Shuffled, and reproducible from the seed.
        assert_eq!(plan_items(&a, &params(6, 4)).unwrap(), items);
        let kinds: Vec<bool> = items.iter().map(|i| i.attention).collect();
        assert!(kinds.windows(2).any(|w| w[0] != w[1]));
        let other_seed = StudyParams {
            seed: 8,
            ..params(6, 4)
        };
        assert_ne!(plan_items(&a, &other_seed).unwrap(), items);
    }

    #[test]
    fn against_one_configuration_and_refusals() {
        let a = available(&["base", "lora", "safe"], 4, &[42]);
        let p = StudyParams {
            against: Some("safe".into()),
            ..params(2, 0)
        };
        let items = plan_items(&a, &p).unwrap();
        assert_eq!(items.len(), 4);
        assert!(
            items
                .iter()
                .all(|i| i.left.configuration == "safe" || i.right.configuration == "safe")
        );
        let e = plan_items(&a, &params(5, 0)).unwrap_err().to_string();
        assert!(e.contains("fewer than per_pair = 5"), "{e}");
        let e = plan_items(
            &a,
            &StudyParams {
                against: Some("prefix".into()),
                ..params(1, 0)
            },
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("--against prefix"), "{e}");
        let e = plan_items(&available(&["safe"], 4, &[42]), &params(1, 0))
            .unwrap_err()
            .to_string();
        assert!(e.contains("at least two configurations"), "{e}");
        let e = plan_items(
            &a,
            &StudyParams {
                configurations: vec!["safe".into(), "sdxl".into()],
                ..params(1, 0)
            },
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("sdxl has no images"), "{e}");
    }
}
