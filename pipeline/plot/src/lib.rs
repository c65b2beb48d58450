//! A small raster canvas for the figures `anchor` writes beside its tables (the training loss
//! curves, the dataset's topic distribution): lines, filled boxes and text in a 3x5 pixel
//! font, saved as PNG with the `image` crate, so no plotting stack is needed.

use std::path::Path;

pub use image::Rgb;
use image::RgbImage;

/// A colour cycle that tells series apart (matplotlib's `tab10`).
pub const PALETTE: [Rgb<u8>; 10] = [
    Rgb([31, 119, 180]),
    Rgb([255, 127, 14]),
    Rgb([44, 160, 44]),
    Rgb([214, 39, 40]),
    Rgb([148, 103, 189]),
    Rgb([140, 86, 75]),
    Rgb([227, 119, 194]),
    Rgb([127, 127, 127]),
    Rgb([188, 189, 34]),
    Rgb([23, 190, 207]),
];

/// Dark grey for axes and labels.
pub const INK: Rgb<u8> = Rgb([60, 60, 60]);

/// Pixels a glyph advances at `scale` 1 (3 wide and a space).
const ADVANCE: u32 = 4;

/// A white canvas.
pub struct Canvas {
    img: RgbImage,
}

impl Canvas {
    /// A white canvas of `width` × `height` pixels.
    pub fn new(width: u32, height: u32) -> Self {
        Canvas {
            img: RgbImage::from_pixel(width, height, Rgb([255, 255, 255])),
        }
    }

    /// Width in pixels.
    pub fn width(&self) -> u32 {
        self.img.width()
    }

    /// Height in pixels.
    pub fn height(&self) -> u32 {
        self.img.height()
    }

    /// The colour at (`x`, `y`), if inside.
    pub fn pixel(&self, x: u32, y: u32) -> Option<Rgb<u8>> {
        (x < self.width() && y < self.height()).then(|| *self.img.get_pixel(x, y))
    }

    fn put(&mut self, x: i64, y: i64, color: Rgb<u8>) {
        if x >= 0 && y >= 0 && (x as u32) < self.width() && (y as u32) < self.height() {
            self.img.put_pixel(x as u32, y as u32, color);
        }
    }

    /// Text at (`x`, `y`) (top left), each font pixel `scale` × `scale`; lowercase only
    /// (capitals are drawn as lowercase), characters outside the font as blanks.
    pub fn text(&mut self, x: u32, y: u32, s: &str, scale: u32, color: Rgb<u8>) {
        for (i, c) in s.chars().enumerate() {
            let g = glyph(c.to_ascii_lowercase());
            for (row, bits) in g.iter().enumerate() {
                for col in 0..3 {
                    if bits & (4 >> col) == 0 {
                        continue;
                    }
                    for dy in 0..scale {
                        for dx in 0..scale {
                            let px = x + (i as u32 * ADVANCE + col) * scale + dx;
                            let py = y + row as u32 * scale + dy;
                            self.put(px as i64, py as i64, color);
                        }
                    }
                }
            }
        }
    }

    /// Width in pixels of `s` drawn at `scale`.
    pub fn text_width(s: &str, scale: u32) -> u32 {
        (s.chars().count() as u32 * ADVANCE).saturating_sub(1) * scale
    }

    /// A one-pixel line from (`x0`, `y0`) to (`x1`, `y1`).
    pub fn line(&mut self, (x0, y0): (f64, f64), (x1, y1): (f64, f64), color: Rgb<u8>) {
        let steps = ((x1 - x0).abs().max((y1 - y0).abs()).ceil() as usize).max(1);
        for i in 0..=steps {
            let t = i as f64 / steps as f64;
            let (x, y) = (x0 + (x1 - x0) * t, y0 + (y1 - y0) * t);
            self.put(x as i64, y as i64, color);
        }
    }

    /// A filled box with its top left at (`x`, `y`).
    pub fn fill(&mut self, x: u32, y: u32, width: u32, height: u32, color: Rgb<u8>) {
        for py in y..y.saturating_add(height) {
            for px in x..x.saturating_add(width) {
                self.put(px as i64, py as i64, color);
            }
        }
    }

    /// Writes the canvas as a PNG at `path` ([`save_png`]).
    pub fn save_png(&self, path: &Path) -> Result<(), std::io::Error> {
        save_png(&self.img, path)
    }
}

/// Writes `image` as a PNG at `path`, creating its folder: to a temporary file beside it,
/// then renamed into place, so a stopped run never leaves a half-written image there.
pub fn save_png(image: &image::RgbImage, path: &Path) -> Result<(), std::io::Error> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = anchor_core::ledger::unique_temporary(path);
    image
        .save_with_format(&tmp, image::ImageFormat::Png)
        .map_err(|e| match e {
            image::ImageError::IoError(e) => e,
            other => std::io::Error::other(other),
        })?;
    std::fs::rename(&tmp, path)
}

/// 3x5 glyphs, one row per entry (bit 2 = left column).
fn glyph(c: char) -> [u8; 5] {
    match c {
        '0' => [7, 5, 5, 5, 7],
        '1' => [2, 6, 2, 2, 7],
        '2' => [7, 1, 7, 4, 7],
        '3' => [7, 1, 7, 1, 7],
        '4' => [5, 5, 7, 1, 1],
        '5' => [7, 4, 7, 1, 7],
        '6' => [7, 4, 7, 5, 7],
        '7' => [7, 1, 1, 1, 1],
        '8' => [7, 5, 7, 5, 7],
        '9' => [7, 5, 7, 1, 7],
        '.' => [0, 0, 0, 0, 2],
        ',' => [0, 0, 0, 2, 4],
        '-' => [0, 0, 7, 0, 0],
        '_' => [0, 0, 0, 0, 7],
        ':' => [0, 2, 0, 2, 0],
        '=' => [0, 7, 0, 7, 0],
        '/' => [1, 1, 2, 4, 4],
        '(' => [2, 4, 4, 4, 2],
        ')' => [2, 1, 1, 1, 2],
        '%' => [5, 1, 2, 4, 5],
        '+' => [0, 2, 7, 2, 0],
        'a' => [2, 5, 7, 5, 5],
        'b' => [6, 5, 6, 5, 6],
        'c' => [7, 4, 4, 4, 7],
        'd' => [6, 5, 5, 5, 6],
        'e' => [7, 4, 6, 4, 7],
        'f' => [7, 4, 6, 4, 4],
        'g' => [7, 4, 5, 5, 7],
        'h' => [5, 5, 7, 5, 5],
        'i' => [2, 0, 2, 2, 2],
        'j' => [1, 1, 1, 5, 7],
        'k' => [5, 5, 6, 5, 5],
        'l' => [4, 4, 4, 4, 7],
        'm' => [5, 7, 7, 5, 5],
        'n' => [6, 5, 5, 5, 5],
        'o' => [7, 5, 5, 5, 7],
        'p' => [7, 5, 7, 4, 4],
        'q' => [7, 5, 5, 7, 1],
        'r' => [6, 5, 6, 5, 5],
        's' => [7, 4, 7, 1, 7],
        't' => [7, 2, 2, 2, 2],
        'u' => [5, 5, 5, 5, 7],
        'v' => [5, 5, 5, 5, 2],
        'w' => [5, 5, 7, 7, 5],
        'x' => [5, 5, 2, 5, 5],
        'y' => [5, 5, 7, 2, 2],
        'z' => [7, 1, 2, 4, 7],
        _ => [0, 0, 0, 0, 0],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_letter_and_digit_has_a_glyph() {
        for c in ('a'..='z').chain('0'..='9') {
            assert_ne!(glyph(c), [0; 5], "{c}");
        }
    }

    #[test]
    fn drawing_stays_inside_and_text_lands_where_asked() {
        let mut canvas = Canvas::new(40, 20);
        canvas.fill(30, 15, 100, 100, PALETTE[0]);
        canvas.line((-5.0, -5.0), (50.0, 50.0), INK);
        canvas.text(2, 2, "l", 2, INK);
        // 'l': left column set on every row.
        assert_eq!(canvas.pixel(2, 2), Some(INK));
        assert_eq!(canvas.pixel(3, 11), Some(INK));
        assert_eq!(canvas.pixel(39, 19), Some(PALETTE[0]));
        assert_eq!(canvas.pixel(40, 0), None);
        assert_eq!(Canvas::text_width("ab", 2), 14);
    }

    #[test]
    fn saves_a_png_that_decodes() {
        let dir = std::env::temp_dir().join(format!("anchor-plot-{}", std::process::id()));
        let path = dir.join("sub/figure.png");
        let mut canvas = Canvas::new(8, 6);
        canvas.fill(0, 0, 4, 6, PALETTE[3]);
        canvas.save_png(&path).unwrap();
        let back = image::open(&path).unwrap().to_rgb8();
        assert_eq!(back.dimensions(), (8, 6));
        assert_eq!(*back.get_pixel(1, 1), PALETTE[3]);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
