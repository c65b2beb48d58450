//! Property test: the image decode path turns any damaged file into a typed error (a drop
//! reason), never a panic or an image past the limits. Seeds are real encodings of a small
//! image in each supported container, then cut, spliced and bit-flipped. Bounded:
//! `PROPTEST_CASES` (default 256 per property) sets the run.

use std::io::Cursor;

use anchor_filters::decode::{DecodeLimits, decode};
use image::{DynamicImage, ImageFormat, RgbImage};
use proptest::prelude::*;

fn encoded(format: ImageFormat) -> Vec<u8> {
    let img = RgbImage::from_fn(23, 17, |x, y| {
        image::Rgb([(x * 11) as u8, (y * 15) as u8, ((x + y) * 7) as u8])
    });
    let mut out = Cursor::new(Vec::new());
    // Every supported container encodes an RGB image; a failure is a broken test setup.
    DynamicImage::ImageRgb8(img)
        .write_to(&mut out, format)
        .unwrap_or_else(|e| panic!("encoding the {format:?} seed: {e}"));
    out.into_inner()
}

const FORMATS: [ImageFormat; 4] = [
    ImageFormat::Jpeg,
    ImageFormat::Png,
    ImageFormat::Gif,
    ImageFormat::WebP,
];

fn limits() -> DecodeLimits {
    DecodeLimits {
        max_side: 64,
        max_pixels: 64 * 64,
        ..DecodeLimits::default()
    }
}

fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(decoded) = decode(bytes, &limits()) {
        prop_assert!(decoded.image.width() <= 64 && decoded.image.height() <= 64);
        prop_assert!(decoded.image.width() > 0 && decoded.image.height() > 0);
    }
    Ok(())
}

#[test]
fn the_seeds_decode() {
    for format in FORMATS {
        let d = decode(&encoded(format), &limits()).unwrap_or_else(|e| panic!("{format:?}: {e}"));
        assert_eq!((d.image.width(), d.image.height()), (23, 17), "{format:?}");
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        check(&bytes)?;
    }

    #[test]
    fn damaged_images_never_panic(
        format in 0usize..4,
        cut in 1usize..4000,
        flips in proptest::collection::vec((0usize..4000, any::<u8>()), 0..8),
        splice in proptest::collection::vec(any::<u8>(), 0..16),
        at in 0usize..4000,
    ) {
        let mut data = encoded(FORMATS[format]);
        for (i, b) in flips {
            let n = data.len();
            data[i % n] ^= b;
        }
        let at = at % (data.len() + 1);
        data.splice(at..at, splice);
        data.truncate(cut.min(data.len()));
        check(&data)?;
    }
}
