#!/usr/bin/env bash
# Builds the CUDA training benchmark (`anchor-train-bench` with `--features cuda`) on a
# machine without a GPU, for a GPU machine that has no Rust toolchain and no network.
#
#   scripts/build-gpu-bench.sh        # writes dist/gpu/anchor-train-bench (stripped, ~57 MB)
#
# - The CUDA compiler and libraries come from PyPI, `cuda-toolkit[...]==13.0.*` in a venv of
#   their own (CUDA_VENV, default .venv-cuda): nvcc, the runtime, libcu++'s <nv/target>
#   (candle's kernels include it), cuBLAS, cuRAND and NVRTC. CUDA 13 matches driver 580;
#   CUDA_COMPUTE_CAP=90 targets H100/H200.
# - candle links the CUDA libraries dynamically, and no PyPI package ships the driver's
#   libcuda.so. The link therefore runs twice: once with unresolved symbols allowed, to list
#   the driver symbols the binary uses, then against a generated stub `libcuda.so` (soname
#   libcuda.so.1) that defines exactly those. The real driver library replaces it at run time.
# - On the GPU machine (its PyTorch venv carries cuBLAS, cuRAND and the runtime):
#
#     export LD_LIBRARY_PATH=$(python3 -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13", "lib"))')
#     dist/gpu/anchor-train-bench --sd15 --latent 64 --batch 1 --lora 4 --f16 --steps 20
#     dist/gpu/anchor-train-bench --sd15 --latent 64 --batch 1 --lora 4 --bf16 --steps 20
set -euo pipefail
cd "$(dirname "$0")/.."
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
VENV="${CUDA_VENV:-.venv-cuda}"
TARGET="${CUDA_TARGET_DIR:-target/cuda}"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --no-cache-dir \
    "cuda-toolkit[nvcc,cudart,cccl,cublas,curand,nvrtc]==13.0.*"
CUDA_ROOT=$("$VENV/bin/python" -c \
    'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13"))')
export CUDA_ROOT CUDA_PATH="$CUDA_ROOT" CUDA_HOME="$CUDA_ROOT" PATH="$CUDA_ROOT/bin:$PATH"
nvcc --version | tail -1
# The wheels ship versioned names only; the linker looks for the plain ones.
for lib in "$CUDA_ROOT"/lib/lib{cublas,cublasLt,cudart,nvrtc,curand}.so.*; do
    case "$lib" in *builtins*|*alt*) continue ;; esac
    plain="${lib%.so.*}.so"
    [ -e "$plain" ] || ln -s "$(basename "$lib")" "$plain"
done

STUB="$TARGET/libcuda-stub"
mkdir -p "$STUB"
build() {
    cargo rustc --release -p anchor-train --features cuda --bin anchor-train-bench \
        --target-dir "$TARGET" -- -L "$STUB" "$@"
}
# Pass 1: an empty stub, unresolved symbols allowed; list what the driver must provide.
echo "" > "$STUB/empty.c"
cc -shared -fPIC -o "$STUB/libcuda.so" -Wl,-soname,libcuda.so.1 "$STUB/empty.c"
build -C link-arg=-Wl,--unresolved-symbols=ignore-all
BIN="$TARGET/release/anchor-train-bench"
nm -D --undefined-only "$BIN" | awk '$2 ~ /^cu[A-Z]/ {print "void " $2 "(void) {}"}' \
    > "$STUB/stub.c"
echo "stub libcuda.so: $(wc -l < "$STUB/stub.c") driver symbols"
# Pass 2: link against the stub that defines them.
cc -shared -fPIC -o "$STUB/libcuda.so" -Wl,-soname,libcuda.so.1 "$STUB/stub.c"
touch pipeline/train/src/bin/anchor-train-bench.rs
build
mkdir -p dist/gpu
strip -o dist/gpu/anchor-train-bench "$BIN"
readelf -d dist/gpu/anchor-train-bench | grep NEEDED
ls -l dist/gpu/anchor-train-bench
