//! Content sniffing: what the first bytes of a body say it is, checked
//! against what `Content-Type` claims.

/// The formats we recognise by magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniffed {
    /// `FF D8 FF`.
    Jpeg,
    /// `89 50 4E 47 0D 0A 1A 0A`.
    Png,
    /// `GIF87a` / `GIF89a`.
    Gif,
    /// `RIFF....WEBP`.
    Webp,
    /// Starts (after whitespace) with `<`: HTML or XML.
    Markup,
    /// Anything else.
    Unknown,
}

impl Sniffed {
    /// Sniffs the first bytes of `body`.
    pub fn of(body: &[u8]) -> Sniffed {
        if body.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Sniffed::Jpeg
        } else if body.starts_with(b"\x89PNG\r\n\x1a\n") {
            Sniffed::Png
        } else if body.starts_with(b"GIF87a") || body.starts_with(b"GIF89a") {
            Sniffed::Gif
        } else if body.len() >= 12 && &body[..4] == b"RIFF" && &body[8..12] == b"WEBP" {
            Sniffed::Webp
        } else if body
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| *b == b'<')
        {
            Sniffed::Markup
        } else {
            Sniffed::Unknown
        }
    }

    /// Whether this is an image format.
    pub fn is_image(self) -> bool {
        matches!(
            self,
            Sniffed::Jpeg | Sniffed::Png | Sniffed::Gif | Sniffed::Webp
        )
    }

    /// The canonical MIME type.
    pub fn mime(self) -> Option<&'static str> {
        match self {
            Sniffed::Jpeg => Some("image/jpeg"),
            Sniffed::Png => Some("image/png"),
            Sniffed::Gif => Some("image/gif"),
            Sniffed::Webp => Some("image/webp"),
            Sniffed::Markup => Some("text/html"),
            Sniffed::Unknown => None,
        }
    }
}

/// The bare media type of a `Content-Type` header value, lowercased.
pub fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Whether a declared media type agrees with the sniffed bytes. A missing or
/// generic declaration (`application/octet-stream`) defers to the bytes.
pub fn agrees(declared: Option<&str>, sniffed: Sniffed) -> bool {
    let Some(declared) = declared.map(media_type) else {
        return true;
    };
    match declared.as_str() {
        "" | "application/octet-stream" | "binary/octet-stream" => true,
        "image/jpeg" | "image/jpg" | "image/pjpeg" => sniffed == Sniffed::Jpeg,
        "image/png" | "image/x-png" => sniffed == Sniffed::Png,
        "image/gif" => sniffed == Sniffed::Gif,
        "image/webp" => sniffed == Sniffed::Webp,
        "text/html" | "application/xhtml+xml" => !sniffed.is_image(),
        // Other image types: the bytes must at least be an image.
        t if t.starts_with("image/") => sniffed.is_image(),
        _ => !sniffed.is_image(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_and_compares() {
        assert_eq!(Sniffed::of(&[0xFF, 0xD8, 0xFF, 0xE0]), Sniffed::Jpeg);
        assert_eq!(Sniffed::of(b"\x89PNG\r\n\x1a\n...."), Sniffed::Png);
        assert_eq!(Sniffed::of(b"  <!doctype html>"), Sniffed::Markup);
        assert!(agrees(Some("image/jpeg; charset=binary"), Sniffed::Jpeg));
        assert!(!agrees(Some("image/jpeg"), Sniffed::Markup));
        assert!(!agrees(Some("image/png"), Sniffed::Jpeg));
        assert!(agrees(None, Sniffed::Png));
        assert!(agrees(Some("text/html; charset=utf-8"), Sniffed::Markup));
    }
}
