//! The `Subject` model: an exact span of a caption, a kind and a compel-style weight.
//!
//! Offsets are **byte** offsets into the caption's UTF-8 text (`caption[start..end] == text`),
//! because that is what Rust, arrow-rs and Python's `str.encode()` slicing agree on; a span
//! always starts and ends on a char boundary.

use serde::{Deserialize, Serialize};

/// Neutral weight (no emphasis), compel's plain token.
pub const WEIGHT_NEUTRAL: f64 = 1.0;
/// Weight step of one `+` in the compel convention SAFE uses (`w = 1.1^k`).
pub const WEIGHT_STEP: f64 = 1.1;
/// Highest number of pluses a subject may carry. The research code used `++` (k = 2); four
/// pluses (1.4641) is already a strong push on a CLIP embedding, past it images degrade.
pub const MAX_PLUSES: u32 = 4;
/// Lowest accepted weight (subjects are only ever up-weighted).
pub const WEIGHT_MIN: f64 = WEIGHT_NEUTRAL;
/// Highest accepted weight, `1.1^MAX_PLUSES`, with a little slack for rounded answers.
pub const WEIGHT_MAX: f64 = 1.4641 + 0.005;

/// What a subject is. Serialised in snake_case (`person`, `organisation`, ...).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A named or unnamed person ("Angela Merkel", "a firefighter").
    Person,
    /// A company, party, team, institution ("Labour", "Manchester United").
    Organisation,
    /// A city, country, building, landmark ("Brussels", "the White House").
    Place,
    /// A physical thing that can be photographed ("a tractor", "flowers").
    Object,
    /// A happening ("the Glastonbury festival", "the World Cup final").
    Event,
    /// Anything else.
    Other,
}

impl Kind {
    /// Every kind, in the order they are documented and offered to the model.
    pub const ALL: [Kind; 6] = [
        Kind::Person,
        Kind::Organisation,
        Kind::Place,
        Kind::Object,
        Kind::Event,
        Kind::Other,
    ];

    /// The stable snake_case name stored in tables and prompts.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Person => "person",
            Kind::Organisation => "organisation",
            Kind::Place => "place",
            Kind::Object => "object",
            Kind::Event => "event",
            Kind::Other => "other",
        }
    }

    /// Parses a kind name; accepts the US spelling and a few common synonyms models emit.
    pub fn parse(s: &str) -> Option<Kind> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "person" | "people" | "per" => Kind::Person,
            "organisation" | "organization" | "org" => Kind::Organisation,
            "place" | "location" | "loc" | "gpe" => Kind::Place,
            "object" | "thing" => Kind::Object,
            "event" => Kind::Event,
            "other" | "misc" => Kind::Other,
            _ => return None,
        })
    }
}

/// The compel weight for `k` pluses: `1.1^k`, rounded to 4 decimals so it prints and
/// serialises identically everywhere (1.0, 1.1, 1.21, 1.331, 1.4641).
pub fn weight_for_pluses(k: u32) -> f64 {
    let w = WEIGHT_STEP.powi(k.min(MAX_PLUSES) as i32);
    (w * 10_000.0).round() / 10_000.0
}

/// The nearest number of pluses for a weight in the accepted range.
pub fn pluses_for_weight(w: f64) -> u32 {
    let k = (w.max(WEIGHT_MIN).ln() / WEIGHT_STEP.ln()).round();
    (k as u32).min(MAX_PLUSES)
}

/// One key subject of a caption.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Subject {
    /// The subject text, exactly `caption[start..end]`.
    pub text: String,
    /// Byte offset of the first byte in the caption.
    pub start: u32,
    /// Byte offset one past the last byte.
    pub end: u32,
    /// Compel weight, `1.1^k` with `k` in `0..=MAX_PLUSES`.
    pub weight: f64,
    /// What the subject is.
    pub kind: Kind,
}

/// Why a subject is not valid for its caption.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SpanError {
    /// The text occurs nowhere in the caption (at word boundaries).
    #[error("subject {text:?} is not a span of the caption")]
    NotASpan {
        /// The offending text.
        text: String,
    },
    /// Offsets out of range, not on char boundaries, or not matching the text.
    #[error("subject {text:?} has offsets {start}..{end} that do not match the caption")]
    BadOffsets {
        /// The subject text.
        text: String,
        /// Claimed start.
        start: u32,
        /// Claimed end.
        end: u32,
    },
    /// The text is empty or only whitespace.
    #[error("empty subject text")]
    Empty,
    /// The weight lies outside `[WEIGHT_MIN, WEIGHT_MAX]` or is not finite.
    #[error("subject {text:?} has weight {weight} outside [{WEIGHT_MIN}, {WEIGHT_MAX}]")]
    WeightOutOfRange {
        /// The subject text.
        text: String,
        /// The offending weight.
        weight: f64,
    },
}

fn is_word_char(c: char) -> bool {
    c.is_alphanumeric()
}

/// True when byte offset `i` of `s` may start a span: a char boundary whose char is a word
/// char and whose previous char (if any) is not.
pub fn is_word_start(s: &str, i: usize) -> bool {
    if !s.is_char_boundary(i) || i >= s.len() {
        return false;
    }
    let cur = s[i..].chars().next().is_some_and(is_word_char);
    let prev = s[..i].chars().next_back().is_some_and(is_word_char);
    cur && !prev
}

/// True when byte offset `i` of `s` may end a span: a char boundary after a word char and
/// before a non-word char (or the end).
pub fn is_word_end(s: &str, i: usize) -> bool {
    if !s.is_char_boundary(i) || i == 0 || i > s.len() {
        return false;
    }
    let prev = s[..i].chars().next_back().is_some_and(is_word_char);
    let next = s[i..].chars().next().is_some_and(is_word_char);
    prev && !next
}

/// Finds the first occurrence of `text` in `caption` that starts and ends on word
/// boundaries, falling back to a case-insensitive match (models often lowercase the first
/// word). Returns byte offsets.
pub fn find_span(caption: &str, text: &str) -> Option<(usize, usize)> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let exact = caption
        .match_indices(text)
        .map(|(i, _)| (i, i + text.len()))
        .find(|&(s, e)| is_word_start(caption, s) && is_word_end(caption, e));
    if exact.is_some() {
        return exact;
    }
    // ASCII-only lowercasing keeps byte offsets identical between the two strings.
    let lc = caption.to_ascii_lowercase();
    let lt = text.to_ascii_lowercase();
    lc.match_indices(&lt)
        .map(|(i, _)| (i, i + lt.len()))
        .find(|&(s, e)| is_word_start(caption, s) && is_word_end(caption, e))
}

impl Subject {
    /// Builds a subject from its text by locating it in `caption` (see [`find_span`]); the
    /// stored text is the caption's own spelling.
    pub fn locate(caption: &str, text: &str, weight: f64, kind: Kind) -> Result<Self, SpanError> {
        if text.trim().is_empty() {
            return Err(SpanError::Empty);
        }
        let (s, e) = find_span(caption, text).ok_or_else(|| SpanError::NotASpan {
            text: text.to_string(),
        })?;
        let subject = Subject {
            text: caption[s..e].to_string(),
            start: s as u32,
            end: e as u32,
            weight,
            kind,
        };
        subject.validate(caption)?;
        Ok(subject)
    }

    /// Checks that the subject is an exact span of `caption` and that its weight is in range.
    pub fn validate(&self, caption: &str) -> Result<(), SpanError> {
        if self.text.trim().is_empty() {
            return Err(SpanError::Empty);
        }
        let (s, e) = (self.start as usize, self.end as usize);
        if caption.get(s..e) != Some(self.text.as_str()) {
            return Err(SpanError::BadOffsets {
                text: self.text.clone(),
                start: self.start,
                end: self.end,
            });
        }
        if !(self.weight.is_finite() && (WEIGHT_MIN..=WEIGHT_MAX).contains(&self.weight)) {
            return Err(SpanError::WeightOutOfRange {
                text: self.text.clone(),
                weight: self.weight,
            });
        }
        Ok(())
    }

    /// The compel prompt fragment for this subject, e.g. `(Angela Merkel)++`.
    pub fn compel_fragment(&self) -> String {
        let k = pluses_for_weight(self.weight) as usize;
        if k == 0 {
            self.text.clone()
        } else {
            format!("({}){}", self.text, "+".repeat(k))
        }
    }
}

/// Sorts subjects by position and drops exact duplicates and spans nested in an earlier,
/// longer one with the same start (a model repeating itself), so a row is canonical.
pub fn canonicalise(mut subjects: Vec<Subject>) -> Vec<Subject> {
    subjects.sort_by(|a, b| {
        (a.start, std::cmp::Reverse(a.end)).cmp(&(b.start, std::cmp::Reverse(b.end)))
    });
    let mut out: Vec<Subject> = Vec::with_capacity(subjects.len());
    for s in subjects {
        if out.iter().any(|o| o.start == s.start && o.end == s.end) {
            continue;
        }
        out.push(s);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAP: &str = "Chancellor Angela Merkel arrives for talks in Brussels, Belgium.";

    #[test]
    fn weights_follow_compel() {
        assert_eq!(weight_for_pluses(0), 1.0);
        assert_eq!(weight_for_pluses(1), 1.1);
        assert_eq!(weight_for_pluses(2), 1.21);
        assert_eq!(weight_for_pluses(4), 1.4641);
        assert_eq!(weight_for_pluses(9), 1.4641);
        for k in 0..=MAX_PLUSES {
            assert_eq!(pluses_for_weight(weight_for_pluses(k)), k);
        }
    }

    #[test]
    fn locate_finds_word_bounded_span() {
        let s = Subject::locate(CAP, "Angela Merkel", 1.21, Kind::Person).unwrap();
        assert_eq!((s.start, s.end), (11, 24));
        assert_eq!(&CAP[11..24], "Angela Merkel");
        assert_eq!(s.compel_fragment(), "(Angela Merkel)++");
        // Case-insensitive fallback keeps the caption's spelling.
        let s = Subject::locate(CAP, "brussels", 1.0, Kind::Place).unwrap();
        assert_eq!(s.text, "Brussels");
    }

    #[test]
    fn rejects_non_spans_and_partial_words() {
        assert!(matches!(
            Subject::locate(CAP, "Paris", 1.0, Kind::Place),
            Err(SpanError::NotASpan { .. })
        ));
        // "Merk" is inside a word: not a span.
        assert!(Subject::locate(CAP, "Merk", 1.0, Kind::Person).is_err());
        assert_eq!(
            Subject::locate(CAP, "  ", 1.0, Kind::Person),
            Err(SpanError::Empty)
        );
    }

    #[test]
    fn validate_checks_offsets_and_weight() {
        let mut s = Subject::locate(CAP, "Belgium", 1.1, Kind::Place).unwrap();
        s.validate(CAP).unwrap();
        s.weight = 3.0;
        assert!(matches!(
            s.validate(CAP),
            Err(SpanError::WeightOutOfRange { .. })
        ));
        s.weight = 1.0;
        s.start += 1;
        assert!(matches!(s.validate(CAP), Err(SpanError::BadOffsets { .. })));
    }

    #[test]
    fn unicode_offsets_are_bytes_on_char_boundaries() {
        let cap = "Fans of Atlético Madrid cheer in Zürich";
        let s = Subject::locate(cap, "Zürich", 1.0, Kind::Place).unwrap();
        assert_eq!(&cap[s.start as usize..s.end as usize], "Zürich");
        assert!(!is_word_start(cap, 13)); // inside "é"
    }

    #[test]
    fn canonicalise_sorts_and_dedupes() {
        let a = Subject::locate(CAP, "Brussels", 1.0, Kind::Place).unwrap();
        let b = Subject::locate(CAP, "Angela Merkel", 1.0, Kind::Person).unwrap();
        let out = canonicalise(vec![a.clone(), b.clone(), a.clone()]);
        assert_eq!(out, vec![b, a]);
    }
}
