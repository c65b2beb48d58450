//! Stable row identifiers.
//!
//! Every table and the published dataset carry the same ids, so they must not
//! depend on run order, sharding or the time of a scrape: an id is a pure
//! function of canonical URLs.

use sha2::{Digest, Sha256};

/// Number of hex digits kept from the sha256 digest.
pub const ID_HEX_LEN: usize = 16;

/// The first 16 hex digits of sha256 over `parts` joined by `"\n"`.
///
/// A pair's id is `stable_id(&[canonical_article_url, canonical_image_url])`;
/// an article's is `stable_id(&[canonical_url])`.
pub fn stable_id(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            hasher.update(b"\n");
        }
        hasher.update(part.as_bytes());
    }
    let digest = hasher.finalize();
    let mut hex = hex::encode(digest);
    hex.truncate(ID_HEX_LEN);
    hex
}

/// The id of an article, from its canonical URL.
pub fn article_id(canonical_article_url: &str) -> String {
    stable_id(&[canonical_article_url])
}

/// The id of a caption–image pair, from the canonical article and image URLs.
pub fn pair_id(canonical_article_url: &str, canonical_image_url: &str) -> String {
    stable_id(&[canonical_article_url, canonical_image_url])
}

pub use anchor_digest::sha256_hex;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_id_is_sha256_prefix_of_joined_urls() {
        // python3 -c "import hashlib;print(hashlib.sha256(b'https://a/x\nhttps://b/y.jpg').hexdigest()[:16])"
        let expected = &sha256_hex(b"https://a/x\nhttps://b/y.jpg")[..16];
        assert_eq!(pair_id("https://a/x", "https://b/y.jpg"), expected);
        assert_eq!(article_id("https://a/x"), &sha256_hex(b"https://a/x")[..16]);
        assert_eq!(pair_id("https://a/x", "https://b/y.jpg").len(), ID_HEX_LEN);
    }

    #[test]
    fn known_digest() {
        // sha256("abc") is a published test vector.
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(stable_id(&["abc"]), "ba7816bf8f01cfea");
    }
}
