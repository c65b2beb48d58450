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
//! Two GGUF architectures load: `llama` (SmolLM2, Llama 3) and `qwen2` (Qwen2/2.5: the same
//! block with biases on the q/k/v projections and NeoX-style RoPE). Tests check logits
//! against candle's own `quantized_llama` and `quantized_qwen2` on random GGUFs.

use candle_core::quantized::{QMatMul, gguf_file};
use candle_core::{DType, Device, IndexOp, Module, Result, Tensor};
use candle_transformers::quantized_nn::RmsNorm;

/// The GGUF architectures [`Llama::from_gguf`] loads.
pub const SUPPORTED_ARCHITECTURES: &[&str] = &["llama", "qwen2"];

/// Adds a projection's bias, when it has one.
fn with_bias(x: Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    match bias {
        Some(b) => x.broadcast_add(b),
        None => Ok(x),
    }
}

/// Positions the RoPE tables cover.
pub const MAX_SEQ_LEN: usize = 4096;

struct Layer {
    wq: QMatMul,
    wk: QMatMul,
    wv: QMatMul,
    /// q/k/v biases (qwen2 only).
    bq: Option<Tensor>,
    bk: Option<Tensor>,
    bv: Option<Tensor>,
    wo: QMatMul,
    w1: QMatMul,
    w2: QMatMul,
    w3: QMatMul,
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
    rope_neox: bool,
    cos: Tensor,
    sin: Tensor,
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

impl Llama {
    /// Loads a `llama` or `qwen2` GGUF whose tensors are read from `reader`.
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
        // Hyper-parameters live under the architecture's own prefix (`qwen2.block_count`).
        let md = |k: &str| {
            let key = format!("{arch}.{k}");
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
        // Qwen2 files usually omit the RoPE width: it is the whole head.
        let rope_dim = match md("rope.dimension_count") {
            Ok(v) => v.to_u32()? as usize,
            Err(_) => hidden / n_head,
        };
        if ct.metadata.contains_key(&format!("{arch}.expert_count")) {
            candle_core::bail!("mixture-of-experts models are not supported");
        }
        // llama.cpp's mapping: llama uses interleaved (NORM) RoPE, qwen2 the NeoX layout.
        let rope_neox = arch == "qwen2";
        let theta: Vec<f32> = (0..rope_dim)
            .step_by(2)
            .map(|i| 1f32 / freq_base.powf(i as f32 / rope_dim as f32))
            .collect();
        let theta = Tensor::new(theta.as_slice(), device)?;
        let idx = Tensor::arange(0, MAX_SEQ_LEN as u32, device)?
            .to_dtype(DType::F32)?
            .reshape((MAX_SEQ_LEN, 1))?
            .matmul(&theta.reshape((1, theta.elem_count()))?)?;
        let (cos, sin) = (idx.cos()?, idx.sin()?);

        let embed_q = ct.tensor(reader, "token_embd.weight", device)?;
        let embed = embed_q.dequantize(device)?;
        let norm = RmsNorm::from_qtensor(ct.tensor(reader, "output_norm.weight", device)?, eps)?;
        let output = match ct.tensor(reader, "output.weight", device) {
            Ok(t) => t,
            Err(_) => embed_q,
        };
        let mut layers = Vec::with_capacity(blocks);
        for i in 0..blocks {
            let mut bias = |n: &str| -> Result<Option<Tensor>> {
                if !rope_neox {
                    return Ok(None);
                }
                let b = ct.tensor(reader, &format!("blk.{i}.{n}.bias"), device)?;
                Ok(Some(b.dequantize(device)?))
            };
            let (bq, bk, bv) = (bias("attn_q")?, bias("attn_k")?, bias("attn_v")?);
            let mut t = |n: &str| ct.tensor(reader, &format!("blk.{i}.{n}.weight"), device);
            let mut m = |n: &str| -> Result<QMatMul> { QMatMul::from_qtensor(t(n)?) };
            let (wq, wk, wv, wo) = (m("attn_q")?, m("attn_k")?, m("attn_v")?, m("attn_output")?);
            let (w1, w2, w3) = (m("ffn_gate")?, m("ffn_down")?, m("ffn_up")?);
            let attn_norm = RmsNorm::from_qtensor(t("attn_norm")?, eps)?;
            let ffn_norm = RmsNorm::from_qtensor(t("ffn_norm")?, eps)?;
            layers.push(Layer {
                wq,
                wk,
                wv,
                bq,
                bk,
                bv,
                wo,
                w1,
                w2,
                w3,
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
            head_dim: hidden / n_head,
            rope_neox,
            cos,
            sin,
            device: device.clone(),
        })
    }

    /// An empty cache with room for `capacity` positions (it grows when needed).
    pub fn cache(&self, capacity: usize) -> Result<KvCache> {
        let capacity = capacity.clamp(1, MAX_SEQ_LEN);
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
        if needed > MAX_SEQ_LEN {
            candle_core::bail!("context of {needed} positions exceeds {MAX_SEQ_LEN}");
        }
        let capacity = (cache.capacity * 2).max(needed).min(MAX_SEQ_LEN);
        let extra = (1, self.n_kv_head, capacity - cache.capacity, self.head_dim);
        for t in cache.k.iter_mut().chain(cache.v.iter_mut()) {
            let pad = Tensor::zeros(extra, DType::F32, &self.device)?;
            *t = Tensor::cat(&[&*t, &pad], 2)?;
        }
        cache.capacity = capacity;
        Ok(())
    }

    fn rope(&self, x: &Tensor, pos: usize) -> Result<Tensor> {
        let (_, _, seq, _) = x.dims4()?;
        let cos = self.cos.narrow(0, pos, seq)?;
        let sin = self.sin.narrow(0, pos, seq)?;
        let x = x.contiguous()?;
        if self.rope_neox {
            candle_nn::rotary_emb::rope(&x, &cos, &sin)
        } else {
            candle_nn::rotary_emb::rope_i(&x, &cos, &sin)
        }
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
            let q = with_bias(layer.wq.forward(&h)?, layer.bq.as_ref())?
                .reshape((1, seq, self.n_head, hd))?
                .transpose(1, 2)?;
            let k = with_bias(layer.wk.forward(&h)?, layer.bk.as_ref())?
                .reshape((1, seq, self.n_kv_head, hd))?
                .transpose(1, 2)?;
            let v = with_bias(layer.wv.forward(&h)?, layer.bv.as_ref())?
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
            let x1 = (layer.wo.forward(&y)? + residual)?;
            let h = layer.ffn_norm.forward(&x1)?;
            let gate = candle_nn::ops::silu(&layer.w1.forward(&h)?)?;
            let up = layer.w3.forward(&h)?;
            x = (layer.w2.forward(&(gate * up)?)? + x1)?;
        }
        cache.len = kv_len;
        let x = self.norm.forward(&x)?;
        let x = x.i((.., seq - 1, ..))?;
        self.output
            .forward(&x)?
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
        crate::gguf::tests::write_tiny_gguf(&path, 7);
        let dev = Device::Cpu;
        let mut f = File::open(&path).unwrap();
        let ct = gguf_file::Content::read(&mut f).unwrap();
        let ours = Llama::from_gguf(&ct, &mut f, &dev).unwrap();
        let mut f2 = File::open(&path).unwrap();
        let ct2 = gguf_file::Content::read(&mut f2).unwrap();
        let mut theirs = ModelWeights::from_gguf(ct2, &mut f2, &dev).unwrap();

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
        crate::gguf::tests::write_tiny_gguf_arch(&path, 11, "qwen2");
        let dev = Device::Cpu;
        let mut f = File::open(&path).unwrap();
        let ct = gguf_file::Content::read(&mut f).unwrap();
        let ours = Llama::from_gguf(&ct, &mut f, &dev).unwrap();
        let mut f2 = File::open(&path).unwrap();
        let ct2 = gguf_file::Content::read(&mut f2).unwrap();
        let mut theirs = Qwen2::from_gguf(ct2, &mut f2, &dev).unwrap();

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
        let mut no_bias = Llama::from_gguf(&ct, &mut File::open(&path).unwrap(), &dev).unwrap();
        for layer in &mut no_bias.layers {
            (layer.bq, layer.bk, layer.bv) = (None, None, None);
        }
        let mut cache = no_bias.cache(8).unwrap();
        no_bias.forward(&mut cache, &prompt).unwrap();
        let other = no_bias.forward(&mut cache, &[42]).unwrap();
        assert!(max_diff(&other, &mine) > 1e-3);
    }

    #[test]
    fn other_architectures_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tiny-phi3.gguf");
        crate::gguf::tests::write_tiny_gguf_arch(&path, 3, "phi3");
        let mut f = File::open(&path).unwrap();
        let ct = gguf_file::Content::read(&mut f).unwrap();
        let err = Llama::from_gguf(&ct, &mut f, &Device::Cpu)
            .err()
            .expect("phi3 must be refused");
        assert!(
            err.to_string().contains("\"phi3\" is not supported"),
            "{err}"
        );
    }

    fn mine_vocab(path: &std::path::Path) -> usize {
        let mut f = File::open(path).unwrap();
        let ct = gguf_file::Content::read(&mut f).unwrap();
        ct.metadata["tokenizer.ggml.tokens"].to_vec().unwrap().len()
    }
}
