//! A CLIP in either layout a user may bring for CLIP-space metrics: a transformers folder
//! ([`Clip`], e.g. `openai/clip-vit-base-patch32`) or an open_clip folder ([`OpenClip`],
//! e.g. the ViT-L/14 clean-fid's CLIP FID uses, or a LAION ViT-H/14).

use std::path::Path;

use candle_core::Device;
use image::DynamicImage;
use serde::Serialize;

use crate::open_clip::CONFIG_FILE as OPEN_CLIP_CONFIG_FILE;
use crate::{Clip, ClipWeights, OpenClip, OpenClipWeights, Result};

/// CLIP weights of either layout, checked and hashed.
///
/// Serialised untagged, so a transformers folder fingerprints exactly as [`ClipWeights`]
/// does.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum ClipModelWeights {
    /// A transformers folder (`config.json`, `model.safetensors`).
    Transformers(ClipWeights),
    /// An open_clip folder (`open_clip_config.json` with its weights).
    OpenClip(Box<OpenClipWeights>),
}

impl ClipModelWeights {
    /// Checks and hashes the folder `dir`: open_clip's layout when it holds
    /// `open_clip_config.json`, else transformers'. `vocab` is open_clip's BPE vocabulary.
    pub fn hashed(dir: &Path, vocab: &Path) -> Result<Self> {
        if dir.join(OPEN_CLIP_CONFIG_FILE).is_file() {
            return Ok(ClipModelWeights::OpenClip(Box::new(
                OpenClipWeights::hashed(dir, None, vocab)?,
            )));
        }
        Ok(ClipModelWeights::Transformers(ClipWeights::hashed(
            dir, vocab,
        )?))
    }

    /// What a feature cache of its image embeddings is keyed by: the weights' sha256 for a
    /// transformers folder, the whole model's identity for open_clip's.
    pub fn cache_key(&self) -> Result<String> {
        match self {
            ClipModelWeights::Transformers(w) => Ok(w.sha256.clone()),
            ClipModelWeights::OpenClip(w) => w.identity(),
        }
    }

    /// Where the weights are.
    pub fn location(&self) -> &Path {
        match self {
            ClipModelWeights::Transformers(w) => &w.dir,
            ClipModelWeights::OpenClip(w) => &w.source.weights,
        }
    }

    /// sha256 of the weights file.
    pub fn sha256(&self) -> &str {
        match self {
            ClipModelWeights::Transformers(w) => &w.sha256,
            ClipModelWeights::OpenClip(w) => &w.sha256,
        }
    }

    /// How images are preprocessed, in words.
    pub fn preprocessing(&self) -> &'static str {
        match self {
            ClipModelWeights::Transformers(_) => "as transformers' CLIPImageProcessor",
            ClipModelWeights::OpenClip(_) => "as open_clip's evaluation transform",
        }
    }

    /// Loads the model on `device`, refusing weights that changed since they were hashed.
    pub fn load_on(&self, device: &Device) -> Result<ClipModel> {
        Ok(match self {
            ClipModelWeights::Transformers(w) => ClipModel::Transformers(w.load_on(device)?),
            ClipModelWeights::OpenClip(w) => ClipModel::OpenClip(w.load_on(device)?),
        })
    }
}

/// A loaded CLIP of either layout.
#[derive(Debug)]
pub enum ClipModel {
    /// transformers' `CLIPModel`.
    Transformers(Clip),
    /// open_clip's `CLIP`.
    OpenClip(OpenClip),
}

impl ClipModel {
    /// Embedding size.
    pub fn dim(&self) -> usize {
        match self {
            ClipModel::Transformers(c) => c.dim(),
            ClipModel::OpenClip(c) => c.dim(),
        }
    }

    /// Projected, unnormalised image embeddings, one per image.
    pub fn image_embeddings(&self, images: &[DynamicImage]) -> Result<Vec<Vec<f32>>> {
        match self {
            ClipModel::Transformers(c) => c.image_embeddings(images),
            ClipModel::OpenClip(c) => c.image_embeddings(images),
        }
    }

    /// Projected, unnormalised text embeddings, one per text.
    pub fn text_embeddings(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>> {
        match self {
            ClipModel::Transformers(c) => c.text_embeddings(texts),
            ClipModel::OpenClip(c) => c.text_embeddings(texts),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_folder_decides_the_layout_and_transformers_fingerprints_are_unchanged() {
        let vocab = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../data/models/open-clip/bpe_simple_vocab_16e6.txt.gz");
        if !vocab.exists() {
            eprintln!("skipping: {} absent (make models)", vocab.display());
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let hf = tmp.path().join("hf");
        let text = crate::TextConfig {
            hidden_size: 16,
            intermediate_size: 32,
            num_hidden_layers: 1,
            num_attention_heads: 2,
            ..Default::default()
        };
        let vision = crate::VisionConfig {
            hidden_size: 16,
            intermediate_size: 32,
            num_hidden_layers: 1,
            num_attention_heads: 2,
            ..Default::default()
        };
        crate::write_random_model(&hf, &text, &vision, 6, 0).unwrap();
        let w = ClipModelWeights::hashed(&hf, &vocab).unwrap();
        let plain = ClipWeights::hashed(&hf, &vocab).unwrap();
        assert!(matches!(w, ClipModelWeights::Transformers(_)));
        assert_eq!(
            serde_json::to_value(&w).unwrap(),
            serde_json::to_value(&plain).unwrap()
        );
        assert_eq!(w.cache_key().unwrap(), plain.sha256);

        let oc = tmp.path().join("oc");
        let json = serde_json::json!({
            "embed_dim": 8,
            "vision_cfg": {"image_size": 32, "layers": 1, "width": 24, "head_width": 12, "patch_size": 16},
            "text_cfg": {"width": 16, "heads": 2, "layers": 1}
        });
        let (cfg, _) =
            crate::OpenClipConfig::from_json(&serde_json::to_vec(&json).unwrap(), "t").unwrap();
        crate::open_clip::write_random_model(&oc, &cfg, 1).unwrap();
        let w = ClipModelWeights::hashed(&oc, &vocab).unwrap();
        assert!(matches!(w, ClipModelWeights::OpenClip(_)));
        let model = w.load_on(&Device::Cpu).unwrap();
        assert_eq!(model.dim(), 8);
        let t = model.text_embeddings(&["a cat", "a dog"]).unwrap();
        assert_eq!((t.len(), t[0].len()), (2, 8));
    }
}
