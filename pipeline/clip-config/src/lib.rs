//! The transformers configuration files of CLIP, declared once for every model that reads
//! them: `config.json` of a `CLIPModel` (both towers), of a `CLIPTextModel` (Stable
//! Diffusion's `text_encoder/`), and `preprocessor_config.json`.
//!
//! Fields absent from the file take transformers' class defaults (`CLIPTextConfig`,
//! `CLIPVisionConfig`, `CLIPConfig`, `CLIPImageProcessor`), since `save_pretrained`
//! leaves out values equal to them.

use serde::{Deserialize, Serialize};

/// The MLP activation of a tower (`hidden_act`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClipActivation {
    /// `x * sigmoid(1.702 x)` (OpenAI CLIP, SD 1.x).
    QuickGelu,
    /// Exact erf GELU (OpenCLIP ViT-H, SD 2.x).
    Gelu,
}

impl ClipActivation {
    /// The name transformers writes in `hidden_act`.
    pub fn as_str(self) -> &'static str {
        match self {
            ClipActivation::QuickGelu => "quick_gelu",
            ClipActivation::Gelu => "gelu",
        }
    }
}

/// A text tower: `text_config` of a `CLIPModel`'s `config.json`, or the whole `config.json`
/// of a `CLIPTextModel` (transformers' `CLIPTextConfig`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TextConfig {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Width of the transformer.
    pub hidden_size: usize,
    /// Width of the MLP.
    pub intermediate_size: usize,
    /// Transformer layers.
    pub num_hidden_layers: usize,
    /// Attention heads.
    pub num_attention_heads: usize,
    /// Positions (77 for every released CLIP).
    pub max_position_embeddings: usize,
    /// MLP activation.
    pub hidden_act: ClipActivation,
    /// Layer-norm epsilon.
    pub layer_norm_eps: f64,
}

impl Default for TextConfig {
    fn default() -> Self {
        TextConfig {
            vocab_size: 49408,
            hidden_size: 512,
            intermediate_size: 2048,
            num_hidden_layers: 12,
            num_attention_heads: 8,
            max_position_embeddings: 77,
            hidden_act: ClipActivation::QuickGelu,
            layer_norm_eps: 1e-5,
        }
    }
}

impl TextConfig {
    /// OpenAI CLIP ViT-L/14's text tower (Stable Diffusion 1.x).
    pub fn sd15() -> Self {
        TextConfig {
            vocab_size: 49408,
            hidden_size: 768,
            intermediate_size: 3072,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            max_position_embeddings: 77,
            hidden_act: ClipActivation::QuickGelu,
            layer_norm_eps: 1e-5,
        }
    }

    /// OpenCLIP ViT-H/14's text tower as shipped with Stable Diffusion 2.x (23 of 24 layers
    /// kept).
    pub fn sd21() -> Self {
        TextConfig {
            hidden_size: 1024,
            intermediate_size: 4096,
            num_hidden_layers: 23,
            num_attention_heads: 16,
            hidden_act: ClipActivation::Gelu,
            ..Self::sd15()
        }
    }

    /// A tiny text tower for tests: width 32, two layers, a 1,000-token vocabulary.
    pub fn tiny() -> Self {
        TextConfig {
            vocab_size: 1000,
            hidden_size: 32,
            intermediate_size: 37,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            max_position_embeddings: 77,
            hidden_act: ClipActivation::QuickGelu,
            layer_norm_eps: 1e-5,
        }
    }

    /// Why the tower cannot be built, if it cannot: its width must split into its heads.
    pub fn check(&self) -> Result<(), String> {
        if self.num_attention_heads == 0
            || !self.hidden_size.is_multiple_of(self.num_attention_heads)
        {
            return Err(format!(
                "hidden_size {} does not split into {} heads",
                self.hidden_size, self.num_attention_heads
            ));
        }
        Ok(())
    }
}

/// `vision_config` of `config.json`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct VisionConfig {
    /// Width of the transformer.
    pub hidden_size: usize,
    /// Width of the MLP.
    pub intermediate_size: usize,
    /// Transformer layers.
    pub num_hidden_layers: usize,
    /// Attention heads.
    pub num_attention_heads: usize,
    /// Input channels.
    pub num_channels: usize,
    /// Input side in pixels.
    pub image_size: usize,
    /// Patch side in pixels.
    pub patch_size: usize,
    /// MLP activation.
    pub hidden_act: ClipActivation,
    /// Layer-norm epsilon.
    pub layer_norm_eps: f64,
}

impl Default for VisionConfig {
    fn default() -> Self {
        VisionConfig {
            hidden_size: 768,
            intermediate_size: 3072,
            num_hidden_layers: 12,
            num_attention_heads: 12,
            num_channels: 3,
            image_size: 224,
            patch_size: 32,
            hidden_act: ClipActivation::QuickGelu,
            layer_norm_eps: 1e-5,
        }
    }
}

/// `config.json` of a transformers `CLIPModel`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default)]
pub struct HfClipConfig {
    /// The text tower.
    pub text_config: Option<TextConfig>,
    /// Older hub files name it `text_config_dict`.
    pub text_config_dict: Option<TextConfig>,
    /// The vision tower.
    pub vision_config: Option<VisionConfig>,
    /// Older hub files name it `vision_config_dict`.
    pub vision_config_dict: Option<VisionConfig>,
    /// Width of both projections (the embedding size).
    pub projection_dim: usize,
    /// `CLIPModel` for a whole model.
    pub architectures: Vec<String>,
    /// `clip` for a whole model.
    pub model_type: String,
}

impl Default for HfClipConfig {
    fn default() -> Self {
        HfClipConfig {
            text_config: None,
            text_config_dict: None,
            vision_config: None,
            vision_config_dict: None,
            projection_dim: 512,
            architectures: Vec::new(),
            model_type: "clip".into(),
        }
    }
}

impl HfClipConfig {
    /// The text tower's settings.
    pub fn text(&self) -> TextConfig {
        self.text_config
            .clone()
            .or_else(|| self.text_config_dict.clone())
            .unwrap_or_default()
    }

    /// The vision tower's settings.
    pub fn vision(&self) -> VisionConfig {
        self.vision_config
            .clone()
            .or_else(|| self.vision_config_dict.clone())
            .unwrap_or_default()
    }
}

/// `{"shortest_edge": n}` or `{"height": h, "width": w}`, or a bare number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum SizeSpec {
    /// A bare side.
    Side(u32),
    /// A dict.
    Dict {
        /// Resize the shorter side to this.
        shortest_edge: Option<u32>,
        /// Exact height.
        height: Option<u32>,
        /// Exact width.
        width: Option<u32>,
    },
}

/// `preprocessor_config.json` (the fields this build reads; others are ignored).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PreprocessorConfig {
    /// Resize target.
    pub size: SizeSpec,
    /// Centre-crop target.
    pub crop_size: SizeSpec,
    /// Per-channel mean after rescaling.
    pub image_mean: Vec<f32>,
    /// Per-channel std after rescaling.
    pub image_std: Vec<f32>,
    /// Usually 1/255.
    pub rescale_factor: f64,
    /// PIL resample code (3 = bicubic).
    pub resample: u32,
    /// Whether to resize.
    pub do_resize: bool,
    /// Whether to centre-crop.
    pub do_center_crop: bool,
    /// Whether to rescale.
    pub do_rescale: bool,
    /// Whether to normalise.
    pub do_normalize: bool,
}

/// OpenAI CLIP's per-channel mean.
pub const OPENAI_MEAN: [f32; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
/// OpenAI CLIP's per-channel std.
pub const OPENAI_STD: [f32; 3] = [0.268_629_54, 0.261_302_6, 0.275_777_1];

impl PreprocessorConfig {
    /// The torchvision evaluation transform of OpenAI's CLIP and its descendants
    /// (open_clip, ImageReward): shortest side to `side` with bicubic resampling, a
    /// `side`-square centre crop, the OpenAI mean and std.
    pub fn square_crop(side: u32) -> Self {
        PreprocessorConfig {
            size: SizeSpec::Dict {
                shortest_edge: Some(side),
                height: None,
                width: None,
            },
            crop_size: SizeSpec::Dict {
                shortest_edge: None,
                height: Some(side),
                width: Some(side),
            },
            ..PreprocessorConfig::default()
        }
    }
}

impl Default for PreprocessorConfig {
    fn default() -> Self {
        PreprocessorConfig {
            size: SizeSpec::Dict {
                shortest_edge: Some(224),
                height: None,
                width: None,
            },
            crop_size: SizeSpec::Dict {
                shortest_edge: None,
                height: Some(224),
                width: Some(224),
            },
            image_mean: OPENAI_MEAN.to_vec(),
            image_std: OPENAI_STD.to_vec(),
            rescale_factor: 1.0 / 255.0,
            resample: 3,
            do_resize: true,
            do_center_crop: true,
            do_rescale: true,
            do_normalize: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_encoder_config_reads_with_transformers_defaults() {
        // A `text_encoder/config.json` as `save_pretrained` writes it, shortened.
        let json = r#"{"architectures": ["CLIPTextModel"], "hidden_act": "gelu",
            "hidden_size": 1024, "intermediate_size": 4096, "num_attention_heads": 16,
            "num_hidden_layers": 23, "projection_dim": 512, "torch_dtype": "float32"}"#;
        let cfg: TextConfig = serde_json::from_str(json).unwrap();
        assert_eq!(cfg, TextConfig::sd21());
        let round: TextConfig =
            serde_json::from_value(serde_json::to_value(&cfg).unwrap()).unwrap();
        assert_eq!(round, cfg);
        let bad: Result<TextConfig, _> = serde_json::from_str(r#"{"hidden_act": "relu"}"#);
        assert!(bad.is_err());
        let odd = TextConfig {
            num_attention_heads: 5,
            ..TextConfig::tiny()
        };
        assert!(odd.check().unwrap_err().contains("5 heads"));
    }
}
