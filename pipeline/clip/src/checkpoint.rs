//! Reading model checkpoints as training scripts save them: safetensors, or a PyTorch
//! pickle whose tensors sit at the top level or under a `state_dict` key.

use std::collections::BTreeMap;
use std::path::Path;

use candle_core::{DType, Device};
use candle_nn::VarBuilder;
use serde_json::Value;

/// Whether `path` starts as a safetensors file does: a little-endian header length, then `{`.
fn is_safetensors(path: &Path) -> bool {
    use std::io::Read;
    let mut head = [0u8; 9];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut head))
        .map(|()| head[8] == b'{')
        .unwrap_or(false)
}

/// The shape of every tensor in a checkpoint, read from its index alone (the
/// safetensors header, or the pickle's `data.pkl`), without loading any weights.
pub(crate) fn tensor_shapes(
    path: &Path,
) -> std::result::Result<BTreeMap<String, Vec<usize>>, String> {
    if is_safetensors(path) {
        use std::io::Read;
        let mut file = std::fs::File::open(path).map_err(|e| e.to_string())?;
        let mut len = [0u8; 8];
        file.read_exact(&mut len).map_err(|e| e.to_string())?;
        let len = usize::try_from(u64::from_le_bytes(len)).map_err(|e| e.to_string())?;
        if len > 100_000_000 {
            return Err(format!("a safetensors header of {len} bytes"));
        }
        let mut header = vec![0u8; len];
        file.read_exact(&mut header)
            .map_err(|e| format!("truncated safetensors header: {e}"))?;
        let header: BTreeMap<String, Value> =
            serde_json::from_slice(&header).map_err(|e| e.to_string())?;
        return Ok(header
            .into_iter()
            .filter_map(|(name, t)| {
                let shape = serde_json::from_value::<Vec<usize>>(t.get("shape")?.clone()).ok()?;
                Some((name, shape))
            })
            .collect());
    }
    let index = |key| candle_core::pickle::PthTensors::new(path, key);
    let tensors = match index(Some("state_dict")) {
        Ok(t) if !t.tensor_infos().is_empty() => t,
        _ => index(None)
            .map_err(|e| format!("neither safetensors nor a PyTorch checkpoint ({e})"))?,
    };
    Ok(tensors
        .tensor_infos()
        .iter()
        .map(|(name, info)| (name.clone(), info.layout.dims().to_vec()))
        .collect())
}

/// The checkpoint's tensors as f32 on `device`.
pub(crate) fn var_builder(
    path: &Path,
    device: &Device,
) -> candle_core::Result<VarBuilder<'static>> {
    if is_safetensors(path) {
        let bytes = std::fs::read(path)?;
        return VarBuilder::from_buffered_safetensors(bytes, DType::F32, device);
    }
    let nested = candle_core::pickle::PthTensors::new(path, Some("state_dict"))
        .ok()
        .filter(|t| !t.tensor_infos().is_empty());
    match nested {
        Some(t) => Ok(VarBuilder::from_backend(
            Box::new(t),
            DType::F32,
            device.clone(),
        )),
        None => VarBuilder::from_pth(path, DType::F32, device),
    }
}
