//! Why a pair was dropped: one stable snake_case name per reason.
//!
//! The names are data: they land in the `drop_reason` column and in the dataset card's
//! filtering funnel, so renaming one is a schema change.

use std::fmt;

/// The reason a pair did not make it into the dataset.
///
/// `as_str()` gives the stable name written to tables; [`DropReason::ALL`] lists every
/// variant in funnel order (the order the curate step applies its filters).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DropReason {
    /// The scrape has no image bytes for the pair (failed download, disallowed, invalid).
    NotDownloaded,
    /// The bytes could not be decoded as a supported image (corrupt, unknown format).
    Undecodable,
    /// The image file ends before the image data does.
    Truncated,
    /// The declared dimensions exceed the decode limits (decompression bomb guard).
    TooLarge,
    /// Same SHA-256 as a kept pair.
    ExactDuplicate,
    /// Within the perceptual-hash radius of a kept pair.
    NearDuplicate,
    /// A tracking pixel, spacer or single-colour placeholder.
    Placeholder,
    /// Shortest side below the minimum.
    TooSmall,
    /// Long side / short side above the maximum.
    ExtremeAspect,
    /// Variance of the Laplacian below the minimum.
    Blurry,
    /// Grayscale entropy below the minimum.
    LowInformation,
    /// 99th-percentile brightness below the minimum.
    TooDark,
    /// 5th-percentile brightness above the maximum.
    TooBright,
    /// Grayscale photo stored as RGB (only when the filter is enabled).
    Grayscale,
    /// NSFW score at or above the threshold.
    Nsfw,
    /// CLIP-IQA ("Good photo." probability) below the minimum (only with CLIP weights).
    LowClipIqa,
    /// The caption is empty after cleaning.
    EmptyCaption,
    /// The caption is boilerplate ("File photo", "Handout", ...).
    BoilerplateCaption,
    /// Fewer words than the minimum.
    CaptionTooShort,
    /// More words than the maximum.
    CaptionTooLong,
    /// The caption's detected language is not an accepted one.
    NonEnglish,
    /// CLIP image–caption cosine below the minimum (only with CLIP weights).
    LowClipSimilarity,
}

impl DropReason {
    /// Every reason, in funnel order: image problems, content filters, caption rules, the
    /// caption-against-image CLIP similarity (it needs a caption worth judging), and
    /// deduplication last, so that a cluster's keeper is chosen among pairs that pass every
    /// filter (a photo is not lost because its best copy has a bad caption).
    pub const ALL: [DropReason; 22] = [
        DropReason::NotDownloaded,
        DropReason::Undecodable,
        DropReason::Truncated,
        DropReason::TooLarge,
        DropReason::Placeholder,
        DropReason::TooSmall,
        DropReason::ExtremeAspect,
        DropReason::Blurry,
        DropReason::LowInformation,
        DropReason::TooDark,
        DropReason::TooBright,
        DropReason::Grayscale,
        DropReason::Nsfw,
        DropReason::LowClipIqa,
        DropReason::EmptyCaption,
        DropReason::BoilerplateCaption,
        DropReason::CaptionTooShort,
        DropReason::CaptionTooLong,
        DropReason::NonEnglish,
        DropReason::LowClipSimilarity,
        DropReason::ExactDuplicate,
        DropReason::NearDuplicate,
    ];

    /// The stable snake_case name written to the `drop_reason` column.
    pub const fn as_str(self) -> &'static str {
        match self {
            DropReason::NotDownloaded => "not_downloaded",
            DropReason::Undecodable => "undecodable",
            DropReason::Truncated => "truncated",
            DropReason::TooLarge => "too_large",
            DropReason::ExactDuplicate => "exact_duplicate",
            DropReason::NearDuplicate => "near_duplicate",
            DropReason::Placeholder => "placeholder",
            DropReason::TooSmall => "too_small",
            DropReason::ExtremeAspect => "extreme_aspect",
            DropReason::Blurry => "blurry",
            DropReason::LowInformation => "low_information",
            DropReason::TooDark => "too_dark",
            DropReason::TooBright => "too_bright",
            DropReason::Grayscale => "grayscale",
            DropReason::Nsfw => "nsfw",
            DropReason::EmptyCaption => "empty_caption",
            DropReason::BoilerplateCaption => "boilerplate_caption",
            DropReason::CaptionTooShort => "caption_too_short",
            DropReason::CaptionTooLong => "caption_too_long",
            DropReason::NonEnglish => "non_english",
            DropReason::LowClipIqa => "low_clip_iqa",
            DropReason::LowClipSimilarity => "low_clip_similarity",
        }
    }

    /// Parses a name written by [`DropReason::as_str`].
    pub fn from_name(name: &str) -> Option<DropReason> {
        DropReason::ALL.into_iter().find(|r| r.as_str() == name)
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for DropReason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_snake_case_and_round_trip() {
        let mut seen = std::collections::BTreeSet::new();
        for r in DropReason::ALL {
            let name = r.as_str();
            assert!(
                name.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{name} is not snake_case"
            );
            assert!(seen.insert(name), "{name} appears twice");
            assert_eq!(DropReason::from_name(name), Some(r));
        }
        assert_eq!(DropReason::from_name("no_such_reason"), None);
    }

    #[test]
    fn names_are_frozen() {
        // Renaming a reason is a schema change: this list must only grow.
        assert_eq!(DropReason::NearDuplicate.as_str(), "near_duplicate");
        assert_eq!(DropReason::ExactDuplicate.as_str(), "exact_duplicate");
        assert_eq!(DropReason::TooSmall.as_str(), "too_small");
        assert_eq!(DropReason::Nsfw.as_str(), "nsfw");
        assert_eq!(DropReason::LowClipIqa.as_str(), "low_clip_iqa");
        assert_eq!(
            DropReason::LowClipSimilarity.as_str(),
            "low_clip_similarity"
        );
        assert_eq!(
            DropReason::BoilerplateCaption.to_string(),
            "boilerplate_caption"
        );
    }
}
