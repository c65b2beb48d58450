//! Image quality metrics, one value per column, and the filters over them.
//!
//! Definitions (all on the decoded image, no EXIF rotation):
//! - `shortest_side`, `area`, `aspect_ratio` = long side / short side (>= 1);
//! - `blur`: variance of the 4-neighbour Laplacian on the Pillow "L" image resized (bilinear,
//!   Pillow rounding) to a fixed 256x256, so the value does not depend on resolution; low is
//!   blurry;
//! - `entropy`: Shannon entropy in bits of the 256-bin "L" histogram (Pillow's
//!   `Image.entropy()` on the "L" image); low means little information;
//! - `dark` and `light`: cleanvision's scores. Per-pixel brightness is
//!   `sqrt(0.241 R² + 0.691 G² + 0.068 B²) / 255` (`L / 255` for grayscale); `dark` is its
//!   99th percentile and `light` is 1 − its 5th percentile, both with numpy's linear
//!   interpolation; cleanvision flags an issue when the score is *below* a threshold
//!   (its defaults: 0.37 dark, 0.05 light);
//! - `grayscale`: an RGB image whose channels agree (mean |R−G| + |G−B| per pixel ≤ 1, to
//!   absorb JPEG chroma noise), or a single-channel image;
//! - `placeholder`: a tracking pixel or spacer (a side under 16 px) or a flat image (at most
//!   2 distinct gray levels);
//! - `file_size` in bytes.

use image::DynamicImage;

use crate::DropReason;
use crate::pil::{self, Filter, Plane};

/// Side of the square grayscale image the blur metric is measured on.
pub const BLUR_SIZE: usize = 256;

/// Every quality metric of one image.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct QualityMetrics {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// `min(width, height)`.
    pub shortest_side: u32,
    /// `width * height`.
    pub area: u64,
    /// Long side / short side (>= 1; infinite for a zero side).
    pub aspect_ratio: f64,
    /// Variance of the Laplacian at 256x256.
    pub blur: f64,
    /// Grayscale entropy in bits (0..=8).
    pub entropy: f64,
    /// cleanvision dark score: 99th-percentile brightness (0..=1).
    pub dark: f64,
    /// cleanvision light score: 1 − 5th-percentile brightness (0..=1).
    pub light: f64,
    /// Colour channels carry no colour.
    pub grayscale: bool,
    /// Tracking pixel, spacer or flat image.
    pub placeholder: bool,
    /// Size of the encoded file in bytes.
    pub file_size: u64,
}

/// Computes every metric of `img`, whose encoded size is `file_size`.
pub fn measure(img: &DynamicImage, file_size: u64) -> QualityMetrics {
    let (width, height) = (img.width(), img.height());
    let luma = pil::to_luma(img);
    let shortest = width.min(height);
    let aspect = if shortest == 0 {
        f64::INFINITY
    } else {
        f64::from(width.max(height)) / f64::from(shortest)
    };
    let hist = histogram(&luma);
    let levels = hist.iter().filter(|&&c| c > 0).count();
    let (dark, light) = brightness_scores(img, &luma);
    QualityMetrics {
        width,
        height,
        shortest_side: shortest,
        area: u64::from(width) * u64::from(height),
        aspect_ratio: aspect,
        blur: laplacian_variance(&luma),
        entropy: entropy(&hist),
        dark,
        light,
        grayscale: is_grayscale(img),
        placeholder: shortest < 16 || levels <= 2,
        file_size,
    }
}

fn histogram(luma: &Plane) -> [u64; 256] {
    let mut h = [0u64; 256];
    for &v in &luma.data {
        h[v as usize] += 1;
    }
    h
}

/// Shannon entropy (bits) of a histogram.
pub fn entropy(hist: &[u64]) -> f64 {
    let total: u64 = hist.iter().sum();
    if total == 0 {
        return 0.0;
    }
    let t = total as f64;
    hist.iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / t;
            -p * p.log2()
        })
        .sum()
}

/// Variance of the 4-neighbour Laplacian over the interior of the 256x256 resized image.
fn laplacian_variance(luma: &Plane) -> f64 {
    if luma.width == 0 || luma.height == 0 {
        return 0.0;
    }
    let s = pil::resize(luma, BLUR_SIZE, BLUR_SIZE, Filter::Bilinear);
    let n = BLUR_SIZE;
    let (mut sum, mut sq, mut count) = (0f64, 0f64, 0f64);
    for y in 1..n - 1 {
        for x in 1..n - 1 {
            let c = i32::from(s.data[y * n + x]);
            let l = i32::from(s.data[y * n + x - 1])
                + i32::from(s.data[y * n + x + 1])
                + i32::from(s.data[(y - 1) * n + x])
                + i32::from(s.data[(y + 1) * n + x])
                - 4 * c;
            let l = f64::from(l);
            sum += l;
            sq += l * l;
            count += 1.0;
        }
    }
    let mean = sum / count;
    sq / count - mean * mean
}

/// numpy `percentile(values, p)` with linear interpolation.
#[cfg(test)]
fn percentile(values: &mut [u32], p: f64) -> f64 {
    interpolated(values, p, |k| k)
}

/// cleanvision's (dark, light) scores.
fn brightness_scores(img: &DynamicImage, luma: &Plane) -> (f64, f64) {
    // Work on an integer key that is monotone in brightness, so percentiles can be taken on
    // integers and the square root applied to just the two order statistics.
    let (mut keys, to_brightness): (Vec<u32>, fn(f64) -> f64) = if img.color().has_color() {
        let rgb = pil::to_rgb(img);
        let keys = rgb
            .data
            .chunks_exact(3)
            .map(|p| {
                let (r, g, b) = (u32::from(p[0]), u32::from(p[1]), u32::from(p[2]));
                241 * r * r + 691 * g * g + 68 * b * b
            })
            .collect();
        (keys, |k| (k / 1000.0).sqrt() / 255.0)
    } else {
        (luma.data.iter().map(|&v| u32::from(v)).collect(), |k| {
            k / 255.0
        })
    };
    // Interpolating between keys and then mapping is not exactly numpy's interpolation
    // between brightnesses when the two order statistics differ; map each one first.
    let p99 = interpolated(&mut keys, 99.0, to_brightness);
    let p5 = interpolated(&mut keys, 5.0, to_brightness);
    (p99, 1.0 - p5)
}

/// numpy's linear-interpolated percentile of `map(key)`, where `map` is monotone.
fn interpolated(keys: &mut [u32], p: f64, map: fn(f64) -> f64) -> f64 {
    let n = keys.len();
    if n == 0 {
        return 0.0;
    }
    let pos = p / 100.0 * (n - 1) as f64;
    let lo = pos.floor() as usize;
    let frac = pos - lo as f64;
    let (_, &mut a, rest) = keys.select_nth_unstable(lo);
    let b = if frac > 0.0 {
        rest.iter().copied().min().unwrap_or(a)
    } else {
        a
    };
    let (a, b) = (map(f64::from(a)), map(f64::from(b)));
    a + (b - a) * frac
}

fn is_grayscale(img: &DynamicImage) -> bool {
    if !img.color().has_color() {
        return true;
    }
    let rgb = pil::to_rgb(img);
    let n = (rgb.data.len() / 3).max(1) as f64;
    let spread: u64 = rgb
        .data
        .chunks_exact(3)
        .map(|p| u64::from(p[0].abs_diff(p[1])) + u64::from(p[1].abs_diff(p[2])))
        .sum();
    spread as f64 / n <= 1.0
}

/// Filter thresholds: shortest side ≥ 256 and aspect ≤ 3 (a 512 px training crop), and
/// cleanvision's published defaults for dark/light; `schemas/pairs_curated.md` says how the
/// blur and entropy floors were chosen. A config section reads them by these names,
/// absent keys keeping the defaults.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct QualityThresholds {
    /// Minimum shortest side in pixels.
    pub min_shortest_side: u32,
    /// Maximum long/short side ratio.
    pub max_aspect_ratio: f64,
    /// Minimum Laplacian variance.
    pub min_blur: f64,
    /// Minimum grayscale entropy in bits.
    pub min_entropy: f64,
    /// Minimum cleanvision dark score.
    pub min_dark: f64,
    /// Minimum cleanvision light score.
    pub min_light: f64,
    /// Drop grayscale images (off by default: news archives are full of good B&W photos).
    pub drop_grayscale: bool,
}

impl Default for QualityThresholds {
    fn default() -> Self {
        QualityThresholds {
            min_shortest_side: 256,
            max_aspect_ratio: 3.0,
            min_blur: 20.0,
            min_entropy: 3.0,
            min_dark: 0.37,
            min_light: 0.05,
            drop_grayscale: false,
        }
    }
}

impl QualityThresholds {
    /// The first failed filter, in funnel order, or `None` when the image passes.
    pub fn check(&self, m: &QualityMetrics) -> Option<DropReason> {
        if m.placeholder {
            Some(DropReason::Placeholder)
        } else if m.shortest_side < self.min_shortest_side {
            Some(DropReason::TooSmall)
        } else if m.aspect_ratio > self.max_aspect_ratio {
            Some(DropReason::ExtremeAspect)
        } else if m.blur < self.min_blur {
            Some(DropReason::Blurry)
        } else if m.entropy < self.min_entropy {
            Some(DropReason::LowInformation)
        } else if m.dark < self.min_dark {
            Some(DropReason::TooDark)
        } else if m.light < self.min_light {
            Some(DropReason::TooBright)
        } else if self.drop_grayscale && m.grayscale {
            Some(DropReason::Grayscale)
        } else {
            None
        }
    }
}

/// Metrics of many images as columns (struct of arrays), ready for Arrow arrays.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct QualityColumns {
    /// See [`QualityMetrics::width`].
    pub width: Vec<u32>,
    /// See [`QualityMetrics::height`].
    pub height: Vec<u32>,
    /// See [`QualityMetrics::shortest_side`].
    pub shortest_side: Vec<u32>,
    /// See [`QualityMetrics::area`].
    pub area: Vec<u64>,
    /// See [`QualityMetrics::aspect_ratio`].
    pub aspect_ratio: Vec<f64>,
    /// See [`QualityMetrics::blur`].
    pub blur: Vec<f64>,
    /// See [`QualityMetrics::entropy`].
    pub entropy: Vec<f64>,
    /// See [`QualityMetrics::dark`].
    pub dark: Vec<f64>,
    /// See [`QualityMetrics::light`].
    pub light: Vec<f64>,
    /// See [`QualityMetrics::grayscale`].
    pub grayscale: Vec<bool>,
    /// See [`QualityMetrics::placeholder`].
    pub placeholder: Vec<bool>,
    /// See [`QualityMetrics::file_size`].
    pub file_size: Vec<u64>,
}

impl QualityColumns {
    /// Appends one row.
    pub fn push(&mut self, m: &QualityMetrics) {
        self.width.push(m.width);
        self.height.push(m.height);
        self.shortest_side.push(m.shortest_side);
        self.area.push(m.area);
        self.aspect_ratio.push(m.aspect_ratio);
        self.blur.push(m.blur);
        self.entropy.push(m.entropy);
        self.dark.push(m.dark);
        self.light.push(m.light);
        self.grayscale.push(m.grayscale);
        self.placeholder.push(m.placeholder);
        self.file_size.push(m.file_size);
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.width.len()
    }

    /// No rows.
    pub fn is_empty(&self) -> bool {
        self.width.is_empty()
    }
}

impl FromIterator<QualityMetrics> for QualityColumns {
    fn from_iter<I: IntoIterator<Item = QualityMetrics>>(iter: I) -> Self {
        let mut c = QualityColumns::default();
        for m in iter {
            c.push(&m);
        }
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, RgbImage};

    fn noise(w: u32, h: u32, seed: u32) -> RgbImage {
        let mut s = seed.wrapping_mul(2_654_435_761).max(1);
        RgbImage::from_fn(w, h, |_, _| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            image::Rgb([s as u8, (s >> 8) as u8, (s >> 16) as u8])
        })
    }

    #[test]
    fn geometry() {
        let m = measure(&DynamicImage::ImageRgb8(noise(600, 200, 1)), 1234);
        assert_eq!((m.shortest_side, m.area, m.file_size), (200, 120_000, 1234));
        assert!((m.aspect_ratio - 3.0).abs() < 1e-12);
        assert!(!m.placeholder && !m.grayscale);
    }

    #[test]
    fn noise_is_sharp_and_informative_flat_is_not() {
        let sharp = measure(&DynamicImage::ImageRgb8(noise(300, 300, 7)), 0);
        let flat = measure(
            &DynamicImage::ImageRgb8(RgbImage::from_pixel(300, 300, image::Rgb([80, 90, 100]))),
            0,
        );
        assert!(sharp.blur > 1000.0, "{}", sharp.blur);
        assert!(sharp.entropy > 7.5, "{}", sharp.entropy);
        assert_eq!(flat.blur, 0.0);
        assert_eq!(flat.entropy, 0.0);
        assert!(flat.placeholder);
        let t = QualityThresholds::default();
        assert_eq!(t.check(&sharp), None);
        assert_eq!(t.check(&flat), Some(DropReason::Placeholder));
    }

    #[test]
    fn blur_drops_after_smoothing() {
        let img = DynamicImage::ImageRgb8(noise(512, 512, 3));
        let blurred = img.blur(4.0);
        let a = measure(&img, 0).blur;
        let b = measure(&blurred, 0).blur;
        assert!(b < a / 20.0, "sharp {a} blurred {b}");
    }

    #[test]
    fn dark_and_light_follow_cleanvision() {
        // Gray ramp 0..=255 in 4 rows. numpy on the same values:
        //   a = np.tile(np.arange(256), 4) / 255.0
        //   np.percentile(a, 99) * 255 == 253.0 ; 1 - np.percentile(a, 5) == 0.9523529411764706
        let ramp = GrayImage::from_fn(256, 4, |x, _| image::Luma([x as u8]));
        let m = measure(&DynamicImage::ImageLuma8(ramp), 0);
        assert!((m.dark - 253.0 / 255.0).abs() < 1e-12, "{}", m.dark);
        assert!(
            (m.light - 0.952_352_941_176_470_6).abs() < 1e-12,
            "{}",
            m.light
        );
        assert!(m.grayscale);
        // A black RGB image: dark score 0 -> too dark; white: light score 0 -> too bright.
        let t = QualityThresholds {
            min_blur: 0.0,
            min_entropy: 0.0,
            ..Default::default()
        };
        let mut black = noise(300, 300, 5);
        black
            .pixels_mut()
            .for_each(|p| p.0 = [p.0[0] % 9, p.0[1] % 9, p.0[2] % 9]);
        let m = measure(&DynamicImage::ImageRgb8(black), 0);
        assert!(m.dark < 0.04, "{}", m.dark);
        assert_eq!(t.check(&m), Some(DropReason::TooDark));
        let mut white = noise(300, 300, 6);
        white
            .pixels_mut()
            .for_each(|p| p.0 = [255 - p.0[0] % 9, 255 - p.0[1] % 9, 255 - p.0[2] % 9]);
        let m = measure(&DynamicImage::ImageRgb8(white), 0);
        assert!(m.light < 0.04, "{}", m.light);
        assert_eq!(t.check(&m), Some(DropReason::TooBright));
    }

    #[test]
    fn rgb_copy_of_gray_is_grayscale_and_tiny_is_placeholder() {
        let g = noise(64, 64, 9);
        let gray = RgbImage::from_fn(64, 64, |x, y| {
            let v = g.get_pixel(x, y).0[0];
            image::Rgb([v, v, v])
        });
        assert!(measure(&DynamicImage::ImageRgb8(gray), 0).grayscale);
        let pixel = measure(&DynamicImage::ImageRgb8(noise(1, 1, 2)), 43);
        assert!(pixel.placeholder);
        assert_eq!(
            QualityThresholds::default().check(&pixel),
            Some(DropReason::Placeholder)
        );
    }

    #[test]
    fn percentile_matches_numpy_linear() {
        // numpy.percentile([1, 2, 3, 4], 50) == 2.5 ; 99 -> 3.97
        let mut v = [4u32, 1, 3, 2];
        assert!((percentile(&mut v, 50.0) - 2.5).abs() < 1e-12);
        assert!((percentile(&mut v, 99.0) - 3.97).abs() < 1e-12);
    }

    #[test]
    fn columns_collect_rows() {
        let cols: QualityColumns = (0..3)
            .map(|i| measure(&DynamicImage::ImageRgb8(noise(20 + i, 30, i)), u64::from(i)))
            .collect();
        assert_eq!(cols.len(), 3);
        assert_eq!(cols.width, vec![20, 21, 22]);
        assert_eq!(cols.file_size, vec![0, 1, 2]);
    }
}
