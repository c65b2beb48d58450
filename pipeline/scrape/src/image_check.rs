//! Image validation under decode limits.
//!
//! The header is read first and its dimensions checked, so a decompression
//! bomb (a tiny file declaring a huge canvas) is rejected before any pixel
//! buffer is allocated; the full decode then runs under `image::Limits` as a
//! second fence. Truncation is told apart from corruption by the format's end
//! marker (JPEG `EOI`, PNG `IEND`), because decoders often paper over a
//! missing tail.

use std::io::Cursor;

use image::{ImageError, ImageFormat, ImageReader, Limits};

use crate::outcome::ErrorClass;
use crate::sniff::Sniffed;

/// Decode limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ImageLimits {
    /// Largest accepted width in pixels.
    pub max_width: u32,
    /// Largest accepted height in pixels.
    pub max_height: u32,
    /// Largest allocation the decoder may make, in bytes.
    pub max_alloc: u64,
}

impl Default for ImageLimits {
    fn default() -> Self {
        ImageLimits {
            max_width: 12_000,
            max_height: 12_000,
            max_alloc: 512 << 20,
        }
    }
}

/// What a successful check learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageInfo {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Canonical MIME type of the format.
    pub mime: &'static str,
}

/// Checks that `bytes` is a complete image within `limits`.
pub fn check_image(bytes: &[u8], limits: &ImageLimits) -> Result<ImageInfo, (ErrorClass, String)> {
    let sniffed = Sniffed::of(bytes);
    let (format, mime) = match sniffed {
        Sniffed::Jpeg => (ImageFormat::Jpeg, "image/jpeg"),
        Sniffed::Png => (ImageFormat::Png, "image/png"),
        other => {
            return Err((
                ErrorClass::NotAnImage,
                format!("bytes are {other:?}, not a supported image format (jpeg, png)"),
            ));
        }
    };
    let mut lim = Limits::default();
    lim.max_image_width = Some(limits.max_width);
    lim.max_image_height = Some(limits.max_height);
    lim.max_alloc = Some(limits.max_alloc);

    let mut header = ImageReader::with_format(Cursor::new(bytes), format);
    header.limits(lim.clone());
    let (width, height) = header.into_dimensions().map_err(classify)?;
    if width > limits.max_width || height > limits.max_height {
        return Err((
            ErrorClass::DecodeLimitExceeded,
            format!(
                "{width}x{height} exceeds the {}x{} limit",
                limits.max_width, limits.max_height
            ),
        ));
    }
    let pixels = u64::from(width) * u64::from(height) * 4;
    if pixels > limits.max_alloc {
        return Err((
            ErrorClass::DecodeLimitExceeded,
            format!(
                "{width}x{height} needs {pixels} bytes, over the {} limit",
                limits.max_alloc
            ),
        ));
    }
    if !has_end_marker(sniffed, bytes) {
        return Err((
            ErrorClass::TruncatedImage,
            format!("{mime} of {} bytes has no end marker", bytes.len()),
        ));
    }
    let mut full = ImageReader::with_format(Cursor::new(bytes), format);
    full.limits(lim);
    full.decode().map_err(classify)?;
    Ok(ImageInfo {
        width,
        height,
        mime,
    })
}

fn has_end_marker(sniffed: Sniffed, bytes: &[u8]) -> bool {
    match sniffed {
        // Some encoders pad after EOI; accept trailing zero bytes.
        Sniffed::Jpeg => {
            let end = bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
            bytes[..end].ends_with(&[0xFF, 0xD9])
        }
        Sniffed::Png => bytes.ends_with(b"IEND\xAE\x42\x60\x82"),
        _ => true,
    }
}

fn classify(e: ImageError) -> (ErrorClass, String) {
    let class = match &e {
        ImageError::Limits(_) => ErrorClass::DecodeLimitExceeded,
        ImageError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            ErrorClass::TruncatedImage
        }
        ImageError::Unsupported(_) => ErrorClass::NotAnImage,
        _ => ErrorClass::CorruptImage,
    };
    (class, e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageEncoder, codecs::png::PngEncoder};

    fn png(w: u32, h: u32) -> Vec<u8> {
        let mut out = Vec::new();
        let px = vec![120u8; (w * h * 3) as usize];
        PngEncoder::new(&mut out)
            .write_image(&px, w, h, image::ExtendedColorType::Rgb8)
            .unwrap();
        out
    }

    #[test]
    fn accepts_a_valid_png() {
        let info = check_image(&png(16, 9), &ImageLimits::default()).unwrap();
        assert_eq!((info.width, info.height, info.mime), (16, 9, "image/png"));
    }

    #[test]
    fn rejects_truncated_corrupt_and_oversized() {
        let good = png(64, 64);
        let lim = ImageLimits::default();
        assert_eq!(
            check_image(&good[..good.len() / 2], &lim).unwrap_err().0,
            ErrorClass::TruncatedImage
        );
        let mut bad = good.clone();
        for b in &mut bad[40..60] {
            *b ^= 0x5A;
        }
        assert_eq!(
            check_image(&bad, &lim).unwrap_err().0,
            ErrorClass::CorruptImage
        );
        let small = ImageLimits {
            max_width: 32,
            max_height: 32,
            max_alloc: 1 << 20,
        };
        assert_eq!(
            check_image(&good, &small).unwrap_err().0,
            ErrorClass::DecodeLimitExceeded
        );
        assert_eq!(
            check_image(b"<html></html>", &lim).unwrap_err().0,
            ErrorClass::NotAnImage
        );
    }
}
