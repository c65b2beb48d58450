//! anchor-imaging: ports of the Pillow pixel operations whose exact bits downstream tools depend on.
//!
//! `imagehash` hashes `image.convert("L").resize(size, LANCZOS)`, open_nsfw's preprocessing
//! resizes with `BILINEAR`, and transformers' `CLIPImageProcessor` (PIL backend) with
//! `BICUBIC`; to reproduce their numbers we must round exactly as Pillow does. Sources:
//! Pillow `src/libImaging/Convert.c` (`rgb2l`, the `L24` macro) and
//! `src/libImaging/Resample.c` (`precompute_coeffs`, `normalize_coeffs_8bpc`,
//! `ImagingResampleHorizontal_8bpc` / `Vertical_8bpc`, `clip8`, 22-bit fixed point).

use image::DynamicImage;

/// An 8-bit image with `channels` interleaved samples per pixel, row-major.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plane {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// Samples per pixel (1 for "L", 3 for "RGB").
    pub channels: usize,
    /// `width * height * channels` samples.
    pub data: Vec<u8>,
}

impl Plane {
    /// Sample `c` of the pixel at (`x`, `y`).
    #[inline]
    pub fn at(&self, x: usize, y: usize, c: usize) -> u8 {
        self.data[(y * self.width + x) * self.channels + c]
    }
}

/// Pillow's integer ITU-R 601-2 luma: `L = (R*19595 + G*38470 + B*7471 + 0x8000) >> 16`.
#[inline]
pub fn luma24(r: u8, g: u8, b: u8) -> u8 {
    ((u32::from(r) * 19595 + u32::from(g) * 38470 + u32::from(b) * 7471 + 0x8000) >> 16) as u8
}

/// `image.convert("L")` as Pillow does it for the mode the same file opens in.
///
/// Colour images (and palette images, which the decoder has already expanded) use
/// [`luma24`]; alpha is ignored, as Pillow's `rgba2l` ignores it. 16-bit colour and
/// gray-alpha keep the high byte, as Pillow's `RGB;16B` / `LA;16B` raw modes do; 16-bit
/// grayscale opens in Pillow as `I;16`, whose conversion to `L` clamps at 255.
pub fn to_luma(img: &DynamicImage) -> Plane {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let data: Vec<u8> = match img {
        DynamicImage::ImageLuma8(b) => b.as_raw().clone(),
        DynamicImage::ImageLumaA8(b) => b.as_raw().chunks_exact(2).map(|p| p[0]).collect(),
        DynamicImage::ImageRgb8(b) => b
            .as_raw()
            .chunks_exact(3)
            .map(|p| luma24(p[0], p[1], p[2]))
            .collect(),
        DynamicImage::ImageRgba8(b) => b
            .as_raw()
            .chunks_exact(4)
            .map(|p| luma24(p[0], p[1], p[2]))
            .collect(),
        DynamicImage::ImageLuma16(b) => b.as_raw().iter().map(|&v| v.min(255) as u8).collect(),
        DynamicImage::ImageLumaA16(b) => b
            .as_raw()
            .chunks_exact(2)
            .map(|p| (p[0] >> 8) as u8)
            .collect(),
        DynamicImage::ImageRgb16(b) => b
            .as_raw()
            .chunks_exact(3)
            .map(|p| luma24((p[0] >> 8) as u8, (p[1] >> 8) as u8, (p[2] >> 8) as u8))
            .collect(),
        DynamicImage::ImageRgba16(b) => b
            .as_raw()
            .chunks_exact(4)
            .map(|p| luma24((p[0] >> 8) as u8, (p[1] >> 8) as u8, (p[2] >> 8) as u8))
            .collect(),
        other => {
            let rgb = other.to_rgb8();
            rgb.as_raw()
                .chunks_exact(3)
                .map(|p| luma24(p[0], p[1], p[2]))
                .collect()
        }
    };
    Plane {
        width: w,
        height: h,
        channels: 1,
        data,
    }
}

/// `image.convert("RGB")` as Pillow does it for the mode the same file opens in.
///
/// Alpha is dropped (Pillow's `rgba2rgb` ignores it; palette images arrive expanded). 16-bit
/// colour and gray-alpha keep the high byte (Pillow's `RGB;16B` / `LA;16B` raw modes);
/// 16-bit grayscale opens in Pillow as `I;16`, whose conversion clamps at 255.
pub fn to_rgb(img: &DynamicImage) -> Plane {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let gray = |v: u8| [v, v, v];
    let hi = |v: u16| (v >> 8) as u8;
    let data = match img {
        DynamicImage::ImageLuma8(b) => b.as_raw().iter().flat_map(|&v| gray(v)).collect(),
        DynamicImage::ImageLumaA8(b) => b
            .as_raw()
            .chunks_exact(2)
            .flat_map(|p| gray(p[0]))
            .collect(),
        DynamicImage::ImageRgb8(b) => b.as_raw().clone(),
        DynamicImage::ImageRgba8(b) => b
            .as_raw()
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect(),
        DynamicImage::ImageLuma16(b) => b
            .as_raw()
            .iter()
            .flat_map(|&v| gray(v.min(255) as u8))
            .collect(),
        DynamicImage::ImageLumaA16(b) => b
            .as_raw()
            .chunks_exact(2)
            .flat_map(|p| gray(hi(p[0])))
            .collect(),
        DynamicImage::ImageRgb16(b) => b.as_raw().iter().map(|&v| hi(v)).collect(),
        DynamicImage::ImageRgba16(b) => b
            .as_raw()
            .chunks_exact(4)
            .flat_map(|p| [hi(p[0]), hi(p[1]), hi(p[2])])
            .collect(),
        other => other.to_rgb8().into_raw(),
    };
    Plane {
        width: w,
        height: h,
        channels: 3,
        data,
    }
}

/// Pillow's resampling filters that we need.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// `Image.Resampling.BILINEAR` (triangle, support 1).
    Bilinear,
    /// `Image.Resampling.LANCZOS` (Lanczos-3).
    Lanczos,
    /// `Image.Resampling.BICUBIC` (Keys cubic, a = -0.5, support 2).
    Bicubic,
}

impl Filter {
    fn support(self) -> f64 {
        match self {
            Filter::Bilinear => 1.0,
            Filter::Lanczos => 3.0,
            Filter::Bicubic => 2.0,
        }
    }

    fn eval(self, x: f64) -> f64 {
        match self {
            Filter::Bilinear => {
                let x = x.abs();
                if x < 1.0 { 1.0 - x } else { 0.0 }
            }
            Filter::Lanczos => {
                if (-3.0..3.0).contains(&x) {
                    sinc(x) * sinc(x / 3.0)
                } else {
                    0.0
                }
            }
            Filter::Bicubic => {
                // Pillow's `bicubic_filter` with `a = -0.5`, term for term.
                const A: f64 = -0.5;
                let x = x.abs();
                if x < 1.0 {
                    ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
                } else if x < 2.0 {
                    (((x - 5.0) * x + 8.0) * x - 4.0) * A
                } else {
                    0.0
                }
            }
        }
    }
}

fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        return 1.0;
    }
    let x = x * std::f64::consts::PI;
    x.sin() / x
}

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Fixed-point filter taps for one axis: output `i` reads `len` inputs from `start`.
struct Taps {
    ksize: usize,
    bounds: Vec<(usize, usize)>,
    k: Vec<i32>,
}

/// `precompute_coeffs` + `normalize_coeffs_8bpc` for a full-image box.
fn taps(in_size: usize, out_size: usize, filter: Filter) -> Taps {
    // Pillow computes `in1 - in0` in float, then widens; sizes below 2^24 are exact.
    let scale = in_size as f64 / out_size as f64;
    let filterscale = scale.max(1.0);
    let support = filter.support() * filterscale;
    let ksize = support.ceil() as usize * 2 + 1;
    let mut bounds = Vec::with_capacity(out_size);
    let mut k = vec![0i32; out_size * ksize];
    let mut w = vec![0f64; ksize];
    for xx in 0..out_size {
        let center = (xx as f64 + 0.5) * scale;
        let ss = 1.0 / filterscale;
        // C's `(int)` truncates toward zero, as `as i64` does.
        let xmin = ((center - support + 0.5) as i64).max(0);
        let xmax = ((center + support + 0.5) as i64).min(in_size as i64);
        let n = (xmax - xmin).max(0) as usize;
        let mut ww = 0.0;
        for (x, wx) in w.iter_mut().enumerate().take(n) {
            let v = filter.eval(((x as i64 + xmin) as f64 - center + 0.5) * ss);
            *wx = v;
            ww += v;
        }
        let row = &mut k[xx * ksize..xx * ksize + ksize];
        for (x, kx) in row.iter_mut().enumerate().take(n) {
            let mut v = w[x];
            if ww != 0.0 {
                v /= ww;
            }
            let f = v * f64::from(1u32 << PRECISION_BITS);
            *kx = if v < 0.0 {
                (-0.5 + f) as i32
            } else {
                (0.5 + f) as i32
            };
        }
        bounds.push((xmin as usize, n));
    }
    Taps { ksize, bounds, k }
}

#[inline]
fn clip8(v: i32) -> u8 {
    if v >= (1i32 << PRECISION_BITS << 8) {
        255
    } else if v <= 0 {
        0
    } else {
        (v >> PRECISION_BITS) as u8
    }
}

/// `Image.resize((out_w, out_h), filter)` for an 8-bit image, bit-exact with Pillow.
///
/// Two passes as Pillow does them: horizontal first (only over the rows the vertical pass
/// reads), rounded and clipped to 8 bits in between; a pass is skipped when its axis keeps
/// its size.
pub fn resize(src: &Plane, out_w: usize, out_h: usize, filter: Filter) -> Plane {
    let ch = src.channels;
    if src.width == 0 || src.height == 0 || out_w == 0 || out_h == 0 {
        return Plane {
            width: out_w,
            height: out_h,
            channels: ch,
            data: vec![0; out_w * out_h * ch],
        };
    }
    // Pillow accumulates in a C `int`; |taps| sum to under 2 in fixed point, so an i32
    // holds 255 * 2 * 2^22 without overflow.
    let half = 1i32 << (PRECISION_BITS - 1);
    // Horizontal pass over rows [y_first, y_last).
    let (tmp, y_first) = if out_w != src.width {
        let (y_first, y_last) = if out_h != src.height {
            let v = taps(src.height, out_h, filter);
            let first = v.bounds[0].0;
            let last = v.bounds.last().map_or(src.height, |&(s, n)| s + n);
            (first, last)
        } else {
            (0, src.height)
        };
        let t = taps(src.width, out_w, filter);
        let rows = y_last.saturating_sub(y_first);
        let mut data = vec![0u8; rows * out_w * ch];
        let row_len = src.width * ch;
        for (yy, out_row) in data.chunks_exact_mut(out_w * ch).enumerate() {
            let line = &src.data[(yy + y_first) * row_len..(yy + y_first + 1) * row_len];
            if ch == 1 {
                // Single channel (the hashes): a plain dot product the compiler vectorises.
                for (xx, out) in out_row.iter_mut().enumerate() {
                    let (start, n) = t.bounds[xx];
                    let k = &t.k[xx * t.ksize..xx * t.ksize + n];
                    let dot: i32 = line[start..start + n]
                        .iter()
                        .zip(k)
                        .map(|(&p, &kv)| i32::from(p) * kv)
                        .sum();
                    *out = clip8(half + dot);
                }
                continue;
            }
            for (xx, out_px) in out_row.chunks_exact_mut(ch).enumerate() {
                let (start, n) = t.bounds[xx];
                let k = &t.k[xx * t.ksize..xx * t.ksize + n];
                let mut acc = [half; 4];
                for (px, &kv) in line[start * ch..(start + n) * ch].chunks_exact(ch).zip(k) {
                    for (a, &p) in acc.iter_mut().zip(px) {
                        *a += i32::from(p) * kv;
                    }
                }
                for (o, &a) in out_px.iter_mut().zip(&acc) {
                    *o = clip8(a);
                }
            }
        }
        (
            Plane {
                width: out_w,
                height: rows,
                channels: ch,
                data,
            },
            y_first,
        )
    } else {
        (src.clone(), 0)
    };
    if out_h == src.height {
        return tmp;
    }
    let v = taps(src.height, out_h, filter);
    let stride = tmp.width * ch;
    let mut data = vec![0u8; stride * out_h];
    // Row-wise accumulation (same sums as Pillow's per-pixel loop, in cache order).
    let mut acc = vec![0i32; stride];
    for (yy, out_row) in data.chunks_exact_mut(stride).enumerate() {
        let (start, n) = v.bounds[yy];
        let start = start - y_first;
        acc.fill(half);
        for (i, &kv) in v.k[yy * v.ksize..yy * v.ksize + n].iter().enumerate() {
            let row = &tmp.data[(start + i) * stride..(start + i + 1) * stride];
            for (a, &p) in acc.iter_mut().zip(row) {
                *a += i32::from(p) * kv;
            }
        }
        for (o, &a) in out_row.iter_mut().zip(&acc) {
            *o = clip8(a);
        }
    }
    Plane {
        width: out_w,
        height: out_h,
        channels: ch,
        data,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luma_matches_pillow_reference_values() {
        // Values from Pillow 13: Image.new("RGB", (1, 1), c).convert("L").getpixel((0, 0)).
        assert_eq!(luma24(255, 0, 0), 76);
        assert_eq!(luma24(0, 255, 0), 150);
        assert_eq!(luma24(0, 0, 255), 29);
        assert_eq!(luma24(255, 255, 255), 255);
        assert_eq!(luma24(12, 200, 99), 132);
    }

    #[test]
    fn resize_of_constant_image_is_constant() {
        let src = Plane {
            width: 37,
            height: 23,
            channels: 1,
            data: vec![117; 37 * 23],
        };
        for f in [Filter::Lanczos, Filter::Bilinear, Filter::Bicubic] {
            let out = resize(&src, 9, 8, f);
            assert!(out.data.iter().all(|&v| v == 117), "{f:?}: {:?}", out.data);
            let up = resize(&src, 64, 64, f);
            assert!(up.data.iter().all(|&v| v == 117));
        }
    }

    #[test]
    fn taps_sum_to_one_in_fixed_point() {
        for (i, o) in [(1000, 32), (33, 32), (7, 32), (640, 9)] {
            let t = taps(i, o, Filter::Lanczos);
            for xx in 0..o {
                let s: i64 = t.k[xx * t.ksize..(xx + 1) * t.ksize]
                    .iter()
                    .map(|&v| i64::from(v))
                    .sum();
                assert!(
                    (s - (1 << PRECISION_BITS)).abs() <= t.ksize as i64,
                    "{i}->{o} tap {xx}: {s}"
                );
            }
        }
    }
}
