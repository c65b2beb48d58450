//! The entropy-based salient square crop, resize and JPEG re-encode of the final images.
//!
//! ANCHOR crops each photo to its most informative square before training at 512 px. The
//! crop follows the classic "entropy crop" (as in easy-thumbnails' `smart` crop and Thumbor):
//! while the image is longer than it is wide (or the reverse), compare the grayscale entropy
//! of a thin slice at each end of the long axis and cut the poorer one. Flat sky, studio
//! backdrops and letterbox bars go first; the subject stays. It runs on a copy whose long
//! side is at most [`ANALYSIS_SIDE`] px, so it costs the same for any input size, and the
//! offset is scaled back to the full image. The resize uses Pillow-exact Lanczos.

use image::ExtendedColorType;
use image::codecs::jpeg::JpegEncoder;

use crate::Error;
use crate::pil::{self, Filter, Plane};
use crate::quality::entropy;

/// Long side of the analysis copy.
pub const ANALYSIS_SIDE: usize = 256;

/// Output settings.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CropParams {
    /// Side of the output square in pixels (images smaller than this are not upscaled).
    pub size: u32,
    /// JPEG quality (1..=100).
    pub jpeg_quality: u8,
}

impl Default for CropParams {
    /// 512 px (the research code's training size), quality 90.
    fn default() -> Self {
        CropParams {
            size: 512,
            jpeg_quality: 90,
        }
    }
}

/// A square crop window in full-image pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Square {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Side length (`min(width, height)`).
    pub side: u32,
}

fn strip_entropy(p: &Plane, horizontal: bool, from: usize, to: usize) -> f64 {
    let mut hist = [0u64; 256];
    if horizontal {
        for y in 0..p.height {
            for &v in &p.data[y * p.width + from..y * p.width + to] {
                hist[v as usize] += 1;
            }
        }
    } else {
        for &v in &p.data[from * p.width..to * p.width] {
            hist[v as usize] += 1;
        }
    }
    entropy(&hist)
}

/// The most informative square of a grayscale plane.
pub fn entropy_square(luma: &Plane) -> Square {
    let (w, h) = (luma.width, luma.height);
    let side = w.min(h);
    if w == h || side == 0 {
        return Square {
            x: 0,
            y: 0,
            side: side as u32,
        };
    }
    let scale = (w.max(h) as f64 / ANALYSIS_SIDE as f64).max(1.0);
    let (sw, sh) = (
        ((w as f64 / scale).round() as usize).max(1),
        ((h as f64 / scale).round() as usize).max(1),
    );
    let small = if scale > 1.0 {
        pil::resize(luma, sw, sh, Filter::Bilinear)
    } else {
        luma.clone()
    };
    let horizontal = w > h;
    let (len, target) = if horizontal {
        (sw, sh.min(sw))
    } else {
        (sh, sw.min(sh))
    };
    let (mut a, mut b) = (0usize, len);
    while b - a > target {
        let slice = (b - a - target).min(4);
        let start = strip_entropy(&small, horizontal, a, a + slice);
        let end = strip_entropy(&small, horizontal, b - slice, b);
        // On a tie keep the start: the top of a portrait usually holds the face.
        if start < end { a += slice } else { b -= slice }
    }
    let long = if horizontal { w } else { h };
    let offset = ((a as f64 * scale).round() as usize).min(long - side) as u32;
    if horizontal {
        Square {
            x: offset,
            y: 0,
            side: side as u32,
        }
    } else {
        Square {
            x: 0,
            y: offset,
            side: side as u32,
        }
    }
}

/// Crops `img` to its entropy square, resizes it to `params.size` (never upscaling) and
/// encodes it as JPEG. Returns the bytes and the square used.
pub fn crop_resize_jpeg(
    img: &image::DynamicImage,
    params: &CropParams,
) -> Result<(Vec<u8>, Square), Error> {
    let luma = pil::to_luma(img);
    let sq = entropy_square(&luma);
    let rgb = pil::to_rgb(img);
    let side = sq.side as usize;
    let mut cropped = Vec::with_capacity(side * side * 3);
    for y in sq.y as usize..sq.y as usize + side {
        let row = (y * rgb.width + sq.x as usize) * 3;
        cropped.extend_from_slice(&rgb.data[row..row + side * 3]);
    }
    let cropped = Plane {
        width: side,
        height: side,
        channels: 3,
        data: cropped,
    };
    let out_side = side.min(params.size as usize);
    let resized = if out_side == side {
        cropped
    } else {
        pil::resize(&cropped, out_side, out_side, Filter::Lanczos)
    };
    let mut bytes = Vec::new();
    JpegEncoder::new_with_quality(&mut bytes, params.jpeg_quality.clamp(1, 100))
        .encode(
            &resized.data,
            out_side as u32,
            out_side as u32,
            ExtendedColorType::Rgb8,
        )
        .map_err(|source| Error::Encode {
            what: "cropped JPEG",
            source,
        })?;
    Ok((bytes, sq))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A wide flat image with a noisy block: the square must cover the block.
    fn with_block(w: usize, h: usize, bx: usize, by: usize, bs: usize) -> Plane {
        let mut data = vec![128u8; w * h];
        let mut s = 12345u32;
        for y in by..by + bs {
            for x in bx..bx + bs {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                data[y * w + x] = s as u8;
            }
        }
        Plane {
            width: w,
            height: h,
            channels: 1,
            data,
        }
    }

    #[test]
    fn square_covers_the_busy_region() {
        // Landscape 1200x400, block at x = 900..1100.
        let sq = entropy_square(&with_block(1200, 400, 900, 100, 200));
        assert_eq!((sq.y, sq.side), (0, 400));
        assert!(sq.x <= 900 && sq.x + 400 >= 1100, "{sq:?}");
        // Portrait 300x900, block at y = 50..250.
        let sq = entropy_square(&with_block(300, 900, 50, 50, 200));
        assert_eq!((sq.x, sq.side), (0, 300));
        assert!(sq.y <= 50 && sq.y + 300 >= 250, "{sq:?}");
        // Square input is untouched.
        assert_eq!(
            entropy_square(&with_block(64, 64, 0, 0, 8)),
            Square {
                x: 0,
                y: 0,
                side: 64
            }
        );
    }

    #[test]
    fn output_is_a_512_jpeg() {
        let img = image::DynamicImage::ImageRgb8(image::RgbImage::from_fn(1000, 700, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, ((x * y) % 256) as u8])
        }));
        let (bytes, sq) =
            crop_resize_jpeg(&img, &CropParams::default()).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(sq.side, 700);
        let back = image::load_from_memory_with_format(&bytes, image::ImageFormat::Jpeg)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((back.width(), back.height()), (512, 512));
        // Smaller images are not upscaled.
        let small = image::DynamicImage::ImageRgb8(image::RgbImage::new(300, 200));
        let (bytes, _) =
            crop_resize_jpeg(&small, &CropParams::default()).unwrap_or_else(|e| panic!("{e}"));
        let back = image::load_from_memory(&bytes).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!((back.width(), back.height()), (200, 200));
    }
}
