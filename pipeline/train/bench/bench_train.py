"""PyTorch + diffusers side of scripts/bench-train.sh and scripts/device-check.sh: the same
UNet as anchor's bench (the SD-shaped tiny one: blocks 32/64 with cross-attention, batch 2,
16x16 latents; or with --sd15 Stable Diffusion 1.5's), trained with AdamW on random data.
Prints one JSON line like anchor-train-bench.

    python bench_train.py [--steps N] [--warmup N] [--batch B] [--latent S] [--lora RANK]
                          [--sd15] [--device cpu|cuda] [--dtype f32|f16|bf16]

`--lora RANK` freezes the UNet and trains PEFT adapters on the attention projections
(to_q, to_k, to_v, to_out.0), as diffusers' train_text_to_image_lora.py and anchor do. With
`--dtype f16|bf16` the frozen UNet is stored in that dtype, the adapters stay f32 and the
forward pass runs under autocast, as that script does with mixed precision (and as
`anchor train --precision` does).
"""

import argparse
import json
import resource
import time

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler, UNet2DConditionModel

DTYPES = {"f32": torch.float32, "f16": torch.float16, "bf16": torch.bfloat16}


def build_unet(sd15, latent):
    """A randomly initialised UNet: Stable Diffusion 1.5's shape, or the tiny test one."""
    if sd15:
        return UNet2DConditionModel(sample_size=latent, cross_attention_dim=768)
    return UNet2DConditionModel(
        sample_size=latent,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        layers_per_block=1,
        cross_attention_dim=32,
        attention_head_dim=(2, 4),
        norm_num_groups=8,
    )


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def peak_rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--latent", type=int, default=16)
    ap.add_argument("--lora", type=int, default=0)
    ap.add_argument("--sd15", action="store_true")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="f32")
    a = ap.parse_args()
    torch.manual_seed(0)
    device = torch.device(a.device)
    dtype = DTYPES[a.dtype]
    unet = build_unet(a.sd15, a.latent).train()
    ctx_dim = unet.config.cross_attention_dim
    if a.lora > 0:
        from peft import LoraConfig

        unet.requires_grad_(False)
        unet.add_adapter(LoraConfig(
            r=a.lora,
            lora_alpha=a.lora,
            init_lora_weights="gaussian",
            target_modules=["to_k", "to_q", "to_v", "to_out.0"],
        ))
        if dtype != torch.float32:
            unet.to(dtype=dtype)
        unet.to(device)
        # f32 master weights for the adapters, as diffusers' cast_training_params does.
        for p in unet.parameters():
            if p.requires_grad:
                p.data = p.data.float()
    else:
        unet.to(device)
    trainable = [p for p in unet.parameters() if p.requires_grad]
    sched = DDPMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012)
    opt = torch.optim.AdamW(trainable, lr=1e-4, weight_decay=1e-2)
    n_params = sum(p.numel() for p in trainable)
    t_fwd = t_bwd = t_opt = 0.0
    start = time.perf_counter()
    for i in range(a.warmup + a.steps):
        if i == a.warmup:
            start = time.perf_counter()
            t_fwd = t_bwd = t_opt = 0.0
        latents = torch.randn(a.batch, 4, a.latent, a.latent, device=device)
        noise = torch.randn_like(latents)
        ctx = torch.randn(a.batch, 77, ctx_dim, device=device)
        t = torch.randint(0, 1000, (a.batch,), device=device)
        t0 = time.perf_counter()
        noisy = sched.add_noise(latents, noise, t)
        with torch.autocast(device.type, dtype=dtype, enabled=dtype != torch.float32):
            pred = unet(noisy, t, encoder_hidden_states=ctx).sample
        loss = F.mse_loss(pred.float(), noise)
        loss.item()
        t1 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        sync(device)
        t2 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        opt.step()
        sync(device)
        t3 = time.perf_counter()
        t_fwd += t1 - t0
        t_bwd += t2 - t1
        t_opt += t3 - t2
    secs = time.perf_counter() - start
    s = max(a.steps, 1)
    print(json.dumps({
        "impl": f"pytorch {torch.__version__} + diffusers",
        "device": str(device),
        "dtype": a.dtype,
        "threads": torch.get_num_threads(),
        "trainable_parameters": n_params,
        "steps": a.steps,
        "batch": a.batch,
        "latent": a.latent,
        "s_per_step": secs / s,
        "steps_per_s": s / secs,
        "images_per_s": s * a.batch / secs,
        "forward_s": t_fwd / s,
        "backward_s": t_bwd / s,
        "optimizer_s": t_opt / s,
        "peak_rss_mb": peak_rss_mb(),
    }))


if __name__ == "__main__":
    main()
