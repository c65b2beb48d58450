#!/usr/bin/env bash
# Builds anchor's CUDA binaries (`--features cuda`, release) with the CUDA compiler and
# libraries from PyPI, so a machine without a CUDA installation (or without a GPU) can build
# for one that has them.
#
#   scripts/build-cuda.sh anchor               # the CLI: dist/gpu/anchor
#   scripts/build-cuda.sh anchor-train-bench   # the training benchmark: dist/gpu/anchor-train-bench
#   CUDA_FEATURES=nccl scripts/build-cuda.sh anchor   # the CLI with NCCL data-parallel training
#
# - The CUDA compiler and libraries come from PyPI, `cuda-toolkit[...]==13.0.*` in a venv of
#   their own (CUDA_VENV, default .venv-cuda): nvcc, the runtime, libcu++'s <nv/target>
#   (candle's kernels include it), cuBLAS, cuRAND and NVRTC. CUDA 13 matches driver 580;
#   CUDA_COMPUTE_CAP (default 90) picks the GPU generation (90: H100/H200, 80: A100).
# - CUDA_FEATURES (default `cuda`) picks the cargo features; `nccl` adds NCCL all-reduce for
#   data-parallel training and links libnccl from the `nvidia-nccl-cu13` wheel, which the
#   GPU machine then needs on LD_LIBRARY_PATH too.
# - candle links the CUDA libraries dynamically, and no PyPI package ships the driver's
#   libcuda.so. The link therefore runs twice: once with unresolved symbols allowed, to list
#   the driver symbols the binary uses, then against a generated stub `libcuda.so` (soname
#   libcuda.so.1) that defines exactly those. The real driver library replaces it at run time.
# - On the GPU machine, the CUDA libraries must be on the loader's path, e.g. from a PyTorch
#   venv:
#
#     export LD_LIBRARY_PATH=$(python3 -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13", "lib"))')
#     dist/gpu/anchor --device cuda train --base /path/to/stable-diffusion-v1-5
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
    anchor) PACKAGE=anchor-cli BIN=anchor MAIN=pipeline/cli/src/main.rs ;;
    anchor-train-bench)
        PACKAGE=anchor-train BIN=anchor-train-bench
        MAIN=pipeline/train/src/bin/anchor-train-bench.rs
        ;;
    *)
        echo "usage: scripts/build-cuda.sh anchor|anchor-train-bench" >&2
        exit 2
        ;;
esac
export CUDA_COMPUTE_CAP="${CUDA_COMPUTE_CAP:-90}"
VENV="${CUDA_VENV:-.venv-cuda}"
TARGET="${CUDA_TARGET_DIR:-target/cuda}"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install --quiet --no-cache-dir \
    "cuda-toolkit[nvcc,cudart,cccl,cublas,curand,nvrtc]==13.0.*"
case "${CUDA_FEATURES:-cuda}" in
    *nccl*) "$VENV/bin/pip" install --quiet --no-cache-dir "nvidia-nccl-cu13==2.*" ;;
esac
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

# NCCL's wheel keeps its library apart from the toolkit's.
LINK_DIRS=()
NCCL_LIB=$("$VENV/bin/python" -c \
    'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "nccl", "lib"))')
for lib in "$NCCL_LIB"/libnccl.so.*; do
    [ -e "$lib" ] || continue
    [ -e "$NCCL_LIB/libnccl.so" ] || ln -s "$(basename "$lib")" "$NCCL_LIB/libnccl.so"
    LINK_DIRS=(-L "$NCCL_LIB")
done
STUB="$TARGET/libcuda-stub"
mkdir -p "$STUB"
build() {
    cargo rustc --release -p "$PACKAGE" --features "${CUDA_FEATURES:-cuda}" --bin "$BIN" \
        --target-dir "$TARGET" -- -L "$STUB" "${LINK_DIRS[@]}" "$@"
}
# Pass 1: an empty stub, unresolved symbols allowed; list what the driver must provide.
echo "" > "$STUB/empty.c"
cc -shared -fPIC -o "$STUB/libcuda.so" -Wl,-soname,libcuda.so.1 "$STUB/empty.c"
build -C link-arg=-Wl,--unresolved-symbols=ignore-all
OUT="$TARGET/release/$BIN"
nm -D --undefined-only "$OUT" | awk '$2 ~ /^cu[A-Z]/ {print "void " $2 "(void) {}"}' \
    | sort -u > "$STUB/stub-$BIN.c"
echo "stub libcuda.so: $(wc -l < "$STUB/stub-$BIN.c") driver symbols"
# Pass 2: link against the stub that defines them (only the binary's own crate recompiles).
cc -shared -fPIC -o "$STUB/libcuda.so" -Wl,-soname,libcuda.so.1 "$STUB/stub-$BIN.c"
touch "$MAIN"
build
mkdir -p dist/gpu
strip -o "dist/gpu/$BIN" "$OUT"
readelf -d "dist/gpu/$BIN" | grep NEEDED
ls -l "dist/gpu/$BIN"
