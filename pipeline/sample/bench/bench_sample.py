"""PyTorch + diffusers side of the sampling benchmark in scripts/device-check.sh: the loop of
diffusers' StableDiffusionPipeline (each caption and its unconditional twin in one UNet call
of 2B rows per step, classifier-free guidance 7.5, DDIM), then the VAE decode, on randomly
initialised Stable Diffusion 1.5-shaped networks (or the tiny test ones), as
`anchor-train-bench --sample` does. Prints one JSON line like it.

    python bench_sample.py [--sd15] [--batch B] [--latent S] [--steps N] [--runs R]
                           [--device cpu|cuda] [--dtype f32|f16|bf16]
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from diffusers import AutoencoderKL, DDIMScheduler

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "train" / "bench"))
from bench_train import DTYPES, build_unet, sync  # noqa: E402


def build_vae(sd15):
    if sd15:
        return AutoencoderKL(
            block_out_channels=(128, 256, 512, 512),
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            latent_channels=4,
            layers_per_block=2,
        )
    return AutoencoderKL(
        block_out_channels=(32, 64),
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=8,
    )


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sd15", action="store_true")
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--latent", type=int, default=None)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--runs", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="f32")
    a = ap.parse_args()
    latent = a.latent or (64 if a.sd15 else 16)
    torch.manual_seed(0)
    device = torch.device(a.device)
    dtype = DTYPES[a.dtype]
    unet = build_unet(a.sd15, latent).eval().to(device, dtype=dtype)
    vae = build_vae(a.sd15).eval().to(device, dtype=dtype)
    ctx_dim = unet.config.cross_attention_dim
    sched = DDIMScheduler(
        beta_schedule="scaled_linear",
        beta_start=0.00085,
        beta_end=0.012,
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    cond = torch.randn(a.batch, 77, ctx_dim, device=device, dtype=dtype)
    uncond = torch.randn(a.batch, 77, ctx_dim, device=device, dtype=dtype)
    context = torch.cat([uncond, cond])
    unet_s = vae_s = 0.0
    with torch.no_grad():
        for run in range(a.runs + 1):
            sched.set_timesteps(a.steps, device=device)
            x = torch.randn(a.batch, 4, latent, latent, device=device, dtype=dtype)
            x = x * sched.init_noise_sigma
            sync(device)
            t0 = time.perf_counter()
            for t in sched.timesteps:
                inp = sched.scale_model_input(torch.cat([x, x]), t)
                out = unet(inp, t, encoder_hidden_states=context).sample
                u, c = out.chunk(2)
                x = sched.step(u + 7.5 * (c - u), t, x).prev_sample
            sync(device)
            t1 = time.perf_counter()
            images = vae.decode(x / 0.18215).sample
            ((images / 2 + 0.5).clamp(0, 1) * 255).round().to(torch.uint8).cpu()
            t2 = time.perf_counter()
            if run > 0:
                unet_s += t1 - t0
                vae_s += t2 - t1
    runs = max(a.runs, 1)
    images = runs * a.batch
    secs = unet_s + vae_s
    print(json.dumps({
        "impl": f"pytorch {torch.__version__} + diffusers",
        "mode": "sample",
        "device": str(device),
        "dtype": a.dtype,
        "batch": a.batch,
        "latent": latent,
        "steps": a.steps,
        "runs": a.runs,
        "images_per_s": images / secs,
        "s_per_image": secs / images,
        "unet_s_per_batch": unet_s / runs,
        "vae_s_per_batch": vae_s / runs,
    }))


if __name__ == "__main__":
    main()
