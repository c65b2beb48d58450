#!/usr/bin/env bash
# Builds the CUDA training benchmark (`anchor-train-bench` with `--features cuda`) on a
# machine without a GPU, for a GPU machine that has no Rust toolchain and no network:
# `scripts/build-cuda.sh anchor-train-bench` (see there for the toolkit and the link).
#
#   scripts/build-gpu-bench.sh        # writes dist/gpu/anchor-train-bench (stripped, ~57 MB)
#
# On the GPU machine (its PyTorch venv carries cuBLAS, cuRAND and the runtime):
#
#     export LD_LIBRARY_PATH=$(python3 -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13", "lib"))')
#     dist/gpu/anchor-train-bench --sd15 --latent 64 --batch 1 --lora 4 --f16 --steps 20
#     dist/gpu/anchor-train-bench --sd15 --latent 64 --batch 1 --lora 4 --bf16 --steps 20
set -euo pipefail
exec "$(dirname "$0")/build-cuda.sh" anchor-train-bench
