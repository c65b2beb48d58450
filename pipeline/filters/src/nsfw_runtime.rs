//! The NSFW model behind one type, whichever runtime runs it.
//!
//! ONNX Runtime (`ort`, loaded at run time from the `onnxruntime` wheel's library) is the
//! default: it measured 42 ms per image against tract's 245 ms on one core here, and the
//! score step spends most of its time in this model. Pure-Rust tract stays available for
//! machines without the library; both take the same preprocessed input.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::error::{Error, Result};

/// Which runtime runs open_nsfw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase", tag = "runtime")]
pub enum NsfwRuntime {
    /// Pure-Rust tract (feature `tract`).
    Tract,
    /// ONNX Runtime through `ort` (feature `ort`), from this `libonnxruntime.so`.
    Ort {
        /// The shared library; not part of a fingerprint (where it lies does not change
        /// the scores).
        #[serde(skip)]
        library: PathBuf,
        /// Compute threads of the one session.
        #[serde(skip)]
        threads: usize,
    },
}

impl NsfwRuntime {
    /// The name used in configs and flags.
    pub fn name(&self) -> &'static str {
        match self {
            NsfwRuntime::Tract => "tract",
            NsfwRuntime::Ort { .. } => "ort",
        }
    }

    /// Checks what can be checked without loading: the library file of `ort`, and that the
    /// runtime was compiled in. The error names the fix.
    pub fn verify(&self) -> Result<()> {
        match self {
            NsfwRuntime::Tract => {
                if cfg!(feature = "tract") {
                    Ok(())
                } else {
                    Err(not_compiled("tract"))
                }
            }
            NsfwRuntime::Ort { library, .. } => {
                if !cfg!(feature = "ort") {
                    return Err(not_compiled("ort"));
                }
                if library.is_file() {
                    Ok(())
                } else {
                    Err(Error::ModelLoad {
                        path: library.clone(),
                        message: "ONNX Runtime library not found: run \
                                  `scripts/fetch-models.sh onnxruntime` (it extracts it from \
                                  the `onnxruntime` wheel), pass its path, or use the tract \
                                  runtime (`--nsfw-runtime tract`)"
                            .to_string(),
                    })
                }
            }
        }
    }
}

fn not_compiled(name: &str) -> Error {
    Error::ModelLoad {
        path: PathBuf::from(name),
        message: format!("this build has no `{name}` NSFW runtime (cargo feature `{name}`)"),
    }
}

/// A loaded open_nsfw model.
#[derive(Debug)]
pub enum NsfwScorer {
    /// On tract.
    #[cfg(feature = "tract")]
    Tract(crate::nsfw::NsfwModel),
    /// On ONNX Runtime.
    #[cfg(feature = "ort")]
    Ort(crate::nsfw_ort::OrtNsfwModel),
}

impl NsfwScorer {
    /// Loads `model` (sha256-checked) on `runtime`.
    pub fn load(model: &Path, runtime: &NsfwRuntime, jpeg_round_trip: bool) -> Result<NsfwScorer> {
        runtime.verify()?;
        match runtime {
            #[cfg(feature = "tract")]
            NsfwRuntime::Tract => Ok(NsfwScorer::Tract(
                crate::nsfw::NsfwModel::load(model)?.with_jpeg_round_trip(jpeg_round_trip),
            )),
            #[cfg(feature = "ort")]
            NsfwRuntime::Ort { library, threads } => Ok(NsfwScorer::Ort(
                crate::nsfw_ort::OrtNsfwModel::load(model, library, *threads)?
                    .with_jpeg_round_trip(jpeg_round_trip),
            )),
            #[allow(unreachable_patterns)]
            other => Err(not_compiled(other.name())),
        }
    }

    /// Runs the model on preprocessed input ([`crate::nsfw::preprocess`]); returns (sfw, nsfw).
    pub fn run(&self, input: &[f32]) -> Result<(f32, f32)> {
        match self {
            #[cfg(feature = "tract")]
            NsfwScorer::Tract(m) => m.run(input),
            #[cfg(feature = "ort")]
            NsfwScorer::Ort(m) => m.run(input),
            #[allow(unreachable_patterns)]
            _ => Err(not_compiled("any")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_ort_library_names_the_fix() {
        let runtime = NsfwRuntime::Ort {
            library: PathBuf::from("/nonexistent/libonnxruntime.so"),
            threads: 1,
        };
        let err = runtime.verify().expect_err("missing library must fail");
        let text = err.to_string();
        if cfg!(feature = "ort") {
            assert!(text.contains("fetch-models.sh onnxruntime"), "{text}");
        } else {
            assert!(text.contains("feature `ort`"), "{text}");
        }
    }

    #[test]
    fn the_fingerprint_names_the_runtime_but_not_the_library_path() {
        let a = NsfwRuntime::Ort {
            library: PathBuf::from("/a/libonnxruntime.so"),
            threads: 1,
        };
        let b = NsfwRuntime::Ort {
            library: PathBuf::from("/b/libonnxruntime.so"),
            threads: 4,
        };
        let json = |r: &NsfwRuntime| serde_json::to_string(r).unwrap_or_default();
        assert_eq!(json(&a), json(&b));
        assert_eq!(json(&a), r#"{"runtime":"ort"}"#);
        assert_eq!(json(&NsfwRuntime::Tract), r#"{"runtime":"tract"}"#);
    }
}
