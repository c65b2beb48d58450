//! Safe image decoding: bounded dimensions and allocations, no panics on hostile bytes.
//!
//! News images come from the open web, so a decompression bomb (a tiny file declaring a
//! gigapixel canvas) or a truncated download must become a [`DecodeError`] that the curate
//! step records as a drop reason, never a panic or a multi-gigabyte allocation.

use std::io::Cursor;
use std::panic::{AssertUnwindSafe, catch_unwind};

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};

use crate::DropReason;

/// Limits applied before any pixel buffer is allocated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct DecodeLimits {
    /// Largest accepted width or height, in pixels.
    pub max_side: u32,
    /// Largest accepted `width * height`.
    pub max_pixels: u64,
    /// Largest allocation the decoder may make, in bytes.
    pub max_alloc: u64,
}

impl Default for DecodeLimits {
    /// 16384 px a side, 64 megapixels, 512 MiB: far above any news photo, far below a bomb.
    fn default() -> Self {
        DecodeLimits {
            max_side: 16_384,
            max_pixels: 64 << 20,
            max_alloc: 512 << 20,
        }
    }
}

/// Why bytes did not decode into an image.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    /// The magic bytes match no supported format (JPEG, PNG, GIF, WebP).
    #[error("unrecognised or unsupported image format")]
    UnknownFormat,
    /// The declared size exceeds [`DecodeLimits`].
    #[error("{width}x{height} exceeds the decode limits")]
    TooLarge {
        /// Declared width.
        width: u32,
        /// Declared height.
        height: u32,
    },
    /// The file stops before the image data ends.
    #[error("truncated {format:?} data")]
    Truncated {
        /// The detected format.
        format: ImageFormat,
    },
    /// The decoder rejected the data.
    #[error("corrupt image: {0}")]
    Corrupt(#[from] image::ImageError),
    /// libjpeg rejected the data.
    #[error("corrupt JPEG: {0}")]
    Jpeg(#[from] crate::jpeg::JpegError),
    /// The decoder panicked (a decoder bug); caught so one bad file cannot stop a run.
    #[error("decoder panicked")]
    Panicked,
}

impl DecodeError {
    /// The drop reason the curate step records for this error.
    pub fn drop_reason(&self) -> DropReason {
        match self {
            DecodeError::TooLarge { .. } => DropReason::TooLarge,
            DecodeError::Truncated { .. } => DropReason::Truncated,
            DecodeError::Corrupt(image::ImageError::Limits(_)) => DropReason::TooLarge,
            _ => DropReason::Undecodable,
        }
    }
}

/// A decoded image and what we learned about its container.
#[derive(Debug, Clone)]
pub struct Decoded {
    /// The pixels, in the decoder's native colour type (no EXIF rotation applied, as Pillow).
    pub image: DynamicImage,
    /// The detected container format.
    pub format: ImageFormat,
}

fn supported(format: ImageFormat) -> bool {
    matches!(
        format,
        ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::Gif | ImageFormat::WebP
    )
}

/// A JPEG must end with the EOI marker (allowing a little trailing padding). The JPEG decoder
/// happily fills a cut-off scan with grey, which would hash and score as a real image.
fn jpeg_is_truncated(bytes: &[u8]) -> bool {
    let tail = &bytes[bytes.len().saturating_sub(1024)..];
    !tail.windows(2).any(|w| w == [0xFF, 0xD9])
}

/// JPEGs go through libjpeg-turbo ([`crate::jpeg`]) so that their pixels are Pillow's.
fn decode_jpeg(bytes: &[u8], limits: &DecodeLimits) -> Result<DynamicImage, DecodeError> {
    let (width, height) = crate::jpeg::dimensions(bytes)?;
    let pixels = u64::from(width) * u64::from(height);
    // CMYK is the widest output: four samples a pixel before conversion.
    if width > limits.max_side
        || height > limits.max_side
        || pixels > limits.max_pixels
        || pixels * 4 > limits.max_alloc
    {
        return Err(DecodeError::TooLarge { width, height });
    }
    Ok(crate::jpeg::decode(bytes)?)
}

/// Decodes `bytes` within `limits`.
pub fn decode(bytes: &[u8], limits: &DecodeLimits) -> Result<Decoded, DecodeError> {
    let format = image::guess_format(bytes).map_err(|_| DecodeError::UnknownFormat)?;
    if !supported(format) {
        return Err(DecodeError::UnknownFormat);
    }
    if format == ImageFormat::Jpeg && jpeg_is_truncated(bytes) {
        return Err(DecodeError::Truncated { format });
    }
    if format == ImageFormat::Jpeg {
        return decode_jpeg(bytes, limits).map(|image| Decoded { image, format });
    }
    let result = catch_unwind(AssertUnwindSafe(|| -> Result<DynamicImage, DecodeError> {
        let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
        let mut l = image::Limits::default();
        l.max_image_width = Some(limits.max_side);
        l.max_image_height = Some(limits.max_side);
        l.max_alloc = Some(limits.max_alloc);
        reader.limits(l);
        let decoder = reader.into_decoder()?;
        let (width, height) = decoder.dimensions();
        if width > limits.max_side
            || height > limits.max_side
            || u64::from(width) * u64::from(height) > limits.max_pixels
        {
            return Err(DecodeError::TooLarge { width, height });
        }
        let img = DynamicImage::from_decoder(decoder).map_err(|e| match e {
            image::ImageError::IoError(ref io)
                if io.kind() == std::io::ErrorKind::UnexpectedEof =>
            {
                DecodeError::Truncated { format }
            }
            other => DecodeError::Corrupt(other),
        })?;
        Ok(img)
    }));
    match result {
        Ok(Ok(image)) => Ok(Decoded { image, format }),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(DecodeError::Panicked),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageEncoder, RgbImage};

    fn jpeg(w: u32, h: u32) -> Vec<u8> {
        let img = RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 7) as u8, (y * 5) as u8, 90]));
        let mut out = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 90)
            .write_image(img.as_raw(), w, h, image::ExtendedColorType::Rgb8)
            .map_err(|e| e.to_string())
            .unwrap_or_else(|e| panic!("encode: {e}"));
        out
    }

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 3) as u8, (y * 11) as u8, 7]));
        let mut out = Vec::new();
        image::codecs::png::PngEncoder::new(&mut out)
            .write_image(img.as_raw(), w, h, image::ExtendedColorType::Rgb8)
            .unwrap_or_else(|e| panic!("encode: {e}"));
        out
    }

    #[test]
    fn decodes_valid_images() {
        let d = decode(&jpeg(64, 48), &DecodeLimits::default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (d.image.width(), d.image.height(), d.format),
            (64, 48, ImageFormat::Jpeg)
        );
        let d = decode(&png(10, 20), &DecodeLimits::default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            (d.image.width(), d.image.height(), d.format),
            (10, 20, ImageFormat::Png)
        );
    }

    #[test]
    fn truncated_files_are_errors() {
        let j = jpeg(256, 256);
        let e = decode(&j[..j.len() / 2], &DecodeLimits::default()).err();
        assert_eq!(e.map(|e| e.drop_reason()), Some(DropReason::Truncated));
        let p = png(256, 256);
        let e = decode(&p[..p.len() / 2], &DecodeLimits::default()).err();
        assert!(
            matches!(
                e.as_ref().map(|e| e.drop_reason()),
                Some(DropReason::Truncated | DropReason::Undecodable)
            ),
            "{e:?}"
        );
    }

    #[test]
    fn garbage_and_empty_input_are_errors() {
        for bytes in [&b""[..], b"hello world", &[0xFF, 0xD8, 0xFF, 0xD9]] {
            let e = decode(bytes, &DecodeLimits::default()).err();
            assert!(e.is_some(), "{bytes:?} decoded");
        }
    }

    #[test]
    fn decompression_bomb_is_refused_before_allocation() {
        // A valid PNG header declaring 100000 x 100000 pixels, followed by a tiny IDAT:
        // the limits must stop it from the header alone.
        let mut p = png(1, 1);
        // IHDR width/height live at bytes 16..24; patch them and fix the chunk CRC.
        p[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        p[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        let crc = crc32(&p[12..29]);
        p[29..33].copy_from_slice(&crc.to_be_bytes());
        let e = decode(&p, &DecodeLimits::default()).err();
        assert_eq!(e.map(|e| e.drop_reason()), Some(DropReason::TooLarge));

        let small = DecodeLimits {
            max_side: 100,
            ..DecodeLimits::default()
        };
        let e = decode(&jpeg(256, 64), &small).err();
        assert_eq!(e.map(|e| e.drop_reason()), Some(DropReason::TooLarge));
    }

    fn crc32(data: &[u8]) -> u32 {
        let mut crc = 0xFFFF_FFFFu32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
}
