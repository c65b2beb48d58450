//! The step's inputs: the real test images and each configuration's generated images,
//! with their subset and outlet, scored by the feature extractors.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use anchor_core::PartStats;
use anchor_core::columns::Columns;
use anchor_core::step::StepCtx;
use anchor_core::tables::{
    generations as gen_t, pairs as pairs_t, pairs_curated as cur_t, splits as splits_t,
};

use super::{CHUNK, EvalStep, ImageGroup, Nets, SUBSETS, Scored, TEST_SPLIT, TowerFeatures};
use crate::cache::EncodedImage;
use crate::features::Features;
use crate::inception::FEATURE_DIM;
use crate::{Error, Result};

impl EvalStep {
    /// The real reference: every test-split image, scored.
    pub(super) fn real(&self, ctx: &StepCtx, nets: &Nets, stats: &mut PartStats) -> Result<Scored> {
        let test = splits_t::ids_in_split(&ctx.reader(splits_t::NAME)?, TEST_SPLIT)?;
        if test.is_empty() {
            return Err(Error::Table {
                table: splits_t::NAME.into(),
                detail: "no pair is in the test split, so there is no real reference".into(),
            });
        }
        let mut meta: BTreeMap<String, ImageGroup> = BTreeMap::new();
        for (id, pair) in cur_t::kept_pairs(&ctx.reader(cur_t::NAME)?, &test)? {
            let group = ImageGroup {
                subset: checked_subset(&pair.subset, cur_t::NAME, &id)?,
                outlet: pair.outlet,
                topic: checked_topic(pair.topic, cur_t::NAME, &id)?,
            };
            meta.insert(id, group);
        }

        let mut scoring = Scoring::new(self, nets, ctx.out(), "real", false)?;
        let reader = ctx.reader(pairs_t::NAME)?;
        for batch in reader.read_all(Some(&[pairs_t::ID, pairs_t::IMAGE]), 64) {
            let batch = batch?;
            let t = pairs_t::NAME;
            let c = Columns::new(&batch, t);
            let ids = c.strings(pairs_t::ID)?;
            let images = c.image(pairs_t::IMAGE)?;
            for i in 0..batch.num_rows() {
                let id = c.required(pairs_t::ID, i, ids.get(i))?;
                let Some(m) = meta.get(id) else { continue };
                let Some(bytes) = images.bytes(i) else {
                    return Err(Error::Table {
                        table: t.into(),
                        detail: format!("test pair {id} has no image bytes"),
                    });
                };
                let image = EncodedImage {
                    name: format!("pairs/{id}"),
                    bytes: bytes.to_vec(),
                };
                scoring.push(id, m.clone(), image, stats)?;
            }
        }
        let scored = scoring.finish(None, stats)?;
        if scored.meta.len() != meta.len() {
            return Err(Error::Table {
                table: pairs_t::NAME.into(),
                detail: format!(
                    "{} test pairs found for {} test ids (missing or duplicated ids)",
                    scored.meta.len(),
                    meta.len()
                ),
            });
        }
        stats.count("real_images", scored.meta.len() as u64);
        Ok(scored)
    }

    /// Every generated image of `configuration`, scored.
    pub(super) fn generated(
        &self,
        ctx: &StepCtx,
        configuration: &str,
        nets: &Nets,
        stats: &mut PartStats,
    ) -> Result<Scored> {
        let mut scoring = Scoring::new(self, nets, ctx.out(), "generated", true)?;
        let reader = ctx.reader(gen_t::NAME)?;
        let cols = [
            gen_t::ID,
            gen_t::CONFIGURATION,
            gen_t::SEED,
            gen_t::SUBSET,
            gen_t::OUTLET,
            gen_t::TOPIC,
            gen_t::MODEL_ID,
            gen_t::IMAGE,
        ];
        let mut bases = BTreeSet::new();
        let t = gen_t::NAME;
        for batch in reader.read_all(Some(&cols), 64) {
            let batch = batch?;
            let c = Columns::new(&batch, t);
            let ids = c.strings(gen_t::ID)?;
            let configs = c.strings(gen_t::CONFIGURATION)?;
            let seeds = c.int64(gen_t::SEED)?;
            let subset = c.strings(gen_t::SUBSET)?;
            let outlet = c.strings(gen_t::OUTLET)?;
            let topic = c.strings(gen_t::TOPIC)?;
            let model_id = c.strings(gen_t::MODEL_ID)?;
            let images = c.image(gen_t::IMAGE)?;
            for i in 0..batch.num_rows() {
                if c.required(gen_t::CONFIGURATION, i, configs.get(i))? != configuration {
                    continue;
                }
                let id = c.required(gen_t::ID, i, ids.get(i))?;
                let seed = c.required(gen_t::SEED, i, anchor_core::columns::opt_i64(seeds, i))?;
                let Some(bytes) = images.bytes(i) else {
                    return Err(Error::Table {
                        table: t.into(),
                        detail: format!("{configuration}/{id}-{seed} has no image bytes"),
                    });
                };
                let group = ImageGroup {
                    subset: checked_subset(c.required(gen_t::SUBSET, i, subset.get(i))?, t, id)?,
                    outlet: c.required(gen_t::OUTLET, i, outlet.get(i))?.to_owned(),
                    topic: checked_topic(
                        c.required(gen_t::TOPIC, i, topic.get(i))?.to_owned(),
                        t,
                        id,
                    )?,
                };
                let model = c.required(gen_t::MODEL_ID, i, model_id.get(i))?;
                bases.insert(base_of(model).to_owned());
                let image = EncodedImage {
                    name: format!("generations/{configuration}/{id}-{seed}"),
                    bytes: bytes.to_vec(),
                };
                scoring.push(id, group, image, stats)?;
            }
        }
        if bases.len() > 1 {
            return Err(Error::Table {
                table: t.into(),
                detail: format!(
                    "configuration {configuration} was sampled from {} base models ({}); sample \
                     and evaluate each base in its own --out, with its own --run",
                    bases.len(),
                    bases.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
            });
        }
        scoring.finish(bases.pop_first(), stats)
    }
}

/// Images on their way through the feature extractors, `CHUNK` at a time, with each one's
/// id and group in the order they were pushed.
struct Scoring<'a> {
    step: &'a EvalStep,
    nets: &'a Nets,
    out_dir: &'a Path,
    /// `real` or `generated`: names the cache counters in the stats.
    label: &'static str,
    chunk: Vec<EncodedImage>,
    features: Features,
    towers: TowerFeatures,
    ids: Vec<String>,
    meta: Vec<ImageGroup>,
}

impl<'a> Scoring<'a> {
    fn new(
        step: &'a EvalStep,
        nets: &'a Nets,
        out_dir: &'a Path,
        label: &'static str,
        generated: bool,
    ) -> Result<Self> {
        Ok(Scoring {
            step,
            nets,
            out_dir,
            label,
            chunk: Vec::with_capacity(CHUNK),
            features: Features::new(FEATURE_DIM, Vec::new())?,
            towers: TowerFeatures::new(nets, generated)?,
            ids: Vec::new(),
            meta: Vec::new(),
        })
    }

    fn push(
        &mut self,
        id: &str,
        group: ImageGroup,
        image: EncodedImage,
        stats: &mut PartStats,
    ) -> Result<()> {
        self.chunk.push(image);
        self.ids.push(id.to_owned());
        self.meta.push(group);
        if self.chunk.len() == CHUNK {
            self.flush(stats)?;
        }
        Ok(())
    }

    fn flush(&mut self, stats: &mut PartStats) -> Result<()> {
        let ids = &self.ids[self.ids.len() - self.chunk.len()..];
        self.step.score_chunk(
            self.nets,
            self.out_dir,
            &mut self.chunk,
            ids,
            &mut self.features,
            &mut self.towers,
            stats,
            self.label,
        )
    }

    fn finish(mut self, base: Option<String>, stats: &mut PartStats) -> Result<Scored> {
        self.flush(stats)?;
        Ok(Scored {
            base,
            meta: self.meta,
            ids: self.ids,
            features: self.features,
            clip: self.towers.clip,
            hps: self.towers.hps,
            image_reward: self.towers.image_reward,
        })
    }
}

fn checked_subset(value: &str, table: &str, id: &str) -> Result<String> {
    if SUBSETS[1..].contains(&value) {
        Ok(value.to_owned())
    } else {
        Err(Error::Table {
            table: table.into(),
            detail: format!("row {id}: subset {value:?} is neither entity nor non_entity"),
        })
    }
}

/// The base model's digest in a `generations.model_id`: what precedes `+lora:`/`+unet:`.
fn base_of(model_id: &str) -> &str {
    model_id.split('+').next().unwrap_or(model_id)
}

/// A topic is a group key, so it may not be empty nor claim to be every topic.
fn checked_topic(value: String, table: &str, id: &str) -> Result<String> {
    if value.is_empty() || value == super::ALL {
        Err(Error::Table {
            table: table.into(),
            detail: format!("row {id}: topic {value:?} is not a topic"),
        })
    } else {
        Ok(value)
    }
}

/// The distinct configurations of the `generations` table, sorted.
pub fn configurations(ctx: &StepCtx) -> Result<Vec<String>> {
    let mut set = BTreeSet::new();
    let reader = ctx.reader(gen_t::NAME)?;
    for batch in reader.read_all(Some(&[gen_t::CONFIGURATION]), 8192) {
        let batch = batch?;
        let c = Columns::new(&batch, gen_t::NAME);
        let values = c.strings(gen_t::CONFIGURATION)?;
        for i in 0..batch.num_rows() {
            set.insert(
                c.required(gen_t::CONFIGURATION, i, values.get(i))?
                    .to_owned(),
            );
        }
    }
    Ok(set.into_iter().collect())
}
