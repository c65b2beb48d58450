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
