//! The Entity / Non-Entity rule: a deterministic test for named entities in a caption.
//!
//! ANCHOR keeps captions about named entities (people, places, organisations) apart from
//! the rest. The rule is lexical so it is reproducible without a model; it reports every span
//! it found so a reviewer can see why. A caption is `entity` when it has at least one span:
//!
//! 1. **Name**: two or more consecutive capitalised words ("Angela Merkel", "White House",
//!    "Ursula von der Leyen": lowercase name particles are allowed inside a run). Function
//!    words that are capitalised only because they open a sentence ("The", "A", "In", ...)
//!    never start a run, and a run ends at a comma, period or other punctuation.
//! 2. **Title**: a title word followed by a capitalised word ("President Biden", "Dr. Fauci",
//!    "Pope Francis"), also mid-run; it is reported as a title span.
//! 3. **Place**: a capitalised word right after a locative preposition ("in Paris",
//!    "outside Downing", "near Kyiv") that is not a weekday, month or function word.
//! 4. **Organisation**: an all-caps acronym of 2–6 letters ("NATO", "FBI", "UN") that is not
//!    a common non-entity abbreviation (TV, AM, PM, ...), or a capitalised word ending an
//!    organisation name ("Parliament", "Ministry", "University", "FC", ...) after another
//!    capitalised word (covered by rule 1) or alone mid-sentence.
//!
//! Everything else is `non_entity`.

/// The two subsets of the dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Subset {
    /// The caption names at least one entity.
    Entity,
    /// No named entity was found.
    NonEntity,
}

impl Subset {
    /// The stable name used in the `subset` column and in dataset paths.
    pub const fn as_str(self) -> &'static str {
        match self {
            Subset::Entity => "entity",
            Subset::NonEntity => "non_entity",
        }
    }
}

/// Which rule found a span.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SpanKind {
    /// Rule 1: a capitalised multi-word name.
    Name,
    /// Rule 2: a title followed by a name.
    Title,
    /// Rule 3: a capitalised word after a locative preposition.
    Place,
    /// Rule 4: an acronym or organisation word.
    Organisation,
}

/// One entity span found in a caption.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Span {
    /// The rule that found it.
    pub kind: SpanKind,
    /// The words, joined by single spaces, punctuation trimmed.
    pub text: String,
}

/// The subset and the evidence for it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EntityDecision {
    /// `entity` when `spans` is non-empty.
    pub subset: Subset,
    /// Every span found, in caption order.
    pub spans: Vec<Span>,
}

/// Words besides [`anchor_text::FUNCTION_WORDS`] that start a sentence capitalised without
/// naming anything: more prepositions and pronouns, numbers, and group nouns ("Police",
/// "Protesters").
const NOT_NAMES_AT_SENTENCE_START: &[&str] = &[
    "of",
    "or",
    "our",
    "my",
    "your",
    "he",
    "she",
    "they",
    "we",
    "it",
    "i",
    "there",
    "here",
    "some",
    "many",
    "one",
    "two",
    "three",
    "inside",
    "outside",
    "near",
    "into",
    "over",
    "under",
    "behind",
    "between",
    "among",
    "across",
    "through",
    "around",
    "about",
    "view",
    "general",
    "police",
    "officials",
    "students",
    "workers",
    "children",
    "women",
    "men",
    "protesters",
    "visitors",
];

fn is_function_word(lower: &str) -> bool {
    anchor_text::is_function_word(lower) || NOT_NAMES_AT_SENTENCE_START.contains(&lower)
}

/// Beyond the name particles, "the" and "and" join the words of organisation names
/// ("Bank of the West", "Marks and Spencer"): the rule asks whether a name is present, so
/// two names joined into one run still count. The annotator keeps them apart.
fn joins_a_name(word: &str) -> bool {
    anchor_text::is_name_particle(word) || word == "the" || word == "and"
}

/// Titles besides [`anchor_text::OFFICE_TITLES`] that mark the next words as a person:
/// royal, clerical, military and police ranks.
const MORE_TITLES: &[&str] = &[
    "king",
    "queen",
    "prince",
    "princess",
    "pope",
    "representative",
    "gov",
    "miss",
    "lord",
    "colonel",
    "col",
    "capt",
    "archbishop",
    "bishop",
    "rev",
    "reverend",
    "sheikh",
    "emperor",
    "speaker",
    "sgt",
    "lt",
    "officer",
    "detective",
    "professor",
    "prof",
    "saint",
    "st",
];

fn is_title(lower: &str) -> bool {
    anchor_text::is_office_title(lower) || MORE_TITLES.contains(&lower)
}

const LOCATIVES: &[&str] = &[
    "in",
    "at",
    "from",
    "near",
    "outside",
    "inside",
    "across",
    "to",
    "into",
    "around",
    "toward",
    "towards",
    "through",
    "throughout",
    "of",
];

const NOT_ACRONYMS: &[&str] = &[
    "TV", "AM", "PM", "OK", "ID", "CEO", "US", "USA", "UK", "DNA", "PHOTO", "FILE", "AP", "AFP",
    "EPA", "VIP", "DJ", "PC", "HD", "GPS", "LGBT", "ATM", "SUV", "IT",
];

const ORG_WORDS: &[&str] = &[
    "parliament",
    "ministry",
    "university",
    "college",
    "council",
    "party",
    "congress",
    "senate",
    "court",
    "fc",
    "club",
    "corp",
    "inc",
    "ltd",
    "plc",
    "bank",
    "agency",
    "commission",
    "foundation",
    "institute",
    "museum",
    "hospital",
    "assembly",
    "federation",
    "union",
    "association",
    "department",
    "cathedral",
    "church",
    "stadium",
];

/// A token with its clean form and the punctuation around it.
struct Tok<'a> {
    word: &'a str,
    /// Punctuation after the word ends a capitalised run.
    breaks_after: bool,
    /// The word opens a sentence (first token, or after `.`, `!`, `?`, `:`).
    sentence_start: bool,
}

fn tokens(text: &str) -> Vec<Tok<'_>> {
    let mut out = Vec::new();
    let mut next_starts = true;
    for raw in text.split_whitespace() {
        let trimmed = raw.trim_matches(|c: char| !c.is_alphanumeric());
        let word = trimmed
            .strip_suffix("'s")
            .or_else(|| trimmed.strip_suffix("\u{2019}s"))
            .unwrap_or(trimmed);
        let last = raw.chars().last();
        // "Dr." and "St." keep a run going and do not end a sentence.
        let abbreviation = last == Some('.') && is_abbreviation(word);
        let breaks_after = !abbreviation
            && last.is_some_and(|c| !c.is_alphanumeric() && c != '\'' && c != '\u{2019}');
        let sentence_end = !abbreviation && matches!(last, Some('.' | '!' | '?' | ':' | ';'));
        if !word.is_empty() {
            out.push(Tok {
                word,
                breaks_after,
                sentence_start: next_starts,
            });
            next_starts = sentence_end;
        }
    }
    out
}

fn is_abbreviation(w: &str) -> bool {
    let l = w.to_lowercase();
    is_title(&l) || (w.len() == 1 && w.chars().all(|c| c.is_uppercase()))
}

fn lower(w: &str) -> String {
    w.to_lowercase()
}

fn is_capitalised(w: &str) -> bool {
    w.chars().next().is_some_and(|c| c.is_uppercase())
}

fn is_acronym(w: &str) -> bool {
    let n = w.chars().count();
    (2..=6).contains(&n) && w.chars().all(|c| c.is_ascii_uppercase()) && !NOT_ACRONYMS.contains(&w)
}

/// A capitalised word that can start a name (not a sentence-initial function word).
fn name_word(t: &Tok<'_>) -> bool {
    let l = lower(t.word);
    is_capitalised(t.word)
        && !anchor_text::is_calendar_word_or_abbreviation(&l)
        && !(t.sentence_start && is_function_word(&l))
}

/// Applies the rule to a (cleaned) caption.
pub fn classify(caption: &str) -> EntityDecision {
    let toks = tokens(caption);
    let mut spans = Vec::new();
    let mut i = 0;
    while i < toks.len() {
        let t = &toks[i];
        // Rules 1 and 2: runs of capitalised words, particles allowed inside.
        if name_word(t) {
            let mut j = i;
            let mut last_cap = i;
            while !toks[j].breaks_after && j + 1 < toks.len() {
                let n = &toks[j + 1];
                if is_capitalised(n.word)
                    && !anchor_text::is_calendar_word_or_abbreviation(&lower(n.word))
                {
                    j += 1;
                    last_cap = j;
                } else if joins_a_name(n.word) {
                    j += 1;
                } else {
                    break;
                }
            }
            let run = &toks[i..=last_cap];
            if run.len() >= 2 {
                let text = run.iter().map(|t| t.word).collect::<Vec<_>>().join(" ");
                let kind = if is_title(&lower(run[0].word)) {
                    SpanKind::Title
                } else {
                    SpanKind::Name
                };
                spans.push(Span { kind, text });
                i = last_cap + 1;
                continue;
            }
        }
        // Rule 3: a single capitalised word after a locative preposition.
        if i > 0
            && !toks[i - 1].breaks_after
            && LOCATIVES.contains(&lower(toks[i - 1].word).as_str())
            && is_capitalised(t.word)
            && !anchor_text::is_calendar_word_or_abbreviation(&lower(t.word))
            && !is_function_word(&lower(t.word))
        {
            spans.push(Span {
                kind: SpanKind::Place,
                text: t.word.to_string(),
            });
        } else if is_acronym(t.word)
            || (!t.sentence_start
                && is_capitalised(t.word)
                && ORG_WORDS.contains(&lower(t.word).as_str()))
        {
            // Rule 4.
            spans.push(Span {
                kind: SpanKind::Organisation,
                text: t.word.to_string(),
            });
        }
        i += 1;
    }
    let subset = if spans.is_empty() {
        Subset::NonEntity
    } else {
        Subset::Entity
    };
    EntityDecision { subset, spans }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spans(c: &str) -> Vec<(SpanKind, String)> {
        classify(c)
            .spans
            .into_iter()
            .map(|s| (s.kind, s.text))
            .collect()
    }

    #[test]
    fn names_titles_places_organisations() {
        assert_eq!(
            spans("Chancellor Angela Merkel arrives for talks in Brussels."),
            vec![
                (SpanKind::Title, "Chancellor Angela Merkel".to_string()),
                (SpanKind::Place, "Brussels".to_string())
            ]
        );
        assert_eq!(
            spans("The White House is seen at dusk."),
            vec![(SpanKind::Name, "White House".to_string())]
        );
        assert_eq!(
            spans("Ursula von der Leyen speaks."),
            vec![(SpanKind::Name, "Ursula von der Leyen".to_string())]
        );
        assert_eq!(
            spans("Troops take part in a NATO exercise."),
            vec![(SpanKind::Organisation, "NATO".to_string())]
        );
        assert_eq!(
            spans("Dr. Fauci testifies."),
            vec![(SpanKind::Title, "Dr Fauci".to_string())]
        );
        assert_eq!(
            classify("Protesters march in Paris on Monday.").subset,
            Subset::Entity
        );
    }

    #[test]
    fn generic_captions_are_non_entity() {
        for c in [
            "A man walks his dog along a beach at sunset.",
            "The crowd cheers as fireworks light up the sky on Monday.",
            "In the kitchen, a chef prepares a meal in March.",
            "Police officers stand guard outside a building.",
            "Children play in the snow.",
        ] {
            let d = classify(c);
            assert_eq!(d.subset, Subset::NonEntity, "{c}: {:?}", d.spans);
        }
    }

    #[test]
    fn deterministic_and_named() {
        let c = "Pope Francis greets pilgrims in St. Peter's Square at the Vatican.";
        assert_eq!(classify(c), classify(c));
        assert_eq!(Subset::Entity.as_str(), "entity");
        assert_eq!(Subset::NonEntity.as_str(), "non_entity");
        assert_eq!(classify(c).subset, Subset::Entity);
    }
}
