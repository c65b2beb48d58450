//! A quantized llama forward pass for CPU annotation with a long shared prefix.
//!
//! It ports `candle_transformers::models::quantized_llama` (same GGUF keys, RoPE conventions,
//! RMS norms and quantized matmuls) with two changes that matter when every caption is
//! decoded after a ~400-token few-shot prefix:
//!
//! - **In-place KV cache.** candle's model concatenates the whole cache with each new token
//!   (`Tensor::cat`, a copy of every key and value per layer per token). Here each layer owns
//!   one preallocated buffer written with `slice_set`; attention reads a narrowed view. The
//!   shared prefix is written once: a caption resets the length to the prefix length and
//!   overwrites only what follows, so no per-caption copy is needed either.
//! - **Grouped-query attention without `repeat_kv`.** The query heads of one KV group are
//!   folded into the row dimension and multiplied against the group's keys directly, instead
//!   of materialising `n_head / n_kv_head` copies of the cache per token.
//!
//! Three GGUF architectures load: `llama` (SmolLM2, Llama 3), `qwen2` (Qwen2/2.5: the same
//! block with biases on the q/k/v projections and NeoX-style RoPE) and `phi3` (Phi-3/3.5-mini,
//! Phi-4-mini: fused `attn_qkv` and gate|up `ffn_up` matrices, NeoX RoPE, optionally partial
//! rotary and LongRoPE factors). Tests check logits against candle's own `quantized_llama`,
//! `quantized_qwen2` and `quantized_phi3` on random GGUFs.
//!
//! Projections that read the same input are fused into one quantized matmul at load (llama
//! and qwen2 q/k/v and gate/up; phi3 ships them fused): each output element is the same dot
//! product either way, but a decode step makes 4 instead of 7 matmul calls per block, and
//! each call is a fork/join of candle's thread pool.

use candle_core::quantized::{QMatMul, QTensor, gguf_file};
use candle_core::{DType, Device, IndexOp, Module, Result, Tensor};
use candle_transformers::quantized_nn::RmsNorm;

/// The GGUF architectures [`Llama::from_gguf`] loads.
pub const SUPPORTED_ARCHITECTURES: &[&str] = &["llama", "qwen2", "phi3"];

/// Positions the RoPE tables cover.
pub const MAX_SEQ_LEN: usize = 4096;

/// Projections of one input: either one matmul whose output rows are the parts side by side
/// (split by `widths`), or one matmul per part (when the parts' dtypes differ).
enum Proj {
    Fused {
        w: QMatMul,
        bias: Option<Tensor>,
        widths: Vec<usize>,
    },
    Split {
        ws: Vec<QMatMul>,
        biases: Vec<Option<Tensor>>,
    },
}

impl Proj {
    /// Fuses `parts` (with their optional biases) when they share a dtype and a row length.
    fn new(parts: Vec<(QTensor, Option<Tensor>)>, device: &Device) -> Result<Self> {
        let dtype = parts.first().map(|(t, _)| t.dtype());
        let cols = parts
            .first()
            .and_then(|(t, _)| t.shape().dims().last().copied());
        let fusable = parts.len() > 1
            && parts.iter().all(|(t, _)| {
                Some(t.dtype()) == dtype
                    && t.shape().rank() == 2
                    && t.shape().dims().last().copied() == cols
            });
        let (Some(dtype), Some(cols), true) = (dtype, cols, fusable) else {
            let (ws, biases): (Vec<_>, Vec<_>) = parts
                .into_iter()
                .map(|(t, b)| Ok((QMatMul::from_qtensor(t)?, b)))
                .collect::<Result<Vec<_>>>()?
                .into_iter()
                .unzip();
            return Ok(Proj::Split { ws, biases });
        };
        let widths: Vec<usize> = parts.iter().map(|(t, _)| t.shape().dims()[0]).collect();
        // Row-major blocks: concatenating the raw bytes stacks the rows unchanged.
        let mut bytes = Vec::new();
        for (t, _) in &parts {
            bytes.extend_from_slice(&t.data()?);
        }
        let rows = widths.iter().sum();
        let fused = candle_core::quantized::ggml_file::qtensor_from_ggml(
            dtype,
            &bytes,
            vec![rows, cols],
            device,
        )?;
        let bias = if parts.iter().any(|(_, b)| b.is_some()) {
            let bs = parts
                .iter()
                .zip(&widths)
                .map(|((_, b), &w)| match b {
                    Some(b) => Ok(b.clone()),
                    None => Tensor::zeros(w, DType::F32, device),
                })
                .collect::<Result<Vec<_>>>()?;
            Some(Tensor::cat(&bs, 0)?)
        } else {
            None
        };
        Ok(Proj::Fused {
            w: QMatMul::from_qtensor(fused)?,
            bias,
            widths,
        })
    }

    /// A matrix whose rows already hold the parts (phi3's `attn_qkv`, `ffn_up`).
    fn prefused(t: QTensor, widths: Vec<usize>) -> Result<Self> {
        let rows = t.shape().dims().first().copied().unwrap_or(0);
        if rows != widths.iter().sum::<usize>() {
            candle_core::bail!(
                "fused matrix has {rows} rows, expected {} ({widths:?})",
                widths.iter().sum::<usize>()
            );
        }
        Ok(Proj::Fused {
            w: QMatMul::from_qtensor(t)?,
            bias: None,
            widths,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Vec<Tensor>> {
        match self {
            Proj::Fused { w, bias, widths } => {
                let y = with_bias(qmatmul(w, x)?, bias.as_ref())?;
                let mut at = 0;
                let mut out = Vec::with_capacity(widths.len());
                for &n in widths {
                    out.push(y.narrow(candle_core::D::Minus1, at, n)?);
                    at += n;
                }
                Ok(out)
            }
            Proj::Split { ws, biases } => ws
                .iter()
                .zip(biases)
                .map(|(w, b)| with_bias(qmatmul(w, x)?, b.as_ref()))
                .collect(),
        }
    }

    #[cfg(test)]
    fn drop_biases(&mut self) {
        match self {
            Proj::Fused { bias, .. } => *bias = None,
            Proj::Split { biases, .. } => biases.iter_mut().for_each(|b| *b = None),
        }
    }
}

/// Adds a projection's bias, when it has one.
fn with_bias(x: Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    match bias {
        Some(b) => x.broadcast_add(b),
        None => Ok(x),
    }
}

use candle_core::quantized::k_quants::{BlockQ8_0, GgmlType};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, TryRecvError, channel};
use std::sync::{Arc, OnceLock};

/// The rows of a Q8_0 matrix `(n, k)` as blocks, borrowed from its storage.
fn q8_rows(t: &QTensor, n: usize, k: usize) -> Option<std::borrow::Cow<'_, [u8]>> {
    let data = t.data().ok()?;
    let expected = n * (k / BlockQ8_0::BLCK_SIZE) * std::mem::size_of::<BlockQ8_0>();
    let aligned = (data.as_ptr() as usize).is_multiple_of(std::mem::align_of::<BlockQ8_0>());
    (data.len() == expected && aligned).then_some(data)
}

/// Dot products of the rows of chunks claimed from `next` (each `chunk` rows) with `xq`,
/// handed to `sink(first_row, values)`.
fn run_chunks(
    data: &[u8],
    xq: &[BlockQ8_0],
    (n, k, chunk): (usize, usize, usize),
    next: &AtomicUsize,
    mut sink: impl FnMut(usize, Vec<f32>) -> bool,
) {
    let kb = k / BlockQ8_0::BLCK_SIZE;
    // SAFETY: `data` is a Q8_0 tensor's own `BlockQ8_0` storage (`#[repr(C)]`: an f16 and
    // 32 i8, valid for any bit pattern); `q8_rows` checked its length and alignment.
    let rows: &[BlockQ8_0] =
        unsafe { std::slice::from_raw_parts(data.as_ptr().cast::<BlockQ8_0>(), n * kb) };
    loop {
        let first = next.fetch_add(1, Ordering::Relaxed) * chunk;
        if first >= n {
            return;
        }
        let vals = (first..n.min(first + chunk))
            .map(|r| BlockQ8_0::vec_dot(k, &rows[r * kb..(r + 1) * kb], xq))
            .collect();
        if !sink(first, vals) {
            return;
        }
    }
}

/// Receives from `rx`, polling for up to `spin` before blocking: consecutive matvecs of a
/// decode step are microseconds apart, and a futex wake-up per handoff costs about as much
/// as the work. Unlike candle's pool the spin is bounded, so a descheduled peer costs at most
/// `spin`, not a time slice.
fn recv_spinning<T>(rx: &Receiver<T>, spin: std::time::Duration) -> Option<T> {
    let start = std::time::Instant::now();
    let mut polls = 0u32;
    loop {
        match rx.try_recv() {
            Ok(v) => return Some(v),
            Err(TryRecvError::Disconnected) => return None,
            Err(TryRecvError::Empty) => {}
        }
        polls += 1;
        if polls.is_multiple_of(64) && start.elapsed() >= spin {
            return rx.recv().ok();
        }
        std::hint::spin_loop();
    }
}

/// One matrix-vector product shared with the helper thread.
struct Job {
    w: Arc<QTensor>,
    xq: Arc<Vec<BlockQ8_0>>,
    shape: (usize, usize, usize),
    next: Arc<AtomicUsize>,
    done: Sender<(usize, Vec<f32>)>,
}

/// The helper thread of [`qmatmul`] (none on a single core).
fn helper() -> Option<&'static Sender<Job>> {
    static HELPER: OnceLock<Option<Sender<Job>>> = OnceLock::new();
    HELPER
        .get_or_init(|| {
            if std::thread::available_parallelism().map_or(1, |p| p.get()) < 2 {
                return None;
            }
            let (tx, rx) = channel::<Job>();
            std::thread::Builder::new()
                .name("anchor-matvec".into())
                .spawn(move || {
                    let spin = std::time::Duration::from_micros(200);
                    while let Some(job) = recv_spinning(&rx, spin) {
                        let (n, k, _) = job.shape;
                        let Some(data) = q8_rows(&job.w, n, k) else {
                            continue;
                        };
                        run_chunks(&data, &job.xq, job.shape, &job.next, |first, vals| {
                            job.done.send((first, vals)).is_ok()
                        });
                    }
                })
                .ok()?;
            Some(tx)
        })
        .as_ref()
}

/// `w.forward(x)`, with decode steps (one position) of Q8_0 matrices computed here instead
/// of in candle's thread pool.
///
/// candle forks and joins its pool for every quantized matmul, and its caller spins until
/// every worker has checked in. A decode step makes ~4 matmuls per block of a few
/// microseconds each; on a 2-core machine shared with other processes a descheduled worker
/// leaves the caller spinning for a whole time slice (perf: 64% of decode time). Here rows
/// are cut into chunks claimed from a shared cursor by the caller and one helper thread: the
/// caller never waits for a helper that has not started (it takes the chunks itself), and
/// waits for one that has with a bounded spin, then blocks.
///
/// Each output is candle's own Q8_0 dot product (`vec_dot`) of the row and of the input
/// quantised by `from_float`, exactly what candle's unpacked path computes, so the logits
/// are bit-identical. Shapes that candle routes to its repacked VNNI kernels (`k` a multiple
/// of 256, `n` of 16) give slightly different sums there, so they stay with candle.
fn qmatmul(w: &QMatMul, x: &Tensor) -> Result<Tensor> {
    use candle_core::quantized::GgmlDType;
    let QMatMul::QTensor(t) = w else {
        return w.forward(x);
    };
    let (n, k) = t.shape().dims2()?;
    let positions = x.elem_count() / k.max(1);
    if t.dtype() != GgmlDType::Q8_0
        || positions != 1
        || x.dtype() != DType::F32
        || !t.device().is_cpu()
        || (k.is_multiple_of(256) && n.is_multiple_of(16))
        || !k.is_multiple_of(BlockQ8_0::BLCK_SIZE)
    {
        return w.forward(x);
    }
    let Some(data) = q8_rows(t, n, k) else {
        return w.forward(x);
    };
    let xs = x.flatten_all()?.to_vec1::<f32>()?;
    let mut xq = vec![BlockQ8_0::zeros(); k / BlockQ8_0::BLCK_SIZE];
    BlockQ8_0::from_float(&xs, &mut xq);
    let xq = Arc::new(xq);
    // ~32 chunks: small enough to balance, large enough that claiming is negligible.
    let chunk = n.div_ceil(32).max(16);
    let shape = (n, k, chunk);
    let next = Arc::new(AtomicUsize::new(0));
    let (done_tx, done_rx) = channel();
    if let Some(h) = helper() {
        let job = Job {
            w: t.clone(),
            xq: xq.clone(),
            shape,
            next: next.clone(),
            done: done_tx,
        };
        // A helper that is gone leaves every chunk to this thread.
        let _ = h.send(job);
    } else {
        drop(done_tx);
    }
    let mut out = vec![0f32; n];
    let mut filled = 0;
    run_chunks(&data, &xq, shape, &next, |first, vals| {
        filled += vals.len();
        out[first..first + vals.len()].copy_from_slice(&vals);
        true
    });
    // Chunks the helper claimed: it finishes them (or its sender drops on a panic).
    while filled < n {
        let Some((first, vals)) = recv_spinning(&done_rx, std::time::Duration::from_micros(50))
        else {
            candle_core::bail!("the matvec helper thread stopped mid-product");
        };
        filled += vals.len();
        out[first..first + vals.len()].copy_from_slice(&vals);
    }
    let mut dims = x.dims().to_vec();
    if let Some(last) = dims.last_mut() {
        *last = n;
    }
    Tensor::from_vec(out, dims, x.device())
}

struct Layer {
    /// Query, key and value projections.
    qkv: Proj,
    wo: QMatMul,
    /// Gate and up projections.
    gate_up: Proj,
    down: QMatMul,
    attn_norm: RmsNorm,
    ffn_norm: RmsNorm,
}

/// The model's weights (immutable; the KV cache lives in [`KvCache`]).
pub struct Llama {
    embed: Tensor,
    layers: Vec<Layer>,
    norm: RmsNorm,
    output: QMatMul,
    n_head: usize,
    n_kv_head: usize,
    head_dim: usize,
    /// Leading dimensions of each head that RoPE rotates (the rest pass through).
    rope_dim: usize,
    rope_neox: bool,
    cos: Tensor,
    sin: Tensor,
    /// Longest context computed exactly (see [`Llama::max_context`]).
    max_context: usize,
    device: Device,
}

/// Per-layer key and value buffers `(1, n_kv_head, capacity, head_dim)` and the number of
/// positions filled.
pub struct KvCache {
    k: Vec<Tensor>,
    v: Vec<Tensor>,
    len: usize,
    capacity: usize,
}

impl KvCache {
    /// Positions filled.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forgets every position from `len` on (a later forward overwrites them).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }
}

/// RoPE angle tables: `cos`, `sin` of shape `(MAX_SEQ_LEN, rope_dim / 2)`.
///
/// `factors` divide the per-pair frequencies (Llama 3.1 `rope_freqs`, LongRoPE short
/// factors), `freq_scale` scales positions (linear scaling) and `attn_factor` scales both
/// tables (LongRoPE's attention factor), all as llama.cpp's `ggml_rope_ext` applies them.
fn rope_tables(
    rope_dim: usize,
    freq_base: f32,
    freq_scale: f32,
    factors: Option<&[f32]>,
    attn_factor: f32,
    device: &Device,
) -> Result<(Tensor, Tensor)> {
    let theta: Vec<f32> = (0..rope_dim)
        .step_by(2)
        .enumerate()
        .map(|(j, i)| {
            let f = factors.and_then(|f| f.get(j)).copied().unwrap_or(1.0);
            freq_scale / (freq_base.powf(i as f32 / rope_dim as f32) * f)
        })
        .collect();
    let theta = Tensor::new(theta.as_slice(), device)?;
    let idx = Tensor::arange(0, MAX_SEQ_LEN as u32, device)?
        .to_dtype(DType::F32)?
        .reshape((MAX_SEQ_LEN, 1))?
        .matmul(&theta.reshape((1, theta.elem_count()))?)?;
    let (cos, sin) = (idx.cos()?, idx.sin()?);
    if attn_factor == 1.0 {
        Ok((cos, sin))
    } else {
        Ok(((cos * attn_factor as f64)?, (sin * attn_factor as f64)?))
    }
}

/// A GGUF F32 vector (RoPE factors) as floats.
fn f32_vector<R: std::io::Read + std::io::Seek>(
    ct: &gguf_file::Content,
    reader: &mut R,
    name: &str,
    len: usize,
) -> Result<Vec<f32>> {
    let v = ct
        .tensor(reader, name, &Device::Cpu)?
        .dequantize(&Device::Cpu)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    if v.len() != len {
        candle_core::bail!("{name} has {} values, expected {len}", v.len());
    }
    Ok(v)
}

impl Llama {
    /// Loads a `llama`, `qwen2` or `phi3` GGUF whose tensors are read from `reader`.
    pub fn from_gguf<R: std::io::Read + std::io::Seek>(
        ct: &gguf_file::Content,
        reader: &mut R,
        device: &Device,
    ) -> Result<Self> {
        let arch = ct
            .metadata
            .get("general.architecture")
            .and_then(|v| v.to_string().ok())
            .cloned()
            .unwrap_or_default();
        if !SUPPORTED_ARCHITECTURES.contains(&arch.as_str()) {
            candle_core::bail!(
                "architecture {arch:?} is not supported (supported: {})",
                SUPPORTED_ARCHITECTURES.join(", ")
            );
        }
        let phi3 = arch == "phi3";
        // Hyper-parameters live under the architecture's own prefix (`qwen2.block_count`).
        let key = |k: &str| format!("{arch}.{k}");
        let md = |k: &str| {
            let key = key(k);
            ct.metadata
                .get(&key)
                .ok_or_else(|| candle_core::Error::Msg(format!("cannot find {key} in metadata")))
        };
        let n_head = md("attention.head_count")?.to_u32()? as usize;
        let n_kv_head = md("attention.head_count_kv")?.to_u32()? as usize;
        let blocks = md("block_count")?.to_u32()? as usize;
        let hidden = md("embedding_length")?.to_u32()? as usize;
        let eps = md("attention.layer_norm_rms_epsilon")?.to_f32()? as f64;
        let freq_base = md("rope.freq_base")
            .and_then(|v| v.to_f32())
            .unwrap_or(10000.0);
        if n_kv_head == 0
            || n_head == 0
            || !n_head.is_multiple_of(n_kv_head)
            || !hidden.is_multiple_of(n_head)
        {
            candle_core::bail!("bad head counts: {n_head} heads, {n_kv_head} kv heads");
        }
        let head_dim = hidden / n_head;
        // Qwen2 files usually omit the RoPE width: it is the whole head. Phi-4-mini rotates
        // only the leading 3/4 of each head.
        let rope_dim = match md("rope.dimension_count") {
            Ok(v) => v.to_u32()? as usize,
            Err(_) => head_dim,
        };
        if rope_dim == 0 || rope_dim > head_dim || !rope_dim.is_multiple_of(2) {
            candle_core::bail!("rope.dimension_count {rope_dim} does not fit heads of {head_dim}");
        }
        if ct.metadata.contains_key(&key("expert_count")) {
            candle_core::bail!("mixture-of-experts models are not supported");
        }
        let mut max_context = MAX_SEQ_LEN;

        // RoPE scaling: what llama.cpp applies is applied here; anything else is refused by
        // its key rather than ignored.
        let mut freq_scale = 1f32;
        let scaling_type = md("rope.scaling.type")
            .ok()
            .and_then(|v| v.to_string().ok())
            .cloned();
        let linear_factor = md("rope.scaling.factor")
            .or_else(|_| md("rope.scale_linear"))
            .ok()
            .map(|v| v.to_f32())
            .transpose()?;
        match (scaling_type.as_deref(), linear_factor) {
            (None | Some("none"), None) => {}
            (None | Some("linear"), f) => {
                if let Some(f) = f.filter(|&f| f != 0.0) {
                    freq_scale = 1.0 / f;
                }
            }
            (Some("longrope"), _) if phi3 => {}
            (Some(other), _) => candle_core::bail!(
                "{} = {other:?} is not supported (supported: none, linear{})",
                key("rope.scaling.type"),
                if phi3 { ", longrope" } else { "" }
            ),
        }
        let mut factors = None;
        if ct.tensor_infos.contains_key("rope_freqs.weight") {
            // Llama 3.1's frequency factors (one per rotated pair).
            factors = Some(f32_vector(ct, reader, "rope_freqs.weight", rope_dim / 2)?);
        }
        let mut attn_factor = 1f32;
        if phi3 {
            let short = ct.tensor_infos.contains_key("rope_factors_short.weight");
            let long = ct.tensor_infos.contains_key("rope_factors_long.weight");
            if short != long {
                candle_core::bail!(
                    "LongRoPE needs both rope_factors_short.weight and rope_factors_long.weight"
                );
            }
            if short {
                // llama.cpp picks the long factors only for contexts past the original
                // length; contexts here are capped there, so the short factors are exact.
                let orig = md("rope.scaling.original_context_length")
                    .map_err(|_| {
                        candle_core::Error::Msg(format!(
                            "LongRoPE factors present but {} is missing",
                            key("rope.scaling.original_context_length")
                        ))
                    })?
                    .to_u32()? as usize;
                max_context = max_context.min(orig);
                factors = Some(f32_vector(
                    ct,
                    reader,
                    "rope_factors_short.weight",
                    rope_dim / 2,
                )?);
                attn_factor = md("rope.scaling.attn_factor")
                    .map_err(|_| {
                        candle_core::Error::Msg(format!(
                            "LongRoPE factors present but {} is missing",
                            key("rope.scaling.attn_factor")
                        ))
                    })?
                    .to_f32()?;
            }
            // Phi-3-mini uses a sliding window (2047): within it attention is plain causal.
            if let Ok(w) = md("attention.sliding_window") {
                let w = w.to_u32()? as usize;
                if w > 0 {
                    max_context = max_context.min(w);
                }
            }
        } else if ct.tensor_infos.contains_key("rope_factors_short.weight") {
            candle_core::bail!("rope_factors_short.weight is only supported for phi3");
        }
        // llama.cpp's mapping: llama uses interleaved (NORM) RoPE, qwen2 and phi3 NeoX.
        let rope_neox = arch != "llama";
        let (cos, sin) = rope_tables(
            rope_dim,
            freq_base,
            freq_scale,
            factors.as_deref(),
            attn_factor,
            device,
        )?;

        let embed_q = ct.tensor(reader, "token_embd.weight", device)?;
        let embed = embed_q.dequantize(device)?;
        let norm = RmsNorm::from_qtensor(ct.tensor(reader, "output_norm.weight", device)?, eps)?;
        let output = match ct.tensor(reader, "output.weight", device) {
            Ok(t) => t,
            Err(_) => embed_q,
        };
        let kv_width = n_kv_head * head_dim;
        let mut layers = Vec::with_capacity(blocks);
        for i in 0..blocks {
            let mut t = |n: &str| ct.tensor(reader, &format!("blk.{i}.{n}"), device);
            let (qkv, gate_up) = if phi3 {
                let ff = md("feed_forward_length")?.to_u32()? as usize;
                (
                    Proj::prefused(t("attn_qkv.weight")?, vec![hidden, kv_width, kv_width])?,
                    Proj::prefused(t("ffn_up.weight")?, vec![ff, ff])?,
                )
            } else {
                let mut parts = Vec::with_capacity(3);
                for n in ["attn_q", "attn_k", "attn_v"] {
                    let w = t(&format!("{n}.weight"))?;
                    let b = if arch == "qwen2" {
                        Some(t(&format!("{n}.bias"))?.dequantize(device)?)
                    } else {
                        None
                    };
                    parts.push((w, b));
                }
                let qkv = Proj::new(parts, device)?;
                let gate_up = Proj::new(
                    vec![(t("ffn_gate.weight")?, None), (t("ffn_up.weight")?, None)],
                    device,
                )?;
                (qkv, gate_up)
            };
            let wo = QMatMul::from_qtensor(t("attn_output.weight")?)?;
            let down = QMatMul::from_qtensor(t("ffn_down.weight")?)?;
            let attn_norm = RmsNorm::from_qtensor(t("attn_norm.weight")?, eps)?;
            let ffn_norm = RmsNorm::from_qtensor(t("ffn_norm.weight")?, eps)?;
            layers.push(Layer {
                qkv,
                wo,
                gate_up,
                down,
                attn_norm,
                ffn_norm,
            });
        }
        Ok(Llama {
            embed,
            layers,
            norm,
            output: QMatMul::from_qtensor(output)?,
            n_head,
            n_kv_head,
            head_dim,
            rope_dim,
            rope_neox,
            cos,
            sin,
            max_context,
            device: device.clone(),
        })
    }

    /// The longest context (prompt plus answer) this model runs exactly: [`MAX_SEQ_LEN`],
    /// or less where the file's sliding window or LongRoPE's original context is shorter.
    pub fn max_context(&self) -> usize {
        self.max_context
    }

    /// An empty cache with room for `capacity` positions (it grows when needed).
    pub fn cache(&self, capacity: usize) -> Result<KvCache> {
        let capacity = capacity.clamp(1, self.max_context);
        let shape = (1, self.n_kv_head, capacity, self.head_dim);
        let mut k = Vec::with_capacity(self.layers.len());
        let mut v = Vec::with_capacity(self.layers.len());
        for _ in &self.layers {
            k.push(Tensor::zeros(shape, DType::F32, &self.device)?);
            v.push(Tensor::zeros(shape, DType::F32, &self.device)?);
        }
        Ok(KvCache {
            k,
            v,
            len: 0,
            capacity,
        })
    }

    fn grow(&self, cache: &mut KvCache, needed: usize) -> Result<()> {
        if needed <= cache.capacity {
            return Ok(());
        }
        if needed > self.max_context {
            candle_core::bail!(
                "context of {needed} positions exceeds this model's {}",
                self.max_context
            );
        }
        let capacity = (cache.capacity * 2).max(needed).min(self.max_context);
        let extra = (1, self.n_kv_head, capacity - cache.capacity, self.head_dim);
        for t in cache.k.iter_mut().chain(cache.v.iter_mut()) {
            let pad = Tensor::zeros(extra, DType::F32, &self.device)?;
            *t = Tensor::cat(&[&*t, &pad], 2)?;
        }
        cache.capacity = capacity;
        Ok(())
    }

    fn rope(&self, x: &Tensor, pos: usize) -> Result<Tensor> {
        let (_, _, seq, hd) = x.dims4()?;
        let cos = self.cos.narrow(0, pos, seq)?;
        let sin = self.sin.narrow(0, pos, seq)?;
        let rotate = |x: &Tensor| {
            let x = x.contiguous()?;
            if self.rope_neox {
                candle_nn::rotary_emb::rope(&x, &cos, &sin)
            } else {
                candle_nn::rotary_emb::rope_i(&x, &cos, &sin)
            }
        };
        if self.rope_dim == hd {
            return rotate(x);
        }
        // Partial rotary: llama.cpp rotates the leading `rope_dim` dimensions of each head.
        let rotated = rotate(&x.narrow(3, 0, self.rope_dim)?)?;
        let rest = x.narrow(3, self.rope_dim, hd - self.rope_dim)?;
        Tensor::cat(&[&rotated, &rest], 3)?.contiguous()
    }

    /// Runs `ids` at the cache's current position and returns the last position's logits
    /// `(vocab,)` as F32.
    pub fn forward(&self, cache: &mut KvCache, ids: &[u32]) -> Result<Tensor> {
        let seq = ids.len();
        if seq == 0 {
            candle_core::bail!("forward on no tokens");
        }
        let pos = cache.len;
        self.grow(cache, pos + seq)?;
        let kv_len = pos + seq;
        let n_rep = self.n_head / self.n_kv_head;
        let hd = self.head_dim;
        let ids_t = Tensor::new(ids, &self.device)?;
        let mut x = self.embed.index_select(&ids_t, 0)?.unsqueeze(0)?;
        // Causal mask over (query, key) for the new positions; the prefix is fully visible.
        let mask = if seq > 1 {
            let m: Vec<f32> = (0..seq)
                .flat_map(|i| {
                    (0..kv_len).map(move |j| if j > pos + i { f32::NEG_INFINITY } else { 0.0 })
                })
                .collect();
            // Rows are (rep, query) pairs after folding the group into the row dimension.
            let m = Tensor::from_vec(m, (1, seq, kv_len), &self.device)?
                .repeat((n_rep, 1, 1))?
                .reshape((1, 1, n_rep * seq, kv_len))?;
            Some(m)
        } else {
            None
        };
        let scale = 1.0 / (hd as f64).sqrt();
        for (l, layer) in self.layers.iter().enumerate() {
            let residual = x.clone();
            let h = layer.attn_norm.forward(&x)?;
            let qkv = layer.qkv.forward(&h)?;
            let [q, k, v] = qkv.as_slice() else {
                candle_core::bail!("attention projection gave {} parts", qkv.len());
            };
            let q = q.reshape((1, seq, self.n_head, hd))?.transpose(1, 2)?;
            let k = k.reshape((1, seq, self.n_kv_head, hd))?.transpose(1, 2)?;
            let v = v
                .reshape((1, seq, self.n_kv_head, hd))?
                .transpose(1, 2)?
                .contiguous()?;
            let q = self.rope(&q, pos)?;
            let k = self.rope(&k, pos)?;
            cache.k[l].slice_set(&k, 2, pos)?;
            cache.v[l].slice_set(&v, 2, pos)?;
            let keys = cache.k[l].narrow(2, 0, kv_len)?;
            let values = cache.v[l].narrow(2, 0, kv_len)?;
            // (1, n_head, seq, hd) -> (1, n_kv, n_rep * seq, hd): a group's heads are adjacent.
            let q = q.reshape((1, self.n_kv_head, n_rep * seq, hd))?;
            let att = (q.matmul(&keys.t()?)? * scale)?;
            let att = match &mask {
                Some(m) => att.broadcast_add(m)?,
                None => att,
            };
            let att = candle_nn::ops::softmax_last_dim(&att)?;
            let y = att
                .matmul(&values)?
                .reshape((1, self.n_head, seq, hd))?
                .transpose(1, 2)?
                .reshape((1, seq, self.n_head * hd))?;
            let x1 = (qmatmul(&layer.wo, &y)? + residual)?;
            let h = layer.ffn_norm.forward(&x1)?;
            let gu = layer.gate_up.forward(&h)?;
            let [gate, up] = gu.as_slice() else {
                candle_core::bail!("feed-forward projection gave {} parts", gu.len());
            };
            let gate = candle_nn::ops::silu(gate)?;
            x = (qmatmul(&layer.down, &(gate * up)?)? + x1)?;
        }
        cache.len = kv_len;
        let x = self.norm.forward(&x)?;
        let x = x.i((.., seq - 1, ..))?;
        qmatmul(&self.output, &x)?
            .squeeze(0)?
            .to_dtype(DType::F32)?
            .flatten_all()
    }

    /// Vocabulary size (rows of the embedding).
    pub fn vocab(&self) -> usize {
        self.embed.dim(0).unwrap_or(0)
    }

    /// Number of transformer blocks.
    pub fn blocks(&self) -> usize {
        self.layers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_transformers::models::quantized_llama::ModelWeights;
    use std::fs::File;

    fn max_diff(a: &Tensor, b: &Tensor) -> f32 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .flatten_all()
            .unwrap()
            .max(0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap()
    }

    #[test]
    fn matches_candle_quantized_llama_with_a_reused_prefix() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny.gguf");
        crate::testing::write_tiny_gguf(&path, 7).unwrap();
        let dev = Device::Cpu;
        let ours = load(&path).unwrap();
        let (ct, mut f) = open_gguf(&path);
        let mut theirs = ModelWeights::from_gguf(ct, &mut f, &dev).unwrap();

        let prefix: Vec<u32> = (3..40).collect();
        let a: Vec<u32> = vec![50, 61, 72, 83, 94];
        let b: Vec<u32> = vec![100, 7, 9];
        let run_theirs = |m: &mut ModelWeights, seqs: &[&[u32]]| {
            let mut pos = 0;
            let mut last = None;
            for s in seqs {
                let t = Tensor::new(*s, &dev).unwrap().unsqueeze(0).unwrap();
                last = Some(m.forward(&t, pos).unwrap().squeeze(0).unwrap());
                pos += s.len();
            }
            last.unwrap()
        };
        // Capacity smaller than needed exercises growth.
        let mut cache = ours.cache(16).unwrap();
        ours.forward(&mut cache, &prefix).unwrap();
        let plen = cache.len();
        for (suffix, steps) in [(&a, [11u32, 12, 13]), (&b, [21, 22, 23])] {
            cache.truncate(plen);
            let mut mine = ours.forward(&mut cache, suffix).unwrap();
            let mut seqs: Vec<&[u32]> = vec![&prefix, suffix.as_slice()];
            let want = run_theirs(&mut theirs, &seqs);
            assert!(max_diff(&mine, &want) < 1e-3, "{}", max_diff(&mine, &want));
            // Single-token steps and a two-token jump.
            let extra = [&steps[..1], &steps[1..]];
            for e in extra {
                mine = ours.forward(&mut cache, e).unwrap();
                seqs.push(e);
                let want = run_theirs(&mut theirs, &seqs);
                assert!(max_diff(&mine, &want) < 1e-3, "{}", max_diff(&mine, &want));
            }
        }
        assert_eq!(ours.vocab(), mine_vocab(&path));
        assert_eq!(ours.blocks(), 2);
    }

    #[test]
    fn qwen2_matches_candle_quantized_qwen2() {
        use candle_transformers::models::quantized_qwen2::ModelWeights as Qwen2;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny-qwen2.gguf");
        crate::testing::write_tiny_gguf_arch(&path, 11, "qwen2").unwrap();
        let dev = Device::Cpu;
        let ours = load(&path).unwrap();
        let (ct, mut f) = open_gguf(&path);
        let mut theirs = Qwen2::from_gguf(ct, &mut f, &dev).unwrap();

        let prompt: Vec<u32> = (3..30).collect();
        let mut cache = ours.cache(8).unwrap();
        let mine = ours.forward(&mut cache, &prompt).unwrap();
        let t = Tensor::new(prompt.as_slice(), &dev)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let want = theirs.forward(&t, 0).unwrap().flatten_all().unwrap();
        assert_eq!(mine.dims(), want.dims());
        assert!(max_diff(&mine, &want) < 1e-3, "{}", max_diff(&mine, &want));
        // One more token through the cache.
        let mine = ours.forward(&mut cache, &[42]).unwrap();
        let t = Tensor::new(&[42u32], &dev).unwrap().unsqueeze(0).unwrap();
        let want = theirs
            .forward(&t, prompt.len())
            .unwrap()
            .flatten_all()
            .unwrap();
        assert!(max_diff(&mine, &want) < 1e-3, "{}", max_diff(&mine, &want));
        // The biases are real: dropping them changes the logits.
        let mut no_bias = load(&path).unwrap();
        for layer in &mut no_bias.layers {
            layer.qkv.drop_biases();
        }
        let mut cache = no_bias.cache(8).unwrap();
        no_bias.forward(&mut cache, &prompt).unwrap();
        let other = no_bias.forward(&mut cache, &[42]).unwrap();
        assert!(max_diff(&other, &mine) > 1e-3);
    }

    #[test]
    fn decode_matvec_is_bit_identical_to_candle() {
        use candle_core::quantized::GgmlDType;
        let dev = Device::Cpu;
        let mut seed = 5u64;
        let mut rand = |n: usize| -> Vec<f32> {
            (0..n)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((seed >> 40) as f32 / (1u64 << 24) as f32) - 0.5
                })
                .collect()
        };
        // SmolLM2's shapes: q/k/v fused, the threaded vocabulary projection, a repacked
        // shape left to candle, and a Q4_1 matrix (not ours either).
        for (n, k, dtype) in [
            (960, 576, GgmlDType::Q8_0),
            (16384, 576, GgmlDType::Q8_0),
            (576, 1536, GgmlDType::Q8_0),
            (64, 64, GgmlDType::Q4_1),
        ] {
            let w = Tensor::from_vec(rand(n * k), (n, k), &dev).unwrap();
            let w = QMatMul::from_qtensor(QTensor::quantize(&w, dtype).unwrap()).unwrap();
            let x = Tensor::from_vec(rand(k), (1, 1, k), &dev).unwrap();
            let ours = qmatmul(&w, &x).unwrap();
            let theirs = w.forward(&x).unwrap();
            assert_eq!(ours.dims(), &[1, 1, n]);
            assert_eq!(
                ours.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                theirs.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
                "{n}x{k} {dtype:?}"
            );
            // Several positions go to candle unchanged.
            let x2 = Tensor::from_vec(rand(2 * k), (1, 2, k), &dev).unwrap();
            assert_eq!(
                max_diff(&qmatmul(&w, &x2).unwrap(), &w.forward(&x2).unwrap()),
                0.0
            );
        }
    }

    #[test]
    fn other_architectures_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny-gemma.gguf");
        crate::testing::write_tiny_gguf_arch(&path, 3, "gemma").unwrap();
        let err = load(&path).err().expect("gemma must be refused");
        assert!(
            err.to_string().contains("\"gemma\" is not supported"),
            "{err}"
        );
    }

    /// The GGUF header of `path` and the file it was read from, as candle's loaders take them.
    fn open_gguf(path: &std::path::Path) -> (gguf_file::Content, File) {
        let mut f = File::open(path).unwrap();
        let ct = gguf_file::Content::read(&mut f).unwrap();
        (ct, f)
    }

    fn load(path: &std::path::Path) -> Result<Llama> {
        let (ct, mut f) = open_gguf(path);
        Llama::from_gguf(&ct, &mut f, &Device::Cpu)
    }

    /// Logits of `prompt` then of one cached step.
    fn two_steps(m: &Llama, prompt: &[u32], next: u32) -> (Tensor, Tensor) {
        let mut cache = m.cache(8).unwrap();
        let a = m.forward(&mut cache, prompt).unwrap();
        let b = m.forward(&mut cache, &[next]).unwrap();
        (a, b)
    }

    #[test]
    fn phi3_matches_candle_quantized_phi3() {
        use candle_transformers::models::quantized_phi3::ModelWeights as Phi3;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny-phi3.gguf");
        crate::testing::write_tiny_gguf_arch(&path, 13, "phi3").unwrap();
        let dev = Device::Cpu;
        let ours = load(&path).unwrap();
        let (ct, mut f) = open_gguf(&path);
        let mut theirs = Phi3::from_gguf(false, ct, &mut f, &dev).unwrap();

        let prompt: Vec<u32> = (3..40).collect();
        let (mine, mine_next) = two_steps(&ours, &prompt, 77);
        let t = Tensor::new(prompt.as_slice(), &dev)
            .unwrap()
            .unsqueeze(0)
            .unwrap();
        let want = theirs.forward(&t, 0).unwrap().flatten_all().unwrap();
        assert_eq!(mine.dims(), want.dims());
        assert!(max_diff(&mine, &want) < 1e-3, "{}", max_diff(&mine, &want));
        let t = Tensor::new(&[77u32], &dev).unwrap().unsqueeze(0).unwrap();
        let want = theirs
            .forward(&t, prompt.len())
            .unwrap()
            .flatten_all()
            .unwrap();
        assert!(
            max_diff(&mine_next, &want) < 1e-3,
            "{}",
            max_diff(&mine_next, &want)
        );
        // The logits are not trivially equal across positions.
        assert!(max_diff(&mine, &mine_next) > 1e-3);
        assert_eq!(ours.max_context(), 2047);
    }

    #[test]
    fn phi3_rope_scaling_is_applied_or_refused_by_key() {
        use gguf_file::Value;
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, md: Vec<(String, Value)>, tensors: &[(&str, Vec<f32>)]| {
            let p = dir.path().join(name);
            crate::testing::write_tiny_gguf_with(&p, 17, "phi3", &md, tensors).unwrap();
            p
        };
        let prompt: Vec<u32> = (3..30).collect();
        let plain = load(&write("plain.gguf", vec![], &[])).unwrap();
        let (base, _) = two_steps(&plain, &prompt, 9);

        let half = 32 / 2; // head_dim 32: 16 rotated pairs
        let longrope = |short: f32, attn: f32| {
            (
                vec![
                    (
                        "phi3.rope.scaling.original_context_length".to_string(),
                        Value::U32(1024),
                    ),
                    (
                        "phi3.rope.scaling.attn_factor".to_string(),
                        Value::F32(attn),
                    ),
                ],
                vec![
                    ("rope_factors_short.weight", vec![short; half]),
                    ("rope_factors_long.weight", vec![8.0; half]),
                ],
            )
        };
        // Unit factors reproduce plain RoPE; the context is capped at the original length,
        // where llama.cpp uses the short factors.
        let (md, t) = longrope(1.0, 1.0);
        let unit = load(&write("unit.gguf", md, &t)).unwrap();
        assert_eq!(unit.max_context(), 1024);
        assert!(max_diff(&two_steps(&unit, &prompt, 9).0, &base) < 1e-6);
        // Real factors and the attention factor change the logits.
        for (short, attn) in [(2.5, 1.0), (1.0, 1.19)] {
            let (md, t) = longrope(short, attn);
            let m = load(&write("scaled.gguf", md, &t)).unwrap();
            assert!(max_diff(&two_steps(&m, &prompt, 9).0, &base) > 1e-4);
        }
        // A missing key is named.
        let (mut md, t) = longrope(2.5, 1.0);
        md.retain(|(k, _)| k != "phi3.rope.scaling.attn_factor");
        let e = load(&write("noattn.gguf", md, &t)).err().unwrap();
        assert!(
            e.to_string().contains("phi3.rope.scaling.attn_factor"),
            "{e}"
        );
        let e = load(&write("short.gguf", vec![], &t[..1])).err().unwrap();
        assert!(e.to_string().contains("rope_factors_long.weight"), "{e}");
        // Scaling kinds llama.cpp would treat differently are refused by key.
        let yarn = vec![(
            "phi3.rope.scaling.type".to_string(),
            Value::String("yarn".into()),
        )];
        let e = load(&write("yarn.gguf", yarn, &[])).err().unwrap();
        assert!(e.to_string().contains("phi3.rope.scaling.type"), "{e}");
        // Linear scaling halves the angles: the same as positions at half speed.
        let linear = vec![("phi3.rope.scaling.factor".to_string(), Value::F32(2.0))];
        let lin = load(&write("linear.gguf", linear, &[])).unwrap();
        let (c, s) = (
            lin.cos.to_vec2::<f32>().unwrap(),
            plain.cos.to_vec2::<f32>().unwrap(),
        );
        assert!((c[10][3] - s[5][3]).abs() < 1e-5);
        let _ = s;
    }

    /// Last-position logits from llama.cpp (llama-cpp-python) for `ids`, fed one by one (a
    /// llama-cpp-python built with `-march=native` crashed on any batch here, in ggml's AMX
    /// path; single tokens avoid that path whatever the build); `None` when
    /// `ANCHOR_PYTHON` is unset or has no `llama_cpp` (requirements/annotate.txt).
    fn llama_cpp_logits(gguf: &std::path::Path, ids: &[u32]) -> Option<Vec<f32>> {
        let script = "import json, sys, llama_cpp\n\
            m = llama_cpp.Llama(model_path=sys.argv[1], n_ctx=256, n_batch=1, logits_all=True, \
            n_threads=1, type_k=0, type_v=0, verbose=False)\n\
            ids = json.loads(sys.argv[2])\n\
            m.eval(ids)\n\
            print(json.dumps([float(x) for x in m.scores[len(ids) - 1]]))\n";
        let ids = serde_json::to_string(ids).unwrap();
        let args = [gguf.as_os_str(), std::ffi::OsStr::new(&ids)];
        let out = crate::testing::llama_cpp_output(script, &args, &[]);
        Some(serde_json::from_slice(&out.unwrap()?).unwrap())
    }

    // Needs llama-cpp-python, which compiles llama.cpp on install: `make bench`
    // (scripts/bench-annotate.sh) installs it and runs this test with `--ignored`.
    #[test]
    #[ignore = "needs llama-cpp-python; scripts/bench-annotate.sh runs it"]
    fn phi3_longrope_and_partial_rotary_match_llama_cpp() {
        use gguf_file::Value;
        let dir = tempfile::tempdir().unwrap();
        let ids: Vec<u32> = (3..60).map(|i| (i * 7) % 300 + 3).collect();
        let pairs = 12;
        let short: Vec<f32> = (0..pairs).map(|i| 1.0 + 0.4 * i as f32).collect();
        let longrope = |attn: f32| {
            vec![
                (
                    "phi3.rope.scaling.original_context_length".to_string(),
                    Value::U32(1024),
                ),
                (
                    "phi3.rope.scaling.attn_factor".to_string(),
                    Value::F32(attn),
                ),
            ]
        };
        let partial = ("phi3.rope.dimension_count".to_string(), Value::U32(24));
        let factors = [
            ("rope_factors_short.weight", short),
            ("rope_factors_long.weight", vec![30.0; pairs]),
        ];
        type Case<'a> = (&'a str, Vec<(String, Value)>, &'a [(&'a str, Vec<f32>)]);
        let mut cases: Vec<Case> = vec![
            ("plain", vec![], &[]),
            ("partial", vec![partial.clone()], &[]),
        ];
        let mut md = longrope(1.0);
        md.push(partial.clone());
        cases.push(("factors", md, &factors));
        let mut md = longrope(1.19);
        md.push(partial.clone());
        cases.push(("factors+attn", md, &factors));
        let mut plain: Option<Tensor> = None;
        for (name, md, tensors) in cases {
            let path = dir.path().join(format!("{name}.gguf"));
            crate::testing::write_tiny_gguf_with(&path, 23, "phi3", &md, tensors).unwrap();
            let ours = load(&path).unwrap();
            let mut cache = ours.cache(64).unwrap();
            let mine = ours.forward(&mut cache, &ids).unwrap();
            let theirs = llama_cpp_logits(&path, &ids)
                .expect("ANCHOR_PYTHON must name a Python with llama_cpp (llama-cpp-python)");
            let theirs = Tensor::new(theirs.as_slice(), &Device::Cpu).unwrap();
            let d = max_diff(&mine, &theirs);
            let scale = mine
                .abs()
                .unwrap()
                .max(0)
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            eprintln!("{name}: max |ours - llama.cpp| = {d} (max |logit| {scale})");
            // llama.cpp quantises activations and accumulates its own way: plain phi3 (equal
            // to candle's within 1e-3) is ~0.04 off it. Each RoPE variant must stay at that
            // floor while moving the logits an order of magnitude more than it.
            assert!(d < 0.1, "{name}: {d}");
            match &plain {
                None => plain = Some(mine),
                Some(p) => {
                    let effect = max_diff(&mine, p);
                    assert!(effect > 10.0 * d, "{name}: effect {effect} vs error {d}");
                }
            }
        }
    }

    #[test]
    fn partial_rotary_leaves_the_tail_of_each_head_alone() {
        use gguf_file::Value;
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("partial.gguf");
        let md = vec![("phi3.rope.dimension_count".to_string(), Value::U32(24))];
        crate::testing::write_tiny_gguf_with(&p, 19, "phi3", &md, &[]).unwrap();
        let m = load(&p).unwrap();
        assert_eq!(m.cos.dims(), &[MAX_SEQ_LEN, 12]);
        // (1, 1 head, 2 positions, 32): the last 8 dims pass through unchanged.
        let x = Tensor::arange(0f32, 64., &Device::Cpu)
            .unwrap()
            .reshape((1, 1, 2, 32))
            .unwrap();
        let y = m.rope(&x, 5).unwrap();
        let tail = |t: &Tensor| t.narrow(3, 24, 8).unwrap();
        assert_eq!(max_diff(&tail(&y), &tail(&x)), 0.0);
        assert!(max_diff(&y.narrow(3, 0, 24).unwrap(), &x.narrow(3, 0, 24).unwrap()) > 1.0);
        // The rotated part matches a full-width RoPE over the same 24 dims.
        let head = x.narrow(3, 0, 24).unwrap().contiguous().unwrap();
        let cos = m.cos.narrow(0, 5, 2).unwrap();
        let sin = m.sin.narrow(0, 5, 2).unwrap();
        let want = candle_nn::rotary_emb::rope(&head, &cos, &sin).unwrap();
        assert_eq!(max_diff(&y.narrow(3, 0, 24).unwrap(), &want), 0.0);
        let (a, b) = two_steps(&m, &[5, 6, 7], 8);
        assert!(max_diff(&a, &b) > 1e-4);
        let bad = vec![("phi3.rope.dimension_count".to_string(), Value::U32(40))];
        crate::testing::write_tiny_gguf_with(&p, 19, "phi3", &bad, &[]).unwrap();
        assert!(
            load(&p)
                .err()
                .unwrap()
                .to_string()
                .contains("dimension_count 40")
        );
    }

    fn mine_vocab(path: &std::path::Path) -> usize {
        let (ct, _) = open_gguf(path);
        ct.metadata["tokenizer.ggml.tokens"].to_vec().unwrap().len()
    }
}
