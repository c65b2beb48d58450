//! transformers' `CLIPImageProcessor` with its PIL backend, step for step: convert to
//! RGB, resize (shortest side, Pillow's fixed-point resampling on 8-bit pixels),
//! centre crop (`top = (h - ch) // 2`), rescale, normalise, channels first.

use image::DynamicImage;

use crate::config::{PreprocessorConfig, SizeSpec};
use crate::pil::{Filter, Plane, resize, to_rgb};
use crate::{Error, Result};

/// Resolved preprocessing settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageProcessor {
    resize: Option<Resize>,
    crop: Option<(usize, usize)>,
    filter: Filter,
    rescale: Option<f64>,
    mean_std: Option<([f32; 3], [f32; 3])>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Resize {
    ShortestEdge(usize),
    Exact(usize, usize),
}

impl ImageProcessor {
    /// Checks and resolves `cfg`; `source` names the file for errors.
    pub fn new(cfg: &PreprocessorConfig, source: &str) -> Result<Self> {
        let bad = |reason: String| Error::Config {
            file: source.to_owned(),
            reason,
        };
        let resize = if cfg.do_resize {
            Some(match &cfg.size {
                SizeSpec::Side(s) => Resize::ShortestEdge(*s as usize),
                SizeSpec::Dict {
                    shortest_edge: Some(s),
                    ..
                } => Resize::ShortestEdge(*s as usize),
                SizeSpec::Dict {
                    height: Some(h),
                    width: Some(w),
                    ..
                } => Resize::Exact(*h as usize, *w as usize),
                other => return Err(bad(format!("size {other:?} is not understood"))),
            })
        } else {
            None
        };
        let crop = if cfg.do_center_crop {
            Some(match &cfg.crop_size {
                SizeSpec::Side(s) => (*s as usize, *s as usize),
                SizeSpec::Dict {
                    height: Some(h),
                    width: Some(w),
                    ..
                } => (*h as usize, *w as usize),
                other => return Err(bad(format!("crop_size {other:?} is not understood"))),
            })
        } else {
            None
        };
        let filter = match cfg.resample {
            1 => Filter::Lanczos,
            2 => Filter::Bilinear,
            3 => Filter::Bicubic,
            r => {
                return Err(bad(format!(
                    "resample {r} is not supported (1 lanczos, 2 bilinear, 3 bicubic are)"
                )));
            }
        };
        let mean_std = if cfg.do_normalize {
            let three = |v: &[f32], what: &str| -> Result<[f32; 3]> {
                <[f32; 3]>::try_from(v)
                    .map_err(|_| bad(format!("{what} has {} values, expected 3", v.len())))
            };
            let std = three(&cfg.image_std, "image_std")?;
            if std.contains(&0.0) {
                return Err(bad("image_std has a zero".into()));
            }
            Some((three(&cfg.image_mean, "image_mean")?, std))
        } else {
            None
        };
        Ok(ImageProcessor {
            resize,
            crop,
            filter,
            rescale: cfg.do_rescale.then_some(cfg.rescale_factor),
            mean_std,
        })
    }

    /// The (height, width) of the processed image, when fixed by a crop or exact resize.
    pub fn output_size(&self) -> Option<(usize, usize)> {
        match (self.crop, self.resize) {
            (Some(c), _) => Some(c),
            (None, Some(Resize::Exact(h, w))) => Some((h, w)),
            _ => None,
        }
    }

    /// The 8-bit image after resize and crop (what Pillow would hold).
    pub fn pixels(&self, image: &DynamicImage) -> Result<Plane> {
        let mut plane = to_rgb(image);
        if plane.width == 0 || plane.height == 0 {
            return Err(Error::Image("an empty image".into()));
        }
        if let Some(r) = self.resize {
            let (h, w) = match r {
                Resize::Exact(h, w) => (h, w),
                Resize::ShortestEdge(s) => {
                    // transformers' `get_resize_output_image_size`: int(s * long / short).
                    let (width, height) = (plane.width, plane.height);
                    let (short, long) = if width <= height {
                        (width, height)
                    } else {
                        (height, width)
                    };
                    let new_long = (s as f64 * long as f64 / short as f64) as usize;
                    if width <= height {
                        (new_long, s)
                    } else {
                        (s, new_long)
                    }
                }
            };
            if (h, w) != (plane.height, plane.width) {
                plane = resize(&plane, w, h, self.filter);
            }
        }
        if let Some((ch, cw)) = self.crop {
            if ch > plane.height || cw > plane.width {
                return Err(Error::Image(format!(
                    "a {}x{} image is smaller than the {cw}x{ch} crop",
                    plane.width, plane.height
                )));
            }
            let top = (plane.height - ch) / 2;
            let left = (plane.width - cw) / 2;
            let mut data = Vec::with_capacity(ch * cw * 3);
            for y in top..top + ch {
                let row = (y * plane.width + left) * 3;
                data.extend_from_slice(&plane.data[row..row + cw * 3]);
            }
            plane = Plane {
                width: cw,
                height: ch,
                channels: 3,
                data,
            };
        }
        Ok(plane)
    }

    /// Channels-first f32 pixel values, `3 * h * w`, and (h, w).
    pub fn process(&self, image: &DynamicImage) -> Result<(Vec<f32>, (usize, usize))> {
        let plane = self.pixels(image)?;
        let (h, w) = (plane.height, plane.width);
        let mut out = vec![0f32; 3 * h * w];
        for (i, px) in plane.data.chunks_exact(3).enumerate() {
            for c in 0..3 {
                // As transformers: rescale in f64, store f32, then (x - mean) / std in f32.
                let mut v = f64::from(px[c]);
                if let Some(s) = self.rescale {
                    v *= s;
                }
                let mut v = v as f32;
                if let Some((mean, std)) = &self.mean_std {
                    v = (v - mean[c]) / std[c];
                }
                out[c * h * w + i] = v;
            }
        }
        Ok((out, (h, w)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{Rgb, RgbImage};

    #[test]
    fn shortest_side_then_centre_crop_then_normalise() {
        let p = ImageProcessor::new(&PreprocessorConfig::default(), "test").unwrap();
        // 448x300 landscape: short side 300 -> 224, long int(224*448/300) = 334.
        let img = DynamicImage::ImageRgb8(RgbImage::from_pixel(448, 300, Rgb([255, 0, 128])));
        let plane = p.pixels(&img).unwrap();
        assert_eq!((plane.width, plane.height), (224, 224));
        let (v, (h, w)) = p.process(&img).unwrap();
        assert_eq!((h, w, v.len()), (224, 224, 3 * 224 * 224));
        let want_r = (1.0 - 0.481_454_66) / 0.268_629_54;
        assert!((v[0] - want_r).abs() < 1e-5, "{}", v[0]);
        let want_g = (0.0 - 0.457_827_5) / 0.261_302_6;
        assert!((v[224 * 224] - want_g).abs() < 1e-5);
    }

    #[test]
    fn unsupported_settings_are_named() {
        let cfg = PreprocessorConfig {
            resample: 5,
            ..PreprocessorConfig::default()
        };
        let e = ImageProcessor::new(&cfg, "pp.json")
            .unwrap_err()
            .to_string();
        assert!(e.contains("pp.json") && e.contains("resample 5"), "{e}");
        let cfg = PreprocessorConfig {
            image_mean: vec![0.5],
            ..PreprocessorConfig::default()
        };
        assert!(ImageProcessor::new(&cfg, "x").is_err());
    }
}
