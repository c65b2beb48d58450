//! A frozen CLIP for evaluation, loaded from a Hugging Face transformers folder
//! (`config.json` + `model.safetensors`, the layout of `openai/clip-vit-base-patch32`
//! and `openai/clip-vit-large-patch14`), run on CPU with candle.
//!
//! - Images are preprocessed as transformers' `CLIPImageProcessor` (PIL backend) does
//!   ([`preprocess`]): RGB, shortest side resized with Pillow's bicubic, centre crop,
//!   rescale, normalise with the OpenAI mean/std; `preprocessor_config.json` overrides
//!   size, crop, mean and std when present.
//! - Text goes through `anchor-clip-tokenizer` (the folder's `merges.txt` when it has
//!   one, else the open_clip `bpe_simple_vocab_16e6.txt.gz` given to [`Clip::load`]):
//!   77 tokens, truncated with the end token kept, pooled at the first end token
//!   as transformers' `CLIPTextTransformer` does.
//! - The towers are `candle_transformers::models::clip`'s, used frozen; the
//!   projections are ours. Configurations candle's towers cannot run (`gelu`
//!   activations, layer-norm eps other than 1e-5, fewer than 77 positions) are
//!   refused by name.
//!
//! [`open_clip`] runs OpenCLIP checkpoints (open_clip's own state-dict naming, exact
//! GELU or QuickGELU towers, argmax end-token pooling), such as the ViT-H/14 that
//! HPSv2 fine-tunes, with open_clip's preprocessing.
//!
//! Embeddings are **projected and not normalised** (transformers'
//! `get_image_features` / `get_text_features`): clean-fid's CLIP FID uses them as
//! they are, and a cosine (CLIP score) normalises on its own.
//!
//! ```no_run
//! let clip = anchor_clip::Clip::load("weights/clip-vit-base-patch32".as_ref(),
//!     Some("data/models/open-clip/bpe_simple_vocab_16e6.txt.gz".as_ref()))?;
//! let img = image::open("a.jpg").map_err(|e| anchor_clip::Error::Image(e.to_string()))?;
//! let i = clip.image_embeddings(&[img])?;
//! let t = clip.text_embeddings(&["a photo of a cat"])?;
//! println!("{} {} {}", i[0].len(), t[0].len(), clip.sha256());
//! # Ok::<(), anchor_clip::Error>(())
//! ```

#![warn(missing_docs)]

pub use anchor_clip_config as config;
pub mod open_clip;
use anchor_imaging as pil;
mod checkpoint;
pub mod either;
pub mod image_reward;
pub mod preprocess;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anchor_clip_tokenizer::{CONTEXT_LENGTH, ClipTokenizer};
use candle_core::{DType, Device, IndexOp, Module, Tensor};
use candle_nn::{Linear, VarBuilder};
use candle_transformers::models::clip::text_model::{
    Activation, ClipTextConfig, ClipTextTransformer,
};
use candle_transformers::models::clip::vision_model::{ClipVisionConfig, ClipVisionTransformer};
use image::DynamicImage;
use sha2::{Digest, Sha256};

pub use config::{ClipActivation, HfClipConfig, PreprocessorConfig, TextConfig, VisionConfig};
pub use either::{ClipModel, ClipModelWeights};
pub use open_clip::{OpenClip, OpenClipConfig, OpenClipSource, OpenClipWeights};
pub use preprocess::ImageProcessor;

/// The weights file inside a CLIP folder.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// The model configuration inside a CLIP folder.
pub const CONFIG_FILE: &str = "config.json";
/// The optional image-processor configuration inside a CLIP folder.
pub const PREPROCESSOR_FILE: &str = "preprocessor_config.json";
/// The optional BPE merges inside a CLIP folder (transformers' `CLIPTokenizer`).
pub const MERGES_FILE: &str = "merges.txt";

/// Errors of the crate's models.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file of the folder could not be read.
    #[error("reading {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A configuration file is malformed, or asks for something this build cannot run.
    #[error("model configuration {file}: {reason}")]
    Config {
        /// The file.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// The tokenizer vocabulary could not be loaded.
    #[error(transparent)]
    Tokenizer(#[from] anchor_clip_tokenizer::Error),
    /// An image could not be preprocessed, or inputs do not fit together.
    #[error("model input: {0}")]
    Image(String),
    /// The weights do not fit the configuration, or a forward pass failed.
    #[error("model weights {path}: {source}")]
    Weights {
        /// The safetensors file.
        path: PathBuf,
        /// The cause (names the missing or misshapen tensor).
        source: candle_core::Error,
    },
    /// A candle operation failed.
    #[error("model forward pass: {0}")]
    Candle(#[from] candle_core::Error),
    /// The weights file is not the one that was hashed when the run was planned.
    #[error(
        "model weights at {dir} changed since the run was planned (sha256 {now} now, {planned} then); run again"
    )]
    Changed {
        /// The weights folder or file.
        dir: PathBuf,
        /// The hash the run was planned with.
        planned: String,
        /// The hash of the file now.
        now: String,
    },
}

/// Result alias of the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Images (or captions) per forward pass.
const BATCH: usize = 16;

/// A loaded, frozen CLIP.
pub struct Clip {
    text: ClipTextTransformer,
    vision: ClipVisionTransformer,
    text_projection: Linear,
    visual_projection: Linear,
    tokenizer: ClipTokenizer,
    processor: ImageProcessor,
    device: Device,
    sha256: String,
    dim: usize,
}

impl std::fmt::Debug for Clip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Clip")
            .field("sha256", &self.sha256)
            .field("dim", &self.dim)
            .finish_non_exhaustive()
    }
}

/// Multi-head attention over the output of a fused q/k/v projection (B, N, 3·width),
/// with `mask` added to the scores; returns (B, N, width) before the output projection.
pub(crate) fn fused_attention(
    qkv: &Tensor,
    heads: usize,
    mask: Option<&Tensor>,
) -> candle_core::Result<Tensor> {
    let (b, n, three_width) = qkv.dims3()?;
    let width = three_width / 3;
    let head = width / heads;
    let qkv = qkv
        .reshape((b, n, 3, heads, head))?
        .permute((2, 0, 3, 1, 4))?;
    let q = (qkv.get(0)?.contiguous()? * (head as f64).powf(-0.5))?;
    let k = qkv.get(1)?.contiguous()?;
    let v = qkv.get(2)?.contiguous()?;
    let mut scores = q.matmul(&k.t()?)?;
    if let Some(mask) = mask {
        scores = scores.broadcast_add(mask)?;
    }
    let weights = candle_nn::ops::softmax_last_dim(&scores)?;
    weights.matmul(&v)?.transpose(1, 2)?.reshape((b, n, width))
}

/// sha256 (hex) of `what` serialised: the identity of a model description, for the
/// weights at `path` (named in the error).
pub(crate) fn digest_of(what: &impl serde::Serialize, path: &Path) -> Result<String> {
    let described = serde_json::to_vec(what).map_err(|e| Error::Config {
        file: path.display().to_string(),
        reason: format!("describing the model: {e}"),
    })?;
    Ok(hex::encode(Sha256::digest(&described)))
}

/// Preprocesses `images` in batches of [`BATCH`] and runs `tower` on each batch of
/// pixels (N, 3, H, W), returning one embedding row per image.
pub(crate) fn embed_images(
    processor: &ImageProcessor,
    device: &Device,
    images: &[DynamicImage],
    mut tower: impl FnMut(&Tensor) -> Result<Tensor>,
) -> Result<Vec<Vec<f32>>> {
    let mut out = Vec::with_capacity(images.len());
    for batch in images.chunks(BATCH) {
        let mut data = Vec::new();
        let mut hw = (0, 0);
        for img in batch {
            let (v, size) = processor.process(img)?;
            hw = size;
            data.extend(v);
        }
        let pixels = Tensor::from_vec(data, (batch.len(), 3, hw.0, hw.1), device)?;
        out.extend(tower(&pixels)?.to_vec2::<f32>()?);
    }
    Ok(out)
}

fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// A CLIP folder, checked and hashed: the identity a step fingerprints (weights and
/// tokenizer), and the paths it loads from later.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ClipWeights {
    /// sha256 of `model.safetensors`.
    pub sha256: String,
    /// sha256 of the BPE file captions are tokenized with (the folder's `merges.txt` when
    /// it has one, else the open_clip vocabulary).
    pub tokenizer_sha256: String,
    /// The folder.
    #[serde(skip)]
    pub dir: PathBuf,
    /// BPE vocabulary used when the folder has no `merges.txt`.
    #[serde(skip)]
    pub vocab: PathBuf,
}

impl ClipWeights {
    /// Checks the CLIP folder `dir` (a `config.json` this build runs, `model.safetensors`,
    /// and `merges.txt` or the open_clip vocabulary `vocab`) and hashes its files.
    pub fn hashed(dir: &Path, vocab: &Path) -> Result<Self> {
        let folder_error = |reason: String| Error::Config {
            file: dir.display().to_string(),
            reason,
        };
        check_folder(dir)?;
        read_config(dir)?;
        let weights = dir.join(WEIGHTS_FILE);
        if !weights.is_file() {
            return Err(folder_error(format!("no {WEIGHTS_FILE} in it")));
        }
        let merges = dir.join(MERGES_FILE);
        let tokenizer = if merges.is_file() {
            merges
        } else if vocab.is_file() {
            vocab.to_path_buf()
        } else {
            return Err(folder_error(format!(
                "no {MERGES_FILE} in it and the CLIP vocabulary {} is missing \
                 (scripts/fetch-models.sh clip-vocab)",
                vocab.display()
            )));
        };
        Ok(ClipWeights {
            sha256: sha256_file(&weights)?,
            tokenizer_sha256: sha256_file(&tokenizer)?,
            dir: dir.to_path_buf(),
            vocab: vocab.to_path_buf(),
        })
    }

    /// [`ClipWeights::load_on`] the CPU.
    pub fn load(&self) -> Result<Clip> {
        self.load_on(&Device::Cpu)
    }

    /// Loads the model on `device`, refusing a weights file that changed since
    /// [`ClipWeights::hashed`].
    pub fn load_on(&self, device: &Device) -> Result<Clip> {
        let clip = Clip::load_on(&self.dir, Some(&self.vocab), device)?;
        if clip.sha256() != self.sha256 {
            return Err(Error::Changed {
                dir: self.dir.clone(),
                planned: self.sha256.clone(),
                now: clip.sha256().to_owned(),
            });
        }
        Ok(clip)
    }
}

/// `dir` must be a folder: a lone weights file is named as the mistake.
fn check_folder(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    Err(Error::Config {
        file: dir.display().to_string(),
        reason: format!(
            "not a folder (a transformers CLIP folder has {CONFIG_FILE} and {WEIGHTS_FILE})"
        ),
    })
}

/// The sha256 (hex) of a file.
pub fn sha256_file(path: &Path) -> Result<String> {
    anchor_digest::sha256_file(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Reads and checks `config.json` of `dir`.
pub fn read_config(dir: &Path) -> Result<HfClipConfig> {
    let path = dir.join(CONFIG_FILE);
    let cfg: HfClipConfig = serde_json::from_slice(&read(&path)?).map_err(|e| Error::Config {
        file: path.display().to_string(),
        reason: e.to_string(),
    })?;
    check_config(&cfg, &path.display().to_string())?;
    Ok(cfg)
}

fn check_config(cfg: &HfClipConfig, file: &str) -> Result<()> {
    let bad = |reason: String| {
        Err(Error::Config {
            file: file.to_owned(),
            reason,
        })
    };
    if !cfg.model_type.is_empty() && cfg.model_type != "clip" {
        return bad(format!(
            "model_type {:?} is not a transformers CLIPModel (\"clip\")",
            cfg.model_type
        ));
    }
    let (t, v) = (cfg.text(), cfg.vision());
    for (tower, act, eps, hidden, heads) in [
        (
            "text_config",
            &t.hidden_act,
            t.layer_norm_eps,
            t.hidden_size,
            t.num_attention_heads,
        ),
        (
            "vision_config",
            &v.hidden_act,
            v.layer_norm_eps,
            v.hidden_size,
            v.num_attention_heads,
        ),
    ] {
        if *act != ClipActivation::QuickGelu {
            return bad(format!(
                "{tower}.hidden_act {:?}: this build runs quick_gelu CLIPs only (the OpenAI ones)",
                act.as_str()
            ));
        }
        if (eps - 1e-5).abs() > 1e-12 {
            return bad(format!(
                "{tower}.layer_norm_eps {eps}: this build runs layer norms with eps 1e-5 only"
            ));
        }
        if heads == 0 || !hidden.is_multiple_of(heads) {
            return bad(format!(
                "{tower}: hidden_size {hidden} does not split into {heads} heads"
            ));
        }
    }
    if t.max_position_embeddings < CONTEXT_LENGTH {
        return bad(format!(
            "text_config.max_position_embeddings {} is below CLIP's {CONTEXT_LENGTH} tokens",
            t.max_position_embeddings
        ));
    }
    if t.vocab_size < 49408 {
        return bad(format!(
            "text_config.vocab_size {} is below the CLIP BPE vocabulary's 49408",
            t.vocab_size
        ));
    }
    if v.patch_size == 0 || !v.image_size.is_multiple_of(v.patch_size) || v.num_channels != 3 {
        return bad(format!(
            "vision_config: image_size {} / patch_size {} / num_channels {} cannot run",
            v.image_size, v.patch_size, v.num_channels
        ));
    }
    if cfg.projection_dim == 0 {
        return bad("projection_dim is 0".into());
    }
    Ok(())
}

fn candle_configs(cfg: &HfClipConfig) -> (ClipTextConfig, ClipVisionConfig) {
    let (t, v) = (cfg.text(), cfg.vision());
    (
        ClipTextConfig {
            vocab_size: t.vocab_size,
            embed_dim: t.hidden_size,
            activation: Activation::QuickGelu,
            intermediate_size: t.intermediate_size,
            max_position_embeddings: t.max_position_embeddings,
            pad_with: None,
            num_hidden_layers: t.num_hidden_layers,
            num_attention_heads: t.num_attention_heads,
            projection_dim: cfg.projection_dim,
        },
        ClipVisionConfig {
            embed_dim: v.hidden_size,
            activation: Activation::QuickGelu,
            intermediate_size: v.intermediate_size,
            num_hidden_layers: v.num_hidden_layers,
            num_attention_heads: v.num_attention_heads,
            projection_dim: cfg.projection_dim,
            num_channels: v.num_channels,
            image_size: v.image_size,
            patch_size: v.patch_size,
        },
    )
}

struct Towers {
    text: ClipTextTransformer,
    vision: ClipVisionTransformer,
    text_projection: Linear,
    visual_projection: Linear,
}

fn build(vb: &VarBuilder, cfg: &HfClipConfig) -> candle_core::Result<Towers> {
    let (tc, vc) = candle_configs(cfg);
    // candle draws a random class embedding when the tensor is absent; a frozen
    // model must never do that, so its absence is an error here.
    vb.pp("vision_model.embeddings")
        .get(vc.embed_dim, "class_embedding")?;
    Ok(Towers {
        text: ClipTextTransformer::new(vb.pp("text_model"), &tc)?,
        vision: ClipVisionTransformer::new(vb.pp("vision_model"), &vc)?,
        text_projection: candle_nn::linear_no_bias(
            tc.embed_dim,
            cfg.projection_dim,
            vb.pp("text_projection"),
        )?,
        visual_projection: candle_nn::linear_no_bias(
            vc.embed_dim,
            cfg.projection_dim,
            vb.pp("visual_projection"),
        )?,
    })
}

impl Clip {
    /// Loads the CLIP folder `dir`. `vocab` is the BPE vocabulary to use when the
    /// folder has no `merges.txt` (open_clip's `bpe_simple_vocab_16e6.txt.gz`).
    pub fn load(dir: &Path, vocab: Option<&Path>) -> Result<Self> {
        Self::load_on(dir, vocab, &Device::Cpu)
    }

    /// [`Clip::load`] on `device`.
    pub fn load_on(dir: &Path, vocab: Option<&Path>, device: &Device) -> Result<Self> {
        check_folder(dir)?;
        let cfg = read_config(dir)?;
        let pp_path = dir.join(PREPROCESSOR_FILE);
        let pp: PreprocessorConfig = if pp_path.is_file() {
            serde_json::from_slice(&read(&pp_path)?).map_err(|e| Error::Config {
                file: pp_path.display().to_string(),
                reason: e.to_string(),
            })?
        } else {
            PreprocessorConfig::default()
        };
        let processor = ImageProcessor::new(&pp, &pp_path.display().to_string())?;
        let side = cfg.vision().image_size;
        if processor.output_size() != Some((side, side)) {
            return Err(Error::Config {
                file: pp_path.display().to_string(),
                reason: format!(
                    "images come out {:?}, the vision tower takes {side}x{side}",
                    processor.output_size()
                ),
            });
        }
        let merges = dir.join(MERGES_FILE);
        let tokenizer = if merges.is_file() {
            ClipTokenizer::from_file(&merges)?
        } else if let Some(v) = vocab {
            ClipTokenizer::from_file(v)?
        } else {
            return Err(Error::Config {
                file: merges.display().to_string(),
                reason: "absent, and no BPE vocabulary was given".into(),
            });
        };
        let weights = dir.join(WEIGHTS_FILE);
        let bytes = read(&weights)?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        let wrap = |source| Error::Weights {
            path: weights.clone(),
            source,
        };
        let vb = VarBuilder::from_buffered_safetensors(bytes, DType::F32, device).map_err(wrap)?;
        let towers = build(&vb, &cfg).map_err(wrap)?;
        Ok(Clip {
            text: towers.text,
            vision: towers.vision,
            text_projection: towers.text_projection,
            visual_projection: towers.visual_projection,
            tokenizer,
            processor,
            device: device.clone(),
            sha256,
            dim: cfg.projection_dim,
        })
    }

    /// sha256 (hex) of `model.safetensors`.
    pub fn sha256(&self) -> &str {
        &self.sha256
    }

    /// Embedding size (`projection_dim`).
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

    /// Projected, unnormalised image embeddings, one per image.
    pub fn image_embeddings(&self, images: &[DynamicImage]) -> Result<Vec<Vec<f32>>> {
        embed_images(&self.processor, &self.device, images, |pixels| {
            let pooled = self.vision.forward(pixels)?;
            Ok(self.visual_projection.forward(&pooled)?)
        })
    }

    /// Projected, unnormalised text embeddings, one per text (77 tokens, truncated).
    pub fn text_embeddings(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        let ids: Vec<(Vec<u32>, usize)> = texts
            .iter()
            .map(|t| {
                let e = self.tokenizer.tokenize(t);
                (e.ids, e.len - 1)
            })
            .collect();
        self.token_embeddings(&ids)
    }

    /// Text embeddings of explicit token ids: each row is 77 ids, pooled at `eos`
    /// (the position of its first end token).
    pub fn token_embeddings(&self, rows: &[(Vec<u32>, usize)]) -> Result<Vec<Vec<f32>>> {
        let mut out = Vec::with_capacity(rows.len());
        for batch in rows.chunks(BATCH) {
            let len = batch.first().map_or(0, |(ids, _)| ids.len());
            if let Some((ids, eos)) = batch
                .iter()
                .find(|(ids, eos)| ids.len() != len || *eos >= len)
            {
                return Err(Error::Image(format!(
                    "token row of {} ids (batch rows have {len}) pooled at {eos}",
                    ids.len()
                )));
            }
            let flat: Vec<u32> = batch
                .iter()
                .flat_map(|(ids, _)| ids.iter().copied())
                .collect();
            let ids = Tensor::from_vec(flat, (batch.len(), len), &self.device)?;
            let hidden = self.text.forward_with_mask(&ids, usize::MAX)?;
            let pooled: Vec<Tensor> = batch
                .iter()
                .enumerate()
                .map(|(b, (_, eos))| hidden.i((b, *eos)).and_then(|t| t.unsqueeze(0)))
                .collect::<candle_core::Result<_>>()?;
            let emb = self.text_projection.forward(&Tensor::cat(&pooled, 0)?)?;
            out.extend(emb.to_vec2::<f32>()?);
        }
        Ok(out)
    }
}

/// Writes a CLIP folder with random weights (`config.json`, `model.safetensors`)
/// for the given towers, for tests and demos that need a CLIP without real weights.
///
/// Each tensor keeps the mean and spread of candle's default initialiser for it,
/// but its values are drawn from `seed`, so the same arguments always write the
/// same file: a test built on these weights sees the same numbers on every run.
pub fn write_random_model(
    dir: &Path,
    text: &TextConfig,
    vision: &VisionConfig,
    projection_dim: usize,
    seed: u64,
) -> Result<()> {
    let cfg = HfClipConfig {
        text_config: Some(text.clone()),
        vision_config: Some(vision.clone()),
        projection_dim,
        architectures: vec!["CLIPModel".into()],
        ..HfClipConfig::default()
    };
    check_config(&cfg, "write_random_model")?;
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let json = serde_json::json!({
        "architectures": ["CLIPModel"],
        "model_type": "clip",
        "projection_dim": projection_dim,
        "text_config": {
            "vocab_size": text.vocab_size,
            "hidden_size": text.hidden_size,
            "intermediate_size": text.intermediate_size,
            "num_hidden_layers": text.num_hidden_layers,
            "num_attention_heads": text.num_attention_heads,
            "max_position_embeddings": text.max_position_embeddings,
            "hidden_act": text.hidden_act,
            "layer_norm_eps": text.layer_norm_eps,
        },
        "vision_config": {
            "hidden_size": vision.hidden_size,
            "intermediate_size": vision.intermediate_size,
            "num_hidden_layers": vision.num_hidden_layers,
            "num_attention_heads": vision.num_attention_heads,
            "num_channels": vision.num_channels,
            "image_size": vision.image_size,
            "patch_size": vision.patch_size,
            "hidden_act": vision.hidden_act,
            "layer_norm_eps": vision.layer_norm_eps,
        },
    });
    let path = dir.join(CONFIG_FILE);
    let text_json = serde_json::to_string_pretty(&json).map_err(|e| Error::Config {
        file: path.display().to_string(),
        reason: e.to_string(),
    })?;
    std::fs::write(&path, text_json).map_err(|source| Error::Io {
        path: path.clone(),
        source,
    })?;
    let weights = dir.join(WEIGHTS_FILE);
    let wrap = |source| Error::Weights {
        path: weights.clone(),
        source,
    };
    let varmap = candle_nn::VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    vb.pp("vision_model.embeddings")
        .get_with_hints(
            vision.hidden_size,
            "class_embedding",
            candle_nn::Init::Randn {
                mean: 0.0,
                stdev: 1.0,
            },
        )
        .map_err(wrap)?;
    build(&vb, &cfg).map_err(wrap)?;
    fill_seeded(&varmap, seed, |name, dims, shapes| {
        let weight_of_bias = name
            .strip_suffix(".bias")
            .and_then(|stem| shapes.get(&format!("{stem}.weight")));
        initial_distribution(name, dims, weight_of_bias.map(Vec::as_slice))
    })
    .map_err(wrap)?;
    varmap.save(&weights).map_err(wrap)
}

/// Mean and spread of a random tensor, close to candle's default initialisers:
/// Kaiming-normal weights, biases of the scale of `1/sqrt(fan_in)`, unit-normal
/// embeddings. Layer norms, which candle starts at weight 1 / bias 0, get a spread
/// of 0.1 so a parity check also sees their parameters used.
fn initial_distribution(
    name: &str,
    dims: &[usize],
    weight_of_bias: Option<&[usize]>,
) -> (f64, f64) {
    let fan_in = |dims: &[usize]| dims.iter().skip(1).product::<usize>().max(1) as f64;
    let is_norm = ["layer_norm", "layrnorm", "layernorm"]
        .iter()
        .any(|n| name.contains(n));
    if is_norm {
        let mean = if name.ends_with(".weight") { 1.0 } else { 0.0 };
        return (mean, 0.1);
    }
    let is_embedding = name.ends_with("class_embedding")
        || name.ends_with("token_embedding.weight")
        || name.ends_with("position_embedding.weight");
    if is_embedding {
        return (0.0, 1.0);
    }
    match (dims.len(), weight_of_bias) {
        (1, Some(weight)) => (0.0, 1.0 / (3.0 * fan_in(weight)).sqrt()),
        (1, None) => (0.0, 0.1),
        _ => (0.0, (2.0 / fan_in(dims)).sqrt()),
    }
}

/// Draws every variable of `varmap` (in name order, so the values do not depend on the
/// map's iteration order) from a normal of the `(mean, spread)` that `distribution`
/// gives for its name and shape (and every variable's shape, by name), seeded by `seed`.
pub(crate) fn fill_seeded(
    varmap: &candle_nn::VarMap,
    seed: u64,
    distribution: impl Fn(&str, &[usize], &BTreeMap<String, Vec<usize>>) -> (f64, f64),
) -> candle_core::Result<()> {
    let data = varmap
        .data()
        .lock()
        .map_err(|_| candle_core::Error::Msg("variable map poisoned".into()))?;
    let shapes: BTreeMap<String, Vec<usize>> = data
        .iter()
        .map(|(name, var)| (name.clone(), var.as_tensor().dims().to_vec()))
        .collect();
    let mut normal = SeededNormal::new(seed);
    for name in shapes.keys() {
        let var = &data[name];
        let shape = var.as_tensor().shape().clone();
        let (mean, spread) = distribution(name, shape.dims(), &shapes);
        let drawn: Vec<f32> = (0..shape.elem_count())
            .map(|_| (mean + spread * normal.next()) as f32)
            .collect();
        var.set(&Tensor::from_vec(drawn, shape, &Device::Cpu)?)?;
    }
    Ok(())
}

/// Standard normal draws from a fixed seed (splitmix64 and Box–Muller), so
/// random test weights are the same on every machine and run.
pub(crate) struct SeededNormal {
    state: u64,
    spare: Option<f64>,
}

impl SeededNormal {
    pub(crate) fn new(seed: u64) -> Self {
        Self {
            state: seed,
            spare: None,
        }
    }

    fn uniform(&mut self) -> f64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        // 53 random bits in (0, 1]: never 0, so the logarithm below is finite.
        ((z >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    pub(crate) fn next(&mut self) -> f64 {
        if let Some(v) = self.spare.take() {
            return v;
        }
        let (u1, u2) = (self.uniform(), self.uniform());
        let r = (-2.0 * u1.ln()).sqrt();
        let theta = 2.0 * std::f64::consts::PI * u2;
        self.spare = Some(r * theta.sin());
        r * theta.cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> (TextConfig, VisionConfig) {
        (
            TextConfig {
                hidden_size: 16,
                intermediate_size: 32,
                num_hidden_layers: 1,
                num_attention_heads: 2,
                ..TextConfig::default()
            },
            VisionConfig {
                hidden_size: 16,
                intermediate_size: 32,
                num_hidden_layers: 1,
                num_attention_heads: 2,
                patch_size: 32,
                ..VisionConfig::default()
            },
        )
    }

    #[test]
    fn gelu_and_odd_eps_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let (mut t, v) = tiny();
        t.hidden_act = ClipActivation::Gelu;
        let e = write_random_model(dir.path(), &t, &v, 8, 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("text_config.hidden_act \"gelu\""), "{e}");
        let (t, mut v) = tiny();
        v.layer_norm_eps = 1e-6;
        let e = write_random_model(dir.path(), &t, &v, 8, 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("vision_config.layer_norm_eps"), "{e}");
    }

    #[test]
    fn random_weights_follow_the_seed() {
        let dir = tempfile::tempdir().unwrap();
        let (t, v) = tiny();
        let write = |name: &str, seed: u64| {
            let d = dir.path().join(name);
            write_random_model(&d, &t, &v, 8, seed).unwrap();
            std::fs::read(d.join(WEIGHTS_FILE)).unwrap()
        };
        let (a, again, other) = (write("a", 7), write("b", 7), write("c", 8));
        assert_eq!(a, again, "the same seed must write the same weights");
        assert_ne!(a, other, "another seed must write other weights");
    }

    #[test]
    fn missing_folder_and_missing_tensor_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let e = Clip::load(&dir.path().join("nope"), None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a folder"), "{e}");
        let (t, v) = tiny();
        write_random_model(dir.path(), &t, &v, 8, 0).unwrap();
        // Another vision width than the weights: the misshapen tensor is named.
        let mut cfg: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path().join(CONFIG_FILE)).unwrap()).unwrap();
        cfg["vision_config"]["hidden_size"] = 24.into();
        std::fs::write(dir.path().join(CONFIG_FILE), cfg.to_string()).unwrap();
        let vocab = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../data/models/open-clip/bpe_simple_vocab_16e6.txt.gz");
        if !vocab.exists() {
            eprintln!("skipping the tensor check: {} absent", vocab.display());
            return;
        }
        let e = Clip::load(dir.path(), Some(&vocab))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("model.safetensors") && e.contains("class_embedding"),
            "{e}"
        );
    }
}
