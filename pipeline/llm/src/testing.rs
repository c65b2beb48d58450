//! Tiny random GGUF files for tests (feature `testing`): llama-, qwen2- and phi3-shaped
//! models of width 64 with a byte-level BPE or a SentencePiece vocabulary and a chat template,
//! laid out as llama.cpp writes them, so every loader path runs without a real model.

use std::ffi::OsStr;
use std::fs::File;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Result, Tensor};

/// Deterministic pseudo-random floats (candle's CPU `randn` is not seedable).
fn lcg(n: usize, seed: &mut u64, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|_| {
            *seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (((*seed >> 33) as f32 / (1u64 << 31) as f32) - 0.5) * 2.0 * scale
        })
        .collect()
}

/// Writes a tiny random llama GGUF with a byte-level BPE vocabulary (256 byte tokens,
/// ChatML specials and a few merges) and a ChatML template.
pub fn write_tiny_gguf(path: &Path, seed: u64) -> Result<()> {
    write_tiny_gguf_arch(path, seed, "llama")
}

/// [`write_tiny_gguf`] for architecture `arch`: `qwen2` adds q/k/v biases and a context
/// length, as candle's `quantized_qwen2` requires; `phi3` is laid out as llama.cpp writes
/// Phi-3-mini (fused `attn_qkv`, gate|up `ffn_up`, an `output` matrix, a sliding window,
/// a SentencePiece vocabulary and the Phi-3 chat template).
pub fn write_tiny_gguf_arch(path: &Path, seed: u64, arch: &str) -> Result<()> {
    write_tiny_gguf_with(path, seed, arch, &[], &[])
}

/// [`write_tiny_gguf_arch`] with extra metadata and F32 vectors (RoPE factors); an extra
/// key replaces a default one of the same name.
pub fn write_tiny_gguf_with(
    path: &Path,
    seed: u64,
    arch: &str,
    extra_md: &[(String, Value)],
    extra_tensors: &[(&str, Vec<f32>)],
) -> Result<()> {
    let (hidden, ff, heads, kv_heads, layers) = (64usize, 128usize, 2u32, 1u32, 2u32);
    let head_dim = hidden / heads as usize;
    let phi3 = arch == "phi3";
    let s = |x: &str| Value::String(x.to_string());
    let mut md: Vec<(String, Value)> = if phi3 {
        spm_vocab_metadata()
    } else {
        bpe_vocab_metadata()
    };
    md.push(("general.architecture".into(), s(arch)));
    let keyed = |k: &str| format!("{arch}.{k}");
    md.extend([
        (keyed("attention.head_count"), Value::U32(heads)),
        (keyed("attention.head_count_kv"), Value::U32(kv_heads)),
        (keyed("block_count"), Value::U32(layers)),
        (keyed("embedding_length"), Value::U32(hidden as u32)),
        (keyed("feed_forward_length"), Value::U32(ff as u32)),
        (keyed("rope.dimension_count"), Value::U32(head_dim as u32)),
        (keyed("attention.layer_norm_rms_epsilon"), Value::F32(1e-5)),
        (keyed("rope.freq_base"), Value::F32(10000.0)),
        (keyed("context_length"), Value::U32(4096)),
    ]);
    if phi3 {
        md.push((keyed("attention.sliding_window"), Value::U32(2047)));
    }
    for (k, v) in extra_md {
        md.retain(|(mk, _)| mk != k);
        md.push((k.clone(), v.clone()));
    }
    let vocab = md
        .iter()
        .find(|(k, _)| k == "tokenizer.ggml.tokens")
        .and_then(|(_, v)| v.to_vec().ok())
        .map_or(0, Vec::len);
    let mut seed = seed;
    let mut tensors: Vec<(String, QTensor)> = Vec::new();
    let mut add = |name: String, dims: &[usize], dtype: GgmlDType, scale: f32, seed: &mut u64| {
        let n: usize = dims.iter().product();
        let data = if scale == 0.0 {
            vec![1.0f32; n]
        } else {
            lcg(n, seed, scale)
        };
        let t = Tensor::from_vec(data, dims, &Device::Cpu)?;
        tensors.push((name, QTensor::quantize(&t, dtype)?));
        Ok::<(), candle_core::Error>(())
    };
    use GgmlDType::{F32, Q4_1};
    add(
        "token_embd.weight".into(),
        &[vocab, hidden],
        F32,
        1.0,
        &mut seed,
    )?;
    add("output_norm.weight".into(), &[hidden], F32, 0.0, &mut seed)?;
    if phi3 {
        add(
            "output.weight".into(),
            &[vocab, hidden],
            Q4_1,
            0.2,
            &mut seed,
        )?;
    }
    let kv = kv_heads as usize * head_dim;
    for l in 0..layers {
        let p = format!("blk.{l}");
        for name in ["attn_norm", "ffn_norm"] {
            add(format!("{p}.{name}.weight"), &[hidden], F32, 0.0, &mut seed)?;
        }
        // phi3 fuses q, k and v, and gate and up.
        let projections: &[(&str, [usize; 2])] = if phi3 {
            &[
                ("attn_qkv", [hidden + 2 * kv, hidden]),
                ("ffn_up", [2 * ff, hidden]),
            ]
        } else {
            &[
                ("attn_q", [hidden, hidden]),
                ("attn_k", [kv, hidden]),
                ("attn_v", [kv, hidden]),
                ("ffn_gate", [ff, hidden]),
                ("ffn_up", [ff, hidden]),
            ]
        };
        for (name, shape) in projections {
            add(format!("{p}.{name}.weight"), shape, Q4_1, 0.2, &mut seed)?;
        }
        if arch == "qwen2" {
            for (name, rows) in [("attn_q", hidden), ("attn_k", kv), ("attn_v", kv)] {
                add(format!("{p}.{name}.bias"), &[rows], F32, 0.5, &mut seed)?;
            }
        }
        for (name, shape) in [
            ("attn_output", [hidden, hidden]),
            ("ffn_down", [hidden, ff]),
        ] {
            add(format!("{p}.{name}.weight"), &shape, Q4_1, 0.2, &mut seed)?;
        }
    }
    for (name, v) in extra_tensors {
        let t = Tensor::new(v.as_slice(), &Device::Cpu)?;
        tensors.push((name.to_string(), QTensor::quantize(&t, F32)?));
    }
    let md_refs: Vec<(&str, &Value)> = md.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let t_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let mut f = File::create(path)?;
    gguf_file::write(&mut f, &md_refs, &t_refs)
}

/// A byte-level BPE vocabulary (256 byte tokens, ChatML specials and a few merges) with a
/// ChatML template.
pub fn bpe_vocab_metadata() -> Vec<(String, Value)> {
    let table = anchor_clip_tokenizer::unicode_to_bytes();
    let mut byte_to_char = vec![' '; 256];
    for (c, b) in &table {
        byte_to_char[*b as usize] = *c;
    }
    let mut tokens: Vec<String> = vec![
        "<|endoftext|>".into(),
        "<|im_start|>".into(),
        "<|im_end|>".into(),
    ];
    let mut types: Vec<Value> = vec![Value::I32(3); 3];
    for c in &byte_to_char {
        tokens.push(c.to_string());
        types.push(Value::I32(1));
    }
    let merges = [
        ("Ġ", "t"),
        ("Ġt", "h"),
        ("Ġth", "e"),
        ("{", "\""),
        ("\"", ":"),
        ("e", "r"),
    ];
    for (a, b) in merges {
        tokens.push(format!("{a}{b}"));
        types.push(Value::I32(1));
    }
    let s = |x: &str| Value::String(x.to_string());
    vec![
        ("tokenizer.ggml.model".into(), s("gpt2")),
        ("tokenizer.ggml.pre".into(), s("smollm")),
        (
            "tokenizer.ggml.tokens".into(),
            Value::Array(tokens.iter().map(|t| s(t)).collect()),
        ),
        ("tokenizer.ggml.token_type".into(), Value::Array(types)),
        (
            "tokenizer.ggml.merges".into(),
            Value::Array(merges.iter().map(|(a, b)| s(&format!("{a} {b}"))).collect()),
        ),
        ("tokenizer.ggml.bos_token_id".into(), Value::U32(1)),
        ("tokenizer.ggml.eos_token_id".into(), Value::U32(2)),
        (
            "tokenizer.chat_template".into(),
            s(
                "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}",
            ),
        ),
    ]
}

/// Phi-3's chat template as its GGUFs carry it.
pub const PHI3_TEMPLATE: &str = "{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\\n' + message['content'] + '<|end|>\\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\\n' + message['content'] + '<|end|>\\n'}}{% elif message['role'] == 'assistant' %}{{'<|assistant|>\\n' + message['content'] + '<|end|>\\n'}}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% else %}{{ eos_token }}{% endif %}";

/// A SentencePiece vocabulary laid out like Phi-3's (`<unk>`, `<s>`, `</s>`, 256 byte
/// tokens, `▁`-spelled pieces with merge scores, then the chat specials), with the Phi-3
/// chat template.
pub fn spm_vocab_metadata() -> Vec<(String, Value)> {
    let mut tokens: Vec<String> = vec!["<unk>".into(), "<s>".into(), "</s>".into()];
    let mut types: Vec<Value> = vec![Value::I32(2), Value::I32(3), Value::I32(3)];
    let mut scores: Vec<Value> = vec![Value::F32(0.0); 3];
    for b in 0..=255u8 {
        tokens.push(format!("<0x{b:02X}>"));
        types.push(Value::I32(6));
        scores.push(Value::F32(0.0));
    }
    // Single characters first, then every prefix of some frequent words as merges: a
    // longer piece scores lower, like SentencePiece's rank order.
    let mut pieces: Vec<String> = vec!["▁".into()];
    pieces.extend((b'!'..=b'~').map(|b| (b as char).to_string()));
    let words = [
        "▁the",
        "▁in",
        "▁a",
        "▁of",
        "▁and",
        "er",
        "on",
        "{\"",
        "\":",
        "\",\"",
        "▁text",
        "▁subjects",
        "▁kind",
        "▁weight",
        "▁person",
        "▁place",
        "▁Caption:",
        "▁news",
        "▁caption",
        "▁photo",
        "▁subject",
        "ing",
        "▁name",
        "▁JSON",
        "▁object",
        "▁event",
        "▁organisation",
        "▁other",
        "▁You",
        "▁read",
        "▁For",
        "▁each",
        "▁with",
    ];
    for w in words {
        let chars: Vec<char> = w.chars().collect();
        for n in 2..=chars.len() {
            let p: String = chars[..n].iter().collect();
            if !pieces.contains(&p) {
                pieces.push(p);
            }
        }
    }
    for (i, p) in pieces.iter().enumerate() {
        tokens.push(p.clone());
        types.push(Value::I32(1));
        scores.push(Value::F32(-(i as f32)));
    }
    for special in [
        "<|endoftext|>",
        "<|assistant|>",
        "<|system|>",
        "<|end|>",
        "<|user|>",
    ] {
        tokens.push(special.into());
        types.push(Value::I32(3));
        scores.push(Value::F32(0.0));
    }
    let eos = tokens
        .iter()
        .position(|t| t == "<|endoftext|>")
        .unwrap_or(2) as u32;
    let s = |x: &str| Value::String(x.to_string());
    vec![
        ("general.name".into(), s("Phi3 tiny")),
        ("tokenizer.ggml.model".into(), s("llama")),
        ("tokenizer.ggml.pre".into(), s("default")),
        (
            "tokenizer.ggml.tokens".into(),
            Value::Array(tokens.iter().map(|t| s(t)).collect()),
        ),
        ("tokenizer.ggml.scores".into(), Value::Array(scores)),
        ("tokenizer.ggml.token_type".into(), Value::Array(types)),
        ("tokenizer.ggml.bos_token_id".into(), Value::U32(1)),
        ("tokenizer.ggml.eos_token_id".into(), Value::U32(eos)),
        ("tokenizer.ggml.unknown_token_id".into(), Value::U32(0)),
        ("tokenizer.ggml.add_bos_token".into(), Value::Bool(true)),
        ("tokenizer.ggml.add_space_prefix".into(), Value::Bool(true)),
        ("tokenizer.chat_template".into(), s(PHI3_TEMPLATE)),
    ]
}

/// Runs `script` under the Python that `ANCHOR_PYTHON` names, with `args` after it and `stdin`
/// on its standard input, and returns its standard output: the reference side of the parity
/// tests against llama.cpp (llama-cpp-python). `Ok(None)` when `ANCHOR_PYTHON` is unset or
/// that Python has no `llama_cpp` (requirements/annotate.txt); an error names any other
/// failure with the script's standard error.
pub fn llama_cpp_output(
    script: &str,
    args: &[&OsStr],
    stdin: &[u8],
) -> std::result::Result<Option<Vec<u8>>, String> {
    let Some(python) = std::env::var_os("ANCHOR_PYTHON") else {
        return Ok(None);
    };
    let mut child = Command::new(&python)
        .args([OsStr::new("-c"), OsStr::new(script)])
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{}: {e}", python.to_string_lossy()))?;
    if let Some(mut input) = child.stdin.take() {
        input
            .write_all(stdin)
            .map_err(|e| format!("writing to llama_cpp: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("waiting for llama_cpp: {e}"))?;
    let err = String::from_utf8_lossy(&out.stderr);
    if out.status.success() {
        Ok(Some(out.stdout))
    } else if err.contains("No module named 'llama_cpp'") {
        Ok(None)
    } else {
        Err(format!("llama_cpp failed: {err}"))
    }
}
