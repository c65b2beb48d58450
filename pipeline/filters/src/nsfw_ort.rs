//! open_nsfw on ONNX Runtime through `ort` in `load-dynamic` mode (feature `ort`).
//!
//! The runtime library is not bundled or downloaded: pass the `libonnxruntime.so` that the
//! `onnxruntime` PyPI wheel ships (`onnxruntime/capi/libonnxruntime.so.*`). Preprocessing
//! is shared with the tract backend ([`crate::nsfw::preprocess`]), so both score the same
//! input tensor.

use std::fmt::Display;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use image::DynamicImage;
use ort::environment::Environment;
use ort::session::Session;
use ort::value::Tensor;

use crate::error::{Error, Result};
use crate::nsfw::{INPUT_SIDE, preprocess, verify_model};

/// ONNX Runtime allows one environment per process; the first library path wins.
static ENV: OnceLock<std::result::Result<Environment, String>> = OnceLock::new();

fn msg(e: impl Display) -> String {
    e.to_string()
}

fn environment(lib: &Path) -> Result<Environment> {
    if !lib.is_file() {
        return Err(Error::ModelLoad {
            path: lib.to_path_buf(),
            message: "libonnxruntime.so not found; install the `onnxruntime` wheel and pass \
                      site-packages/onnxruntime/capi/libonnxruntime.so.<version>"
                .to_string(),
        });
    }
    ENV.get_or_init(|| ort::init_from(lib).map_err(msg)?.build().map_err(msg))
        .clone()
        .map_err(|message| Error::ModelLoad {
            path: lib.to_path_buf(),
            message,
        })
}

/// open_nsfw on ONNX Runtime.
pub struct OrtNsfwModel {
    path: PathBuf,
    // `Session::run` takes `&mut self`; a mutex keeps the model shareable across threads.
    session: Mutex<Session>,
    jpeg_round_trip: bool,
}

impl std::fmt::Debug for OrtNsfwModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrtNsfwModel")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl OrtNsfwModel {
    /// Loads the model (after checking its sha256) with `intra_threads` compute threads.
    pub fn load(
        model: &Path,
        onnxruntime_lib: &Path,
        intra_threads: usize,
    ) -> Result<OrtNsfwModel> {
        verify_model(model)?;
        let env = environment(onnxruntime_lib)?;
        let err = |m: String| Error::ModelLoad {
            path: model.to_path_buf(),
            message: m,
        };
        let session = Session::builder(&env)
            .map_err(|e| err(msg(e)))?
            .with_intra_threads(intra_threads.max(1))
            .map_err(|e| err(msg(e)))?
            .commit_from_file(model)
            .map_err(|e| err(msg(e)))?;
        Ok(OrtNsfwModel {
            path: model.to_path_buf(),
            session: Mutex::new(session),
            jpeg_round_trip: true,
        })
    }

    /// Turns the package's JPEG round trip on (the default) or off.
    pub fn with_jpeg_round_trip(mut self, on: bool) -> OrtNsfwModel {
        self.jpeg_round_trip = on;
        self
    }

    /// Runs the model on preprocessed input; returns (sfw, nsfw).
    pub fn run(&self, input: &[f32]) -> Result<(f32, f32)> {
        let err = |m: String| Error::Inference {
            path: self.path.clone(),
            message: m,
        };
        let tensor = Tensor::from_array(([1usize, INPUT_SIDE, INPUT_SIDE, 3], input.to_vec()))
            .map_err(|e| err(msg(e)))?;
        let mut session = self
            .session
            .lock()
            .map_err(|_| err("session mutex poisoned".to_string()))?;
        let outputs = session.run(ort::inputs![tensor]).map_err(|e| err(msg(e)))?;
        let first = outputs
            .values()
            .next()
            .ok_or_else(|| err("model returned no output".to_string()))?;
        let (_, values) = first.try_extract_tensor::<f32>().map_err(|e| err(msg(e)))?;
        match values {
            [sfw, nsfw] => Ok((*sfw, *nsfw)),
            other => Err(err(format!("expected 2 outputs, got {}", other.len()))),
        }
    }

    /// The NSFW probability of one decoded image.
    pub fn score(&self, img: &DynamicImage) -> Result<f32> {
        let input = preprocess(img, self.jpeg_round_trip)?;
        Ok(self.run(&input)?.1)
    }
}
