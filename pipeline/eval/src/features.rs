//! Feature matrices (one row per image) and their Gaussian statistics.

use crate::{Error, Result};
use faer::Mat;

/// A row-major matrix of features: `rows` samples of `dim` values each.
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    dim: usize,
    data: Vec<f32>,
}

impl Features {
    /// Wraps row-major `data`; its length must be a multiple of `dim`.
    pub fn new(dim: usize, data: Vec<f32>) -> Result<Self> {
        if dim == 0 || !data.len().is_multiple_of(dim) {
            return Err(Error::Shape(format!(
                "{} values do not split into rows of {dim}",
                data.len()
            )));
        }
        Ok(Self { dim, data })
    }

    /// Stacks rows of equal length.
    pub fn from_rows(rows: &[Vec<f32>]) -> Result<Self> {
        let dim = rows.first().map_or(0, Vec::len);
        if let Some((i, r)) = rows.iter().enumerate().find(|(_, r)| r.len() != dim) {
            return Err(Error::Shape(format!(
                "row {i} has {} values, row 0 has {dim}",
                r.len()
            )));
        }
        Self::new(dim, rows.concat())
    }

    /// Number of samples.
    pub fn rows(&self) -> usize {
        self.data.len() / self.dim
    }

    /// Feature dimension.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Row `i`.
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }

    /// The row-major values.
    pub fn as_slice(&self) -> &[f32] {
        &self.data
    }

    /// Appends the rows of `other` (same dimension).
    pub fn extend(&mut self, other: &Features) -> Result<()> {
        if other.dim != self.dim {
            return Err(Error::Shape(format!(
                "cannot append {}-d features to {}-d ones",
                other.dim, self.dim
            )));
        }
        self.data.extend_from_slice(&other.data);
        Ok(())
    }

    /// Mean and sample covariance (ddof 1, as `np.cov(x, rowvar=False)`), in f64.
    pub fn stats(&self) -> Result<GaussianStats> {
        let (n, d) = (self.rows(), self.dim);
        if n < 2 {
            return Err(Error::Shape(format!(
                "a covariance needs at least 2 samples, got {n}"
            )));
        }
        let mut mean = vec![0f64; d];
        for i in 0..n {
            for (m, &x) in mean.iter_mut().zip(self.row(i)) {
                *m += f64::from(x);
            }
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        // Centre first, then one f64 product: the two-pass form keeps the
        // cancellation error of E[x²]-E[x]² out of the covariance.
        let centred = Mat::<f64>::from_fn(n, d, |i, j| f64::from(self.data[i * d + j]) - mean[j]);
        let mut cov = centred.transpose() * &centred;
        let scale = 1.0 / (n as f64 - 1.0);
        cov.col_iter_mut()
            .for_each(|c| c.iter_mut().for_each(|x| *x *= scale));
        Ok(GaussianStats { mean, cov })
    }
}

/// The mean and covariance of a feature set: all FID needs from it.
#[derive(Debug, Clone)]
pub struct GaussianStats {
    /// Mean of each feature.
    pub mean: Vec<f64>,
    /// Sample covariance, `dim x dim`.
    pub cov: Mat<f64>,
}

impl GaussianStats {
    /// Builds statistics from a mean and a row-major covariance.
    pub fn from_parts(mean: Vec<f64>, cov_row_major: &[f64]) -> Result<Self> {
        let d = mean.len();
        if cov_row_major.len() != d * d {
            return Err(Error::Shape(format!(
                "a {d}-d mean needs {} covariance values, got {}",
                d * d,
                cov_row_major.len()
            )));
        }
        let cov = Mat::from_fn(d, d, |i, j| cov_row_major[i * d + j]);
        Ok(Self { mean, cov })
    }

    /// Feature dimension.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_match_hand_computation() {
        let f = Features::from_rows(&[vec![1.0, 2.0], vec![3.0, 6.0], vec![5.0, 4.0]]).unwrap();
        let s = f.stats().unwrap();
        assert_eq!(s.mean, vec![3.0, 4.0]);
        // var(x) = (4+0+4)/2 = 4, var(y) = (4+4+0)/2 = 4, cov = (4+0+0)/2 = 2
        assert!((s.cov[(0, 0)] - 4.0).abs() < 1e-12);
        assert!((s.cov[(1, 1)] - 4.0).abs() < 1e-12);
        assert!((s.cov[(0, 1)] - 2.0).abs() < 1e-12);
        assert!((s.cov[(1, 0)] - 2.0).abs() < 1e-12);
    }

    #[test]
    fn ragged_rows_are_rejected() {
        assert!(Features::from_rows(&[vec![1.0], vec![1.0, 2.0]]).is_err());
        assert!(Features::new(3, vec![0.0; 4]).is_err());
        assert!(Features::new(2, vec![0.0; 2]).unwrap().stats().is_err());
    }
}
