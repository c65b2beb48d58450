//! FID straight from two feature sets, choosing the cheaper exact route.
//!
//! With `A` (`n1 x d`) and `B` (`n2 x d`) the centred feature matrices,
//! `S1 = AᵀA/(n1-1)` and `S2 = BᵀB/(n2-1)`. The non-zero eigenvalues of `S1·S2`
//! are those of `A·BᵀB·Aᵀ/((n1-1)(n2-1))`, i.e. the squared singular values of
//! `C = A·Bᵀ/√((n1-1)(n2-1))`, so `Tr √(S1·S2)` is the nuclear norm of the
//! `n1 x n2` matrix `C`. When either set has fewer samples than dimensions (every
//! per-outlet group at demo scale, where the 2048-d covariances are singular), that
//! costs one `n1·n2·d` product and a small SVD instead of two 2048-d
//! eigendecompositions, and it needs no `eps·I` regulariser: it is exact.
//! Larger sets go through [`crate::frechet_distance`] on the covariances.

use crate::features::Features;
use crate::{Error, Result, fid};
use faer::Mat;

/// Above this many entries of `A·Bᵀ`, the covariance route is cheaper.
const MAX_CROSS_ENTRIES: usize = 2048 * 2048;

/// FID between two feature sets (squared Fréchet distance of their Gaussians).
pub fn fid_of_samples(a: &Features, b: &Features) -> Result<f64> {
    if a.dim() != b.dim() {
        return Err(Error::Shape(format!(
            "FID of {}-d against {}-d features",
            a.dim(),
            b.dim()
        )));
    }
    let (n1, n2, d) = (a.rows(), b.rows(), a.dim());
    if n1 < 2 || n2 < 2 {
        return Err(Error::Shape(format!(
            "FID needs at least 2 samples per set, got {n1} and {n2}"
        )));
    }
    if n1.min(n2) >= d || n1 * n2 > MAX_CROSS_ENTRIES {
        return fid(a, b);
    }
    let (ca, mean_a) = centred(a);
    let (cb, mean_b) = centred(b);
    let mean_term: f64 = mean_a
        .iter()
        .zip(&mean_b)
        .map(|(x, y)| (x - y) * (x - y))
        .sum();
    let sq_norm = |m: &Mat<f64>| {
        m.col_iter()
            .flat_map(|c| c.iter())
            .map(|x| x * x)
            .sum::<f64>()
    };
    let trace_a = sq_norm(&ca) / (n1 as f64 - 1.0);
    let trace_b = sq_norm(&cb) / (n2 as f64 - 1.0);
    let cross = &ca * cb.transpose();
    let singular = cross
        .singular_values()
        .map_err(|_| Error::Eigen { dim: n1.min(n2) })?;
    let nuclear: f64 = singular.iter().map(|s| s.max(0.0)).sum();
    let trace_sqrt = nuclear / ((n1 as f64 - 1.0) * (n2 as f64 - 1.0)).sqrt();
    Ok(mean_term + trace_a + trace_b - 2.0 * trace_sqrt)
}

/// The centred rows as an f64 matrix, and the mean.
fn centred(f: &Features) -> (Mat<f64>, Vec<f64>) {
    let (n, d) = (f.rows(), f.dim());
    let mut mean = vec![0f64; d];
    for i in 0..n {
        for (m, &x) in mean.iter_mut().zip(f.row(i)) {
            *m += f64::from(x);
        }
    }
    mean.iter_mut().for_each(|m| *m /= n as f64);
    let data = f.as_slice();
    let c = Mat::from_fn(n, d, |i, j| f64::from(data[i * d + j]) - mean[j]);
    (c, mean)
}

/// The rows `idx` of `f`, in that order.
pub fn select_rows(f: &Features, idx: &[usize]) -> Result<Features> {
    let mut data = Vec::with_capacity(idx.len() * f.dim());
    for &i in idx {
        if i >= f.rows() {
            return Err(Error::Shape(format!(
                "row {i} of a {}-row feature set",
                f.rows()
            )));
        }
        data.extend_from_slice(f.row(i));
    }
    Features::new(f.dim(), data)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lcg(n: usize, d: usize, seed: u64, shift: f32) -> Features {
        let mut state = seed;
        let data = (0..n * d)
            .map(|k| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5 + shift * (k % 3) as f32
            })
            .collect();
        Features::new(d, data).unwrap()
    }

    #[test]
    fn low_rank_route_matches_the_covariance_route() {
        // Fewer samples than dimensions (singular covariances), as in every demo.
        for (n1, n2, d) in [(12, 20, 64), (30, 7, 48), (40, 40, 96)] {
            let a = lcg(n1, d, 1, 0.0);
            let b = lcg(n2, d, 2, 0.3);
            let fast = fid_of_samples(&a, &b).unwrap();
            let slow = fid(&a, &b).unwrap();
            assert!(
                (fast - slow).abs() <= 1e-8 * slow.abs().max(1.0),
                "n1={n1} n2={n2} d={d}: {fast} vs {slow}"
            );
            assert!(fast > 0.1, "{fast}");
        }
    }

    #[test]
    fn a_set_against_itself_is_zero_and_bad_shapes_are_errors() {
        let a = lcg(10, 32, 5, 0.0);
        let same = fid_of_samples(&a, &a).unwrap();
        assert!(same.abs() < 1e-9, "{same}");
        assert!(fid_of_samples(&a, &lcg(10, 16, 5, 0.0)).is_err());
        assert!(fid_of_samples(&lcg(1, 32, 5, 0.0), &a).is_err());
    }

    #[test]
    fn select_rows_picks_and_checks() {
        let a = Features::from_rows(&[vec![1.0], vec![2.0], vec![3.0]]).unwrap();
        let s = select_rows(&a, &[2, 0]).unwrap();
        assert_eq!(s.as_slice(), &[3.0, 1.0]);
        assert!(select_rows(&a, &[3]).is_err());
    }
}
