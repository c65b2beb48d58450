//! Fréchet distance between two Gaussians, the formula behind FID.
//!
//! `d² = |μ1 - μ2|² + Tr(S1) + Tr(S2) - 2 Tr √(S1·S2)`.
//!
//! pytorch-fid takes `Tr √(S1·S2)` from scipy's `sqrtm` of the non-symmetric product,
//! which is slow and loses accuracy when the covariances are singular (fewer samples
//! than dimensions). Here it comes from two symmetric eigendecompositions in f64:
//! `S1·S2` is similar to `√S1·S2·√S1`, which is symmetric positive semi-definite, so
//! `Tr √(S1·S2) = Σ √λ(√S1·S2·√S1)`, with round-off negatives clamped to zero.

use crate::features::GaussianStats;
use crate::{Error, Result};
use faer::{Mat, Side};

/// pytorch-fid's regulariser: added to both diagonals when the result is not finite.
pub const PYTORCH_FID_EPS: f64 = 1e-6;

/// Fréchet distance between two Gaussians (squared, as FID reports it).
///
/// Follows pytorch-fid's rule: when the trace term is not finite, `eps·I` is added to
/// both covariances and it is recomputed.
pub fn frechet_distance(a: &GaussianStats, b: &GaussianStats) -> Result<f64> {
    let d = a.dim();
    if b.dim() != d || a.cov.nrows() != d || b.cov.nrows() != d {
        return Err(Error::Shape(format!(
            "cannot compare {d}-d statistics with {}-d ones",
            b.dim()
        )));
    }
    let mean_term: f64 = a
        .mean
        .iter()
        .zip(&b.mean)
        .map(|(x, y)| (x - y) * (x - y))
        .sum();
    let trace = |m: &Mat<f64>| (0..d).map(|i| m[(i, i)]).sum::<f64>();
    let mut covmean = trace_sqrt_product(&a.cov, &b.cov)?;
    if !covmean.is_finite() {
        tracing::warn!(
            "fid: Tr sqrt(S1 S2) is not finite; adding {PYTORCH_FID_EPS} to the diagonals"
        );
        let reg = |m: &Mat<f64>| {
            Mat::from_fn(d, d, |i, j| {
                m[(i, j)] + if i == j { PYTORCH_FID_EPS } else { 0.0 }
            })
        };
        covmean = trace_sqrt_product(&reg(&a.cov), &reg(&b.cov))?;
    }
    Ok(mean_term + trace(&a.cov) + trace(&b.cov) - 2.0 * covmean)
}

/// `Tr √(S1·S2)` for symmetric positive semi-definite `S1`, `S2`.
pub fn trace_sqrt_product(s1: &Mat<f64>, s2: &Mat<f64>) -> Result<f64> {
    let d = s1.nrows();
    let eig = s1
        .self_adjoint_eigen(Side::Lower)
        .map_err(|_| Error::Eigen { dim: d })?;
    let (u, s) = (eig.U(), eig.S().column_vector());
    // √S1 = U diag(√λ) Uᵀ, with eigenvalues below round-off taken as zero.
    let floor1 = roundoff_floor(s.iter().copied(), d);
    let u_scaled = Mat::from_fn(d, d, |i, j| {
        u[(i, j)] * if s[j] > floor1 { s[j].sqrt() } else { 0.0 }
    });
    let sqrt_s1 = &u_scaled * u.transpose();
    let m = &sqrt_s1 * s2 * &sqrt_s1;
    // Symmetrise: the product is symmetric in exact arithmetic only.
    let m = Mat::from_fn(d, d, |i, j| 0.5 * (m[(i, j)] + m[(j, i)]));
    let eigenvalues = m
        .self_adjoint_eigenvalues(Side::Lower)
        .map_err(|_| Error::Eigen { dim: d })?;
    let floor = roundoff_floor(eigenvalues.iter().copied(), d);
    Ok(eigenvalues
        .iter()
        .filter(|&&l| l > floor)
        .map(|l| l.sqrt())
        .sum())
}

/// Eigenvalues below `d · ε · max|λ|` are indistinguishable from zero; their square
/// roots would add `√ε`-sized noise (a singular covariance has many of them).
fn roundoff_floor(eigenvalues: impl Iterator<Item = f64>, d: usize) -> f64 {
    let max = eigenvalues.fold(0.0f64, |m, l| m.max(l.abs()));
    d as f64 * f64::EPSILON * max
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::features::Features;

    fn lcg_features(n: usize, d: usize, seed: u64) -> Features {
        let mut state = seed;
        let data = (0..n * d)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5
            })
            .collect();
        Features::new(d, data).unwrap()
    }

    #[test]
    fn distance_to_itself_is_zero() {
        for (n, d) in [(200, 16), (10, 64)] {
            let s = lcg_features(n, d, 7).stats().unwrap();
            let fid = frechet_distance(&s, &s).unwrap();
            // Relative to the total variance, the scale FID is measured on.
            let total: f64 = (0..d).map(|i| s.cov[(i, i)]).sum();
            assert!(
                fid.abs() < 1e-10 * total,
                "n={n} d={d}: {fid} (total variance {total})"
            );
        }
    }

    #[test]
    fn diagonal_gaussians_have_closed_form() {
        // S1 = diag(a), S2 = diag(b): Tr√(S1S2) = Σ√(ab).
        let a = [1.0, 4.0, 9.0];
        let b = [4.0, 1.0, 16.0];
        let diag = |v: &[f64]| Mat::from_fn(3, 3, |i, j| if i == j { v[i] } else { 0.0 });
        let s1 = GaussianStats {
            mean: vec![0.0, 1.0, 2.0],
            cov: diag(&a),
        };
        let s2 = GaussianStats {
            mean: vec![1.0, 1.0, 0.0],
            cov: diag(&b),
        };
        let expected = 1.0 + 4.0 + (14.0 + 21.0) - 2.0 * (2.0 + 2.0 + 12.0);
        let got = frechet_distance(&s1, &s2).unwrap();
        assert!((got - expected).abs() < 1e-10, "{got} vs {expected}");
    }

    #[test]
    fn mismatched_dimensions_are_an_error() {
        let a = lcg_features(10, 4, 1).stats().unwrap();
        let b = lcg_features(10, 5, 1).stats().unwrap();
        assert!(frechet_distance(&a, &b).is_err());
    }
}
