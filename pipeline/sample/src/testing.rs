//! Test and smoke-run support: small random-weight models in the diffusers layout (the shapes are Stable Diffusion's, scaled down, and the text encoder
//! keeps CLIP's 49408-token vocabulary so the real tokenizer feeds it), and a fixture step
//! that writes the step's input tables with their declared schemas.

use std::path::Path;
use std::sync::Arc;

use anchor_core::PartStats;
use anchor_core::step::{BoxError, PartSink, RunOptions, Step, StepCtx, StepId};
use anchor_core::tables::{TableDef, pairs_curated, splits, subjects};
use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::{
    ArrayRef, BooleanArray, Float64Array, Int32Array, ListArray, RecordBatch, StringArray,
    StructArray, UInt32Array, new_null_array,
};
use arrow_schema::{DataType, Field, SchemaRef};

use anchor_sd::lora::save_lora;
use anchor_sd::{
    AutoencoderKL, ClipTextConfig, ClipTextModel, LoraConfig, UNet2DConditionModel, UNetConfig,
    VaeConfig, Weights,
};
use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};

use crate::error::{Error, Result};

fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    std::fs::write(path, text).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

fn save(varmap: &VarMap, path: &Path) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    varmap.save(path).map_err(|e| Error::Io {
        path: path.to_path_buf(),
        source: std::io::Error::other(e.to_string()),
    })
}

/// The UNet `config.json` of [`UNetConfig::tiny`], as diffusers writes it.
const UNET_JSON: &str = r#"{
  "_class_name": "UNet2DConditionModel",
  "in_channels": 4,
  "out_channels": 4,
  "block_out_channels": [32, 64],
  "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
  "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
  "layers_per_block": 1,
  "cross_attention_dim": 32,
  "attention_head_dim": [2, 4],
  "use_linear_projection": false,
  "norm_num_groups": 8,
  "norm_eps": 1e-05,
  "flip_sin_to_cos": true,
  "freq_shift": 0
}"#;

/// The VAE `config.json` of [`VaeConfig::tiny`].
const VAE_JSON: &str = r#"{
  "_class_name": "AutoencoderKL",
  "in_channels": 3,
  "out_channels": 3,
  "latent_channels": 4,
  "block_out_channels": [32, 64],
  "layers_per_block": 1,
  "norm_num_groups": 8,
  "scaling_factor": 0.18215
}"#;

/// A tiny CLIP text tower with CLIP's full vocabulary.
fn text_config() -> ClipTextConfig {
    ClipTextConfig {
        vocab_size: 49408,
        ..ClipTextConfig::tiny()
    }
}

/// Writes a random tiny model to `dir` (`unet/`, `vae/`, `text_encoder/`, each with its
/// config and weights), loadable by [`crate::model::Pipeline`] and by diffusers.
pub fn write_random_base(dir: &Path) -> Result<()> {
    let dev = Device::Cpu;
    let unet_map = VarMap::new();
    UNet2DConditionModel::new(
        Weights::new(VarBuilder::from_varmap(&unet_map, DType::F32, &dev)),
        UNetConfig::tiny(),
    )?;
    write(&dir.join("unet/config.json"), UNET_JSON)?;
    save(
        &unet_map,
        &dir.join("unet/diffusion_pytorch_model.safetensors"),
    )?;

    let vae_map = VarMap::new();
    AutoencoderKL::new(
        VarBuilder::from_varmap(&vae_map, DType::F32, &dev),
        VaeConfig::tiny(),
    )?;
    write(&dir.join("vae/config.json"), VAE_JSON)?;
    save(
        &vae_map,
        &dir.join("vae/diffusion_pytorch_model.safetensors"),
    )?;

    let text_map = VarMap::new();
    let cfg = text_config();
    ClipTextModel::new(
        VarBuilder::from_varmap(&text_map, DType::F32, &dev),
        cfg.clone(),
    )?;
    let json = serde_json::json!({
        "architectures": ["CLIPTextModel"],
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.hidden_size,
        "intermediate_size": cfg.intermediate_size,
        "num_hidden_layers": cfg.num_hidden_layers,
        "num_attention_heads": cfg.num_attention_heads,
        "max_position_embeddings": cfg.max_position_embeddings,
        "hidden_act": "quick_gelu",
        "layer_norm_eps": cfg.layer_norm_eps,
    });
    write(&dir.join("text_encoder/config.json"), &json.to_string())?;
    save(&text_map, &dir.join("text_encoder/model.safetensors"))?;
    Ok(())
}

/// Writes a random rank-4 LoRA for the UNet of the base at `base` to `path`, with non-zero
/// `lora_B` (a fresh PEFT adapter is zero and would change nothing) scaled by `scale`.
pub fn write_random_lora(base: &Path, path: &Path, scale: f64) -> Result<()> {
    let dev = Device::Cpu;
    let unet_dir = base.join("unet");
    let cfg = UNetConfig::from_diffusers_json(&unet_dir.join("config.json"))?;
    let base_vb = anchor_sd::weights::load_safetensors(
        &unet_dir.join("diffusion_pytorch_model.safetensors"),
        DType::F32,
        &dev,
    )?;
    let lora_map = VarMap::new();
    let lora_vb = VarBuilder::from_varmap(&lora_map, DType::F32, &dev).pp("unet");
    UNet2DConditionModel::new(
        Weights::with_lora(base_vb, lora_vb, LoraConfig::safe()),
        cfg,
    )?;
    {
        let data = lora_map
            .data()
            .lock()
            .map_err(|_| Error::Config("LoRA VarMap lock poisoned".into()))?;
        for (name, var) in data.iter() {
            if name.contains("lora_B") {
                let r = (Tensor::randn(0f32, 1f32, var.shape(), &dev)? * scale)?;
                var.set(&r)?;
            }
        }
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|source| Error::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    }
    save_lora(&lora_map, LoraConfig::safe(), "unet", path)?;
    Ok(())
}

/// One caption of a fixture dataset.
#[derive(Debug, Clone, PartialEq)]
pub struct FixtureCaption {
    /// `pairs.id`.
    pub id: String,
    /// The caption.
    pub caption: String,
    /// `train`, `val` or `test`.
    pub split: String,
    /// `entity` or `non_entity`.
    pub subset: String,
    /// Outlet name.
    pub outlet: String,
    /// The article's topic.
    pub topic: String,
    /// Whether curation kept it (dropped rows get no `splits` row).
    pub kept: bool,
    /// Subject phrases (first occurrence in the caption) with weights; `None`: no
    /// `subjects` row at all.
    pub subjects: Option<Vec<(String, f64)>>,
}

/// A non-null column of `n` neutral values (empty strings, zeros, false, empty lists).
fn filler(field: &Field, n: usize) -> Result<ArrayRef> {
    if field.is_nullable() {
        return Ok(new_null_array(field.data_type(), n));
    }
    Ok(match field.data_type() {
        DataType::Utf8 => Arc::new(StringArray::from_iter_values(std::iter::repeat_n("", n))),
        DataType::Int32 => Arc::new(Int32Array::from(vec![0; n])),
        DataType::Boolean => Arc::new(BooleanArray::from(vec![false; n])),
        DataType::List(_) => {
            let mut b = ListBuilder::new(StringBuilder::new());
            for _ in 0..n {
                b.append(true);
            }
            Arc::new(b.finish())
        }
        other => {
            return Err(Error::Config(format!(
                "fixture: no filler for non-null column {} of type {other}",
                field.name()
            )));
        }
    })
}

/// A batch of `schema` with the given columns and neutral values elsewhere.
fn batch(schema: SchemaRef, n: usize, cols: Vec<(&str, ArrayRef)>) -> Result<RecordBatch> {
    let arrays = schema
        .fields()
        .iter()
        .map(|f| match cols.iter().find(|(name, _)| *name == f.name()) {
            Some((_, a)) => Ok(Arc::clone(a)),
            None => filler(f, n),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new(schema, arrays)?)
}

fn strings<'a>(v: impl Iterator<Item = &'a str>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(v))
}

fn subjects_batch(rows: &[&FixtureCaption]) -> Result<RecordBatch> {
    let (mut texts, mut starts, mut ends, mut weights, mut offsets) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), vec![0i32]);
    for c in rows {
        for (text, w) in c.subjects.iter().flatten() {
            let start = c.caption.find(text.as_str()).ok_or_else(|| {
                Error::Config(format!(
                    "fixture: {text:?} is not in caption {:?}",
                    c.caption
                ))
            })?;
            texts.push(text.as_str());
            starts.push(start as u32);
            ends.push((start + text.len()) as u32);
            weights.push(*w);
        }
        offsets.push(texts.len() as i32);
    }
    let n_items = texts.len();
    let items = StructArray::try_new(
        subjects::subject_fields(),
        vec![
            strings(texts.into_iter()),
            Arc::new(UInt32Array::from(starts)),
            Arc::new(UInt32Array::from(ends)),
            Arc::new(Float64Array::from(weights)),
            strings(std::iter::repeat_n("person", n_items)),
        ],
        None,
    )?;
    let item = Arc::new(Field::new(
        "item",
        DataType::Struct(subjects::subject_fields()),
        false,
    ));
    let lists = ListArray::try_new(
        item,
        arrow_buffer::OffsetBuffer::new(offsets.into()),
        Arc::new(items),
        None,
    )?;
    batch(
        subjects::schema(),
        rows.len(),
        vec![
            (subjects::ID, strings(rows.iter().map(|c| c.id.as_str()))),
            (
                subjects::CAPTION,
                strings(rows.iter().map(|c| c.caption.as_str())),
            ),
            (subjects::SUBJECTS, Arc::new(lists)),
            (subjects::BACKEND, strings(rows.iter().map(|_| "heuristic"))),
        ],
    )
}

/// Writes `pairs_curated`, `splits` and `subjects` for `captions` under `out` as the
/// complete output of a step named `fixture`, so the sample step finds them as inputs.
pub fn write_inputs(out: &Path, captions: &[FixtureCaption]) -> Result<()> {
    let mut sorted: Vec<&FixtureCaption> = captions.iter().collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));
    let kept: Vec<&FixtureCaption> = sorted.iter().copied().filter(|c| c.kept).collect();
    let annotated: Vec<&FixtureCaption> = sorted
        .iter()
        .copied()
        .filter(|c| c.subjects.is_some())
        .collect();
    let curated = batch(
        pairs_curated::schema(),
        sorted.len(),
        vec![
            (
                pairs_curated::ID,
                strings(sorted.iter().map(|c| c.id.as_str())),
            ),
            (
                pairs_curated::CAPTION,
                strings(sorted.iter().map(|c| c.caption.as_str())),
            ),
            (
                pairs_curated::SUBSET,
                strings(sorted.iter().map(|c| c.subset.as_str())),
            ),
            (
                pairs_curated::OUTLET,
                strings(sorted.iter().map(|c| c.outlet.as_str())),
            ),
            (
                pairs_curated::TOPIC,
                strings(sorted.iter().map(|c| c.topic.as_str())),
            ),
            (
                pairs_curated::KEPT,
                Arc::new(BooleanArray::from(
                    sorted.iter().map(|c| c.kept).collect::<Vec<_>>(),
                )),
            ),
        ],
    )?;
    let split = batch(
        splits::schema(),
        kept.len(),
        vec![
            (splits::ID, strings(kept.iter().map(|c| c.id.as_str()))),
            (
                splits::SPLIT,
                strings(kept.iter().map(|c| c.split.as_str())),
            ),
            (
                splits::SUBSET,
                strings(kept.iter().map(|c| c.subset.as_str())),
            ),
            (
                splits::OUTLET,
                strings(kept.iter().map(|c| c.outlet.as_str())),
            ),
            (
                splits::GROUP_KEY,
                strings(kept.iter().map(|c| c.id.as_str())),
            ),
        ],
    )?;
    let step = Fixture {
        tables: vec![
            (&pairs_curated::DEF, curated),
            (&splits::DEF, split),
            (&subjects::DEF, subjects_batch(&annotated)?),
        ],
    };
    anchor_core::step::run(&step, out, &RunOptions::default())?;
    Ok(())
}

/// Writes fixed tables as one part.
struct Fixture {
    tables: Vec<(&'static TableDef, RecordBatch)>,
}

impl StepId for Fixture {
    const NAME: &'static str = "fixture";
    const VERSION: u32 = 1;
}

impl Step for Fixture {
    fn params(&self) -> serde_json::Result<serde_json::Value> {
        // The content is the parameter: new rows make a new fingerprint.
        let rows: Vec<String> = self
            .tables
            .iter()
            .map(|(t, b)| format!("{}:{:?}", t.name, b))
            .collect();
        Ok(serde_json::json!({ "rows": rows }))
    }
    fn outputs(&self) -> Vec<&'static TableDef> {
        self.tables.iter().map(|(t, _)| *t).collect()
    }
    fn plan(&self, _ctx: &StepCtx) -> std::result::Result<usize, BoxError> {
        Ok(1)
    }
    fn run_part(
        &self,
        _part: usize,
        _ctx: &StepCtx,
        sink: &mut PartSink,
    ) -> std::result::Result<PartStats, BoxError> {
        for (t, b) in &self.tables {
            sink.write(t.name, b)?;
        }
        Ok(PartStats::default())
    }
}
