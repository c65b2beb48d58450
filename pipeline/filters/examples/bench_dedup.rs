//! Times the near-duplicate search over N 64-bit hashes (default 70 000, the dataset's size)
//! with planted near duplicates, at radius R (default 10), and checks it against the planted
//! truth. Prints `hashes N radius R pairs P seconds S`.
//!
//! `cargo run --release -p anchor-filters --example bench_dedup -- [N] [R]`

use std::time::Instant;

use anchor_filters::dedup::MultiIndex;

/// xorshift64*: deterministic data without a rand dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n: usize = args
        .first()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(70_000);
    let radius: u32 = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(10);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut hashes = Vec::with_capacity(n);
    let mut planted = 0usize;
    while hashes.len() < n {
        let h = rng.next();
        hashes.push(h);
        // One in ten photos reappears with a few flipped bits (a re-encode or small crop).
        if hashes.len() < n && rng.next().is_multiple_of(10) {
            let mut d = h;
            for _ in 0..(rng.next() % u64::from(radius.max(1))) {
                d ^= 1 << (rng.next() % 64);
            }
            hashes.push(d);
            planted += 1;
        }
    }
    let started = Instant::now();
    let index = MultiIndex::new(hashes, MultiIndex::chunks_for(n));
    let pairs = index.pairs_within(radius);
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "hashes {n} radius {radius} pairs {} planted {planted} seconds {seconds:.3}",
        pairs.len()
    );
    if pairs.len() < planted {
        return Err(format!("found {} pairs but planted {planted}", pairs.len()).into());
    }
    Ok(())
}
