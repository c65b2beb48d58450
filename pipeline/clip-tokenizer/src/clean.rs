//! Text cleaning as open_clip's `_clean_lower` does it (`ftfy.fix_text`, `html.unescape`
//! twice, whitespace collapse, `lower()`), keeping for every output char the byte span
//! of the input it came from.
//!
//! Of ftfy's fixes, the ones that change ordinary captions are ported: HTML entities,
//! Latin ligatures, character width, curly quotes, control characters. Mojibake repair
//! and NFC normalization are not (input is expected to be valid, composed UTF-8).

use crate::width_table::OTHER_WIDTH_FORMS;
use std::ops::Range;

/// A cleaned char and the input bytes it stands for.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Mapped {
    pub c: char,
    pub span: Range<usize>,
}

/// Cleans `text`; returns the chars of the cleaned text with their input spans.
pub(crate) fn clean(text: &str) -> Vec<Mapped> {
    let mut chars: Vec<Mapped> = text
        .char_indices()
        .map(|(i, c)| Mapped {
            c,
            span: i..i + c.len_utf8(),
        })
        .collect();
    // ftfy unescapes entities only when the text holds no '<' (it may be real HTML).
    if !text.contains('<') {
        chars = unescape_html(&chars);
    }
    chars = chars.into_iter().flat_map(ftfy_char).collect();
    chars = unescape_html(&unescape_html(&chars));
    chars = collapse_whitespace(chars);
    lowercase(&chars)
}

/// Python's `str.lower()` char by char, including its one context rule (Unicode's
/// Final_Sigma): a capital sigma becomes `ς` when a cased letter precedes it and none
/// follows, skipping case-ignorable chars (apostrophes, combining marks...) both ways.
fn lowercase(chars: &[Mapped]) -> Vec<Mapped> {
    let cased = |c: char| c.is_lowercase() || c.is_uppercase();
    let mut out = Vec::with_capacity(chars.len());
    for (i, m) in chars.iter().enumerate() {
        if m.c == 'Σ' {
            let before = chars[..i]
                .iter()
                .rev()
                .map(|m| m.c)
                .find(|&c| !case_ignorable(c));
            let after = chars[i + 1..]
                .iter()
                .map(|m| m.c)
                .find(|&c| !case_ignorable(c));
            if before.is_some_and(cased) && !after.is_some_and(cased) {
                out.push(Mapped {
                    c: 'ς',
                    span: m.span.clone(),
                });
                continue;
            }
        }
        out.extend(m.c.to_lowercase().map(|c| Mapped {
            c,
            span: m.span.clone(),
        }));
    }
    out
}

/// The common members of Unicode's Case_Ignorable property.
fn case_ignorable(c: char) -> bool {
    matches!(c,
        '\'' | '.' | ':' | '^' | '`' | '\u{a8}' | '\u{ad}' | '\u{af}' | '\u{b4}' | '\u{b7}' | '\u{b8}'
        | '\u{2018}' | '\u{2019}' | '\u{2024}' | '\u{2027}'
        | '\u{2b0}'..='\u{36f}' | '\u{200b}'..='\u{200f}' | '\u{2060}'..='\u{2064}')
}

/// ftfy's per-character fixes: ligatures, width, curly quotes, control characters.
fn ftfy_char(m: Mapped) -> Vec<Mapped> {
    let with = |s: &str| {
        s.chars()
            .map(|c| Mapped {
                c,
                span: m.span.clone(),
            })
            .collect::<Vec<_>>()
    };
    let c = m.c;
    let u = c as u32;
    if matches!(u, 0x00..=0x08 | 0x0B | 0x0E..=0x1F | 0x7F | 0x206A..=0x206F | 0xFEFF | 0xFFF9..=0xFFFC)
    {
        return Vec::new();
    }
    if let Some(s) = ligature(c) {
        return with(s);
    }
    if u == 0x3000 {
        return with(" ");
    }
    if (0xFF01..=0xFF5E).contains(&u)
        && let Some(c) = char::from_u32(u - 0xFEE0)
    {
        return vec![Mapped { c, span: m.span }];
    }
    if let Ok(i) = OTHER_WIDTH_FORMS.binary_search_by_key(&u, |&(k, _)| k) {
        return with(OTHER_WIDTH_FORMS[i].1);
    }
    match u {
        0x02BC | 0x2018..=0x201B => with("'"),
        0x201C..=0x201F => with("\""),
        _ => vec![m],
    }
}

fn ligature(c: char) -> Option<&'static str> {
    Some(match c {
        'Ĳ' => "IJ",
        'ĳ' => "ij",
        'ŉ' => "ʼn",
        'Ǳ' => "DZ",
        'ǲ' => "Dz",
        'ǳ' => "dz",
        'Ǆ' => "DŽ",
        'ǅ' => "Dž",
        'ǆ' => "dž",
        'Ǉ' => "LJ",
        'ǈ' => "Lj",
        'ǉ' => "lj",
        'Ǌ' => "NJ",
        'ǋ' => "Nj",
        'ǌ' => "nj",
        'ﬀ' => "ff",
        'ﬁ' => "fi",
        'ﬂ' => "fl",
        'ﬃ' => "ffi",
        'ﬄ' => "ffl",
        'ﬅ' => "ſt",
        'ﬆ' => "st",
        _ => return None,
    })
}

/// Python's `str.split()` whitespace: Unicode White_Space plus the ASCII separators.
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `" ".join(text.split())`: runs of whitespace become one space spanning the run.
fn collapse_whitespace(chars: Vec<Mapped>) -> Vec<Mapped> {
    let mut out: Vec<Mapped> = Vec::with_capacity(chars.len());
    let mut pending: Option<Range<usize>> = None;
    for m in chars {
        if is_py_space(m.c) {
            pending = Some(match pending {
                Some(r) => r.start..m.span.end,
                None => m.span,
            });
        } else {
            if let Some(r) = pending.take()
                && !out.is_empty()
            {
                out.push(Mapped { c: ' ', span: r });
            }
            out.push(m);
        }
    }
    out
}

/// `html.unescape` for numeric references and the common named entities.
fn unescape_html(chars: &[Mapped]) -> Vec<Mapped> {
    let mut out = Vec::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i].c == '&'
            && let Some((replacement, len)) = entity_at(&chars[i..])
        {
            let span = chars[i].span.start..chars[i + len - 1].span.end;
            out.extend(replacement.into_iter().map(|c| Mapped {
                c,
                span: span.clone(),
            }));
            i += len;
            continue;
        }
        out.push(chars[i].clone());
        i += 1;
    }
    out
}

/// The entity starting at `chars[0] == '&'`: its chars and how many input chars it used.
fn entity_at(chars: &[Mapped]) -> Option<(Vec<char>, usize)> {
    let body: String = chars
        .iter()
        .skip(1)
        .take(33)
        .map(|m| m.c)
        .take_while(|&c| c != ';' && c != '&' && !c.is_whitespace())
        .collect();
    let n = body.chars().count();
    let has_semi = chars.get(n + 1).is_some_and(|m| m.c == ';');
    let used = n + 1 + usize::from(has_semi);
    if let Some(num) = body.strip_prefix('#') {
        let (digits, radix) = match num.strip_prefix(['x', 'X']) {
            Some(h) => (h, 16),
            None => (num, 10),
        };
        let len = digits.chars().take_while(|c| c.is_digit(radix)).count();
        if len == 0 {
            return None;
        }
        let code = u32::from_str_radix(&digits[..len], radix).unwrap_or(0x110000);
        // html.unescape maps invalid and surrogate code points to U+FFFD, NUL too.
        let c = match code {
            0 | 0xD800..=0xDFFF => '\u{FFFD}',
            0x80..=0x9F => cp1252(code),
            _ => char::from_u32(code).unwrap_or('\u{FFFD}'),
        };
        let consumed = 2 + (num.len() - digits.len()) + len;
        let consumed = if consumed == n + 1 && has_semi {
            consumed + 1
        } else {
            consumed
        };
        return Some((vec![c], consumed));
    }
    if !has_semi {
        // Entities without ';' are recognised by html.unescape only for a legacy few.
        let legacy = ["amp", "lt", "gt", "quot", "nbsp", "copy", "reg"];
        let name = legacy
            .iter()
            .filter(|l| body.starts_with(*l))
            .max_by_key(|l| l.len())?;
        return named(name).map(|c| (vec![c], 1 + name.len()));
    }
    named(&body).map(|c| (vec![c], used))
}

fn cp1252(code: u32) -> char {
    const TABLE: [u32; 32] = [
        0x20AC, 0x81, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
        0x2039, 0x0152, 0x8D, 0x017D, 0x8F, 0x90, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013,
        0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D, 0x017E, 0x0178,
    ];
    char::from_u32(TABLE[(code - 0x80) as usize]).unwrap_or('\u{FFFD}')
}

fn named(name: &str) -> Option<char> {
    Some(match name {
        "amp" => '&',
        "lt" => '<',
        "gt" => '>',
        "quot" => '"',
        "apos" => '\'',
        "nbsp" => '\u{a0}',
        "ndash" => '–',
        "mdash" => '—',
        "lsquo" => '‘',
        "rsquo" => '’',
        "sbquo" => '‚',
        "ldquo" => '“',
        "rdquo" => '”',
        "bdquo" => '„',
        "hellip" => '…',
        "bull" => '•',
        "middot" => '·',
        "copy" => '©',
        "reg" => '®',
        "trade" => '™',
        "euro" => '€',
        "pound" => '£',
        "yen" => '¥',
        "cent" => '¢',
        "deg" => '°',
        "times" => '×',
        "laquo" => '«',
        "raquo" => '»',
        "eacute" => 'é',
        "Eacute" => 'É',
        "egrave" => 'è',
        "aacute" => 'á',
        "agrave" => 'à',
        "iacute" => 'í',
        "oacute" => 'ó',
        "uacute" => 'ú',
        "ntilde" => 'ñ',
        "ccedil" => 'ç',
        "auml" => 'ä',
        "ouml" => 'ö',
        "uuml" => 'ü',
        "Auml" => 'Ä',
        "Ouml" => 'Ö',
        "Uuml" => 'Ü',
        "szlig" => 'ß',
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cleaned(s: &str) -> String {
        clean(s).iter().map(|m| m.c).collect()
    }

    #[test]
    fn cleans_like_open_clip() {
        assert_eq!(
            cleaned("  Angela  MERKEL\n\tarrives "),
            "angela merkel arrives"
        );
        assert_eq!(
            cleaned("Tom &amp;amp; Jerry&#39;s &quot;fun&quot;"),
            "tom & jerry's \"fun\""
        );
        assert_eq!(
            cleaned("“Quoted” ‘word’ ﬁne ＡＢＣ"),
            "\"quoted\" 'word' fine abc"
        );
        assert_eq!(cleaned("a\u{feff}b\u{7}c"), "abc");
        assert_eq!(
            cleaned("ΟΔΟΣ ΣΑ Σ"),
            "οδος σα σ",
            "final sigma only after a cased letter"
        );
        assert_eq!(
            cleaned("AΣ'S BΣ'"),
            "aσ's bς'",
            "apostrophes are case-ignorable"
        );
    }

    #[test]
    fn spans_point_into_the_input() {
        let text = " Tom &amp; Ｊerry";
        let c = clean(text);
        let amp = c.iter().find(|m| m.c == '&').unwrap();
        assert_eq!(&text[amp.span.clone()], "&amp;");
        let j = c.iter().find(|m| m.c == 'j').unwrap();
        assert_eq!(&text[j.span.clone()], "Ｊ");
        assert_eq!(c[0].c, 't', "leading whitespace is dropped");
    }
}
