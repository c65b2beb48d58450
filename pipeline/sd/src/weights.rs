//! Loading diffusers/transformers safetensors into VarBuilders, with errors that name the file.

use std::path::Path;

use candle_core::{DType, Device};
use candle_nn::VarBuilder;

use crate::error::{Error, Result};

/// Reads every tensor of a safetensors file into a VarBuilder of plain (frozen) tensors.
pub fn load_safetensors(path: &Path, dtype: DType, device: &Device) -> Result<VarBuilder<'static>> {
    if !path.is_file() {
        return Err(Error::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::NotFound, "weights file not found"),
        });
    }
    let tensors =
        candle_core::safetensors::load(path, device).map_err(|source| Error::Weights {
            path: path.to_path_buf(),
            source,
        })?;
    Ok(VarBuilder::from_tensors(tensors, dtype, device))
}

/// Attaches the weight file to a candle error raised while building a model from it
/// (candle's message already names the missing or mis-shaped tensor key).
pub(crate) fn locate(err: Error, path: &Path) -> Error {
    match err {
        Error::Candle(source) => Error::Weights {
            path: path.to_path_buf(),
            source,
        },
        other => other,
    }
}
