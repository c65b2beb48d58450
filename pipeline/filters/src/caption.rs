//! Caption cleaning: Unicode NFC, whitespace, credit/byline extraction, boilerplate,
//! word-count bounds and language detection.
//!
//! Each outlet appends credits differently; the patterns handled here come from the five
//! ANCHOR outlets:
//! - The Guardian: "... Photograph: Kevin Lamarque/Reuters";
//! - BBC: "Image source, Getty Images" and an "Image caption, " prefix;
//! - The New York Times: "... Credit...Doug Mills/The New York Times";
//! - The Washington Post, USA Today, AP: a final "(Jabin Botsford/The Washington Post)",
//!   "(Photo: Jack Gruber, USA TODAY)", "(AP Photo/Evan Vucci)";
//! - wire style: a trailing "Name/Agency" sentence, an "AFP PHOTO / ..." tail, and the
//!   "FILE - " / "FILE PHOTO: " prefixes (removed, the rest kept).
//!
//! A caption that fails a check keeps its cleaned text and gets one [`DropReason`], checked in
//! this order: `empty_caption`, `boilerplate_caption`, `caption_too_short`,
//! `caption_too_long`, `non_english`.

use unicode_normalization::UnicodeNormalization;

use crate::DropReason;

/// Caption filter settings.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CaptionRules {
    /// Fewest words a kept caption has.
    pub min_words: usize,
    /// Most words a kept caption has.
    pub max_words: usize,
    /// Accepted languages as ISO 639-3 codes (`"eng"`); empty accepts all.
    pub languages: Vec<String>,
}

impl Default for CaptionRules {
    /// 3 to 120 words, English only.
    fn default() -> Self {
        CaptionRules {
            min_words: 3,
            max_words: 120,
            languages: vec!["eng".to_string()],
        }
    }
}

/// The result of cleaning one caption.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CleanCaption {
    /// The caption without credits, NFC, single-spaced.
    pub text: String,
    /// The credit or byline that was removed, if any.
    pub credit: Option<String>,
    /// Detected language (ISO 639-3) when the detector is confident, else `None`.
    pub language: Option<String>,
    /// Whitespace-separated words in `text`.
    pub words: usize,
    /// Why the caption is dropped, or `None` when it is kept.
    pub drop: Option<DropReason>,
}

/// Captions that carry no description (compared after lowercasing and stripping
/// punctuation).
const BOILERPLATE: &[&str] = &[
    "file photo",
    "file",
    "handout",
    "handout photo",
    "handout picture",
    "undated handout photo",
    "photo",
    "photograph",
    "picture",
    "image",
    "image caption",
    "caption",
    "no caption",
    "untitled",
    "stock photo",
    "stock image",
    "illustration",
    "placeholder",
    "getty images",
    "reuters",
    "ap",
    "afp",
    "epa",
    "pa",
    "shutterstock",
];

/// Prefixes that are removed, keeping what follows.
const PREFIXES: &[&str] = &[
    "image caption,",
    "file photo:",
    "file photo -",
    "file -",
    "file:",
    "file photo",
];

/// Markers that start a trailing credit (matched case-insensitively).
const CREDIT_MARKERS: &[&str] = &[
    "photograph:",
    "photographs:",
    "photo:",
    "photos:",
    "photo by ",
    "photograph by ",
    "photo credit:",
    "picture:",
    "pictures:",
    "illustration:",
    "composite:",
    "credit:",
    "credit...",
    "credit…",
    "image source,",
    "image source:",
    "afp photo",
    "ap photo",
];

/// Words that mark a parenthesised tail or a slash-separated tail as a credit.
const CREDIT_WORDS: &[&str] = &[
    "photo",
    "getty",
    "reuters",
    "ap",
    "afp",
    "epa",
    "credit",
    "courtesy",
    "pool",
    "shutterstock",
    "usa today",
    "washington post",
    "new york times",
    "guardian",
    "bbc",
    "images",
    "associated press",
    "bloomberg",
    "alamy",
    "handout",
    "rex",
    "pa wire",
    "for the",
];

/// Normalises Unicode (NFC), decodes the common HTML entities, turns every kind of
/// whitespace and control character into one space, and trims.
pub fn normalize(raw: &str) -> String {
    let decoded = raw
        .replace("&nbsp;", " ")
        .replace("&amp;", "&")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">");
    let nfc: String = decoded.nfc().collect();
    let mut out = String::with_capacity(nfc.len());
    for c in nfc.chars() {
        // Zero-width characters vanish; every other space or control becomes a space.
        if matches!(
            c,
            '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}' | '\u{00AD}'
        ) {
            continue;
        }
        if c.is_whitespace() || c.is_control() {
            if !out.ends_with(' ') && !out.is_empty() {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
    }
    out.trim_end().to_string()
}

fn lower_contains_word(hay: &str, words: &[&str]) -> bool {
    let l = hay.to_lowercase();
    words.iter().any(|w| {
        l.match_indices(w).any(|(i, _)| {
            let before = l[..i]
                .chars()
                .next_back()
                .is_none_or(|c| !c.is_alphanumeric());
            let after = l[i + w.len()..]
                .chars()
                .next()
                .is_none_or(|c| !c.is_alphanumeric());
            before && after
        })
    })
}

/// Removes a final parenthesised credit: "(AP Photo/Evan Vucci)".
fn split_paren_credit(text: &str) -> Option<(String, String)> {
    let t = text.trim_end_matches(['.', ' ']);
    if !t.ends_with(')') {
        return None;
    }
    let mut depth = 0i32;
    for (i, c) in t.char_indices().rev() {
        match c {
            ')' => depth += 1,
            '(' => {
                depth -= 1;
                if depth == 0 {
                    let inner = t[i + 1..t.len() - 1].trim();
                    let is_credit = inner.contains('/') || lower_contains_word(inner, CREDIT_WORDS);
                    return is_credit.then(|| (t[..i].trim_end().to_string(), inner.to_string()));
                }
            }
            _ => {}
        }
    }
    None
}

/// Removes the text from the last credit marker on, when what follows is short.
fn split_marker_credit(text: &str) -> Option<(String, String)> {
    let lower = text.to_lowercase();
    // Lowercasing can change byte lengths for a few scripts; only trust ASCII-safe offsets.
    if lower.len() != text.len() {
        return None;
    }
    let (pos, marker) = CREDIT_MARKERS
        .iter()
        .filter_map(|m| lower.rfind(m).map(|p| (p, *m)))
        .max_by_key(|&(p, m)| (p, m.len()))?;
    if !text.is_char_boundary(pos) || !text.is_char_boundary(pos + marker.len()) {
        return None;
    }
    // The marker must start a word, and the credit must be short (a name and an agency).
    if text[..pos]
        .chars()
        .next_back()
        .is_some_and(|c| c.is_alphanumeric())
    {
        return None;
    }
    let credit = text[pos + marker.len()..]
        .trim()
        .trim_start_matches([':', ',', '.', '…', ' ']);
    let credit = if marker.starts_with("afp photo") || marker.starts_with("ap photo") {
        text[pos..].trim()
    } else {
        credit
    };
    if credit.split_whitespace().count() > 12 {
        return None;
    }
    let head = text[..pos]
        .trim_end()
        .trim_end_matches(['|', '-', '–', '—', ','])
        .trim_end();
    Some((head.to_string(), credit.trim().to_string()))
}

/// Removes a trailing "Name Surname/Agency" sentence, e.g. "... Brussels. Yves Herman/Reuters".
fn split_slash_credit(text: &str) -> Option<(String, String)> {
    let t = text.trim_end_matches([' ', '.']);
    let start = t.rfind(". ").map(|p| p + 2)?;
    let tail = &t[start..];
    let slash = tail.find('/')?;
    let words = tail.split_whitespace().count();
    let name_part = &tail[..slash];
    let capitalised = name_part
        .split_whitespace()
        .all(|w| w.chars().next().is_some_and(|c| c.is_uppercase()));
    (words <= 8 && capitalised && !name_part.trim().is_empty())
        .then(|| (t[..start].trim_end().to_string(), tail.trim().to_string()))
}

/// Splits `text` into (caption, credit), repeating while credits keep peeling off the end.
pub fn split_credit(text: &str) -> (String, Option<String>) {
    let mut body = text.trim().to_string();
    // BBC's accessible caption prefix and wire "FILE" prefixes.
    // A prefix goes only when it is a whole word and something is left after it ("File
    // photo" alone is boilerplate, and "File photographs show" is a caption).
    loop {
        let lower = body.to_lowercase();
        let found = PREFIXES.iter().find(|p| {
            lower.starts_with(*p)
                && body.is_char_boundary(p.len())
                && !body[p.len()..].starts_with(|c: char| c.is_alphanumeric())
                && body[p.len()..].chars().any(|c| c.is_alphanumeric())
        });
        match found {
            Some(p) => body = body[p.len()..].trim_start().to_string(),
            None => break,
        }
    }
    let mut credits: Vec<String> = Vec::new();
    for _ in 0..3 {
        // Parentheses first: "(AP Photo/Evan Vucci)" holds a marker inside.
        let next = split_paren_credit(&body)
            .or_else(|| split_marker_credit(&body))
            .or_else(|| split_slash_credit(&body));
        match next {
            Some((head, credit)) => {
                if !credit.is_empty() {
                    credits.push(credit);
                }
                body = head;
            }
            None => break,
        }
    }
    credits.reverse();
    let credit = (!credits.is_empty()).then(|| credits.join("; "));
    (body.trim().to_string(), credit)
}

fn is_boilerplate(text: &str) -> bool {
    let key: String = text
        .to_lowercase()
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect();
    let key = key.split_whitespace().collect::<Vec<_>>().join(" ");
    BOILERPLATE.contains(&key.as_str())
}

/// Detects the language; `None` when whatlang is not confident (short captions often are not).
pub fn detect_language(text: &str) -> Option<String> {
    let info = whatlang::detect(text)?;
    info.is_reliable().then(|| info.lang().code().to_string())
}

/// Cleans one raw caption and decides whether it is kept.
pub fn clean(raw: &str, rules: &CaptionRules) -> CleanCaption {
    let normalized = normalize(raw);
    let (text, credit) = split_credit(&normalized);
    let text = text.trim_end_matches([' ', '|', '-', '–', '—']).to_string();
    let words = text.split_whitespace().count();
    let language = detect_language(&text);
    let drop = if words == 0 {
        Some(DropReason::EmptyCaption)
    } else if is_boilerplate(&text) {
        Some(DropReason::BoilerplateCaption)
    } else if words < rules.min_words {
        Some(DropReason::CaptionTooShort)
    } else if words > rules.max_words {
        Some(DropReason::CaptionTooLong)
    } else if !rules.languages.is_empty()
        && language
            .as_ref()
            .is_some_and(|l| !rules.languages.iter().any(|a| a == l))
    {
        Some(DropReason::NonEnglish)
    } else {
        None
    };
    CleanCaption {
        text,
        credit,
        language,
        words,
        drop,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(raw: &str) -> CleanCaption {
        clean(raw, &CaptionRules::default())
    }

    #[test]
    fn nfc_and_whitespace() {
        // "e" + combining acute -> precomposed é; NBSP, tabs, newlines, zero-width -> one space.
        let out = normalize("  Cafe\u{301}\u{00A0}owner\tserves\n\ncoffee\u{200B} in Paris  ");
        assert_eq!(out, "Café owner serves coffee in Paris");
        assert_eq!(normalize("Tom &amp; Jerry&nbsp;meet"), "Tom & Jerry meet");
    }

    #[test]
    fn outlet_credit_styles() {
        let cases = [
            (
                "Angela Merkel arrives for talks in Brussels. Photograph: Yves Herman/Reuters",
                "Angela Merkel arrives for talks in Brussels.",
                "Yves Herman/Reuters",
            ),
            (
                "President Biden speaks at the White House. Credit...Doug Mills/The New York Times",
                "President Biden speaks at the White House.",
                "Doug Mills/The New York Times",
            ),
            (
                "Fans cheer as the team arrives in Dallas. (Jabin Botsford/The Washington Post)",
                "Fans cheer as the team arrives in Dallas.",
                "Jabin Botsford/The Washington Post",
            ),
            (
                "Firefighters battle a blaze in Malibu, Calif. (AP Photo/Evan Vucci)",
                "Firefighters battle a blaze in Malibu, Calif.",
                "AP Photo/Evan Vucci",
            ),
            (
                "Image caption, Crowds gathered outside the palace. Image source, Getty Images",
                "Crowds gathered outside the palace.",
                "Getty Images",
            ),
            (
                "Crowds gather at the finish line of the marathon. Kevin Lamarque/Reuters",
                "Crowds gather at the finish line of the marathon.",
                "Kevin Lamarque/Reuters",
            ),
        ];
        for (raw, text, credit) in cases {
            let out = c(raw);
            assert_eq!(out.text, text, "{raw}");
            assert_eq!(out.credit.as_deref(), Some(credit), "{raw}");
            assert_eq!(out.drop, None, "{raw}");
        }
    }

    #[test]
    fn captions_without_credit_are_untouched() {
        let raw = "Workers repair a road damaged by floods near the river (pictured on Monday).";
        let out = c(raw);
        assert_eq!(out.text, raw);
        assert_eq!(out.credit, None);
    }

    #[test]
    fn file_prefix_is_removed_not_dropped() {
        let out = c("FILE - A man walks past the central bank building in Frankfurt.");
        assert_eq!(
            out.text,
            "A man walks past the central bank building in Frankfurt."
        );
        assert_eq!(out.drop, None);
    }

    #[test]
    fn drop_reasons() {
        assert_eq!(c("   ").drop, Some(DropReason::EmptyCaption));
        assert_eq!(c("File photo").drop, Some(DropReason::BoilerplateCaption));
        assert_eq!(c("Handout.").drop, Some(DropReason::BoilerplateCaption));
        assert_eq!(
            c("HANDOUT PHOTO").drop,
            Some(DropReason::BoilerplateCaption)
        );
        assert_eq!(
            c("Photograph: Getty Images").drop,
            Some(DropReason::EmptyCaption)
        );
        assert_eq!(c("Boris Johnson").drop, Some(DropReason::CaptionTooShort));
        let long = "word ".repeat(200);
        assert_eq!(c(&long).drop, Some(DropReason::CaptionTooLong));
        let german = "Die Bundeskanzlerin spricht am Montag vor dem Bundestag in Berlin über \
                      die Lage der Wirtschaft und die Zukunft der Energieversorgung.";
        let out = c(german);
        assert_eq!(out.language.as_deref(), Some("deu"));
        assert_eq!(out.drop, Some(DropReason::NonEnglish));
        let english = "The chancellor speaks on Monday in front of parliament in Berlin about \
                       the state of the economy and the future of energy supplies.";
        let out = c(english);
        assert_eq!(out.language.as_deref(), Some("eng"));
        assert_eq!(out.drop, None);
    }

    #[test]
    fn any_language_when_list_is_empty() {
        let rules = CaptionRules {
            languages: Vec::new(),
            ..CaptionRules::default()
        };
        let german = "Die Bundeskanzlerin spricht am Montag vor dem Bundestag in Berlin über \
                      die Lage der Wirtschaft und die Zukunft der Energieversorgung.";
        assert_eq!(clean(german, &rules).drop, None);
    }
}
