"""PyTorch + diffusers side of scripts/bench-train.sh: the same SD-shaped tiny UNet as
anchor's bench (blocks 32/64 with cross-attention, batch 2, 16x16 latents, AdamW), trained on
random data on the CPU. Prints one JSON line like anchor-train-bench.

    python bench_train.py [--steps N] [--warmup N] [--batch B] [--latent S] [--lora RANK]

`--lora RANK` freezes the UNet and trains PEFT adapters on the attention projections
(to_q, to_k, to_v, to_out.0), as diffusers' train_text_to_image_lora.py and anchor do.
"""

import argparse
import json
import resource
import time

import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler, UNet2DConditionModel


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
    a = ap.parse_args()
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=a.latent,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        layers_per_block=1,
        cross_attention_dim=32,
        attention_head_dim=(2, 4),
        norm_num_groups=8,
    ).train()
    if a.lora > 0:
        from peft import LoraConfig

        unet.requires_grad_(False)
        unet.add_adapter(LoraConfig(
            r=a.lora,
            lora_alpha=a.lora,
            init_lora_weights="gaussian",
            target_modules=["to_k", "to_q", "to_v", "to_out.0"],
        ))
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
        latents = torch.randn(a.batch, 4, a.latent, a.latent)
        noise = torch.randn_like(latents)
        ctx = torch.randn(a.batch, 77, 32)
        t = torch.randint(0, 1000, (a.batch,))
        t0 = time.perf_counter()
        noisy = sched.add_noise(latents, noise, t)
        pred = unet(noisy, t, encoder_hidden_states=ctx).sample
        loss = F.mse_loss(pred, noise)
        t1 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t2 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        opt.step()
        t3 = time.perf_counter()
        t_fwd += t1 - t0
        t_bwd += t2 - t1
        t_opt += t3 - t2
    secs = time.perf_counter() - start
    s = max(a.steps, 1)
    print(json.dumps({
        "impl": f"pytorch {torch.__version__} + diffusers",
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
