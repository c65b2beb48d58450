//! CLIP score as torchmetrics defines it: `max(100 · cos(image, text), 0)` per pair,
//! averaged over pairs, and the plain cosine HPSv2 reports. Both work on embeddings, so
//! any CLIP backbone can feed them.

use crate::{Error, Result};

/// The cosine of an image embedding and a text embedding. HPSv2 scores an image by
/// exactly this (both L2-normalised, then their dot product).
pub fn cosine(image: &[f32], text: &[f32]) -> Result<f64> {
    if image.len() != text.len() || image.is_empty() {
        return Err(Error::Shape(format!(
            "cosine of a {}-d image embedding and a {}-d text embedding",
            image.len(),
            text.len()
        )));
    }
    let dot: f64 = image
        .iter()
        .zip(text)
        .map(|(&a, &b)| f64::from(a) * f64::from(b))
        .sum();
    let norm = |v: &[f32]| v.iter().map(|&x| f64::from(x).powi(2)).sum::<f64>().sqrt();
    let denom = norm(image) * norm(text);
    // torchmetrics normalises with an eps-free division; a zero embedding has no direction.
    if denom == 0.0 {
        return Ok(0.0);
    }
    Ok(dot / denom)
}

/// The CLIP score of one image embedding and one text embedding.
pub fn clip_score(image: &[f32], text: &[f32]) -> Result<f64> {
    Ok((100.0 * cosine(image, text)?).max(0.0))
}

/// The mean CLIP score over `(image, text)` embedding pairs.
pub fn mean_clip_score<'a>(pairs: impl IntoIterator<Item = (&'a [f32], &'a [f32])>) -> Result<f64> {
    let (mut sum, mut n) = (0.0, 0usize);
    for (image, text) in pairs {
        sum += clip_score(image, text)?;
        n += 1;
    }
    if n == 0 {
        return Err(Error::Shape("CLIP score of no pairs".into()));
    }
    Ok(sum / n as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_is_hpsv2s_score() {
        assert!((cosine(&[1.0, 0.0], &[2.0, 0.0]).unwrap() - 1.0).abs() < 1e-12);
        assert!((cosine(&[1.0, 1.0], &[1.0, 0.0]).unwrap() - 0.5f64.sqrt()).abs() < 1e-12);
        assert!(cosine(&[1.0], &[1.0, 0.0]).is_err());
    }

    #[test]
    fn parallel_opposite_and_orthogonal() {
        assert!((clip_score(&[1.0, 2.0], &[2.0, 4.0]).unwrap() - 100.0).abs() < 1e-9);
        assert_eq!(clip_score(&[1.0, 0.0], &[-1.0, 0.0]).unwrap(), 0.0);
        assert!(clip_score(&[1.0, 0.0], &[0.0, 1.0]).unwrap().abs() < 1e-12);
        let s = clip_score(&[1.0, 1.0], &[1.0, 0.0]).unwrap();
        assert!((s - 100.0 / 2f64.sqrt()).abs() < 1e-9);
        let mean = mean_clip_score([
            (&[1.0f32, 0.0][..], &[1.0f32, 0.0][..]),
            (&[1.0, 0.0][..], &[-1.0, 0.0][..]),
        ])
        .unwrap();
        assert!((mean - 50.0).abs() < 1e-9);
        assert!(clip_score(&[1.0], &[1.0, 2.0]).is_err());
    }
}
