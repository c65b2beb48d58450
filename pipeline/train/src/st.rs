//! A deterministic safetensors writer.
//!
//! `safetensors::serialize_to_file` writes its `__metadata__` map from a `HashMap`, so the
//! header's key order (and the file's bytes) change from process to process. Exact resume
//! promises byte-identical LoRA files, so this writer sorts tensors and metadata and writes
//! the header itself. Files are written to a temporary name and renamed into place.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use candle_core::{DType, Tensor};

use crate::error::{Error, IoAt, Result};

fn json_str(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

/// Writes `tensors` (as f32, sorted by name) with `metadata` to `path`, atomically.
pub fn write(
    path: &Path,
    tensors: &[(String, Tensor)],
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let mut sorted: Vec<&(String, Tensor)> = tensors.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    if let Some(w) = sorted.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(Error::Input {
            what: format!("tensors for {}", path.display()),
            reason: format!("duplicate name {}", w[0].0),
        });
    }
    let mut header = String::from("{");
    let mut first = true;
    if !metadata.is_empty() {
        header.push_str("\"__metadata__\":{");
        let entries: Vec<String> = metadata
            .iter()
            .map(|(k, v)| format!("{}:{}", json_str(k), json_str(v)))
            .collect();
        header.push_str(&entries.join(","));
        header.push('}');
        first = false;
    }
    let mut data: Vec<u8> = Vec::new();
    for (name, t) in sorted {
        let flat: Vec<f32> = t
            .to_dtype(DType::F32)?
            .flatten_all()?
            .to_device(&candle_core::Device::Cpu)?
            .to_vec1()?;
        let start = data.len();
        for v in &flat {
            data.extend_from_slice(&v.to_le_bytes());
        }
        let shape: Vec<String> = t.dims().iter().map(|d| d.to_string()).collect();
        if !first {
            header.push(',');
        }
        first = false;
        header.push_str(&format!(
            "{}:{{\"dtype\":\"F32\",\"shape\":[{}],\"data_offsets\":[{},{}]}}",
            json_str(name),
            shape.join(","),
            start,
            data.len()
        ));
    }
    header.push('}');
    let mut header = header.into_bytes();
    header.resize(header.len().next_multiple_of(8), b' ');
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).at(dir)?;
    let tmp = anchor_core::ledger::unique_temporary(path);
    {
        let mut f = std::fs::File::create(&tmp).at(&tmp)?;
        f.write_all(&(header.len() as u64).to_le_bytes()).at(&tmp)?;
        f.write_all(&header).at(&tmp)?;
        f.write_all(&data).at(&tmp)?;
        f.sync_all().at(&tmp)?;
    }
    std::fs::rename(&tmp, path).at(path)
}

/// Reads every tensor of a safetensors file (any dtype candle reads) onto `device`.
pub fn read(
    path: &Path,
    device: &candle_core::Device,
) -> Result<std::collections::HashMap<String, Tensor>> {
    candle_core::safetensors::load(path, device).map_err(|e| Error::Input {
        what: format!("safetensors file {}", path.display()),
        reason: e.to_string(),
    })
}

/// Writes bytes atomically (temporary file, fsync, rename).
pub fn write_bytes(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).at(dir)?;
    let tmp = anchor_core::ledger::unique_temporary(path);
    {
        let mut f = std::fs::File::create(&tmp).at(&tmp)?;
        f.write_all(bytes).at(&tmp)?;
        f.sync_all().at(&tmp)?;
    }
    std::fs::rename(&tmp, path).at(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn files_are_readable_by_safetensors_and_deterministic() -> Result<()> {
        let dir = tempfile::tempdir().map_err(|e| Error::io("tempdir", e))?;
        let dev = Device::Cpu;
        let a = Tensor::new(&[[1f32, 2.], [3., 4.]], &dev)?;
        let b = Tensor::new(&[5f32], &dev)?;
        let meta = BTreeMap::from([
            ("z".to_string(), "1".to_string()),
            ("a".to_string(), "{\"x\": 2}".to_string()),
        ]);
        let p1 = dir.path().join("one.safetensors");
        let p2 = dir.path().join("two.safetensors");
        write(
            &p1,
            &[("b".into(), b.clone()), ("a".into(), a.clone())],
            &meta,
        )?;
        write(&p2, &[("a".into(), a), ("b".into(), b)], &meta)?;
        let (x, y) = (std::fs::read(&p1).at(&p1)?, std::fs::read(&p2).at(&p2)?);
        assert_eq!(x, y);
        let st = safetensors::SafeTensors::deserialize(&x).map_err(|e| Error::Input {
            what: "test file".into(),
            reason: e.to_string(),
        })?;
        assert_eq!(
            st.tensor("a").map(|t| t.shape().to_vec()).ok(),
            Some(vec![2, 2])
        );
        let back = read(&p1, &dev)?;
        let a_back: Vec<Vec<f32>> = back["a"].to_vec2()?;
        assert_eq!(a_back, vec![vec![1.0, 2.0], vec![3.0, 4.0]]);
        let (_, m) = safetensors::SafeTensors::read_metadata(&x).map_err(|e| Error::Input {
            what: "test file".into(),
            reason: e.to_string(),
        })?;
        assert_eq!(
            m.metadata()
                .as_ref()
                .and_then(|m| m.get("a"))
                .map(String::as_str),
            Some("{\"x\": 2}")
        );
        Ok(())
    }
}
