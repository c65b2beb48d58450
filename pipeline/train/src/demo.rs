//! The demo base's architecture: a small VAE, an SD-shaped UNet and a CLIP text encoder
//! with CLIP's vocabulary, trained (or, for the text encoder, left at its seeded random
//! init) when no base folder is given.

use anchor_sd::{ClipActivation, ClipTextConfig, UNetConfig, VaeConfig};

/// The demo VAE: three levels (16/32/64 channels, two 2x downsamplings), 4 latent channels.
pub fn demo_vae_config() -> VaeConfig {
    VaeConfig {
        in_channels: 3,
        out_channels: 3,
        latent_channels: 4,
        block_out_channels: vec![16, 32, 64],
        layers_per_block: 1,
        norm_num_groups: 8,
        scaling_factor: 1.0,
    }
}

/// The demo UNet: SD-shaped, levels 32/64 with cross-attention (the bench's model).
pub fn demo_unet_config() -> UNetConfig {
    UNetConfig::tiny()
}

/// The demo text encoder: CLIP's full 49408-token vocabulary, width 32, two layers.
/// Random init, frozen: with a few hundred captions there is nothing to learn a language
/// from, and a fixed encoder keeps the embeddings cacheable exactly as with SD's.
pub fn demo_clip_config() -> ClipTextConfig {
    ClipTextConfig {
        vocab_size: 49408,
        hidden_size: 32,
        intermediate_size: 64,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        max_position_embeddings: 77,
        hidden_act: ClipActivation::QuickGelu,
        layer_norm_eps: 1e-5,
    }
}
