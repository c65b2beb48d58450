//! A content-addressed cache of feature chunks.
//!
//! Images are scored in chunks; a chunk's key is sha256 over the weights' sha256
//! and the sha256 of every image's bytes, in order. So the real test images are
//! scored once however many configurations are added, a chunk whose images did not
//! change is never recomputed, and a killed run keeps the chunks it finished.
//! The cache is only a cache: deleting it costs time, never correctness.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::features::Features;
use crate::{Error, Result};

const MAGIC: &[u8; 8] = b"ANCHORF1";
const HEADER: usize = 8 + 8 + 8;

/// One image to score: a name for errors and its encoded bytes.
#[derive(Debug, Clone)]
pub struct EncodedImage {
    /// Where the image comes from (`pairs/<id>`, `generations/<config>/<id>-<seed>`).
    pub name: String,
    /// The encoded bytes (PNG, JPEG, ...).
    pub bytes: Vec<u8>,
}

/// A folder of cached feature chunks for one feature extractor.
#[derive(Debug, Clone)]
pub struct FeatureCache {
    dir: PathBuf,
    weights_sha256: String,
}

impl FeatureCache {
    /// The cache for the extractor whose weights have `weights_sha256`, under `root`.
    pub fn new(root: &Path, extractor: &str, weights_sha256: &str) -> Self {
        let short = weights_sha256.get(..16).unwrap_or(weights_sha256);
        FeatureCache {
            dir: root.join(format!("{extractor}-{short}")),
            weights_sha256: weights_sha256.to_owned(),
        }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The key of a chunk of images.
    pub fn key(&self, images: &[EncodedImage]) -> String {
        self.key_of(images, None)
    }

    /// The key of a chunk of images, each scored with its caption when `captions` are
    /// given (a caption-dependent score must not be shared across captions).
    fn key_of(&self, images: &[EncodedImage], captions: Option<&[&str]>) -> String {
        let mut h = Sha256::new();
        h.update(self.weights_sha256.as_bytes());
        for (i, image) in images.iter().enumerate() {
            h.update(b"\n");
            h.update(hex::encode(Sha256::digest(&image.bytes)).as_bytes());
            if let Some(caption) = captions.and_then(|c| c.get(i)) {
                h.update(b"\t");
                h.update(hex::encode(Sha256::digest(caption.as_bytes())).as_bytes());
            }
        }
        hex::encode(h.finalize())
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.f32"))
    }

    /// The cached features of `key`, when present and whole (`rows` rows of `dim`).
    /// A truncated or foreign file counts as absent and is recomputed.
    pub fn load(&self, key: &str, rows: usize, dim: usize) -> Option<Features> {
        let bytes = fs::read(self.path(key)).ok()?;
        if bytes.len() != HEADER + rows * dim * 4 || &bytes[..8] != MAGIC {
            return None;
        }
        let read_u64 = |at: usize| {
            bytes
                .get(at..at + 8)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map(u64::from_le_bytes)
        };
        if read_u64(8)? != rows as u64 || read_u64(16)? != dim as u64 {
            return None;
        }
        let data = bytes[HEADER..]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        Features::new(dim, data).ok()
    }

    /// Stores `features` under `key` (temporary file, then rename).
    pub fn store(&self, key: &str, features: &Features) -> Result<()> {
        fs::create_dir_all(&self.dir).map_err(|source| Error::Write {
            path: self.dir.clone(),
            source,
        })?;
        let path = self.path(key);
        let tmp = anchor_core::ledger::unique_temporary(&path);
        let mut buf = Vec::with_capacity(HEADER + features.as_slice().len() * 4);
        buf.extend_from_slice(MAGIC);
        buf.extend_from_slice(&(features.rows() as u64).to_le_bytes());
        buf.extend_from_slice(&(features.dim() as u64).to_le_bytes());
        for x in features.as_slice() {
            buf.extend_from_slice(&x.to_le_bytes());
        }
        let write = || -> std::io::Result<()> {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(&buf)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)
        };
        write().map_err(|source| Error::Write {
            path: path.clone(),
            source,
        })
    }

    /// The features of `images`: from the cache when present, else computed with
    /// `compute` and stored. Returns them and whether they came from the cache.
    pub fn get_or_compute(
        &self,
        images: &[EncodedImage],
        dim: usize,
        compute: impl FnOnce(&[EncodedImage]) -> Result<Features>,
    ) -> Result<(Features, bool)> {
        self.fetch_or_compute(&self.key(images), images, dim, compute)
    }

    /// As [`Self::get_or_compute`] for scores of each image with its caption
    /// (`captions[i]` for `images[i]`): the key covers the captions too.
    pub fn get_or_compute_captioned(
        &self,
        images: &[EncodedImage],
        captions: &[&str],
        dim: usize,
        compute: impl FnOnce(&[EncodedImage]) -> Result<Features>,
    ) -> Result<(Features, bool)> {
        if captions.len() != images.len() {
            return Err(Error::Shape(format!(
                "{} images with {} captions",
                images.len(),
                captions.len()
            )));
        }
        let key = self.key_of(images, Some(captions));
        self.fetch_or_compute(&key, images, dim, compute)
    }

    fn fetch_or_compute(
        &self,
        key: &str,
        images: &[EncodedImage],
        dim: usize,
        compute: impl FnOnce(&[EncodedImage]) -> Result<Features>,
    ) -> Result<(Features, bool)> {
        if let Some(f) = self.load(key, images.len(), dim) {
            return Ok((f, true));
        }
        let f = compute(images)?;
        if f.rows() != images.len() || f.dim() != dim {
            return Err(Error::Shape(format!(
                "{} images gave {} rows of {} features, expected {dim}",
                images.len(),
                f.rows(),
                f.dim()
            )));
        }
        self.store(key, &f)?;
        Ok((f, false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn img(name: &str, bytes: &[u8]) -> EncodedImage {
        EncodedImage {
            name: name.into(),
            bytes: bytes.to_vec(),
        }
    }

    #[test]
    fn computes_once_then_hits_and_keys_follow_content_and_weights() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FeatureCache::new(dir.path(), "inception", "ab".repeat(32).as_str());
        let chunk = [img("a", b"one"), img("b", b"two")];
        let compute = |c: &[EncodedImage]| {
            Features::new(3, (0..c.len() * 3).map(|i| i as f32 + 0.5).collect())
        };
        let (f1, hit1) = cache.get_or_compute(&chunk, 3, compute).unwrap();
        assert!(!hit1);
        let (f2, hit2) = cache
            .get_or_compute(&chunk, 3, |_| panic!("must come from the cache"))
            .unwrap();
        assert!(hit2);
        assert_eq!(f1, f2);
        // Names do not matter, bytes and weights do.
        let renamed = [img("x", b"one"), img("y", b"two")];
        assert_eq!(cache.key(&chunk), cache.key(&renamed));
        assert_ne!(cache.key(&chunk), cache.key(&[img("a", b"one")]));
        let other = FeatureCache::new(dir.path(), "inception", "cd".repeat(32).as_str());
        assert_ne!(cache.key(&chunk), other.key(&chunk));
        // A damaged file is recomputed, not trusted.
        let key = cache.key(&chunk);
        std::fs::write(cache.dir().join(format!("{key}.f32")), b"ANCHORF1junk").unwrap();
        let (_, hit3) = cache.get_or_compute(&chunk, 3, compute).unwrap();
        // Scores of an image with a caption are keyed by the caption too.
        let one = &chunk[..1];
        let (_, hit_a) = cache
            .get_or_compute_captioned(one, &["a"], 3, |_| Features::new(3, vec![1.0, 2.0, 3.0]))
            .unwrap();
        let (_, hit_b) = cache
            .get_or_compute_captioned(one, &["b"], 3, |_| Features::new(3, vec![4.0, 5.0, 6.0]))
            .unwrap();
        let (again, hit_a2) = cache
            .get_or_compute_captioned(one, &["a"], 3, |_| panic!("must come from the cache"))
            .unwrap();
        assert!(!hit_a && !hit_b && hit_a2);
        assert_eq!(again.row(0), [1.0, 2.0, 3.0]);
        assert_ne!(cache.key(one), cache.key_of(one, Some(&["a"])));
        assert!(
            cache
                .get_or_compute_captioned(one, &[], 3, |_| unreachable!())
                .is_err()
        );
        assert!(!hit3);
    }

    #[test]
    fn threads_storing_the_same_chunk_at_once_all_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let cache = FeatureCache::new(dir.path(), "inception", "ef".repeat(32).as_str());
        let features = Features::new(4, (0..4096).map(|i| i as f32).collect()).unwrap();
        let key = cache.key(&[img("a", b"same")]);
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..8)
                .map(|_| scope.spawn(|| (0..20).try_for_each(|_| cache.store(&key, &features))))
                .collect();
            for handle in handles {
                handle.join().unwrap().unwrap();
            }
        });
        assert_eq!(cache.load(&key, 1024, 4), Some(features));
        let leftovers = std::fs::read_dir(cache.dir()).unwrap().count();
        assert_eq!(leftovers, 1, "only the stored chunk remains");
    }
}
