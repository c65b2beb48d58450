//! RGB bytes to PNG with fixed encoder settings, so the same pixels give the same bytes.

use crate::error::{Error, Result};
use crate::model::RgbImage;

/// Encodes `image` as an 8-bit RGB PNG. `path` names it in errors.
pub fn encode_png(image: &RgbImage, path: &str) -> Result<Vec<u8>> {
    let err = |source| Error::Png {
        path: path.to_owned(),
        source,
    };
    let (w, h) = (
        u32::try_from(image.width)
            .map_err(|_| Error::Config(format!("{path}: width too large")))?,
        u32::try_from(image.height)
            .map_err(|_| Error::Config(format!("{path}: height too large")))?,
    );
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        enc.set_compression(png::Compression::Balanced);
        let mut writer = enc.write_header().map_err(err)?;
        writer.write_image_data(&image.data).map_err(err)?;
        writer.finish().map_err(err)?;
    }
    Ok(out)
}

/// Decodes an 8-bit RGB PNG (what [`encode_png`] writes) back to pixels.
pub fn decode_png(bytes: &[u8]) -> Result<RgbImage> {
    let bad = |e: png::DecodingError| Error::Config(format!("decoding PNG: {e}"));
    let mut reader = png::Decoder::new(std::io::Cursor::new(bytes))
        .read_info()
        .map_err(bad)?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| Error::Config("decoding PNG: image too large".into()))?;
    let mut buf = vec![0; size];
    let info = reader.next_frame(&mut buf).map_err(bad)?;
    if info.color_type != png::ColorType::Rgb || info.bit_depth != png::BitDepth::Eight {
        return Err(Error::Config(format!(
            "decoding PNG: {:?} {:?}, expected 8-bit RGB",
            info.color_type, info.bit_depth
        )));
    }
    buf.truncate(info.buffer_size());
    Ok(RgbImage {
        width: info.width as usize,
        height: info.height as usize,
        data: buf,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_round_trips_and_is_stable() -> Result<()> {
        let data: Vec<u8> = (0..4 * 3 * 3).map(|i| (i * 7) as u8).collect();
        let img = RgbImage {
            width: 4,
            height: 3,
            data: data.clone(),
        };
        let a = encode_png(&img, "t.png")?;
        assert_eq!(a, encode_png(&img, "t.png")?);
        assert_eq!(decode_png(&a)?, img);
        assert!(decode_png(&a[..a.len() / 2]).is_err());
        Ok(())
    }
}
