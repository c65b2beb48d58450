"""Reference outputs for anchor-sd's parity tests (pipeline/sd/tests/parity.rs).

Builds tiny diffusers/transformers models with fixed seeds, perturbs every parameter (so
norm weights and biases are not the trivial 1/0 init), saves them in the diffusers folder
layout, and writes inputs plus outputs to `reference.safetensors`:

    python make_reference.py OUT_DIR

Everything runs in float32 on the CPU in a few seconds.
"""

import sys
from pathlib import Path
from types import SimpleNamespace

import torch
from safetensors.torch import save_file

torch.set_grad_enabled(False)
torch.use_deterministic_algorithms(True)


def perturb(model, seed):
    g = torch.Generator().manual_seed(seed)
    for p in model.parameters():
        p.add_(torch.randn(p.shape, generator=g) * 0.05)
    return model.eval()


def unet_reference(out: Path, ref: dict, name: str, linear_projection: bool):
    from diffusers import UNet2DConditionModel

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=16,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        layers_per_block=1,
        cross_attention_dim=32,
        attention_head_dim=(2, 4),
        norm_num_groups=8,
        use_linear_projection=linear_projection,
    )
    perturb(unet, 1)
    unet.save_pretrained(out / name, safe_serialization=True)
    g = torch.Generator().manual_seed(2)
    sample = torch.randn(2, 4, 16, 16, generator=g)
    t = torch.tensor([10.0, 500.0])
    ctx = torch.randn(2, 8, 32, generator=g)
    ref[f"{name}.sample"] = sample
    ref[f"{name}.timesteps"] = t
    ref[f"{name}.context"] = ctx
    ref[f"{name}.out"] = unet(sample, t, encoder_hidden_states=ctx).sample


def vae_reference(out: Path, ref: dict):
    from diffusers import AutoencoderKL

    torch.manual_seed(0)
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        block_out_channels=(32, 64),
        latent_channels=4,
        norm_num_groups=8,
        layers_per_block=1,
        sample_size=32,
    )
    perturb(vae, 3)
    vae.save_pretrained(out / "vae", safe_serialization=True)
    g = torch.Generator().manual_seed(4)
    image = torch.rand(1, 3, 32, 32, generator=g) * 2 - 1
    latents = torch.randn(1, 4, 16, 16, generator=g)
    dist = vae.encode(image).latent_dist
    ref["vae.image"] = image
    ref["vae.mean"] = dist.mean
    ref["vae.logvar"] = dist.logvar
    ref["vae.latents"] = latents
    ref["vae.decoded"] = vae.decode(latents).sample


def clip_reference(out: Path, ref: dict):
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(0)
    cfg = CLIPTextConfig(
        vocab_size=1000,
        hidden_size=32,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=77,
        hidden_act="quick_gelu",
        bos_token_id=998,
        eos_token_id=999,
        pad_token_id=999,
    )
    model = perturb(CLIPTextModel(cfg), 5)
    model.save_pretrained(out / "text_encoder", safe_serialization=True)
    g = torch.Generator().manual_seed(6)
    ids = torch.randint(0, 998, (2, 77), generator=g)
    ids[:, 0] = 998
    ref["clip.ids"] = ids.to(torch.int64)
    ref["clip.out"] = model(ids).last_hidden_state

    # compel's weighting of already tokenised prompts (what its prompt parser produces):
    # bos, content, eos, padding; `++` = 1.21 on two subject tokens.
    from compel.embeddings_provider import EmbeddingsProvider

    tok = SimpleNamespace(bos_token_id=998, eos_token_id=999, pad_token_id=999, model_max_length=77)
    provider = EmbeddingsProvider(tokenizer=tok, text_encoder=model, device="cpu")
    prompt = [998, 11, 12, 13, 14, 999] + [999] * 71
    weights = [1.0, 1.0, 1.21, 1.21, 1.0, 1.0] + [1.0] * 71
    ref["compel.ids"] = torch.tensor([prompt], dtype=torch.int64)
    ref["compel.weights"] = torch.tensor([weights])
    ref["compel.out"] = provider.build_weighted_embedding_tensor(
        torch.tensor(prompt), torch.tensor(weights)
    )


def scheduler_reference(ref: dict):
    from diffusers import DDIMScheduler, DDPMScheduler, EulerDiscreteScheduler

    kw = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")
    ddpm = DDPMScheduler(**kw)
    ref["sched.alphas_cumprod"] = ddpm.alphas_cumprod
    g = torch.Generator().manual_seed(7)
    x0 = torch.randn(3, 4, 4, 4, generator=g)
    noise = torch.randn(3, 4, 4, 4, generator=g)
    t = torch.tensor([10, 500, 999])
    ref["sched.x0"] = x0
    ref["sched.noise"] = noise
    ref["sched.noisy"] = ddpm.add_noise(x0, noise, t)
    ref["sched.velocity"] = ddpm.get_velocity(x0, noise, t)

    sample = torch.randn(1, 4, 4, 4, generator=g)
    model_out = torch.randn(1, 4, 4, 4, generator=g)
    ref["sched.sample"] = sample
    ref["sched.model_out"] = model_out
    for pred in ("epsilon", "v_prediction"):
        ddim = DDIMScheduler(**kw, steps_offset=1, set_alpha_to_one=False, clip_sample=False, prediction_type=pred)
        ddim.set_timesteps(10)
        ref["ddim.timesteps"] = ddim.timesteps.to(torch.float32)
        ref[f"ddim.{pred}.step3"] = ddim.step(model_out, ddim.timesteps[3], sample).prev_sample
        ref[f"ddim.{pred}.step9"] = ddim.step(model_out, ddim.timesteps[9], sample).prev_sample

        euler = EulerDiscreteScheduler(**kw, steps_offset=1, prediction_type=pred)
        euler.set_timesteps(10)
        ref["euler.timesteps"] = euler.timesteps.to(torch.float32)
        ref["euler.sigmas"] = euler.sigmas.to(torch.float32)
        ref["euler.init_noise_sigma"] = torch.tensor([float(euler.init_noise_sigma)])
        scaled = euler.scale_model_input(sample, euler.timesteps[3])  # sets step index 3
        ref["euler.scaled3"] = scaled
        ref[f"euler.{pred}.step3"] = euler.step(model_out, euler.timesteps[3], sample).prev_sample


def pipeline_reference(out: Path, ref: dict):
    """The denoising loop of diffusers' StableDiffusionPipeline (DDIM, CFG 7.5, 3 steps) over
    the tiny parts saved above, plus the tokenizer/ and scheduler/ folders of the layout."""
    import json

    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextModel

    tok = out / "tokenizer"
    tok.mkdir(exist_ok=True)
    (tok / "vocab.json").write_text(json.dumps({"<|startoftext|>": 998, "<|endoftext|>": 999}))
    (tok / "special_tokens_map.json").write_text(json.dumps({
        "bos_token": {"content": "<|startoftext|>"},
        "eos_token": {"content": "<|endoftext|>"},
        "pad_token": "<|endoftext|>",
    }))
    DDIMScheduler(
        num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
        steps_offset=1, set_alpha_to_one=False, clip_sample=False,
    ).save_pretrained(out / "scheduler")

    unet = UNet2DConditionModel.from_pretrained(out / "unet").eval()
    vae = AutoencoderKL.from_pretrained(out / "vae").eval()
    te = CLIPTextModel.from_pretrained(out / "text_encoder").eval()
    sched = DDIMScheduler.from_pretrained(out / "scheduler")
    sched.set_timesteps(3)
    ids = torch.tensor([[998, 21, 22, 23, 999] + [999] * 72])
    empty = torch.tensor([[998, 999] + [999] * 75])
    cond, uncond = te(ids).last_hidden_state, te(empty).last_hidden_state
    g = torch.Generator().manual_seed(8)
    latents = torch.randn(1, 4, 8, 8, generator=g)
    ref["pipe.ids"] = ids
    ref["pipe.latents"] = latents
    lat = latents * sched.init_noise_sigma
    for t in sched.timesteps:
        inp = sched.scale_model_input(torch.cat([lat, lat]), t)
        noise = unet(inp, t, encoder_hidden_states=torch.cat([uncond, cond])).sample
        u, c = noise.chunk(2)
        lat = sched.step(u + 7.5 * (c - u), t, lat).prev_sample
    ref["pipe.out_latents"] = lat
    image = vae.decode(lat / vae.config.scaling_factor).sample
    ref["pipe.image"] = (image / 2 + 0.5).clamp(0, 1)


def main():
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    ref = {}
    unet_reference(out, ref, "unet", linear_projection=False)
    unet_reference(out, ref, "unet_sd2", linear_projection=True)
    vae_reference(out, ref)
    clip_reference(out, ref)
    scheduler_reference(ref)
    pipeline_reference(out, ref)
    save_file({k: v.contiguous() for k, v in ref.items()}, str(out / "reference.safetensors"))


if __name__ == "__main__":
    main()
