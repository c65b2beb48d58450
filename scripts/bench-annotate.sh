#!/usr/bin/env bash
# Speed of `anchor annotate`'s gguf backend (candle) against llama.cpp (llama-cpp-python) on
# the same GGUF file, the same prompt texts and the same machine. Measured, not asserted.
#
#   ANCHOR_BIN=target/release/anchor ANCHOR_PYTHON=.venv/bin/python scripts/bench-annotate.sh [N]
#
# Ours: `anchor annotate --bench N` runs SmolLM2 (requantised to Q8_0 at load) with constrained
# decoding over the first N labelled captions and prints, per caption, the exact prefix and
# suffix texts and its token counts and timings. llama.cpp then replays the same texts: the
# shared prefix evaluated once, each caption's suffix evaluated after truncating the KV cache
# back to the prefix, then as many greedy single-token decode steps as our answer had tokens
# (sampled + grammar-forced; llama.cpp runs unconstrained, so it does one forward pass per
# answer token where ours feeds forced runs in one batched pass).
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-${BENCH_CAPTIONS:-24}}"
ANCHOR_BIN="${ANCHOR_BIN:-target/release/anchor}"
PY="${ANCHOR_PYTHON:-.venv/bin/python}"
MODEL=data/models/SmolLM2-135M-Instruct.Q4_1.gguf

if [ ! -f "$MODEL" ]; then
    PYTHON="$PY" ./scripts/fetch-models.sh smollm2
fi
if ! "$PY" -c 'import llama_cpp' 2>/dev/null; then
    # PyPI has only the source distribution. Building just the library (no tools, server,
    # examples, tests or multimodal) took 21 min on one niced job of this 2-core machine
    # while other builds ran; the whole default build did not finish in 25.
    echo "bench-annotate: installing llama-cpp-python (compiles llama.cpp; limit 40 min)" >&2
    pin=$(grep -o 'llama-cpp-python==[0-9.]*' requirements/annotate.txt)
    # The best vector ISA this CPU has, but never AMX: with -march=native, ggml's AMX path
    # for Q4/Q8 batches crashed (SIGSEGV on any batch of more than one token) on a virtual machine whose CPU reports AMX.
    isa="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
    grep -qw avx_vnni /proc/cpuinfo && isa="$isa -DGGML_AVX_VNNI=ON"
    if grep -qw avx512f /proc/cpuinfo; then
        isa="$isa -DGGML_AVX512=ON"
        grep -qw avx512vbmi /proc/cpuinfo && isa="$isa -DGGML_AVX512_VBMI=ON"
        grep -qw avx512_vnni /proc/cpuinfo && isa="$isa -DGGML_AVX512_VNNI=ON"
        grep -qw avx512_bf16 /proc/cpuinfo && isa="$isa -DGGML_AVX512_BF16=ON"
    fi
    CMAKE_ARGS="-DLLAVA_BUILD=OFF -DMTMD_BUILD=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_CURL=OFF $isa" \
        CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
        timeout 2400 "$PY" -m pip install --quiet --no-cache-dir "$pin" >&2 ||
        echo "bench-annotate: llama-cpp-python could not be installed here" >&2
fi

# The two parity tests against llama.cpp (phi3 logits, SentencePiece tokens) need
# llama-cpp-python, so `make test` leaves them out and they run here.
if "$PY" -c 'import llama_cpp' 2>/dev/null; then
    echo "bench-annotate: llama.cpp parity tests" >&2
    ANCHOR_PYTHON="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")" \
        cargo test --quiet -p anchor-llm -p anchor-annotate --lib -- --ignored llama_cpp >&2
fi

ours=$(mktemp)
trap 'rm -f "$ours"' EXIT
echo "bench-annotate: anchor gguf backend on $N captions ($(nproc) cores)" >&2
"$ANCHOR_BIN" --quiet annotate --model "$MODEL" --bench "$N" >"$ours"

"$PY" - "$ours" <<'PY'
import json, os, sys, time

lines = [json.loads(l) for l in open(sys.argv[1], encoding="utf-8") if l.strip()]
head, caps = lines[0], lines[1:]

def rate(n, s):
    return n / s if s > 0 else 0.0

ours = {
    "prefix prompt tok/s": rate(head["prefix_tokens"], head["prefix_s"]),
    "caption prompt tok/s": rate(sum(c["prompt_tokens"] for c in caps), sum(c["prompt_s"] for c in caps)),
    "generation tok/s": rate(sum(c["gen_tokens"] + c["forced_tokens"] for c in caps), sum(c["gen_s"] for c in caps)),
    "captions/s": rate(len(caps), sum(c["prompt_s"] + c["gen_s"] for c in caps)),
}
valid = sum(c["valid"] for c in caps)
sampled = sum(c["gen_tokens"] for c in caps)
forced = sum(c["forced_tokens"] for c in caps)
print(f"model {head['model']} (ours requantised to {head['requant']} at load in {head['load_s']:.2f}s)")
print(f"{len(caps)} captions, {valid} valid answers; prefix {head['prefix_tokens']} tokens; "
      f"answers {sampled} sampled + {forced} grammar-forced tokens")

theirs = None
try:
    import numpy as np
    from llama_cpp import Llama
except Exception as e:  # not installable here: say so, print ours alone
    print(f"llama-cpp-python unavailable ({type(e).__name__}: {e}); "
          "pip compiles llama.cpp from source; see requirements/annotate.txt")
else:
    llm = Llama(model_path=head["model"], n_ctx=2048, n_batch=512,
                n_threads=os.cpu_count(), verbose=False)
    tok = lambda text: llm.tokenize(text.encode("utf-8"), add_bos=False, special=True)
    n_vocab = llm.n_vocab()
    prefix = tok(head["prefix"])
    llm.reset()
    t = time.perf_counter()
    llm.eval(prefix)
    prefix_s = time.perf_counter() - t
    p_tok = p_s = g_tok = g_s = 0.0
    for c in caps:
        llm.n_tokens = len(prefix)  # truncate the KV cache back to the shared prefix
        suffix = tok(c["suffix"])
        t = time.perf_counter()
        llm.eval(suffix)
        p_s += time.perf_counter() - t
        p_tok += len(suffix)
        steps = c["gen_tokens"] + c["forced_tokens"]
        t = time.perf_counter()
        for _ in range(steps):
            # Without logits_all, llama-cpp-python keeps no scores: read the last token's
            # logits from the context (what its own sampler reads).
            nxt = int(np.argmax(np.ctypeslib.as_array(llm._ctx.get_logits(), shape=(n_vocab,))))
            llm.eval([nxt])
        g_s += time.perf_counter() - t
        g_tok += steps
    theirs = {
        "prefix prompt tok/s": rate(len(prefix), prefix_s),
        "caption prompt tok/s": rate(p_tok, p_s),
        "generation tok/s": rate(g_tok, g_s),
        "captions/s": rate(len(caps), p_s + g_s),
    }
    import llama_cpp
    print(f"llama.cpp via llama-cpp-python {llama_cpp.__version__}, the same GGUF as shipped")

print()
print(f"| {'metric':<22} | {'anchor (candle)':>15} | {'llama.cpp':>10} | {'ratio':>6} |")
print(f"|{'-' * 24}|{'-' * 17}:|{'-' * 11}:|{'-' * 7}:|")
for k, v in ours.items():
    if theirs:
        r = v / theirs[k] if theirs[k] > 0 else 0.0
        print(f"| {k:<22} | {v:>15.1f} | {theirs[k]:>10.1f} | {r:>5.2f}x |")
    else:
        print(f"| {k:<22} | {v:>15.1f} | {'n/a':>10} | {'n/a':>6} |")
PY
