//! An OpenCLIP model (open_clip's `CLIP` class: the ViT image tower and the text
//! transformer of `open_clip.model`), loaded from open_clip's own state-dict naming.
//!
//! This is the architecture of the LAION ViT-L/14 and ViT-H/14 checkpoints and of
//! HPSv2 (a fine-tuned ViT-H/14). It differs from transformers' `CLIPModel` in
//! naming (`visual.transformer.resblocks.N.attn.in_proj_weight`, one fused q/k/v
//! projection), in the activation (exact GELU unless `quick_gelu`), and in its
//! configuration file (open_clip's model config JSON).
//!
//! Weights come as a folder in the layout open_clip pushes to a model hub
//! (`open_clip_config.json` with `open_clip_model.safetensors` or
//! `open_clip_pytorch_model.bin`), or as a lone checkpoint (safetensors or a PyTorch
//! pickle, optionally under a `state_dict` key as training scripts save it) with a
//! configuration given separately ([`OpenClipConfig::vit_h_14`] for HPSv2).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anchor_clip_tokenizer::ClipTokenizer;
use candle_core::{DType, Device, IndexOp, Module, Tensor};
use candle_nn::{Conv2d, Conv2dConfig, LayerNorm, Linear, VarBuilder};
use image::DynamicImage;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::PreprocessorConfig;
use crate::preprocess::ImageProcessor;
use crate::{BATCH, Error, Result, checkpoint, embed_images, sha256_file};

/// The configuration file of an open_clip hub folder.
pub const CONFIG_FILE: &str = "open_clip_config.json";
/// The weights files an open_clip hub folder may hold, in the order they are looked for.
pub const WEIGHTS_FILES: [&str; 2] = ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"];

const LAYER_NORM_EPS: f64 = 1e-5;

/// `vision_cfg` of an open_clip model config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenClipVisionConfig {
    /// Input side in pixels.
    pub image_size: usize,
    /// Transformer layers.
    pub layers: usize,
    /// Transformer width.
    pub width: usize,
    /// Width of one attention head.
    #[serde(default = "default_head_width")]
    pub head_width: usize,
    /// MLP width over transformer width.
    #[serde(default = "default_mlp_ratio")]
    pub mlp_ratio: f64,
    /// Patch side in pixels.
    pub patch_size: usize,
    /// Settings this build does not run, refused by name unless at their default.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// `text_cfg` of an open_clip model config.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenClipTextConfig {
    /// Positions.
    #[serde(default = "default_context_length")]
    pub context_length: usize,
    /// Vocabulary size.
    #[serde(default = "default_vocab_size")]
    pub vocab_size: usize,
    /// Transformer width.
    pub width: usize,
    /// Attention heads.
    pub heads: usize,
    /// Transformer layers.
    pub layers: usize,
    /// MLP width over transformer width.
    #[serde(default = "default_mlp_ratio")]
    pub mlp_ratio: f64,
    /// Settings this build does not run, refused by name unless at their default.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

/// An open_clip model config (`open_clip/model_configs/<name>.json`, or `model_cfg` of
/// an `open_clip_config.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OpenClipConfig {
    /// Width of both projections (the embedding size).
    pub embed_dim: usize,
    /// `x * sigmoid(1.702 x)` (OpenAI's checkpoints) instead of exact GELU.
    #[serde(default)]
    pub quick_gelu: bool,
    /// The image tower.
    pub vision_cfg: OpenClipVisionConfig,
    /// The text tower.
    pub text_cfg: OpenClipTextConfig,
    /// Settings this build does not run, refused by name unless at their default.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

fn default_head_width() -> usize {
    64
}
fn default_mlp_ratio() -> f64 {
    4.0
}
fn default_context_length() -> usize {
    77
}
fn default_vocab_size() -> usize {
    49408
}

/// Refuses keys of `other` this build does not run, unless they hold the value that
/// changes nothing at inference: running a model other than the one configured would
/// give numbers that look right and are not.
fn check_other(section: &str, other: &BTreeMap<String, Value>, file: &str) -> Result<()> {
    for (key, value) in other {
        let fine = match (section, key.as_str()) {
            // Inference ignores these.
            (_, "patch_dropout" | "output_tokens" | "init_logit_bias" | "cast_dtype") => true,
            (_, "custom_text") => true,
            (_, "ls_init_value" | "attentional_pool" | "timm_model_name" | "hf_model_name") => {
                value.is_null()
            }
            ("vision_cfg", "pool_type") => value == "tok",
            ("vision_cfg", "global_average_pool" | "final_ln_after_pool" | "no_ln_pre") => {
                value == &Value::Bool(false)
            }
            ("text_cfg", "pool_type") => value == "argmax",
            ("text_cfg", "embed_cls" | "no_causal_mask" | "proj_bias") => {
                value == &Value::Bool(false)
            }
            ("text_cfg", "proj_type") => value == "linear",
            (_, "act_kwargs" | "norm_kwargs") => {
                value.is_null() || value.as_object().is_some_and(|m| m.is_empty())
            }
            _ => false,
        };
        if !fine {
            let at = if section.is_empty() {
                key.clone()
            } else {
                format!("{section}.{key}")
            };
            return Err(Error::Config {
                file: file.to_owned(),
                reason: format!("{at} = {value} is not supported by this OpenCLIP implementation"),
            });
        }
    }
    Ok(())
}

impl OpenClipConfig {
    /// open_clip's `ViT-H-14` (the LAION ViT-H/14 and HPSv2 architecture).
    pub fn vit_h_14() -> Self {
        OpenClipConfig {
            embed_dim: 1024,
            quick_gelu: false,
            vision_cfg: OpenClipVisionConfig {
                image_size: 224,
                layers: 32,
                width: 1280,
                head_width: 80,
                mlp_ratio: 4.0,
                patch_size: 14,
                other: BTreeMap::new(),
            },
            text_cfg: OpenClipTextConfig {
                context_length: 77,
                vocab_size: 49408,
                width: 1024,
                heads: 16,
                layers: 24,
                mlp_ratio: 4.0,
                other: BTreeMap::new(),
            },
            other: BTreeMap::new(),
        }
    }

    /// Parses a model config, or an `open_clip_config.json` (whose `model_cfg` it is);
    /// `file` names the source in errors. Returns the preprocessing the file asks for too.
    pub fn from_json(text: &[u8], file: &str) -> Result<(Self, PreprocessorConfig)> {
        let bad = |reason: String| Error::Config {
            file: file.to_owned(),
            reason,
        };
        let value: Value = serde_json::from_slice(text).map_err(|e| bad(e.to_string()))?;
        let (model, preprocess) = match value.get("model_cfg") {
            Some(model) => (model.clone(), value.get("preprocess_cfg").cloned()),
            None => (value, None),
        };
        let cfg: OpenClipConfig = serde_json::from_value(model).map_err(|e| bad(e.to_string()))?;
        cfg.check(file)?;
        let mut pp = cfg.preprocessing();
        if let Some(p) = preprocess {
            let floats = |key: &str| -> Result<Option<Vec<f32>>> {
                p.get(key)
                    .map(|v| {
                        serde_json::from_value::<Vec<f32>>(v.clone())
                            .ok()
                            .filter(|v| v.len() == 3)
                            .ok_or_else(|| bad(format!("preprocess_cfg.{key} is not 3 numbers")))
                    })
                    .transpose()
            };
            if let Some(mean) = floats("mean")? {
                pp.image_mean = mean;
            }
            if let Some(std) = floats("std")? {
                pp.image_std = std;
            }
            for (key, want) in [("interpolation", "bicubic"), ("resize_mode", "shortest")] {
                if let Some(v) = p.get(key).filter(|v| *v != want) {
                    return Err(bad(format!(
                        "preprocess_cfg.{key} = {v} is not supported (only {want:?})"
                    )));
                }
            }
        }
        Ok((cfg, pp))
    }

    /// Refuses shapes and options this build cannot run.
    pub fn check(&self, file: &str) -> Result<()> {
        let bad = |reason: String| Error::Config {
            file: file.to_owned(),
            reason,
        };
        check_other("", &self.other, file)?;
        check_other("vision_cfg", &self.vision_cfg.other, file)?;
        check_other("text_cfg", &self.text_cfg.other, file)?;
        let v = &self.vision_cfg;
        let t = &self.text_cfg;
        if v.patch_size == 0 || !v.image_size.is_multiple_of(v.patch_size) {
            return Err(bad(format!(
                "vision_cfg.image_size {} is not a multiple of patch_size {}",
                v.image_size, v.patch_size
            )));
        }
        if v.head_width == 0 || !v.width.is_multiple_of(v.head_width) {
            return Err(bad(format!(
                "vision_cfg.width {} is not a multiple of head_width {}",
                v.width, v.head_width
            )));
        }
        if t.heads == 0 || !t.width.is_multiple_of(t.heads) {
            return Err(bad(format!(
                "text_cfg.width {} is not a multiple of heads {}",
                t.width, t.heads
            )));
        }
        if t.context_length != anchor_clip_tokenizer::CONTEXT_LENGTH {
            return Err(bad(format!(
                "text_cfg.context_length {} (captions are tokenized to {})",
                t.context_length,
                anchor_clip_tokenizer::CONTEXT_LENGTH
            )));
        }
        Ok(())
    }

    /// open_clip's evaluation transform for this model: shortest side to `image_size`
    /// with bicubic resampling, centre crop, OpenAI mean and std.
    pub fn preprocessing(&self) -> PreprocessorConfig {
        PreprocessorConfig::square_crop(self.vision_cfg.image_size as u32)
    }
}

#[derive(Debug, Clone, Copy)]
enum Activation {
    Gelu,
    QuickGelu,
}

impl Activation {
    fn apply(self, x: &Tensor) -> candle_core::Result<Tensor> {
        match self {
            Activation::Gelu => x.gelu_erf(),
            Activation::QuickGelu => x * candle_nn::ops::sigmoid(&(x * 1.702)?)?,
        }
    }
}

/// `nn.MultiheadAttention` with its fused input projection.
struct Attention {
    in_proj: Linear,
    out_proj: Linear,
    heads: usize,
}

impl Attention {
    fn new(vb: VarBuilder, width: usize, heads: usize) -> candle_core::Result<Self> {
        let w = vb.get((3 * width, width), "in_proj_weight")?;
        let b = vb.get(3 * width, "in_proj_bias")?;
        Ok(Attention {
            in_proj: Linear::new(w, Some(b)),
            out_proj: candle_nn::linear(width, width, vb.pp("out_proj"))?,
            heads,
        })
    }

    fn forward(&self, x: &Tensor, mask: Option<&Tensor>) -> candle_core::Result<Tensor> {
        let out = crate::fused_attention(&self.in_proj.forward(x)?, self.heads, mask)?;
        self.out_proj.forward(&out)
    }
}

struct ResidualBlock {
    ln_1: LayerNorm,
    attn: Attention,
    ln_2: LayerNorm,
    c_fc: Linear,
    c_proj: Linear,
    act: Activation,
}

impl ResidualBlock {
    fn new(
        vb: VarBuilder,
        width: usize,
        heads: usize,
        mlp: usize,
        act: Activation,
    ) -> candle_core::Result<Self> {
        Ok(ResidualBlock {
            ln_1: candle_nn::layer_norm(width, LAYER_NORM_EPS, vb.pp("ln_1"))?,
            attn: Attention::new(vb.pp("attn"), width, heads)?,
            ln_2: candle_nn::layer_norm(width, LAYER_NORM_EPS, vb.pp("ln_2"))?,
            c_fc: candle_nn::linear(width, mlp, vb.pp("mlp.c_fc"))?,
            c_proj: candle_nn::linear(mlp, width, vb.pp("mlp.c_proj"))?,
            act,
        })
    }

    fn forward(&self, x: &Tensor, mask: Option<&Tensor>) -> candle_core::Result<Tensor> {
        let x = (x + self.attn.forward(&self.ln_1.forward(x)?, mask)?)?;
        let h = self
            .act
            .apply(&self.c_fc.forward(&self.ln_2.forward(&x)?)?)?;
        x + self.c_proj.forward(&h)?
    }
}

fn blocks(
    vb: VarBuilder,
    layers: usize,
    width: usize,
    heads: usize,
    mlp_ratio: f64,
    act: Activation,
) -> candle_core::Result<Vec<ResidualBlock>> {
    let mlp = (width as f64 * mlp_ratio) as usize;
    (0..layers)
        .map(|i| ResidualBlock::new(vb.pp(format!("resblocks.{i}")), width, heads, mlp, act))
        .collect()
}

struct VisionTower {
    conv1: Conv2d,
    class_embedding: Tensor,
    positional_embedding: Tensor,
    ln_pre: LayerNorm,
    blocks: Vec<ResidualBlock>,
    ln_post: LayerNorm,
    proj: Tensor,
}

impl VisionTower {
    fn new(vb: VarBuilder, cfg: &OpenClipConfig, act: Activation) -> candle_core::Result<Self> {
        let v = &cfg.vision_cfg;
        let grid = v.image_size / v.patch_size;
        let conv = Conv2dConfig {
            stride: v.patch_size,
            ..Default::default()
        };
        Ok(VisionTower {
            conv1: candle_nn::conv2d_no_bias(3, v.width, v.patch_size, conv, vb.pp("conv1"))?,
            class_embedding: vb.get(v.width, "class_embedding")?,
            positional_embedding: vb.get((grid * grid + 1, v.width), "positional_embedding")?,
            ln_pre: candle_nn::layer_norm(v.width, LAYER_NORM_EPS, vb.pp("ln_pre"))?,
            blocks: blocks(
                vb.pp("transformer"),
                v.layers,
                v.width,
                v.width / v.head_width,
                v.mlp_ratio,
                act,
            )?,
            ln_post: candle_nn::layer_norm(v.width, LAYER_NORM_EPS, vb.pp("ln_post"))?,
            proj: vb.get((v.width, cfg.embed_dim), "proj")?,
        })
    }

    fn forward(&self, pixels: &Tensor) -> candle_core::Result<Tensor> {
        let patches = self
            .conv1
            .forward(pixels)?
            .flatten_from(2)?
            .transpose(1, 2)?;
        let b = patches.dim(0)?;
        let width = self.class_embedding.dim(0)?;
        let cls = self
            .class_embedding
            .reshape((1, 1, width))?
            .repeat((b, 1, 1))?;
        let mut x = Tensor::cat(&[&cls, &patches], 1)?.broadcast_add(&self.positional_embedding)?;
        x = self.ln_pre.forward(&x)?;
        for block in &self.blocks {
            x = block.forward(&x, None)?;
        }
        let pooled = self.ln_post.forward(&x.i((.., 0))?)?;
        pooled.matmul(&self.proj)
    }
}

struct TextTower {
    token_embedding: candle_nn::Embedding,
    positional_embedding: Tensor,
    blocks: Vec<ResidualBlock>,
    ln_final: LayerNorm,
    text_projection: Tensor,
}

impl TextTower {
    fn new(vb: VarBuilder, cfg: &OpenClipConfig, act: Activation) -> candle_core::Result<Self> {
        let t = &cfg.text_cfg;
        Ok(TextTower {
            token_embedding: candle_nn::embedding(t.vocab_size, t.width, vb.pp("token_embedding"))?,
            positional_embedding: vb.get((t.context_length, t.width), "positional_embedding")?,
            blocks: blocks(
                vb.pp("transformer"),
                t.layers,
                t.width,
                t.heads,
                t.mlp_ratio,
                act,
            )?,
            ln_final: candle_nn::layer_norm(t.width, LAYER_NORM_EPS, vb.pp("ln_final"))?,
            text_projection: vb.get((t.width, cfg.embed_dim), "text_projection")?,
        })
    }

    /// `ids` is (batch, n); each row is pooled at its `eot` position.
    fn forward(&self, ids: &Tensor, eot: &[usize]) -> candle_core::Result<Tensor> {
        let n = ids.dim(1)?;
        let mut x = self
            .token_embedding
            .forward(ids)?
            .broadcast_add(&self.positional_embedding.narrow(0, 0, n)?)?;
        // The causal mask: position i sees positions up to i.
        let mask: Vec<f32> = (0..n)
            .flat_map(|i| (0..n).map(move |j| if j > i { f32::NEG_INFINITY } else { 0.0 }))
            .collect();
        let mask = Tensor::from_vec(mask, (n, n), ids.device())?;
        for block in &self.blocks {
            x = block.forward(&x, Some(&mask))?;
        }
        let x = self.ln_final.forward(&x)?;
        let pooled = eot
            .iter()
            .enumerate()
            .map(|(b, &at)| x.i((b, at))?.unsqueeze(0))
            .collect::<candle_core::Result<Vec<_>>>()?;
        Tensor::cat(&pooled, 0)?.matmul(&self.text_projection)
    }
}

/// Where an OpenCLIP model is read from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpenClipSource {
    /// The weights file (not part of a fingerprint: moving it changes nothing).
    #[serde(skip)]
    pub weights: PathBuf,
    /// The architecture.
    pub config: OpenClipConfig,
    /// The image preprocessing.
    pub preprocess: PreprocessorConfig,
}

impl OpenClipSource {
    /// An open_clip hub folder (`open_clip_config.json` and its weights), or a lone
    /// checkpoint file of the architecture `default` (refused when `None`).
    pub fn resolve(path: &Path, default: Option<&OpenClipConfig>) -> Result<Self> {
        let file = path.display().to_string();
        if path.is_dir() {
            let config_path = path.join(CONFIG_FILE);
            let text = std::fs::read(&config_path).map_err(|source| Error::Io {
                path: config_path.clone(),
                source,
            })?;
            let (config, preprocess) =
                OpenClipConfig::from_json(&text, &config_path.display().to_string())?;
            let weights = WEIGHTS_FILES
                .iter()
                .map(|f| path.join(f))
                .find(|p| p.is_file())
                .ok_or_else(|| Error::Config {
                    file: file.clone(),
                    reason: format!("an OpenCLIP folder needs one of {WEIGHTS_FILES:?}"),
                })?;
            return Ok(OpenClipSource {
                weights,
                config,
                preprocess,
            });
        }
        if !path.is_file() {
            return Err(Error::Config {
                file,
                reason: "no such file or folder".into(),
            });
        }
        let config = default.cloned().ok_or_else(|| Error::Config {
            file: file.clone(),
            reason: format!("a lone checkpoint needs a folder with {CONFIG_FILE} beside it"),
        })?;
        config.check(&file)?;
        Ok(OpenClipSource {
            weights: path.to_path_buf(),
            preprocess: config.preprocessing(),
            config,
        })
    }
}

/// An OpenCLIP model, checked and hashed: the identity a step fingerprints (weights,
/// architecture, preprocessing and tokenizer), and where it loads from later.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpenClipWeights {
    /// sha256 of the weights file.
    pub sha256: String,
    /// sha256 of the BPE vocabulary.
    pub tokenizer_sha256: String,
    /// The architecture and preprocessing.
    pub source: OpenClipSource,
    /// The BPE vocabulary file.
    #[serde(skip)]
    pub vocab: PathBuf,
}

impl OpenClipWeights {
    /// Resolves `path` ([`OpenClipSource::resolve`]) and hashes its weights and `vocab`.
    pub fn hashed(path: &Path, default: Option<&OpenClipConfig>, vocab: &Path) -> Result<Self> {
        let source = OpenClipSource::resolve(path, default)?;
        if !vocab.is_file() {
            return Err(Error::Config {
                file: vocab.display().to_string(),
                reason: "the CLIP BPE vocabulary is missing (scripts/fetch-models.sh clip-vocab)"
                    .into(),
            });
        }
        // The patch embedding tells the architecture: checked from the file's index now,
        // so a wrong file is refused before a run starts, not when the model loads.
        let v = &source.config.vision_cfg;
        let want = vec![v.width, 3, v.patch_size, v.patch_size];
        let name = "visual.conv1.weight";
        let bad = |reason: String| Error::Config {
            file: source.weights.display().to_string(),
            reason,
        };
        match checkpoint::tensor_shapes(&source.weights)
            .map_err(bad)?
            .remove(name)
        {
            Some(shape) if shape == want => {}
            Some(shape) => {
                return Err(bad(format!(
                    "{name} has shape {shape:?}, the configured architecture needs {want:?} \
                     (another OpenCLIP model?)"
                )));
            }
            None => {
                return Err(bad(format!(
                    "no tensor {name}: not an OpenCLIP checkpoint in open_clip's naming"
                )));
            }
        }
        Ok(OpenClipWeights {
            sha256: sha256_file(&source.weights)?,
            tokenizer_sha256: sha256_file(vocab)?,
            source,
            vocab: vocab.to_path_buf(),
        })
    }

    /// A digest of everything that shapes the embeddings (weights, architecture,
    /// preprocessing): what a feature cache is keyed by.
    pub fn identity(&self) -> Result<String> {
        crate::digest_of(self, &self.source.weights)
    }

    /// Loads the model on `device`, refusing a weights file that changed since
    /// [`OpenClipWeights::hashed`].
    pub fn load_on(&self, device: &Device) -> Result<OpenClip> {
        let model = OpenClip::load_on(&self.source, &self.vocab, device)?;
        if model.sha256() != self.sha256 {
            return Err(Error::Changed {
                dir: self.source.weights.clone(),
                planned: self.sha256.clone(),
                now: model.sha256().to_owned(),
            });
        }
        Ok(model)
    }
}

/// A loaded, frozen OpenCLIP.
pub struct OpenClip {
    vision: VisionTower,
    text: TextTower,
    tokenizer: ClipTokenizer,
    processor: ImageProcessor,
    device: Device,
    sha256: String,
    dim: usize,
}

impl std::fmt::Debug for OpenClip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenClip")
            .field("sha256", &self.sha256)
            .field("dim", &self.dim)
            .finish_non_exhaustive()
    }
}

impl OpenClip {
    /// Loads `source`, tokenizing with the BPE vocabulary `vocab` (open_clip's
    /// `bpe_simple_vocab_16e6.txt.gz`).
    pub fn load_on(source: &OpenClipSource, vocab: &Path, device: &Device) -> Result<Self> {
        let cfg = &source.config;
        let processor =
            ImageProcessor::new(&source.preprocess, &source.weights.display().to_string())?;
        let tokenizer = ClipTokenizer::from_file(vocab)?;
        let sha256 = sha256_file(&source.weights)?;
        let wrap = |e: candle_core::Error| Error::Weights {
            path: source.weights.clone(),
            source: e,
        };
        let vb = checkpoint::var_builder(&source.weights, device).map_err(wrap)?;
        let act = if cfg.quick_gelu {
            Activation::QuickGelu
        } else {
            Activation::Gelu
        };
        Ok(OpenClip {
            vision: VisionTower::new(vb.pp("visual"), cfg, act).map_err(wrap)?,
            text: TextTower::new(vb.clone(), cfg, act).map_err(wrap)?,
            tokenizer,
            processor,
            device: device.clone(),
            sha256,
            dim: cfg.embed_dim,
        })
    }

    /// sha256 (hex) of the weights file.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Embedding size (`embed_dim`).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The image preprocessing in use.
    pub fn processor(&self) -> &ImageProcessor {
        &self.processor
    }

    /// The tokenizer in use.
    pub fn tokenizer(&self) -> &ClipTokenizer {
        &self.tokenizer
    }

    /// Projected, unnormalised image embeddings (`encode_image`), one per image.
    pub fn image_embeddings(&self, images: &[DynamicImage]) -> Result<Vec<Vec<f32>>> {
        embed_images(&self.processor, &self.device, images, |pixels| {
            Ok(self.vision.forward(pixels)?)
        })
    }

    /// Projected, unnormalised text embeddings (`encode_text`), one per text: 77
    /// tokens, truncated with the end token kept, pooled at the end token.
    pub fn text_embeddings(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(BATCH) {
            let encodings: Vec<_> = batch.iter().map(|t| self.tokenizer.tokenize(t)).collect();
            let n = encodings.first().map_or(0, |e| e.ids.len());
            let flat: Vec<u32> = encodings
                .iter()
                .flat_map(|e| e.ids.iter().copied())
                .collect();
            let eot: Vec<usize> = encodings.iter().map(|e| e.len - 1).collect();
            let ids = Tensor::from_vec(flat, (batch.len(), n), &self.device)?;
            out.extend(self.text.forward(&ids, &eot)?.to_vec2::<f32>()?);
        }
        Ok(out)
    }
}

/// Writes an open_clip hub folder (`open_clip_config.json`, `open_clip_model.safetensors`)
/// with random weights drawn from `seed` for `config`, for tests and demos that need an
/// OpenCLIP without real weights. The same arguments always write the same files.
pub fn write_random_model(dir: &Path, config: &OpenClipConfig, seed: u64) -> Result<()> {
    config.check("write_random_model")?;
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let path = dir.join(CONFIG_FILE);
    let json = serde_json::json!({ "model_cfg": config });
    let text = serde_json::to_string_pretty(&json).map_err(|e| Error::Config {
        file: path.display().to_string(),
        reason: e.to_string(),
    })?;
    std::fs::write(&path, text).map_err(|source| Error::Io {
        path: path.clone(),
        source,
    })?;
    let weights = dir.join(WEIGHTS_FILES[0]);
    let wrap = |source| Error::Weights {
        path: weights.clone(),
        source,
    };
    let varmap = candle_nn::VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    VisionTower::new(vb.pp("visual"), config, Activation::Gelu).map_err(wrap)?;
    TextTower::new(vb.clone(), config, Activation::Gelu).map_err(wrap)?;
    crate::fill_seeded(&varmap, seed, |name, dims, _| {
        let leaf = name.rsplit('.').nth(1).unwrap_or(name);
        if leaf.starts_with("ln_") {
            (if name.ends_with(".weight") { 1.0 } else { 0.0 }, 0.1)
        } else if name.ends_with("embedding") || name.ends_with("token_embedding.weight") {
            (0.0, 0.5)
        } else if dims.len() == 1 {
            (0.0, 0.05)
        } else {
            // Kaiming-normal over the input width (`proj` matrices are stored (in, out)).
            let fan_in = if name.ends_with("proj") || name.ends_with("projection") {
                dims[0]
            } else {
                dims.iter().skip(1).product::<usize>()
            };
            (0.0, (2.0 / fan_in.max(1) as f64).sqrt())
        }
    })
    .map_err(wrap)?;
    varmap.save(&weights).map_err(wrap)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> serde_json::Value {
        serde_json::json!({
            "embed_dim": 16,
            "vision_cfg": {"image_size": 32, "layers": 2, "width": 40, "head_width": 10, "patch_size": 8},
            "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": 32, "heads": 4, "layers": 2}
        })
    }

    #[test]
    fn configs_parse_in_both_layouts() {
        let bare = serde_json::to_vec(&tiny()).unwrap();
        let (a, pp) = OpenClipConfig::from_json(&bare, "x").unwrap();
        assert_eq!(a.vision_cfg.head_width, 10);
        assert_eq!(pp.image_mean, crate::config::OPENAI_MEAN.to_vec());
        let hub = serde_json::json!({
            "model_cfg": tiny(),
            "preprocess_cfg": {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}
        });
        let (b, pp) = OpenClipConfig::from_json(&serde_json::to_vec(&hub).unwrap(), "x").unwrap();
        assert_eq!(a, b);
        assert_eq!(pp.image_std, vec![0.5; 3]);
    }

    #[test]
    fn unsupported_settings_are_refused_by_name() {
        let mut cfg = tiny();
        cfg["vision_cfg"]["ls_init_value"] = 1e-5.into();
        let e = OpenClipConfig::from_json(&serde_json::to_vec(&cfg).unwrap(), "m.json")
            .unwrap_err()
            .to_string();
        assert!(e.contains("vision_cfg.ls_init_value"), "{e}");
        let mut cfg = tiny();
        cfg["text_cfg"]["hf_model_name"] = "xlm-roberta-large".into();
        let e = OpenClipConfig::from_json(&serde_json::to_vec(&cfg).unwrap(), "m.json")
            .unwrap_err()
            .to_string();
        assert!(e.contains("text_cfg.hf_model_name"), "{e}");
        let mut cfg = tiny();
        cfg["vision_cfg"]["width"] = 42.into();
        let e = OpenClipConfig::from_json(&serde_json::to_vec(&cfg).unwrap(), "m.json")
            .unwrap_err()
            .to_string();
        assert!(e.contains("head_width"), "{e}");
        // The null values open_clip writes for absent options are fine.
        let mut cfg = tiny();
        cfg["vision_cfg"]["timm_model_name"] = Value::Null;
        cfg["vision_cfg"]["patch_dropout"] = 0.1.into();
        OpenClipConfig::from_json(&serde_json::to_vec(&cfg).unwrap(), "m.json").unwrap();
    }

    #[test]
    fn vit_h_14_is_open_clips_config() {
        let cfg = OpenClipConfig::vit_h_14();
        cfg.check("ViT-H-14").unwrap();
        assert_eq!(cfg.vision_cfg.width / cfg.vision_cfg.head_width, 16);
    }

    #[test]
    fn missing_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let e = OpenClipSource::resolve(dir.path(), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains(CONFIG_FILE), "{e}");
        std::fs::write(
            dir.path().join(CONFIG_FILE),
            serde_json::to_vec(&tiny()).unwrap(),
        )
        .unwrap();
        let e = OpenClipSource::resolve(dir.path(), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("open_clip_model.safetensors"), "{e}");
        let lone = dir.path().join("hps.pt");
        std::fs::write(&lone, b"not a checkpoint").unwrap();
        let e = OpenClipSource::resolve(&lone, None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("lone checkpoint"), "{e}");
        let source = OpenClipSource::resolve(&lone, Some(&OpenClipConfig::vit_h_14())).unwrap();
        let vocab = dir.path().join("nope.txt.gz");
        assert!(OpenClip::load_on(&source, &vocab, &Device::Cpu).is_err());
        std::fs::write(&vocab, b"").unwrap();
        let e = OpenClipWeights::hashed(&lone, Some(&OpenClipConfig::vit_h_14()), &vocab)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("hps.pt") && e.contains("PyTorch checkpoint"),
            "{e}"
        );
    }

    #[test]
    fn random_models_load_and_follow_the_seed() {
        let (cfg, _) =
            OpenClipConfig::from_json(&serde_json::to_vec(&tiny()).unwrap(), "x").unwrap();
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, seed| {
            let d = dir.path().join(name);
            write_random_model(&d, &cfg, seed).unwrap();
            let w = OpenClipWeights::hashed(&d, None, &d.join(CONFIG_FILE)).unwrap();
            (w.sha256.clone(), w)
        };
        let (a, weights) = write("a", 7);
        assert_eq!(a, write("b", 7).0);
        assert_ne!(a, write("c", 8).0);
        assert_eq!(weights.source.config, cfg);
        // Another architecture's file is refused from its index, naming the tensor.
        let other = dir.path().join("a").join(WEIGHTS_FILES[0]);
        let e = OpenClipWeights::hashed(&other, Some(&OpenClipConfig::vit_h_14()), &other)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("visual.conv1.weight has shape [40, 3, 8, 8]"),
            "{e}"
        );
        // Loading reads every tensor the architecture names; a wrong file is refused.
        let e = weights.load_on(&Device::Cpu).unwrap_err().to_string();
        assert!(e.contains("open_clip_config.json"), "{e}");
    }
}
