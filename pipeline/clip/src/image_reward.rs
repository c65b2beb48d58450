//! ImageReward (Xu et al., 2023), the reward model of the `image-reward` package: a
//! BLIP ViT image encoder, a BERT text encoder that cross-attends to the image tokens,
//! and an MLP head on the text encoder's `[CLS]` output, normalised by the mean and
//! standard deviation of rewards the package ships.
//!
//! Weights come as a folder holding what the package loads:
//! - `ImageReward.pt`: the state dict (`blip.visual_encoder.*`, `blip.text_encoder.*`,
//!   `mlp.layers.*`), a PyTorch pickle or safetensors;
//! - `med_config.json`: the BERT configuration (hidden size, layers, heads, vocabulary);
//! - `vocab.txt`: the WordPiece vocabulary of `bert-base-uncased`, which the package's
//!   `BertTokenizer` uses (with `[DEC]` and `[ENC]` added after it).
//!
//! The ViT's shape (patch, width, depth, image size) is read from the checkpoint; its
//! heads are 64 wide, as in BLIP's base and large ViTs. Images go through the package's
//! transform: shortest side to the ViT's size with bicubic resampling, centre crop,
//! OpenAI mean and std. Captions are lower-cased WordPiece, 35 tokens, padded.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, IndexOp, Module, Tensor};
use candle_nn::{Conv2d, Conv2dConfig, Embedding, LayerNorm, Linear, VarBuilder};
use image::DynamicImage;
use serde::{Deserialize, Serialize};
use tokenizers::models::wordpiece::WordPiece;
use tokenizers::normalizers::bert::BertNormalizer;
use tokenizers::pre_tokenizers::bert::BertPreTokenizer;
use tokenizers::processors::bert::BertProcessing;
use tokenizers::{AddedToken, Model, PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use crate::config::PreprocessorConfig;
use crate::preprocess::ImageProcessor;
use crate::{BATCH, Error, Result, checkpoint, sha256_file};

/// The state dict inside an ImageReward folder.
pub const WEIGHTS_FILE: &str = "ImageReward.pt";
/// The BERT configuration inside an ImageReward folder.
pub const MED_CONFIG_FILE: &str = "med_config.json";
/// The WordPiece vocabulary inside an ImageReward folder.
pub const VOCAB_FILE: &str = "vocab.txt";
/// Tokens per caption (the package pads and truncates to this).
pub const MAX_TOKENS: usize = 35;
/// The package's normalisation of raw rewards: `(raw - MEAN) / STD`.
pub const REWARD_MEAN: f64 = 0.167_173_628_300_524_26;
/// See [`REWARD_MEAN`].
pub const REWARD_STD: f64 = 1.033_339_496_605_407_2;

const VIT_LAYER_NORM_EPS: f64 = 1e-6;
const VIT_HEAD_WIDTH: usize = 64;
/// Widths of the reward head after the text encoder's hidden size (no activations
/// between them, as the package has it).
const HEAD_WIDTHS: [usize; 5] = [1024, 128, 64, 16, 1];
/// `nn.Sequential` indices of the head's linear layers (dropouts sit between them).
const HEAD_INDICES: [usize; 5] = [0, 2, 4, 6, 7];
/// The additive mask BLIP's BERT puts on padding tokens.
const PADDING_MASK: f64 = -10_000.0;

/// The BERT configuration of `med_config.json` (the fields that shape inference;
/// others, such as dropout rates, are read and ignored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextConfig {
    /// BERT width.
    pub hidden_size: usize,
    /// BERT layers.
    pub num_hidden_layers: usize,
    /// Attention heads per layer.
    pub num_attention_heads: usize,
    /// Width of each layer's feed-forward.
    pub intermediate_size: usize,
    /// Learned positions.
    pub max_position_embeddings: usize,
    /// Rows of the word embedding (the WordPiece vocabulary plus `[DEC]` and `[ENC]`).
    pub vocab_size: usize,
    /// Feed-forward activation (`gelu`).
    #[serde(default = "default_hidden_act")]
    pub hidden_act: String,
    /// Layer-norm epsilon.
    #[serde(default = "default_text_eps")]
    pub layer_norm_eps: f64,
    /// Id of `[PAD]`.
    #[serde(default)]
    pub pad_token_id: u32,
    /// Whether each layer cross-attends to the image (it must).
    #[serde(default)]
    pub add_cross_attention: bool,
    /// Position embedding kind (`absolute`).
    #[serde(default = "default_position_embedding_type")]
    pub position_embedding_type: String,
}

fn default_hidden_act() -> String {
    "gelu".into()
}

fn default_text_eps() -> f64 {
    1e-12
}

fn default_position_embedding_type() -> String {
    "absolute".into()
}

impl TextConfig {
    /// BLIP's BERT of these sizes: GELU, absolute positions (512), cross-attention, the
    /// vocabulary size left to the caller (0 here).
    pub fn bert(
        hidden_size: usize,
        num_hidden_layers: usize,
        num_attention_heads: usize,
        intermediate_size: usize,
    ) -> Self {
        TextConfig {
            hidden_size,
            num_hidden_layers,
            num_attention_heads,
            intermediate_size,
            max_position_embeddings: 512,
            vocab_size: 0,
            hidden_act: default_hidden_act(),
            layer_norm_eps: default_text_eps(),
            pad_token_id: 0,
            add_cross_attention: true,
            position_embedding_type: default_position_embedding_type(),
        }
    }

    /// Parses `med_config.json`, refusing settings this implementation does not run.
    pub fn from_json(text: &[u8], file: &str) -> Result<Self> {
        let cfg: TextConfig = serde_json::from_slice(text).map_err(|e| Error::Config {
            file: file.to_owned(),
            reason: e.to_string(),
        })?;
        let refuse = |reason: String| {
            Err(Error::Config {
                file: file.to_owned(),
                reason,
            })
        };
        if cfg.hidden_act != "gelu" {
            return refuse(format!(
                "hidden_act {:?}: only \"gelu\" (ImageReward's) is supported",
                cfg.hidden_act
            ));
        }
        if cfg.position_embedding_type != "absolute" {
            return refuse(format!(
                "position_embedding_type {:?}: only \"absolute\" is supported",
                cfg.position_embedding_type
            ));
        }
        if !cfg.add_cross_attention {
            return refuse("add_cross_attention is false: ImageReward's text encoder cross-attends to the image".into());
        }
        if cfg.num_attention_heads == 0 || !cfg.hidden_size.is_multiple_of(cfg.num_attention_heads)
        {
            return refuse(format!(
                "hidden_size {} is not a multiple of num_attention_heads {}",
                cfg.hidden_size, cfg.num_attention_heads
            ));
        }
        if cfg.max_position_embeddings < MAX_TOKENS {
            return refuse(format!(
                "max_position_embeddings {} is under the {MAX_TOKENS} tokens of a caption",
                cfg.max_position_embeddings
            ));
        }
        Ok(cfg)
    }
}

/// The shape of the BLIP ViT, as the checkpoint's tensors give it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct VisionShape {
    /// Input side in pixels.
    pub image_size: usize,
    /// Patch side in pixels.
    pub patch_size: usize,
    /// Token width.
    pub width: usize,
    /// Transformer blocks.
    pub depth: usize,
    /// Width of each block's MLP.
    pub mlp_width: usize,
}

impl VisionShape {
    fn heads(&self) -> usize {
        self.width / VIT_HEAD_WIDTH
    }

    /// Reads the shape from the tensor index of a checkpoint, naming what is missing or
    /// inconsistent.
    fn from_shapes(shapes: &BTreeMap<String, Vec<usize>>) -> std::result::Result<Self, String> {
        let v = "blip.visual_encoder";
        let get = |name: &str| {
            shapes.get(&format!("{v}.{name}")).ok_or_else(|| {
                format!(
                    "no tensor {v}.{name}: not an ImageReward checkpoint in the package's naming"
                )
            })
        };
        let (width, patch_size) = match get("patch_embed.proj.weight")?.as_slice() {
            &[w, 3, p, q] if p == q && p > 0 => (w, p),
            other => return Err(format!("{v}.patch_embed.proj.weight has shape {other:?}")),
        };
        let positions = match get("pos_embed")?.as_slice() {
            &[1, n, w] if w == width && n > 1 => n - 1,
            other => return Err(format!("{v}.pos_embed has shape {other:?}")),
        };
        let grid = (positions as f64).sqrt().round() as usize;
        if grid * grid != positions {
            return Err(format!(
                "{v}.pos_embed holds {positions} patches, not a square grid"
            ));
        }
        if width % VIT_HEAD_WIDTH != 0 {
            return Err(format!(
                "a ViT {width} wide: BLIP's ViTs have heads {VIT_HEAD_WIDTH} wide"
            ));
        }
        let depth = (0..)
            .take_while(|i| shapes.contains_key(&format!("{v}.blocks.{i}.norm1.weight")))
            .count();
        if depth == 0 {
            return Err(format!("no {v}.blocks.0: the ViT has no blocks"));
        }
        let mlp_width = match get("blocks.0.mlp.fc1.weight")?.as_slice() {
            &[m, w] if w == width => m,
            other => return Err(format!("{v}.blocks.0.mlp.fc1.weight has shape {other:?}")),
        };
        Ok(VisionShape {
            image_size: grid * patch_size,
            patch_size,
            width,
            depth,
            mlp_width,
        })
    }

    /// The package's transform at this ViT's size (`_transform(224)` for its ViT-L/16).
    pub fn preprocessing(&self) -> PreprocessorConfig {
        PreprocessorConfig::square_crop(self.image_size as u32)
    }
}

/// An ImageReward folder, checked and hashed: the identity a step fingerprints, and
/// where it loads from later.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImageRewardWeights {
    /// sha256 of `ImageReward.pt`.
    pub sha256: String,
    /// sha256 of `vocab.txt`.
    pub vocab_sha256: String,
    /// The ViT's shape, from the checkpoint.
    pub vision: VisionShape,
    /// The BERT configuration, from `med_config.json`.
    pub text: TextConfig,
    /// The folder.
    #[serde(skip)]
    pub dir: PathBuf,
}

fn missing(path: &Path, what: &str) -> Error {
    Error::Config {
        file: path.display().to_string(),
        reason: format!("missing: an ImageReward folder holds {what}"),
    }
}

impl ImageRewardWeights {
    /// Checks the folder `dir` (its three files, the configuration, and the checkpoint's
    /// tensor index against it) and hashes the weights and vocabulary.
    pub fn hashed(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            return Err(Error::Config {
                file: dir.display().to_string(),
                reason: format!(
                    "not a folder: pass the folder holding {WEIGHTS_FILE}, {MED_CONFIG_FILE} and {VOCAB_FILE}"
                ),
            });
        }
        let weights = dir.join(WEIGHTS_FILE);
        if !weights.is_file() {
            return Err(missing(
                &weights,
                "the package's state dict (THUDM/ImageReward)",
            ));
        }
        let config_path = dir.join(MED_CONFIG_FILE);
        let config = std::fs::read(&config_path)
            .map_err(|_| missing(&config_path, "the BERT configuration (THUDM/ImageReward)"))?;
        let text = TextConfig::from_json(&config, &config_path.display().to_string())?;
        let vocab = dir.join(VOCAB_FILE);
        if !vocab.is_file() {
            return Err(missing(
                &vocab,
                "the WordPiece vocabulary of bert-base-uncased",
            ));
        }
        let bad = |reason: String| Error::Config {
            file: weights.display().to_string(),
            reason,
        };
        let shapes = checkpoint::tensor_shapes(&weights).map_err(bad)?;
        let vision = VisionShape::from_shapes(&shapes).map_err(bad)?;
        let t = "blip.text_encoder";
        let checks = [
            (
                format!("{t}.embeddings.word_embeddings.weight"),
                vec![text.vocab_size, text.hidden_size],
            ),
            (
                format!("{t}.encoder.layer.0.crossattention.self.key.weight"),
                vec![text.hidden_size, vision.width],
            ),
            (
                "mlp.layers.0.weight".to_owned(),
                vec![HEAD_WIDTHS[0], text.hidden_size],
            ),
        ];
        for (name, want) in checks {
            match shapes.get(&name) {
                Some(shape) if *shape == want => {}
                Some(shape) => {
                    return Err(bad(format!(
                        "{name} has shape {shape:?}, {MED_CONFIG_FILE} and the ViT need {want:?}"
                    )));
                }
                None => return Err(bad(format!("no tensor {name}"))),
            }
        }
        Ok(ImageRewardWeights {
            sha256: sha256_file(&weights)?,
            vocab_sha256: sha256_file(&vocab)?,
            vision,
            text,
            dir: dir.to_path_buf(),
        })
    }

    /// A digest of everything that shapes the rewards: what a cache is keyed by.
    pub fn identity(&self) -> Result<String> {
        crate::digest_of(self, &self.dir)
    }

    /// Loads the model on `device`, refusing weights that changed since [`Self::hashed`].
    pub fn load_on(&self, device: &Device) -> Result<ImageReward> {
        let model = ImageReward::load_on(self, device)?;
        if model.sha256 != self.sha256 {
            return Err(Error::Changed {
                dir: self.dir.join(WEIGHTS_FILE),
                planned: self.sha256.clone(),
                now: model.sha256,
            });
        }
        Ok(model)
    }
}

/// timm's `Attention` (fused `qkv`) as BLIP's ViT uses it.
struct VitAttention {
    qkv: Linear,
    proj: Linear,
    heads: usize,
}

impl VitAttention {
    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let out = crate::fused_attention(&self.qkv.forward(x)?, self.heads, None)?;
        self.proj.forward(&out)
    }
}

struct VitBlock {
    norm1: LayerNorm,
    attn: VitAttention,
    norm2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
}

impl VitBlock {
    fn new(vb: VarBuilder, shape: &VisionShape) -> candle_core::Result<Self> {
        let w = shape.width;
        Ok(VitBlock {
            norm1: candle_nn::layer_norm(w, VIT_LAYER_NORM_EPS, vb.pp("norm1"))?,
            attn: VitAttention {
                qkv: candle_nn::linear(w, 3 * w, vb.pp("attn.qkv"))?,
                proj: candle_nn::linear(w, w, vb.pp("attn.proj"))?,
                heads: shape.heads(),
            },
            norm2: candle_nn::layer_norm(w, VIT_LAYER_NORM_EPS, vb.pp("norm2"))?,
            fc1: candle_nn::linear(w, shape.mlp_width, vb.pp("mlp.fc1"))?,
            fc2: candle_nn::linear(shape.mlp_width, w, vb.pp("mlp.fc2"))?,
        })
    }

    fn forward(&self, x: &Tensor) -> candle_core::Result<Tensor> {
        let x = (x + self.attn.forward(&self.norm1.forward(x)?)?)?;
        let h = self.fc1.forward(&self.norm2.forward(&x)?)?.gelu_erf()?;
        x + self.fc2.forward(&h)?
    }
}

/// BLIP's `VisionTransformer`: every token's final state (the text encoder attends
/// to all of them).
struct VisionEncoder {
    patch_embed: Conv2d,
    cls_token: Tensor,
    pos_embed: Tensor,
    blocks: Vec<VitBlock>,
    norm: LayerNorm,
}

impl VisionEncoder {
    fn new(vb: VarBuilder, shape: &VisionShape) -> candle_core::Result<Self> {
        let w = shape.width;
        let grid = shape.image_size / shape.patch_size;
        let conv = Conv2dConfig {
            stride: shape.patch_size,
            ..Default::default()
        };
        Ok(VisionEncoder {
            patch_embed: candle_nn::conv2d(
                3,
                w,
                shape.patch_size,
                conv,
                vb.pp("patch_embed.proj"),
            )?,
            cls_token: vb.get((1, 1, w), "cls_token")?,
            pos_embed: vb.get((1, grid * grid + 1, w), "pos_embed")?,
            blocks: (0..shape.depth)
                .map(|i| VitBlock::new(vb.pp(format!("blocks.{i}")), shape))
                .collect::<candle_core::Result<_>>()?,
            norm: candle_nn::layer_norm(w, VIT_LAYER_NORM_EPS, vb.pp("norm"))?,
        })
    }

    fn forward(&self, pixels: &Tensor) -> candle_core::Result<Tensor> {
        let patches = self
            .patch_embed
            .forward(pixels)?
            .flatten_from(2)?
            .transpose(1, 2)?;
        let b = patches.dim(0)?;
        let cls = self.cls_token.repeat((b, 1, 1))?;
        let mut x = Tensor::cat(&[&cls, &patches], 1)?.broadcast_add(&self.pos_embed)?;
        for block in &self.blocks {
            x = block.forward(&x)?;
        }
        self.norm.forward(&x)
    }
}

/// BERT attention (self or cross) with its output projection and post-norm.
struct BertAttention {
    query: Linear,
    key: Linear,
    value: Linear,
    dense: Linear,
    norm: LayerNorm,
    heads: usize,
}

impl BertAttention {
    fn new(vb: VarBuilder, cfg: &TextConfig, kv_width: usize) -> candle_core::Result<Self> {
        let h = cfg.hidden_size;
        Ok(BertAttention {
            query: candle_nn::linear(h, h, vb.pp("self.query"))?,
            key: candle_nn::linear(kv_width, h, vb.pp("self.key"))?,
            value: candle_nn::linear(kv_width, h, vb.pp("self.value"))?,
            dense: candle_nn::linear(h, h, vb.pp("output.dense"))?,
            norm: candle_nn::layer_norm(h, cfg.layer_norm_eps, vb.pp("output.LayerNorm"))?,
            heads: cfg.num_attention_heads,
        })
    }

    /// `x` attends to `context` (itself for self-attention); `mask` is added to the
    /// scores (padding of `context`), broadcast over heads and queries.
    fn forward(
        &self,
        x: &Tensor,
        context: &Tensor,
        mask: Option<&Tensor>,
    ) -> candle_core::Result<Tensor> {
        let (b, n, width) = x.dims3()?;
        let m = context.dim(1)?;
        let head = width / self.heads;
        let split = |t: Tensor, len: usize| {
            t.reshape((b, len, self.heads, head))?
                .transpose(1, 2)?
                .contiguous()
        };
        let q = split(self.query.forward(x)?, n)?;
        let k = split(self.key.forward(context)?, m)?;
        let v = split(self.value.forward(context)?, m)?;
        let mut scores = (q.matmul(&k.t()?)? / (head as f64).sqrt())?;
        if let Some(mask) = mask {
            scores = scores.broadcast_add(mask)?;
        }
        let weights = candle_nn::ops::softmax_last_dim(&scores)?;
        let out = weights
            .matmul(&v)?
            .transpose(1, 2)?
            .reshape((b, n, width))?;
        self.norm.forward(&(self.dense.forward(&out)? + x)?)
    }
}

struct BertLayer {
    attention: BertAttention,
    crossattention: BertAttention,
    intermediate: Linear,
    output: Linear,
    norm: LayerNorm,
}

impl BertLayer {
    fn new(vb: VarBuilder, cfg: &TextConfig, vision_width: usize) -> candle_core::Result<Self> {
        let h = cfg.hidden_size;
        Ok(BertLayer {
            attention: BertAttention::new(vb.pp("attention"), cfg, h)?,
            crossattention: BertAttention::new(vb.pp("crossattention"), cfg, vision_width)?,
            intermediate: candle_nn::linear(h, cfg.intermediate_size, vb.pp("intermediate.dense"))?,
            output: candle_nn::linear(cfg.intermediate_size, h, vb.pp("output.dense"))?,
            norm: candle_nn::layer_norm(h, cfg.layer_norm_eps, vb.pp("output.LayerNorm"))?,
        })
    }

    fn forward(&self, x: &Tensor, mask: &Tensor, image: &Tensor) -> candle_core::Result<Tensor> {
        let x = self.attention.forward(x, x, Some(mask))?;
        // Every image token is attended to: the package's image mask is all ones.
        let x = self.crossattention.forward(&x, image, None)?;
        let h = self.intermediate.forward(&x)?.gelu_erf()?;
        self.norm.forward(&(self.output.forward(&h)? + x)?)
    }
}

/// BLIP's `BertModel` in its multimodal mode, without the pooler.
struct TextEncoder {
    word_embeddings: Embedding,
    position_embeddings: Tensor,
    norm: LayerNorm,
    layers: Vec<BertLayer>,
}

impl TextEncoder {
    fn new(vb: VarBuilder, cfg: &TextConfig, vision_width: usize) -> candle_core::Result<Self> {
        let h = cfg.hidden_size;
        let e = vb.pp("embeddings");
        Ok(TextEncoder {
            word_embeddings: candle_nn::embedding(cfg.vocab_size, h, e.pp("word_embeddings"))?,
            position_embeddings: e.get(
                (cfg.max_position_embeddings, h),
                "position_embeddings.weight",
            )?,
            norm: candle_nn::layer_norm(h, cfg.layer_norm_eps, e.pp("LayerNorm"))?,
            layers: (0..cfg.num_hidden_layers)
                .map(|i| BertLayer::new(vb.pp(format!("encoder.layer.{i}")), cfg, vision_width))
                .collect::<candle_core::Result<_>>()?,
        })
    }

    /// The `[CLS]` output of each caption (`ids`, `attention`: (B, T)) given the image
    /// tokens (B, N, W).
    fn cls(&self, ids: &Tensor, attention: &Tensor, image: &Tensor) -> candle_core::Result<Tensor> {
        let n = ids.dim(1)?;
        let positions = self.position_embeddings.narrow(0, 0, n)?;
        let mut x = self
            .word_embeddings
            .forward(ids)?
            .broadcast_add(&positions)?;
        x = self.norm.forward(&x)?;
        let (b, t) = attention.dims2()?;
        let mask = ((attention.ones_like()? - attention)? * PADDING_MASK)?.reshape((b, 1, 1, t))?;
        for layer in &self.layers {
            x = layer.forward(&x, &mask, image)?;
        }
        x.i((.., 0))
    }
}

/// A loaded, frozen ImageReward.
pub struct ImageReward {
    vision: VisionEncoder,
    text: TextEncoder,
    head: Vec<Linear>,
    tokenizer: Tokenizer,
    processor: ImageProcessor,
    device: Device,
    sha256: String,
}

impl std::fmt::Debug for ImageReward {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImageReward")
            .field("sha256", &self.sha256)
            .finish_non_exhaustive()
    }
}

/// The package's tokenizer: `BertTokenizer` of `vocab` (lower-cased, accents
/// stripped), `[CLS] … [SEP]`, truncated and padded to [`MAX_TOKENS`], with `[DEC]`
/// and `[ENC]` added after the vocabulary.
fn bert_tokenizer(vocab: &Path) -> Result<Tokenizer> {
    let bad = |reason: String| Error::Config {
        file: vocab.display().to_string(),
        reason,
    };
    let path = vocab
        .to_str()
        .ok_or_else(|| bad("the path is not UTF-8".into()))?;
    let wordpiece = WordPiece::from_file(path)
        .unk_token("[UNK]".into())
        .build()
        .map_err(|e| bad(format!("reading the WordPiece vocabulary: {e}")))?;
    let id = |token: &str| {
        wordpiece
            .token_to_id(token)
            .ok_or_else(|| bad(format!("the vocabulary has no {token}")))
    };
    let (cls, sep, pad) = (id("[CLS]")?, id("[SEP]")?, id("[PAD]")?);
    id("[UNK]")?;
    let mut tokenizer = Tokenizer::new(wordpiece);
    tokenizer
        .with_normalizer(Some(BertNormalizer::new(true, true, None, true)))
        .map_err(|e| bad(e.to_string()))?;
    tokenizer.with_pre_tokenizer(Some(BertPreTokenizer));
    tokenizer.with_post_processor(Some(BertProcessing::new(
        ("[SEP]".into(), sep),
        ("[CLS]".into(), cls),
    )));
    tokenizer
        .with_truncation(Some(TruncationParams {
            max_length: MAX_TOKENS,
            ..Default::default()
        }))
        .map_err(|e| bad(e.to_string()))?;
    tokenizer.with_padding(Some(PaddingParams {
        strategy: PaddingStrategy::Fixed(MAX_TOKENS),
        pad_id: pad,
        pad_token: "[PAD]".into(),
        ..Default::default()
    }));
    tokenizer
        .add_special_tokens([
            AddedToken::from("[DEC]", true),
            AddedToken::from("[ENC]", true),
        ])
        .map_err(|e| bad(e.to_string()))?;
    Ok(tokenizer)
}

impl ImageReward {
    fn load_on(weights: &ImageRewardWeights, device: &Device) -> Result<Self> {
        let path = weights.dir.join(WEIGHTS_FILE);
        let processor =
            ImageProcessor::new(&weights.vision.preprocessing(), &path.display().to_string())?;
        let tokenizer = bert_tokenizer(&weights.dir.join(VOCAB_FILE))?;
        let sha256 = sha256_file(&path)?;
        let wrap = |e: candle_core::Error| Error::Weights {
            path: path.clone(),
            source: e,
        };
        let vb = checkpoint::var_builder(&path, device).map_err(wrap)?;
        let blip = vb.pp("blip");
        let mut head = Vec::with_capacity(HEAD_WIDTHS.len());
        let mut width = weights.text.hidden_size;
        for (out, index) in HEAD_WIDTHS.into_iter().zip(HEAD_INDICES) {
            head.push(
                candle_nn::linear(width, out, vb.pp(format!("mlp.layers.{index}")))
                    .map_err(wrap)?,
            );
            width = out;
        }
        Ok(ImageReward {
            vision: VisionEncoder::new(blip.pp("visual_encoder"), &weights.vision).map_err(wrap)?,
            text: TextEncoder::new(blip.pp("text_encoder"), &weights.text, weights.vision.width)
                .map_err(wrap)?,
            head,
            tokenizer,
            processor,
            device: device.clone(),
            sha256,
        })
    }

    /// The image preprocessing in use.
    pub fn processor(&self) -> &ImageProcessor {
        &self.processor
    }

    /// Token ids and attention mask of a caption, as the package's tokenizer gives them.
    pub fn tokenize(&self, caption: &str) -> Result<(Vec<u32>, Vec<u32>)> {
        let encoding = self
            .tokenizer
            .encode(caption, true)
            .map_err(|e| Error::Image(format!("tokenizing {caption:?}: {e}")))?;
        Ok((
            encoding.get_ids().to_vec(),
            encoding.get_attention_mask().to_vec(),
        ))
    }

    /// The normalised reward of each image for its caption (`images[i]` with
    /// `captions[i]`), as `ImageReward.score(caption, image)` returns it.
    pub fn scores(&self, images: &[DynamicImage], captions: &[&str]) -> Result<Vec<f64>> {
        if images.len() != captions.len() {
            return Err(Error::Image(format!(
                "{} images for {} captions",
                images.len(),
                captions.len()
            )));
        }
        let mut out = Vec::with_capacity(images.len());
        for (images, captions) in images.chunks(BATCH).zip(captions.chunks(BATCH)) {
            let mut pixels = Vec::new();
            let mut hw = (0, 0);
            for img in images {
                let (v, size) = self.processor.process(img)?;
                hw = size;
                pixels.extend(v);
            }
            let pixels = Tensor::from_vec(pixels, (images.len(), 3, hw.0, hw.1), &self.device)?;
            let (mut ids, mut attention) = (Vec::new(), Vec::new());
            for caption in captions {
                let (i, a) = self.tokenize(caption)?;
                ids.extend(i);
                attention.extend(a.into_iter().map(|x| x as f32));
            }
            let b = captions.len();
            let ids = Tensor::from_vec(ids, (b, MAX_TOKENS), &self.device)?;
            let attention = Tensor::from_vec(attention, (b, MAX_TOKENS), &self.device)?;
            let image = self.vision.forward(&pixels)?;
            let mut x = self.text.cls(&ids, &attention, &image)?;
            for layer in &self.head {
                x = layer.forward(&x)?;
            }
            let raw = x.flatten_all()?.to_dtype(DType::F64)?.to_vec1::<f64>()?;
            out.extend(raw.into_iter().map(|r| (r - REWARD_MEAN) / REWARD_STD));
        }
        Ok(out)
    }
}

/// Writes an ImageReward folder with random weights drawn from `seed` (the state dict
/// as safetensors under the package's file name, `med_config.json`, and a `vocab.txt`
/// of the WordPiece specials, `words` and single letters and digits with their `##`
/// forms), for tests and demos that need an ImageReward without real weights. The
/// same arguments always write the same files.
pub fn write_random_model(
    dir: &Path,
    vision: &VisionShape,
    text: &TextConfig,
    words: &[&str],
    seed: u64,
) -> Result<()> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| Error::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let mut vocab: Vec<String> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        .iter()
        .chain(words)
        .map(|w| (*w).to_owned())
        .collect();
    let pieces = "abcdefghijklmnopqrstuvwxyz0123456789";
    vocab.extend(pieces.chars().map(String::from));
    vocab.extend(".,'\"-:;!?()".chars().map(String::from));
    vocab.extend(pieces.chars().map(|c| format!("##{c}")));
    let text = TextConfig {
        vocab_size: vocab.len() + 2,
        ..text.clone()
    };
    let path = dir.join(VOCAB_FILE);
    std::fs::write(&path, vocab.join("\n") + "\n").map_err(io(&path))?;
    let path = dir.join(MED_CONFIG_FILE);
    let mut config = serde_json::to_value(&text).map_err(|e| Error::Config {
        file: path.display().to_string(),
        reason: e.to_string(),
    })?;
    config["encoder_width"] = vision.width.into();
    std::fs::write(&path, config.to_string()).map_err(io(&path))?;

    let weights = dir.join(WEIGHTS_FILE);
    let wrap = |source| Error::Weights {
        path: weights.clone(),
        source,
    };
    let varmap = candle_nn::VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, DType::F32, &Device::Cpu);
    VisionEncoder::new(vb.pp("blip.visual_encoder"), vision).map_err(wrap)?;
    TextEncoder::new(vb.pp("blip.text_encoder"), &text, vision.width).map_err(wrap)?;
    let mut width = text.hidden_size;
    for (out, index) in HEAD_WIDTHS.into_iter().zip(HEAD_INDICES) {
        candle_nn::linear(width, out, vb.pp(format!("mlp.layers.{index}"))).map_err(wrap)?;
        width = out;
    }
    crate::fill_seeded(&varmap, seed, |name, dims, _| {
        if name.contains("LayerNorm") || name.contains(".norm") {
            (if name.ends_with(".weight") { 1.0 } else { 0.0 }, 0.1)
        } else if dims.len() == 1 {
            (0.0, 0.05)
        } else {
            let fan_in = dims.iter().skip(1).product::<usize>().max(1);
            (0.0, (1.0 / fan_in as f64).sqrt())
        }
    })
    .map_err(wrap)?;
    varmap.save(&weights).map_err(wrap)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_text() -> TextConfig {
        TextConfig::bert(32, 1, 2, 64)
    }

    const TINY_VIT: VisionShape = VisionShape {
        image_size: 32,
        patch_size: 16,
        width: 64,
        depth: 1,
        mlp_width: 128,
    };

    #[test]
    fn random_models_load_score_and_follow_the_seed() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        write_random_model(&a, &TINY_VIT, &tiny_text(), &["the", "cat"], 3).unwrap();
        write_random_model(&b, &TINY_VIT, &tiny_text(), &["the", "cat"], 3).unwrap();
        let read = |d: &Path| std::fs::read(d.join(WEIGHTS_FILE)).unwrap();
        assert_eq!(read(&a), read(&b));
        let weights = ImageRewardWeights::hashed(&a).unwrap();
        assert_eq!(weights.vision, TINY_VIT);
        let model = weights.load_on(&Device::Cpu).unwrap();
        let (ids, mask) = model.tokenize("The Dogs!").unwrap();
        assert_eq!(ids.len(), MAX_TOKENS);
        // [CLS] the d ##o ##g ##s ! [SEP], then padding.
        assert_eq!(mask.iter().sum::<u32>(), 8, "{ids:?}");
        assert_eq!(ids[8..], [0; MAX_TOKENS - 8]);
        let image = |v: u8| {
            DynamicImage::ImageRgb8(image::RgbImage::from_pixel(
                40,
                50,
                image::Rgb([v, 90, 200 - v]),
            ))
        };
        let scores = model
            .scores(
                &[image(10), image(10), image(200)],
                &["the cat", "a dog", "the cat"],
            )
            .unwrap();
        assert!(scores.iter().all(|s| s.is_finite()), "{scores:?}");
        assert!(
            (scores[0] - scores[1]).abs() > 1e-6,
            "the caption counts: {scores:?}"
        );
        assert!(
            (scores[0] - scores[2]).abs() > 1e-6,
            "the image counts: {scores:?}"
        );
        // Batched and one at a time agree.
        let one = model.scores(&[image(200)], &["the cat"]).unwrap();
        assert!((one[0] - scores[2]).abs() < 1e-5);
        assert!(model.scores(&[image(1)], &[]).is_err());
    }

    #[test]
    fn missing_files_and_foreign_checkpoints_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ir");
        let e = ImageRewardWeights::hashed(&dir).unwrap_err().to_string();
        assert!(e.contains("not a folder"), "{e}");
        write_random_model(&dir, &TINY_VIT, &tiny_text(), &[], 1).unwrap();
        std::fs::remove_file(dir.join(VOCAB_FILE)).unwrap();
        let e = ImageRewardWeights::hashed(&dir).unwrap_err().to_string();
        assert!(
            e.contains("vocab.txt") && e.contains("bert-base-uncased"),
            "{e}"
        );
        std::fs::write(dir.join(VOCAB_FILE), "[PAD]\n").unwrap();
        // A configuration that disagrees with the checkpoint is refused before loading.
        let config = dir.join(MED_CONFIG_FILE);
        let mut cfg: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&config).unwrap()).unwrap();
        cfg["hidden_size"] = 48.into();
        std::fs::write(&config, cfg.to_string()).unwrap();
        let e = ImageRewardWeights::hashed(&dir).unwrap_err().to_string();
        assert!(e.contains("word_embeddings.weight has shape"), "{e}");
        cfg["hidden_act"] = "relu".into();
        std::fs::write(&config, cfg.to_string()).unwrap();
        let e = ImageRewardWeights::hashed(&dir).unwrap_err().to_string();
        assert!(e.contains("hidden_act \"relu\""), "{e}");
        cfg["hidden_act"] = "gelu".into();
        std::fs::write(&config, cfg.to_string()).unwrap();
        // Not a checkpoint at all.
        std::fs::write(dir.join(WEIGHTS_FILE), b"not a checkpoint").unwrap();
        let e = ImageRewardWeights::hashed(&dir).unwrap_err().to_string();
        assert!(e.contains("ImageReward.pt"), "{e}");
    }

    #[test]
    fn a_vocabulary_without_the_specials_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let vocab = tmp.path().join(VOCAB_FILE);
        std::fs::write(&vocab, "[PAD]\n[UNK]\nthe\n").unwrap();
        let e = bert_tokenizer(&vocab).unwrap_err().to_string();
        assert!(e.contains("[CLS]"), "{e}");
    }
}
