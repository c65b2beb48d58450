//! Reads the tensors and module attributes of a TorchScript archive (`torch.jit.save`).
//!
//! The archive is a zip holding `<name>/data.pkl` (the module tree: nested objects whose
//! state dicts hold tensors, ints and submodules), `<name>/constants.pkl` and one raw
//! little-endian storage per tensor under `<name>/data/<key>`. candle's pickle reader
//! expects a flat state dict, so this module walks the tree itself and names every tensor
//! by its dotted attribute path (`net.layers.conv.weight`), as `state_dict()` would.

mod pickle;

pub use pickle::{TensorRef, Value, unpickle};

use crate::{Error, Result};
use candle_core::{DType, Device, Tensor};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The decoded contents of a TorchScript archive.
#[derive(Debug)]
pub struct TorchScriptArchive {
    path: PathBuf,
    tensors: BTreeMap<String, Tensor>,
    attributes: BTreeMap<String, Value>,
    classes: BTreeMap<String, String>,
}

impl TorchScriptArchive {
    /// Opens an archive and loads every tensor onto `device`.
    pub fn open(path: impl AsRef<Path>, device: &Device) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = std::fs::File::open(&path).map_err(|source| Error::Io {
            path: path.clone(),
            source,
        })?;
        let mut zip = zip::ZipArchive::new(file).map_err(|e| archive_err(&path, "-", e))?;
        let pkl_name = zip
            .file_names()
            .filter_map(|n| n.ok())
            .find(|n| n.ends_with("/data.pkl") && n.matches('/').count() == 1)
            .map(|n| n.into_owned())
            .ok_or_else(|| archive_err(&path, "data.pkl", "no <name>/data.pkl entry"))?;
        let prefix = pkl_name.trim_end_matches("data.pkl").to_string();
        let root = unpickle(&read_entry(&mut zip, &path, &pkl_name)?, &pkl_name)?;

        let mut walk = Walk::default();
        walk.visit("", &root);
        let mut tensors = BTreeMap::new();
        let mut storages: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        for (name, t) in walk.tensors {
            let entry = format!("{prefix}data/{}", t.storage);
            if !storages.contains_key(&t.storage) {
                let bytes = read_entry(&mut zip, &path, &entry)?;
                storages.insert(t.storage.clone(), bytes);
            }
            let bytes = &storages[&t.storage];
            let tensor = build_tensor(&t, bytes, device).map_err(|reason| Error::Tensor {
                name: format!("{name} ({entry})"),
                reason,
            })??;
            tensors.insert(name, tensor);
        }
        Ok(Self {
            path,
            tensors,
            attributes: walk.attributes,
            classes: walk.classes,
        })
    }

    /// The archive path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every tensor, by dotted name.
    pub fn tensors(&self) -> &BTreeMap<String, Tensor> {
        &self.tensors
    }

    /// One tensor; an error names it when absent.
    pub fn tensor(&self, name: &str) -> Result<&Tensor> {
        self.tensors.get(name).ok_or_else(|| Error::Tensor {
            name: name.to_string(),
            reason: format!("not in {}", self.path.display()),
        })
    }

    /// Non-tensor, non-module attributes (`net.layers.conv.stride` → `Int(2)`).
    pub fn attributes(&self) -> &BTreeMap<String, Value> {
        &self.attributes
    }

    /// The class of each module (`net.layers.mixed` → `__torch__.inceptionv3.InceptionA`).
    pub fn classes(&self) -> &BTreeMap<String, String> {
        &self.classes
    }

    /// The class of module `module`.
    pub fn class_of(&self, module: &str) -> Result<&str> {
        self.classes
            .get(module)
            .map(String::as_str)
            .ok_or_else(|| Error::Module {
                module: module.to_string(),
                reason: format!("no such module in {}", self.path.display()),
            })
    }

    /// Attribute `attr` of `module` as one int or a list of ints.
    pub fn ints(&self, module: &str, attr: &str) -> Result<Vec<i64>> {
        let key = format!("{module}.{attr}");
        let bad = |reason: String| Error::Module {
            module: module.to_string(),
            reason,
        };
        match self.attributes.get(&key) {
            Some(Value::Int(i)) => Ok(vec![*i]),
            Some(v) => v
                .as_seq()
                .and_then(|s| s.iter().map(Value::as_int).collect::<Option<Vec<_>>>())
                .ok_or_else(|| bad(format!("attribute {attr} is not an int list: {v:?}"))),
            None => Err(bad(format!("no attribute {attr}"))),
        }
    }
}

fn archive_err(path: &Path, entry: &str, reason: impl std::fmt::Display) -> Error {
    Error::Archive {
        path: path.to_path_buf(),
        entry: entry.to_string(),
        reason: reason.to_string(),
    }
}

fn read_entry(
    zip: &mut zip::ZipArchive<std::fs::File>,
    path: &Path,
    entry: &str,
) -> Result<Vec<u8>> {
    let mut f = zip
        .by_name(entry)
        .map_err(|e| archive_err(path, entry, e))?;
    let mut buf = Vec::with_capacity(usize::try_from(f.size()).unwrap_or(0));
    f.read_to_end(&mut buf)
        .map_err(|e| archive_err(path, entry, e))?;
    Ok(buf)
}

/// Collects tensors, attributes and classes from the module tree.
#[derive(Default)]
struct Walk {
    tensors: Vec<(String, TensorRef)>,
    attributes: BTreeMap<String, Value>,
    classes: BTreeMap<String, String>,
}

impl Walk {
    fn visit(&mut self, path: &str, v: &Value) {
        match v {
            Value::Object { class, state } => {
                self.classes.insert(path.to_string(), class.clone());
                if let Value::Dict(items) = state.as_ref() {
                    for (k, child) in items {
                        if let Some(k) = k.as_str() {
                            let p = if path.is_empty() {
                                k.to_string()
                            } else {
                                format!("{path}.{k}")
                            };
                            self.visit(&p, child);
                        }
                    }
                }
            }
            Value::Tensor(t) => self.tensors.push((path.to_string(), t.clone())),
            other => {
                self.attributes.insert(path.to_string(), other.clone());
            }
        }
    }
}

/// Builds a candle tensor from a storage, honouring offset and strides.
/// The outer error is a reason about the layout; the inner one a candle failure.
fn build_tensor(
    t: &TensorRef,
    bytes: &[u8],
    device: &Device,
) -> std::result::Result<Result<Tensor>, String> {
    let (dtype, width) = match t.storage_type.as_str() {
        "FloatStorage" => (DType::F32, 4),
        "DoubleStorage" => (DType::F64, 8),
        "HalfStorage" => (DType::F16, 2),
        "BFloat16Storage" => (DType::BF16, 2),
        "LongStorage" => (DType::I64, 8),
        "ByteStorage" => (DType::U8, 1),
        other => return Err(format!("unsupported storage type {other}")),
    };
    if t.size.len() != t.stride.len() {
        return Err(format!(
            "shape {:?} and strides {:?} differ in rank",
            t.size, t.stride
        ));
    }
    let numel: usize = t.size.iter().product();
    let available = bytes.len() / width;
    // Gather element indices: contiguous tensors are one slice, others are walked.
    let contiguous = {
        let mut expect = 1;
        t.size.iter().zip(&t.stride).rev().all(|(&n, &s)| {
            let ok = n == 1 || s == expect;
            expect *= n;
            ok
        })
    };
    let last = if numel == 0 {
        t.offset
    } else {
        t.offset
            + t.size
                .iter()
                .zip(&t.stride)
                .map(|(&n, &s)| (n - 1) * s)
                .sum::<usize>()
            + 1
    };
    if last > available {
        return Err(format!("needs {last} elements, storage has {available}"));
    }
    let gathered: Vec<u8>;
    let raw = if contiguous {
        &bytes[t.offset * width..(t.offset + numel) * width]
    } else {
        let mut out = Vec::with_capacity(numel * width);
        let mut idx = vec![0usize; t.size.len()];
        for _ in 0..numel {
            let e = t.offset + idx.iter().zip(&t.stride).map(|(i, s)| i * s).sum::<usize>();
            out.extend_from_slice(&bytes[e * width..(e + 1) * width]);
            for d in (0..idx.len()).rev() {
                idx[d] += 1;
                if idx[d] < t.size[d] {
                    break;
                }
                idx[d] = 0;
            }
        }
        gathered = out;
        &gathered
    };
    Ok(Tensor::from_raw_buffer(raw, dtype, &t.size, device).map_err(Error::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strided_storage_is_gathered() {
        // A 2x2 transposed view of storage [0, 1, 2, 3]: rows are columns.
        let bytes: Vec<u8> = [0f32, 1., 2., 3.]
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        let t = TensorRef {
            storage: "0".into(),
            storage_type: "FloatStorage".into(),
            offset: 0,
            size: vec![2, 2],
            stride: vec![1, 2],
        };
        let x = build_tensor(&t, &bytes, &Device::Cpu).unwrap().unwrap();
        assert_eq!(
            x.to_vec2::<f32>().unwrap(),
            vec![vec![0., 2.], vec![1., 3.]]
        );
        let short = TensorRef {
            size: vec![3, 2],
            stride: vec![2, 1],
            ..t
        };
        assert!(
            build_tensor(&short, &bytes, &Device::Cpu)
                .unwrap_err()
                .contains("storage has 4")
        );
    }

    #[test]
    fn missing_file_names_the_path() {
        let e = TorchScriptArchive::open("/nonexistent/model.pt", &Device::Cpu).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/model.pt"));
    }
}
