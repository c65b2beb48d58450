//! The `heuristic` backend: no model, a deterministic baseline.
//!
//! Two rules, in the spirit of the paper's observation that news captions name people,
//! places and events:
//! 1. **Capitalised named-entity spans**: runs of capitalised words (joined by `of`, `de`,
//!    `von`, ... when both sides are capitalised), with leading office titles ("President",
//!    "Chancellor") and sentence-initial function words dropped; weekdays and months never
//!    count. The kind comes from keyword lists and the preceding preposition.
//! 2. **Noun phrases**: one or two lower-case content words after a determiner ("a
//!    fisherman", "the harbour wall"), plus a sentence-initial plural noun ("Protesters").
//!
//! It is a row in the quality comparison, not a fallback for a failing model.

use crate::Result;
use crate::backend::{Annotation, Backend, GenStats};
use crate::parse::render_answer;
use crate::subject::{Kind, Subject, canonicalise, weight_for_pluses};

/// Version of the rules; part of the backend's model id, bump it when they change.
pub const HEURISTIC_VERSION: &str = "heuristic-v1";

/// The heuristic backend.
#[derive(Debug, Default, Clone)]
pub struct HeuristicBackend;

impl Backend for HeuristicBackend {
    fn name(&self) -> &'static str {
        "heuristic"
    }

    fn model_id(&self) -> String {
        HEURISTIC_VERSION.to_string()
    }

    fn prompt_version(&self) -> Option<String> {
        None
    }

    fn annotate(&mut self, caption: &str) -> Result<Annotation> {
        let subjects = extract(caption);
        Ok(Annotation {
            raw: render_answer(&subjects),
            subjects,
            error: None,
            stats: GenStats {
                captions: 1,
                ..GenStats::default()
            },
        })
    }
}

/// A word of the caption with its byte offsets.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Word<'a> {
    pub(crate) text: &'a str,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// Splits into words: alphanumeric runs, joined across an inner `'`, `-`, `.` or `&`
/// followed by an alphanumeric ("O'Neill", "Jean-Luc", "U.S", "AT&T").
pub(crate) fn words(s: &str) -> Vec<Word<'_>> {
    let chars: Vec<(usize, char)> = s.char_indices().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].1.is_alphanumeric() {
            i += 1;
            continue;
        }
        let start = chars[i].0;
        let mut j = i + 1;
        while j < chars.len() {
            let c = chars[j].1;
            let joiner = matches!(c, '\'' | '’' | '-' | '.' | '&')
                && chars.get(j + 1).is_some_and(|n| n.1.is_alphanumeric());
            if c.is_alphanumeric() || joiner {
                j += 1;
            } else {
                break;
            }
        }
        let end = chars.get(j).map_or(s.len(), |c| c.0);
        out.push(Word {
            text: &s[start..end],
            start,
            end,
        });
        i = j;
    }
    out
}

pub(crate) fn is_cap(w: &str) -> bool {
    w.chars().next().is_some_and(char::is_uppercase)
}

pub(crate) fn lc(w: &str) -> String {
    w.to_lowercase()
}

/// Words besides [`anchor_text::OFFICE_TITLES`] cut off the front of a name: what an
/// office title is combined with ("Former", "Foreign", "Deputy"), nationalities and
/// parties, and professions ("Actor", "Striker").
const NAME_PREFIXES: &[&str] = &[
    "manager",
    "former",
    "leader",
    "chief",
    "foreign",
    "finance",
    "defence",
    "defense",
    "health",
    "home",
    "labour",
    "opposition",
    "actor",
    "actress",
    "singer",
    "rapper",
    "striker",
    "midfielder",
    "goalkeeper",
    "ceo",
    "founder",
    "star",
    "vice",
    "deputy",
    "first",
    "us",
    "u.s",
    "uk",
    "british",
    "french",
    "german",
    "american",
    "russian",
    "chinese",
    "ukrainian",
    "israeli",
    "palestinian",
    "italian",
    "spanish",
    "indian",
    "japanese",
    "australian",
    "democratic",
    "republican",
    "conservative",
    "police",
    "commissioner",
    "envoy",
    "spokesman",
    "spokeswoman",
    "tennis",
    "golfer",
    "player",
    "champion",
    "director",
    "author",
    "musician",
    "pop",
];

/// Whether `lower` (a lowercase word) is a title or another word cut off the front of a name.
pub(crate) fn is_title(lower: &str) -> bool {
    anchor_text::is_office_title(lower) || NAME_PREFIXES.contains(&lower)
}

/// Words besides [`anchor_text::FUNCTION_WORDS`] dropped from the front of a capitalised run.
const MORE_FUNCTION_CAPS: &[&str] = &["supporters", "below"];

fn is_function_cap(lower: &str) -> bool {
    anchor_text::is_function_word(lower) || MORE_FUNCTION_CAPS.contains(&lower)
}
const EVENT_KW: &[&str] = &[
    "games",
    "olympics",
    "olympic",
    "cup",
    "festival",
    "summit",
    "championship",
    "championships",
    "marathon",
    "prix",
    "election",
    "carnival",
    "parade",
    "week",
    "final",
    "conference",
    "awards",
    "oscars",
    "open",
    "tour",
    "series",
    "derby",
    "day",
    "war",
    "protest",
    "march",
    "rally",
    "race",
    "league",
    "show",
    "fair",
    "biennale",
    "expo",
];
const ORG_KW: &[&str] = &[
    "party",
    "council",
    "fc",
    "ministry",
    "bank",
    "inc",
    "corp",
    "university",
    "police",
    "army",
    "navy",
    "commission",
    "union",
    "association",
    "federation",
    "club",
    "company",
    "airlines",
    "airways",
    "group",
    "foundation",
    "agency",
    "united",
    "congress",
    "senate",
    "parliament",
    "government",
    "service",
    "court",
    "department",
    "institute",
    "nations",
    "motors",
    "times",
    "post",
    "guardian",
    "bbc",
];
const PLACE_KW: &[&str] = &[
    "street",
    "square",
    "park",
    "bridge",
    "palace",
    "house",
    "hall",
    "abbey",
    "cathedral",
    "stadium",
    "airport",
    "river",
    "mountain",
    "mount",
    "island",
    "islands",
    "beach",
    "road",
    "avenue",
    "station",
    "centre",
    "center",
    "tower",
    "building",
    "castle",
    "church",
    "lake",
    "valley",
    "bay",
    "coast",
    "gate",
    "arena",
    "garden",
    "gardens",
    "museum",
    "market",
    "mosque",
    "temple",
    "strip",
    "bank",
    "sea",
    "ocean",
    "forest",
    "desert",
    "hill",
    "city",
];
const PLACE_PREPS: &[&str] = &[
    "in", "at", "near", "from", "to", "outside", "across", "into", "over", "around", "inside",
    "through",
];
pub(crate) const DETERMINERS: &[&str] = &[
    "a",
    "an",
    "the",
    "his",
    "her",
    "their",
    "its",
    "our",
    "two",
    "three",
    "four",
    "five",
    "several",
    "many",
    "some",
    "hundreds",
    "thousands",
    "dozens",
];
pub(crate) const STOP: &[&str] = &[
    "of", "in", "on", "at", "for", "with", "to", "from", "by", "and", "or", "but", "as", "after",
    "before", "during", "while", "near", "outside", "inside", "into", "over", "under", "is", "are",
    "was", "were", "be", "been", "being", "has", "have", "had", "who", "which", "that", "this",
    "these", "those", "he", "she", "they", "it", "we", "his", "her", "their", "its", "a", "an",
    "the", "not", "no", "up", "down", "out", "off", "about", "against", "between", "through",
    "across", "around", "ahead", "amid", "among", "along", "behind", "beside", "past", "where",
    "when", "than", "then", "also", "last", "first", "next", "same", "other", "new", "old",
    "local", "during", "early", "late", "day", "year", "week", "time", "way", "lot", "top", "end",
    "start", "front", "back", "side", "part", "one", "each", "all", "both", "more", "most", "few",
    "own",
];
pub(crate) const PERSON_NOUNS: &[&str] = &[
    "man",
    "men",
    "woman",
    "women",
    "child",
    "children",
    "boy",
    "boys",
    "girl",
    "girls",
    "people",
    "police",
    "officer",
    "officers",
    "soldier",
    "soldiers",
    "worker",
    "workers",
    "farmer",
    "farmers",
    "fans",
    "supporters",
    "protesters",
    "demonstrators",
    "students",
    "doctor",
    "doctors",
    "nurse",
    "nurses",
    "firefighter",
    "firefighters",
    "volunteers",
    "residents",
    "family",
    "families",
    "crowd",
    "crowds",
    "player",
    "players",
    "team",
    "fisherman",
    "fishermen",
    "pilgrims",
    "migrants",
    "refugees",
    "voters",
    "shoppers",
    "commuters",
    "tourists",
    "visitors",
    "mourners",
    "rescuers",
    "athletes",
    "runners",
    "dancers",
    "musicians",
    "artist",
    "baby",
    "pupils",
    "teachers",
    "staff",
    "miners",
    "spectators",
    "passengers",
    "villagers",
    "activists",
    "delegates",
    "workers",
];
pub(crate) const EVENT_NOUNS: &[&str] = &[
    "protest",
    "rally",
    "match",
    "game",
    "festival",
    "ceremony",
    "parade",
    "celebration",
    "celebrations",
    "funeral",
    "wedding",
    "storm",
    "fire",
    "wildfire",
    "flood",
    "floods",
    "flooding",
    "election",
    "race",
    "concert",
    "march",
    "vigil",
    "strike",
    "demonstration",
    "meeting",
    "talks",
    "summit",
    "show",
    "service",
    "earthquake",
    "explosion",
    "crash",
    "heatwave",
    "snowfall",
    "drought",
    "launch",
    "auction",
    "exhibition",
    "competition",
];
pub(crate) const PLACE_NOUNS: &[&str] = &[
    "street",
    "streets",
    "beach",
    "city",
    "village",
    "market",
    "field",
    "fields",
    "park",
    "school",
    "hospital",
    "church",
    "river",
    "road",
    "square",
    "harbour",
    "harbor",
    "coast",
    "farm",
    "mountain",
    "mountains",
    "station",
    "home",
    "house",
    "town",
    "camp",
    "border",
    "stadium",
    "airport",
    "port",
    "valley",
    "forest",
    "garden",
    "shop",
    "factory",
    "mine",
    "courtroom",
    "classroom",
    "ward",
    "rubble",
    "ruins",
    "shore",
    "lake",
    "sea",
    "hills",
];

fn any_kw(ws: &[Word<'_>], kws: &[&str]) -> bool {
    ws.iter().any(|w| kws.contains(&lc(w.text).as_str()))
}

fn entity_kind(run: &[Word<'_>], prev: Option<&Word<'_>>) -> Kind {
    let acronym = run.len() == 1
        && run[0].text.len() >= 2
        && run[0]
            .text
            .chars()
            .all(|c| c.is_uppercase() || c == '.' || c == '&');
    if any_kw(run, EVENT_KW) {
        Kind::Event
    } else if acronym || any_kw(run, ORG_KW) {
        Kind::Organisation
    } else if any_kw(run, PLACE_KW)
        || prev.is_some_and(|p| PLACE_PREPS.contains(&lc(p.text).as_str()))
    {
        Kind::Place
    } else if run.len() >= 2 {
        Kind::Person
    } else {
        Kind::Other
    }
}

pub(crate) fn noun_kind(head: &str) -> Kind {
    let h = lc(head);
    if PERSON_NOUNS.contains(&h.as_str()) || h.ends_with("ers") || h.ends_with("ists") {
        Kind::Person
    } else if EVENT_NOUNS.contains(&h.as_str()) {
        Kind::Event
    } else if PLACE_NOUNS.contains(&h.as_str()) {
        Kind::Place
    } else {
        Kind::Object
    }
}

/// True when only whitespace separates two words (no comma, dash, parenthesis).
pub(crate) fn adjacent(s: &str, a: &Word<'_>, b: &Word<'_>) -> bool {
    s[a.end..b.start].chars().all(char::is_whitespace)
}

fn span(caption: &str, ws: &[Word<'_>], weight: f64, kind: Kind) -> Option<Subject> {
    let (first, last) = (ws.first()?, ws.last()?);
    Subject::locate(caption, &caption[first.start..last.end], weight, kind).ok()
}

/// Extracts subjects from a caption with the rules above.
pub fn extract(caption: &str) -> Vec<Subject> {
    let ws = words(caption);
    let mut out: Vec<Subject> = Vec::new();
    let mut covered = vec![false; ws.len()];
    let mut first_entity = true;

    // 1. Capitalised runs.
    let mut i = 0;
    while i < ws.len() {
        if !is_cap(ws[i].text) || anchor_text::is_calendar_word(&lc(ws[i].text)) {
            i += 1;
            continue;
        }
        let mut j = i + 1;
        while j < ws.len() && adjacent(caption, &ws[j - 1], &ws[j]) {
            let w = ws[j].text;
            if is_cap(w) && !anchor_text::is_calendar_word(&lc(w)) {
                j += 1;
            } else if anchor_text::is_name_particle(w)
                && j + 1 < ws.len()
                && is_cap(ws[j + 1].text)
                && adjacent(caption, &ws[j], &ws[j + 1])
            {
                j += 2;
            } else {
                break;
            }
        }
        // Drop leading function words and office titles ("In", "President").
        let mut s = i;
        while s < j
            && (is_function_cap(&lc(ws[s].text)) || (is_title(&lc(ws[s].text)) && s + 1 < j))
        {
            s += 1;
        }
        // "Fans of Liverpool": once "Fans" is dropped, the connector goes too.
        while s < j && anchor_text::is_name_particle(ws[s].text) {
            s += 1;
        }
        if s < j {
            let run = &ws[s..j];
            // The preposition before the run, looking past one article ("at the Stade").
            let prev = match s.checked_sub(1).map(|p| (p, lc(ws[p].text))) {
                Some((p, a)) if a == "the" || a == "a" => p.checked_sub(1).map(|q| &ws[q]),
                Some((p, _)) => Some(&ws[p]),
                None => None,
            };
            let sentence_initial = s == 0;
            let kind =
                if run.len() == 1 && sentence_initial && noun_kind(run[0].text) == Kind::Person {
                    Kind::Person
                } else {
                    entity_kind(run, prev)
                };
            let weight = if first_entity {
                weight_for_pluses(2)
            } else {
                weight_for_pluses(1)
            };
            if let Some(sub) = span(caption, run, weight, kind) {
                first_entity = false;
                out.push(sub);
            }
        }
        covered[i..j].iter_mut().for_each(|c| *c = true);
        i = j;
    }

    // 2. Determiner + up to two lower-case content words.
    for d in 0..ws.len() {
        if !DETERMINERS.contains(&lc(ws[d].text).as_str()) {
            continue;
        }
        let mut k = d + 1;
        while k < ws.len()
            && k <= d + 2
            && !covered[k]
            && !is_cap(ws[k].text)
            && !STOP.contains(&ws[k].text)
            && !ws[k].text.chars().all(|c| c.is_ascii_digit())
            && adjacent(caption, &ws[k - 1], &ws[k])
        {
            k += 1;
        }
        // A trailing "-ing"/"-ly" word is rarely a noun head, and "fisherman repairs" is
        // a noun and a verb: a final "-s" word after a singular noun is cut.
        while k > d + 1 && {
            let t = ws[k - 1].text;
            let verb_s = k >= d + 3
                && t.ends_with('s')
                && !t.ends_with("ss")
                && !ws[k - 2].text.ends_with('s');
            t.ends_with("ing") || t.ends_with("ly") || verb_s
        } {
            k -= 1;
        }
        if k > d + 1 {
            let run = &ws[d + 1..k];
            let head = run[run.len() - 1].text;
            if let Some(sub) = span(caption, run, weight_for_pluses(0), noun_kind(head)) {
                out.push(sub);
            }
        }
    }
    canonicalise(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(c: &str) -> Vec<(String, Kind)> {
        extract(c).into_iter().map(|s| (s.text, s.kind)).collect()
    }

    #[test]
    fn named_entities_with_titles_stripped() {
        let t = texts("Chancellor Angela Merkel arrives for talks in Brussels on Tuesday.");
        assert_eq!(
            t,
            vec![
                ("Angela Merkel".to_string(), Kind::Person),
                ("Brussels".to_string(), Kind::Place),
            ]
        );
    }

    #[test]
    fn connectors_events_and_orgs() {
        let t = texts(
            "Fans of Liverpool celebrate at the Stade de France after the Champions League final.",
        );
        assert!(
            t.contains(&("Stade de France".to_string(), Kind::Place)),
            "{t:?}"
        );
        assert!(
            t.contains(&("Champions League".to_string(), Kind::Event)),
            "{t:?}"
        );
        assert!(t.contains(&("Liverpool".to_string(), Kind::Other)), "{t:?}");
        assert!(!t.iter().any(|(s, _)| s.starts_with("of ")), "{t:?}");
        let t = texts("NATO leaders meet in Vilnius.");
        assert!(
            t.contains(&("NATO".to_string(), Kind::Organisation)),
            "{t:?}"
        );
        // The Entity rule's particles: one name, not two.
        let t = texts("Abdullah ibn Saud and Luca di Montezemolo arrive.");
        let names: Vec<&str> = t.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(names, ["Abdullah ibn Saud", "Luca di Montezemolo"], "{t:?}");
    }

    #[test]
    fn noun_phrases_for_non_entity_captions() {
        let t = texts("A fisherman repairs his nets on the harbour wall at dawn.");
        assert_eq!(
            t,
            vec![
                ("fisherman".to_string(), Kind::Person),
                ("nets".to_string(), Kind::Object),
                ("harbour wall".to_string(), Kind::Object),
            ]
        );
        let t = texts("Protesters march through the city centre.");
        assert_eq!(t[0], ("Protesters".to_string(), Kind::Person));
    }

    #[test]
    fn deterministic_and_valid() {
        let c = "Pope Francis greets pilgrims in St Peter's Square, Vatican City, on Sunday.";
        let a = extract(c);
        assert_eq!(a, extract(c));
        for s in &a {
            s.validate(c).unwrap();
        }
        let mut b = HeuristicBackend;
        let ann = b.annotate(c).unwrap();
        assert_eq!(crate::parse::parse_answer(c, &ann.raw).unwrap(), a);
    }
}
