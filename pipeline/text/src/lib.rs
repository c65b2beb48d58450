//! Word lists that several caption rules share, kept in one place so that curate's
//! Entity rule, the heuristic subject annotator and the outlets' date paths read the same
//! words.
//!
//! Capitalised calendar words ("Monday", "March", "Christmas") start sentences and follow
//! prepositions in captions without being named entities; both the Entity rule and the
//! heuristic annotator skip them.
//!
//! [`topic`] maps an article's URL and section to one of a fixed set of topics.

pub mod topic;

pub use topic::Topic;

/// Weekdays, lowercase.
pub const WEEKDAYS: [&str; 7] = [
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
    "saturday",
    "sunday",
];

/// Months in calendar order, lowercase.
pub const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// Month abbreviations as captions write them ("Sept. 4"), lowercase.
pub const MONTH_ABBREVIATIONS: [&str; 12] = [
    "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
];

/// Holidays that name a time of year, lowercase.
pub const HOLIDAYS: [&str; 2] = ["christmas", "easter"];

/// Lowercase determiners, prepositions, pronouns and conjunctions that start a sentence or
/// a capitalised run without being part of a name ("In Paris", "The crowd"). The Entity rule
/// and the heuristic annotator each add a few words of their own.
pub const FUNCTION_WORDS: [&str; 41] = [
    "the",
    "a",
    "an",
    "in",
    "on",
    "at",
    "after",
    "before",
    "during",
    "as",
    "with",
    "from",
    "by",
    "for",
    "to",
    "this",
    "that",
    "these",
    "those",
    "his",
    "her",
    "their",
    "its",
    "and",
    "but",
    "while",
    "when",
    "members",
    "fans",
    "people",
    "residents",
    "file",
    "photo",
    "pictured",
    "left",
    "right",
    "center",
    "centre",
    "top",
    "bottom",
    "above",
];

/// Whether `lower` (a lowercase word) is one of the [`FUNCTION_WORDS`].
pub fn is_function_word(lower: &str) -> bool {
    FUNCTION_WORDS.contains(&lower)
}

/// Lowercase office titles and honorifics written before a name ("President", "Mr", "Sen")
/// that the Entity rule and the heuristic annotator both take off it. Each adds titles of its
/// own.
pub const OFFICE_TITLES: [&str; 25] = [
    "president",
    "prime",
    "minister",
    "chancellor",
    "secretary",
    "senator",
    "sen",
    "rep",
    "governor",
    "mayor",
    "mr",
    "mrs",
    "ms",
    "dr",
    "sir",
    "dame",
    "general",
    "gen",
    "coach",
    "captain",
    "judge",
    "justice",
    "chairman",
    "lady",
    "ambassador",
];

/// Whether `lower` (a lowercase word) is one of the [`OFFICE_TITLES`].
pub fn is_office_title(lower: &str) -> bool {
    OFFICE_TITLES.contains(&lower)
}

/// Lowercase words that join the capitalised words of one name ("Ludwig van Beethoven",
/// "Bank of England", "Mohammed bin Salman"). Both the Entity rule and the heuristic
/// annotator keep a run of capitalised words going across them.
pub const NAME_PARTICLES: [&str; 18] = [
    "von", "van", "der", "den", "de", "del", "della", "di", "da", "du", "la", "le", "bin", "al",
    "el", "ibn", "of", "y",
];

/// Whether `word`, as written, is one of the [`NAME_PARTICLES`] (a capitalised "Van" or
/// "El" starts a name and is not a particle).
pub fn is_name_particle(word: &str) -> bool {
    NAME_PARTICLES.contains(&word)
}

/// Whether `lowercase_word` is a weekday, a month or a holiday (not an abbreviation:
/// "Jan" and "Mar" are also names).
pub fn is_calendar_word(lowercase_word: &str) -> bool {
    WEEKDAYS.contains(&lowercase_word)
        || MONTHS.contains(&lowercase_word)
        || HOLIDAYS.contains(&lowercase_word)
}

/// [`is_calendar_word`] or a [`MONTH_ABBREVIATIONS`] entry.
pub fn is_calendar_word_or_abbreviation(lowercase_word: &str) -> bool {
    is_calendar_word(lowercase_word) || MONTH_ABBREVIATIONS.contains(&lowercase_word)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn particles_are_lowercase_only() {
        for w in ["van", "de", "ibn", "of"] {
            assert!(is_name_particle(w), "{w}");
        }
        for w in ["Van", "El", "the", "and"] {
            assert!(!is_name_particle(w), "{w}");
        }
    }

    #[test]
    fn calendar_words_and_abbreviations() {
        for w in ["monday", "march", "december", "easter"] {
            assert!(is_calendar_word(w), "{w}");
        }
        for w in ["jan", "sept", "mar"] {
            assert!(!is_calendar_word(w), "{w}");
            assert!(is_calendar_word_or_abbreviation(w), "{w}");
        }
        for w in ["merkel", "monday's", "Monday", ""] {
            assert!(!is_calendar_word_or_abbreviation(w), "{w}");
        }
    }
}
