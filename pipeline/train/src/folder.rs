//! Writing a model as a diffusers folder (`unet/`, `vae/`, `text_encoder/`, `tokenizer/`,
//! `scheduler/`, `model_index.json`) that both `anchor_sd::StableDiffusion` and diffusers'
//! `StableDiffusionPipeline.from_pretrained` load.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use anchor_sd::{BlockKind, ClipTextConfig, UNetConfig, VaeConfig};
use candle_core::Tensor;
use serde_json::json;

use crate::error::{Error, IoAt, Result};

fn write_json(path: &Path, value: &serde_json::Value) -> Result<()> {
    let text = serde_json::to_string_pretty(value).map_err(|e| Error::Input {
        what: path.display().to_string(),
        reason: e.to_string(),
    })?;
    crate::st::write_bytes(path, format!("{text}\n").as_bytes())
}

fn pt_meta() -> BTreeMap<String, String> {
    BTreeMap::from([("format".to_string(), "pt".to_string())])
}

/// diffusers' `unet/config.json` for `cfg` at latent size `sample_size`.
pub fn unet_config_json(cfg: &UNetConfig, sample_size: usize) -> serde_json::Value {
    let down: Vec<&str> = cfg
        .down_blocks
        .iter()
        .map(|k| match k {
            BlockKind::CrossAttn => "CrossAttnDownBlock2D",
            BlockKind::Plain => "DownBlock2D",
        })
        .collect();
    let up: Vec<&str> = cfg
        .up_blocks
        .iter()
        .map(|k| match k {
            BlockKind::CrossAttn => "CrossAttnUpBlock2D",
            BlockKind::Plain => "UpBlock2D",
        })
        .collect();
    json!({
        "_class_name": "UNet2DConditionModel",
        "_diffusers_version": "0.30.0",
        "act_fn": "silu",
        "attention_head_dim": cfg.attention_heads,
        "block_out_channels": cfg.block_out_channels,
        "center_input_sample": false,
        "cross_attention_dim": cfg.cross_attention_dim,
        "down_block_types": down,
        "downsample_padding": 1,
        "flip_sin_to_cos": cfg.flip_sin_to_cos,
        "freq_shift": cfg.freq_shift,
        "in_channels": cfg.in_channels,
        "layers_per_block": cfg.layers_per_block,
        "mid_block_scale_factor": 1,
        "norm_eps": cfg.norm_eps,
        "norm_num_groups": cfg.norm_num_groups,
        "out_channels": cfg.out_channels,
        "sample_size": sample_size,
        "transformer_layers_per_block": cfg.transformer_layers_per_block,
        "up_block_types": up,
        "use_linear_projection": cfg.use_linear_projection,
    })
}

/// diffusers' `vae/config.json`.
pub fn vae_config_json(cfg: &VaeConfig, sample_size: usize) -> serde_json::Value {
    let n = cfg.block_out_channels.len();
    json!({
        "_class_name": "AutoencoderKL",
        "_diffusers_version": "0.30.0",
        "act_fn": "silu",
        "block_out_channels": cfg.block_out_channels,
        "down_block_types": vec!["DownEncoderBlock2D"; n],
        "in_channels": cfg.in_channels,
        "latent_channels": cfg.latent_channels,
        "layers_per_block": cfg.layers_per_block,
        "norm_num_groups": cfg.norm_num_groups,
        "out_channels": cfg.out_channels,
        "sample_size": sample_size,
        "scaling_factor": cfg.scaling_factor,
        "up_block_types": vec!["UpDecoderBlock2D"; n],
    })
}

/// transformers' `text_encoder/config.json`: the tower's settings and the `CLIPTextModel`
/// fields transformers writes beside them.
pub fn clip_config_json(cfg: &ClipTextConfig) -> serde_json::Result<serde_json::Value> {
    let mut doc = serde_json::to_value(cfg)?;
    if let (Some(doc), serde_json::Value::Object(model)) = (
        doc.as_object_mut(),
        json!({
            "architectures": ["CLIPTextModel"],
            "model_type": "clip_text_model",
            "bos_token_id": 49406,
            "eos_token_id": 49407,
            "pad_token_id": 1,
            "initializer_factor": 1.0,
            "initializer_range": 0.02,
            "projection_dim": cfg.hidden_size,
            "torch_dtype": "float32",
        }),
    ) {
        doc.extend(model);
    }
    Ok(doc)
}

/// Writes `unet/` (config + weights named as diffusers names them).
pub fn write_unet(
    dir: &Path,
    cfg: &UNetConfig,
    sample_size: usize,
    w: &[(String, Tensor)],
) -> Result<()> {
    write_json(
        &dir.join("config.json"),
        &unet_config_json(cfg, sample_size),
    )?;
    crate::st::write(
        &dir.join("diffusion_pytorch_model.safetensors"),
        w,
        &pt_meta(),
    )
}

/// Writes `vae/`.
pub fn write_vae(
    dir: &Path,
    cfg: &VaeConfig,
    sample_size: usize,
    w: &[(String, Tensor)],
) -> Result<()> {
    write_json(&dir.join("config.json"), &vae_config_json(cfg, sample_size))?;
    crate::st::write(
        &dir.join("diffusion_pytorch_model.safetensors"),
        w,
        &pt_meta(),
    )
}

/// Writes `text_encoder/`.
pub fn write_text_encoder(dir: &Path, cfg: &ClipTextConfig, w: &[(String, Tensor)]) -> Result<()> {
    let path = dir.join("config.json");
    let doc = clip_config_json(cfg).map_err(|e| Error::Input {
        what: path.display().to_string(),
        reason: e.to_string(),
    })?;
    write_json(&path, &doc)?;
    crate::st::write(&dir.join("model.safetensors"), w, &pt_meta())
}

/// Writes a transformers `CLIPTokenizer` folder (`vocab.json`, `merges.txt`,
/// `special_tokens_map.json`, `tokenizer_config.json`) built from open_clip's
/// `bpe_simple_vocab_16e6.txt.gz`, the same vocabulary SD 1.x ships.
pub fn write_tokenizer(dir: &Path, bpe_gz: &Path) -> Result<()> {
    let file = std::fs::File::open(bpe_gz).at(bpe_gz)?;
    let mut text = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut text)
        .at(bpe_gz)?;
    // CLIP uses merges 1..=48894 of the file (line 0 is a version header).
    let merges: Vec<&str> = text.lines().skip(1).take(48_894).collect();
    if merges.len() != 48_894 {
        return Err(Error::Input {
            what: bpe_gz.display().to_string(),
            reason: format!("{} merges, expected 48894", merges.len()),
        });
    }
    let mut vocab: Vec<String> = anchor_clip_tokenizer::byte_chars_in_vocab_order()
        .iter()
        .map(|c| c.to_string())
        .collect();
    let words: Vec<String> = vocab.iter().map(|v| format!("{v}</w>")).collect();
    vocab.extend(words);
    for m in &merges {
        vocab.push(m.replace(' ', ""));
    }
    vocab.push("<|startoftext|>".into());
    vocab.push("<|endoftext|>".into());
    let mut map = serde_json::Map::new();
    for (i, v) in vocab.iter().enumerate() {
        map.insert(v.clone(), json!(i));
    }
    write_json(&dir.join("vocab.json"), &serde_json::Value::Object(map))?;
    let mut merges_txt = String::from("#version: 0.2\n");
    for m in &merges {
        merges_txt.push_str(m);
        merges_txt.push('\n');
    }
    crate::st::write_bytes(&dir.join("merges.txt"), merges_txt.as_bytes())?;
    write_json(
        &dir.join("special_tokens_map.json"),
        &json!({
            "bos_token": "<|startoftext|>",
            "eos_token": "<|endoftext|>",
            "pad_token": "<|endoftext|>",
            "unk_token": "<|endoftext|>",
        }),
    )?;
    write_json(
        &dir.join("tokenizer_config.json"),
        &json!({
            "tokenizer_class": "CLIPTokenizer",
            "model_max_length": 77,
            "do_lower_case": true,
            "bos_token": "<|startoftext|>",
            "eos_token": "<|endoftext|>",
            "pad_token": "<|endoftext|>",
            "unk_token": "<|endoftext|>",
        }),
    )
}

/// Writes `scheduler/scheduler_config.json` (SD's DDPM training schedule) and
/// `model_index.json`.
pub fn write_pipeline_files(root: &Path) -> Result<()> {
    write_json(
        &root.join("scheduler").join("scheduler_config.json"),
        &json!({
            "_class_name": "DDPMScheduler",
            "_diffusers_version": "0.30.0",
            "beta_end": 0.012,
            "beta_schedule": "scaled_linear",
            "beta_start": 0.00085,
            "clip_sample": false,
            "num_train_timesteps": 1000,
            "prediction_type": "epsilon",
            "set_alpha_to_one": false,
            "steps_offset": 1,
        }),
    )?;
    write_json(
        &root.join("model_index.json"),
        &json!({
            "_class_name": "StableDiffusionPipeline",
            "_diffusers_version": "0.30.0",
            "feature_extractor": [null, null],
            "requires_safety_checker": false,
            "safety_checker": [null, null],
            "scheduler": ["diffusers", "DDPMScheduler"],
            "text_encoder": ["transformers", "CLIPTextModel"],
            "tokenizer": ["transformers", "CLIPTokenizer"],
            "unet": ["diffusers", "UNet2DConditionModel"],
            "vae": ["diffusers", "AutoencoderKL"],
        }),
    )
}

/// SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    anchor_digest::sha256_file(path).at(path)
}

/// The identity of a base model folder: SHA-256 over the hashes of its UNet, VAE and text
/// encoder weight files.
pub fn base_id(base: &Path) -> Result<String> {
    use sha2::Digest;
    let mut h = sha2::Sha256::new();
    for rel in [
        "unet/diffusion_pytorch_model.safetensors",
        "vae/diffusion_pytorch_model.safetensors",
        "text_encoder/model.safetensors",
    ] {
        let p = base.join(rel);
        h.update(rel.as_bytes());
        h.update(sha256_file(&p)?.as_bytes());
    }
    Ok(hex::encode(h.finalize()))
}
