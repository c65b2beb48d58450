//! Exact and perceptual hashes: SHA-256 of the bytes, and pHash/dHash bit-exact with
//! Python [`imagehash`](https://github.com/JohannesBuchner/imagehash) 4.x.
//!
//! `imagehash.phash(img)` is `img.convert("L").resize((32, 32), LANCZOS)`, a scipy
//! `fftpack.dct` (type II, unnormalised) along axis 0 then axis 1, the top-left 8x8, and
//! `coefficient > median` (strict). `dhash` resizes to 9x8 and compares horizontal
//! neighbours. The grayscale conversion and the resize are Pillow's integer code
//! ([`crate::pil`]); the DCT is computed directly in f64 (only 8 of 32 frequencies per axis are
//! needed), which matches scipy's FFT-based result except where two coefficients sit within
//! rounding distance of the median.
//!
//! Bits are packed row-major, first bit most significant, so `format!("{:016x}")` prints
//! exactly what `str(imagehash.phash(img))` prints.

use crate::pil::{self, Filter, Plane};

pub use anchor_digest::sha256_hex;

/// A 64-bit perceptual hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hash64(pub u64);

impl Hash64 {
    /// Number of differing bits.
    #[inline]
    pub fn distance(self, other: Hash64) -> u32 {
        (self.0 ^ other.0).count_ones()
    }

    /// 16 lowercase hex digits, as `str(imagehash.phash(img))`.
    pub fn to_hex(self) -> String {
        format!("{:016x}", self.0)
    }

    /// Parses 16 hex digits (as written by [`Hash64::to_hex`] or imagehash).
    pub fn from_hex(s: &str) -> Option<Hash64> {
        if s.len() != 16 {
            return None;
        }
        u64::from_str_radix(s, 16).ok().map(Hash64)
    }
}

impl std::fmt::Display for Hash64 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Both perceptual hashes of one image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PerceptualHashes {
    /// `imagehash.phash` (hash_size 8, highfreq_factor 4).
    pub phash: Hash64,
    /// `imagehash.dhash` (hash_size 8).
    pub dhash: Hash64,
}

/// Both hashes from a Pillow-style "L" plane (see [`pil::to_luma`]).
pub fn hashes_from_luma(luma: &Plane) -> PerceptualHashes {
    PerceptualHashes {
        phash: phash_luma(luma),
        dhash: dhash_luma(luma),
    }
}

/// Both hashes of a decoded image.
pub fn hashes(img: &image::DynamicImage) -> PerceptualHashes {
    hashes_from_luma(&pil::to_luma(img))
}

fn bits_to_hash(bits: impl IntoIterator<Item = bool>) -> Hash64 {
    Hash64(
        bits.into_iter()
            .fold(0u64, |acc, b| (acc << 1) | u64::from(b)),
    )
}

/// DCT-II basis `cos(pi * k * (2n + 1) / (2N))` for N = 32, k < 8.
fn dct_basis() -> &'static [[f64; 32]; 8] {
    static BASIS: std::sync::OnceLock<[[f64; 32]; 8]> = std::sync::OnceLock::new();
    BASIS.get_or_init(|| {
        let mut b = [[0.0; 32]; 8];
        for (k, row) in b.iter_mut().enumerate() {
            for (n, v) in row.iter_mut().enumerate() {
                *v = (std::f64::consts::PI * k as f64 * (2 * n + 1) as f64 / 64.0).cos();
            }
        }
        b
    })
}

/// `imagehash.phash` of an "L" plane.
pub fn phash_luma(luma: &Plane) -> Hash64 {
    let small = pil::resize(luma, 32, 32, Filter::Lanczos);
    let basis = dct_basis();
    // scipy's DCT-II carries a factor 2 on each axis; it scales every coefficient and the
    // median alike, so the comparison is unchanged and we leave it out.
    // Axis 0 (down each column), low 8 frequencies: cols[k][x].
    let mut cols = [[0.0f64; 32]; 8];
    for (k, out) in cols.iter_mut().enumerate() {
        for (y, b) in basis[k].iter().enumerate() {
            let row = &small.data[y * 32..y * 32 + 32];
            for (o, &p) in out.iter_mut().zip(row) {
                *o += f64::from(p) * b;
            }
        }
    }
    // scipy's FFT-based DCT returns exact zeros where symmetry cancels terms (flat rows or
    // columns, flat images), and zeros decide median ties; the direct sum leaves rounding
    // residue of ~1e-11 there instead. Snap that residue to zero: a genuine coefficient of an
    // 8-bit image is far larger.
    const RESIDUE: f64 = 1e-7;
    let snap = |v: f64| if v.abs() < RESIDUE { 0.0 } else { v };
    for row in cols.iter_mut() {
        for v in row.iter_mut() {
            *v = snap(*v);
        }
    }
    // Axis 1 (along each row).
    let mut coef = [0.0f64; 64];
    for r in 0..8 {
        for c in 0..8 {
            coef[r * 8 + c] = snap(cols[r].iter().zip(&basis[c]).map(|(v, b)| v * b).sum());
        }
    }
    let mut sorted = coef;
    sorted.sort_by(f64::total_cmp);
    let median = (sorted[31] + sorted[32]) / 2.0;
    bits_to_hash(coef.iter().map(|&v| v > median))
}

/// `imagehash.dhash` of an "L" plane.
pub fn dhash_luma(luma: &Plane) -> Hash64 {
    let small = pil::resize(luma, 9, 8, Filter::Lanczos);
    bits_to_hash((0..8).flat_map(|r| {
        let row = &small.data[r * 9..r * 9 + 9];
        (0..8).map(move |c| row[c + 1] > row[c])
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips_and_pads() {
        let h = Hash64(0x00ff_0000_0000_0001);
        assert_eq!(h.to_hex(), "00ff000000000001");
        assert_eq!(Hash64::from_hex("00ff000000000001"), Some(h));
        assert_eq!(Hash64::from_hex("ff"), None);
        assert_eq!(Hash64::from_hex("zzzzzzzzzzzzzzzz"), None);
        assert_eq!(Hash64(0b1011).distance(Hash64(0b0001)), 2);
    }

    #[test]
    fn constant_image_hashes_to_zero() {
        // Every DCT coefficient but DC is 0 = median, and `>` is strict, so only DC is set:
        // imagehash gives '8000000000000000' for a flat image; dhash gives all zeros.
        let flat = Plane {
            width: 50,
            height: 40,
            channels: 1,
            data: vec![90; 2000],
        };
        let h = hashes_from_luma(&flat);
        assert_eq!(h.phash.to_hex(), "8000000000000000");
        assert_eq!(h.dhash.to_hex(), "0000000000000000");
    }

    #[test]
    fn horizontal_ramp_dhash_is_all_ones() {
        let data = (0..40 * 90).map(|i| ((i % 90) * 2) as u8).collect();
        let ramp = Plane {
            width: 90,
            height: 40,
            channels: 1,
            data,
        };
        assert_eq!(dhash_luma(&ramp).to_hex(), "ffffffffffffffff");
    }

    #[test]
    fn sha256_of_known_input() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
