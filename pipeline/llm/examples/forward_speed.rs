//! Forward-pass speed of [`anchor_llm::llama::Llama`] against candle's
//! `quantized_llama::ModelWeights` on the same requantised weights, interleaved in one
//! process so both see the same machine load:
//! `cargo run --release -p anchor-llm --example forward_speed [-- MODEL.gguf [PREFIX [STEPS]]]`.

use std::fs::File;
use std::io::Cursor;
use std::path::PathBuf;
use std::time::Instant;

use anchor_llm::llama::Llama;
use anchor_llm::requant::requantise;
use candle_core::quantized::{GgmlDType, gguf_file};
use candle_core::{Device, Tensor};
use candle_transformers::models::quantized_llama::ModelWeights;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = PathBuf::from(
        args.next()
            .unwrap_or_else(|| "data/models/SmolLM2-135M-Instruct.Q4_1.gguf".into()),
    );
    let prefix: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(420);
    let steps: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(40);
    let dev = Device::Cpu;
    let mut f = File::open(&path)?;
    let ct = gguf_file::Content::read(&mut f)?;
    let (ct, bytes, _) = requantise(&ct, &mut f, &path, GgmlDType::Q8_0)?;
    let ours = Llama::from_gguf(&ct, &mut Cursor::new(&bytes), &dev)?;
    let ct2 = gguf_file::Content::read(&mut Cursor::new(&bytes))?;
    let mut theirs = ModelWeights::from_gguf(ct2, &mut Cursor::new(&bytes), &dev)?;
    let ids: Vec<u32> = (0..prefix as u32).map(|i| 100 + i * 7 % 4000).collect();

    for round in 0..2 {
        let t = Instant::now();
        let mut cache = ours.cache(prefix + steps)?;
        ours.forward(&mut cache, &ids)?;
        let ours_prefix = t.elapsed().as_secs_f64();
        let t = Instant::now();
        for s in 0..steps {
            ours.forward(&mut cache, &[200 + s as u32])?;
        }
        let ours_gen = t.elapsed().as_secs_f64();

        let t = Instant::now();
        theirs.forward(&Tensor::new(ids.as_slice(), &dev)?.unsqueeze(0)?, 0)?;
        let theirs_prefix = t.elapsed().as_secs_f64();
        let t = Instant::now();
        for s in 0..steps {
            let x = Tensor::new(&[200 + s as u32], &dev)?.unsqueeze(0)?;
            theirs.forward(&x, prefix + s)?;
        }
        let theirs_gen = t.elapsed().as_secs_f64();
        println!(
            "round {round}: prefix {prefix} tok: ours {:.1} tok/s, candle {:.1} tok/s; \
             {steps} decode steps after it: ours {:.1} tok/s, candle {:.1} tok/s",
            prefix as f64 / ours_prefix,
            prefix as f64 / theirs_prefix,
            steps as f64 / ours_gen,
            steps as f64 / theirs_gen
        );
    }
    Ok(())
}
