//! Candidate subject spans for the `rank` mode of the gguf backend: the heuristic's rules
//! (see [`crate::heuristic`]) adapted to real outlet captions, in caption order.
//!
//! Differences from the heuristic backend's rules:
//! - Only the first sentence is read: later sentences of outlet captions give background
//!   ("Tunisia has grappled with ..."), not what the photo shows.
//! - A demonym or a sentence-initial group noun joins the lower-case nouns after it
//!   ("Tunisian security forces", "Police officers").
//! - Office titles inside a capitalised run are cut ("Palestinian Authority President Mahmoud
//!   Abbas" → "Mahmoud Abbas"); a title on its own ("Mr.") is not a subject.
//! - Group nouns without a determiner are subjects ("rescue workers", "armed men").
//! - A name followed by a place noun keeps it ("Bardo museum").
//! - Abstract and medium nouns ("area", "attack", "image") are not subjects.

use crate::heuristic::{
    DETERMINERS, PERSON_NOUNS, PLACE_NOUNS, STOP, TITLES, Word, adjacent, extract, is_cap, lc,
    noun_kind, words,
};
use crate::subject::{Kind, Subject, canonicalise, weight_for_pluses};

/// Nouns that name no visible thing, or the photo itself.
const ABSTRACT: &[&str] = &[
    "area",
    "attack",
    "attacks",
    "site",
    "image",
    "photo",
    "picture",
    "video",
    "file",
    "decision",
    "rights",
    "career",
    "role",
    "region",
    "expectation",
    "privacy",
    "spending",
    "demand",
    "response",
    "treatment",
    "capital",
    "country",
    "nation",
    "people",
    "number",
    "years",
    "work",
    "renovation",
    "example",
    "detail",
    "one",
    "piece",
    "collection",
    "type",
    "time",
];

/// Words that start a verb's object or complement, not a noun's continuation.
const OBJECT_STARTS: &[&str] = &[
    "a", "an", "the", "its", "his", "her", "their", "he", "she", "they", "it", "to", "some",
];

/// Abbreviations whose period does not end a sentence.
const ABBREV: &[&str] = &[
    "mr", "mrs", "ms", "dr", "st", "jr", "sr", "mt", "gen", "sen", "rep",
];

/// The caption up to the end of its first sentence (a `.`, `!` or `?` followed by a space
/// and an upper-case letter, not after an initial or a title abbreviation).
pub fn first_sentence(caption: &str) -> &str {
    let b = caption.as_bytes();
    for (i, &c) in b.iter().enumerate() {
        if !matches!(c, b'.' | b'!' | b'?') || i + 2 >= b.len() || b[i + 1] != b' ' {
            continue;
        }
        let next = caption[i + 2..].chars().next();
        if !next.is_some_and(char::is_uppercase) {
            continue;
        }
        let before = &caption[..i];
        let word: String = before
            .chars()
            .rev()
            .take_while(|c| c.is_alphanumeric())
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        if word.chars().count() <= 1 || ABBREV.contains(&lc(&word).as_str()) {
            continue;
        }
        return before;
    }
    caption
}

fn is_demonym(w: &str) -> bool {
    let l = lc(w);
    is_cap(w)
        && l.len() > 4
        && (l.ends_with("ian") || l.ends_with("ese") || l.ends_with("ish") || l.ends_with("ean"))
        || matches!(
            l.as_str(),
            "israeli" | "iraqi" | "saudi" | "thai" | "greek" | "french"
        )
}

fn is_group_noun(w: &str) -> bool {
    let l = lc(w);
    PERSON_NOUNS.contains(&l.as_str())
        || (l.len() > 4 && (l.ends_with("ers") || l.ends_with("ists")))
        || matches!(
            l.as_str(),
            "police" | "policemen" | "gunmen" | "men" | "forces"
        )
}

/// Lower-case content words right after word `k` (at most `max`), stopping before a verb-like
/// `-s`/`-ed`/`-ing` word that follows a noun.
fn noun_tail(caption: &str, ws: &[Word<'_>], k: usize, max: usize) -> usize {
    let mut j = k + 1;
    while j < ws.len() && j <= k + max {
        let t = ws[j].text;
        if is_cap(t)
            || STOP.contains(&t)
            || !adjacent(caption, &ws[j - 1], &ws[j])
            || t.ends_with("ing")
            || t.ends_with("ly")
            || t.chars().any(|c| c.is_ascii_digit())
        {
            break;
        }
        j += 1;
        // A plural group noun ends the phrase ("forces secure" is noun + verb), unless
        // another one follows ("police officers").
        let next_group = ws
            .get(j)
            .is_some_and(|n| is_group_noun(n.text) && !is_cap(n.text));
        if (is_group_noun(t) || t.ends_with('s') && j > k + 2) && !next_group {
            break;
        }
    }
    j
}

fn make(caption: &str, ws: &[Word<'_>], kind: Kind, weight: f64) -> Option<Subject> {
    let (first, last) = (ws.first()?, ws.last()?);
    Subject::locate(caption, &caption[first.start..last.end], weight, kind).ok()
}

/// Candidate subjects of `caption`, in caption order, weights from the heuristic's rules
/// capped at one plus (the ranker chooses the main subject).
pub fn candidates(caption: &str) -> Vec<Subject> {
    let head = first_sentence(caption);
    let ws = words(head);
    let mut out: Vec<Subject> = Vec::new();
    for s in extract(head) {
        let idx: Vec<usize> = (0..ws.len())
            .filter(|&i| ws[i].start >= s.start as usize && ws[i].end <= s.end as usize)
            .collect();
        let (Some(&a), Some(&b)) = (idx.first(), idx.last()) else {
            continue;
        };
        let text_lc = lc(&s.text);
        // A title alone ("Mr.", "Former") is not a subject.
        if a == b && TITLES.contains(&text_lc.as_str()) {
            continue;
        }
        // A sentence-initial participle or adverb ("Escorted by", "Originally from").
        if a == 0
            && b == 0
            && (text_lc.ends_with("ed") || text_lc.ends_with("ing") || text_lc.ends_with("ly"))
        {
            continue;
        }
        if ABSTRACT.contains(&lc(ws[b].text).as_str()) {
            continue;
        }
        let mut a = a;
        let mut b = b;
        let mut kind = s.kind;
        if is_cap(ws[a].text) {
            // Cut up to an office title inside the run.
            if let Some(t) = (a..b)
                .rev()
                .find(|&i| TITLES.contains(&lc(ws[i].text).as_str()))
            {
                a = t + 1;
                kind = Kind::Person;
            }
            // "Tunisian security forces", "Police officers", "Bardo museum".
            let last = ws[b].text;
            let sentence_initial = a == 0 && b == 0;
            if is_demonym(last)
                || (sentence_initial && (is_group_noun(last) || lc(last) == "police"))
            {
                let j = noun_tail(head, &ws, b, 3);
                if j > b + 1 {
                    b = j - 1;
                    kind = noun_kind(ws[b].text);
                }
            } else if b + 1 < ws.len()
                && adjacent(head, &ws[b], &ws[b + 1])
                && matches!(lc(ws[b + 1].text).as_str(), "museum" | "hospital")
                || b + 1 < ws.len()
                    && adjacent(head, &ws[b], &ws[b + 1])
                    && PLACE_NOUNS.contains(&ws[b + 1].text)
                    && !ws[b].text.ends_with('s')
            {
                b += 1;
                kind = Kind::Place;
            }
        } else if let Some(p) =
            (a..b).find(|&i| ws[i].text.ends_with("’s") || ws[i].text.ends_with("'s"))
        {
            // "country's parliament" → "parliament".
            a = p + 1;
        }
        // "president said he", "museum opened its": a last word followed by a determiner
        // or pronoun, or ending in -ed, is a verb.
        if b > a && !is_cap(ws[b].text) {
            let t = lc(ws[b].text);
            let next = ws.get(b + 1).map(|w| lc(w.text));
            if t.ends_with("ed") || next.is_some_and(|n| OBJECT_STARTS.contains(&n.as_str())) {
                b -= 1;
            }
        }
        let weight = s.weight.min(weight_for_pluses(1));
        if let Some(sub) = make(head, &ws[a..=b], kind, weight) {
            out.push(sub);
        }
    }
    // Group nouns without a determiner ("rescue workers", "tourists", "armed men").
    for k in 0..ws.len() {
        let t = ws[k].text;
        if is_cap(t) || !is_group_noun(t) {
            continue;
        }
        let mut a = k;
        while a > 0 && a + 2 > k {
            let p = ws[a - 1].text;
            if (is_cap(p) && a - 1 != 0)
                || STOP.contains(&p)
                || DETERMINERS.contains(&lc(p).as_str())
                || p.ends_with('s')
                || p.ends_with("ly")
                || !adjacent(head, &ws[a - 1], &ws[a])
            {
                break;
            }
            a -= 1;
        }
        let start = ws[a].start as u32;
        let end = ws[k].end as u32;
        if out
            .iter()
            .any(|o| o.start <= start && o.end >= end || o.start < end && start < o.end)
        {
            continue;
        }
        if let Some(sub) = make(head, &ws[a..=k], Kind::Person, weight_for_pluses(0)) {
            out.push(sub);
        }
    }
    // Overlapping candidates: keep the longer one.
    let mut subs = canonicalise(out);
    let mut kept: Vec<Subject> = Vec::with_capacity(subs.len());
    subs.sort_by_key(|s| std::cmp::Reverse(s.end - s.start));
    for s in subs {
        if !kept.iter().any(|k| k.start < s.end && s.start < k.end) {
            kept.push(s);
        }
    }
    canonicalise(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(c: &str) -> Vec<String> {
        candidates(c).into_iter().map(|s| s.text).collect()
    }

    #[test]
    fn first_sentence_skips_initials_and_titles() {
        assert_eq!(
            first_sentence("Mr. Trump met Donald J. Trump. Later, rain."),
            "Mr. Trump met Donald J. Trump"
        );
        assert_eq!(first_sentence("No end here"), "No end here");
    }

    #[test]
    fn groups_demonyms_and_titles() {
        assert_eq!(
            texts(
                "Members of Tunisian security services take positions. Tunisia has grappled with militancy."
            ),
            ["Tunisian security services"]
        );
        assert_eq!(
            texts("Palestinian Authority President Mahmoud Abbas visited the Bardo in 2012."),
            ["Mahmoud Abbas", "Bardo"]
        );
        let t = texts(
            "Escorted by security forces, rescue workers pull an empty stretcher outside the Bardo museum.",
        );
        assert!(t.contains(&"rescue workers".to_string()), "{t:?}");
        assert!(t.contains(&"Bardo museum".to_string()), "{t:?}");
        assert!(t.contains(&"empty stretcher".to_string()), "{t:?}");
    }

    #[test]
    fn candidates_are_valid_spans_in_order() {
        for c in [
            "Police officers and a journalist run outside the parliament in Tunis.",
            "Mr. Trump met with volunteers in Tampa, Fla., on Wednesday.",
            "Zürich’s old town at dawn",
        ] {
            let cands = candidates(c);
            for w in cands.windows(2) {
                assert!(w[0].end <= w[1].start, "{c}: {cands:?}");
            }
            for s in &cands {
                s.validate(c).unwrap();
            }
        }
        assert_eq!(
            texts("Mr. Trump met with volunteers in Tampa, Fla., on Wednesday.")[0],
            "Trump"
        );
    }
}
