//! The topic of a news article, from its URL and the section its page names: one of a small
//! fixed set ([`Topic::ALL`]), so that five outlets' section trees ("us-news", "nation",
//! "U.S.", "world-us-canada") count together.
//!
//! The URL decides when one of its path segments names a section: the outlets put the
//! section there (`/sport/2016/…`, `/story/news/politics/…`, `/2019/05/01/us/politics/…`,
//! `/news/world-us-canada-123`), it is present on every page, and it is finer than the
//! page's own `article:section` (the Times says "U.S." for `/us/politics/`). The page's
//! section is the fallback, and [`Topic::Other`] is what neither names.

use std::fmt;

/// An article's topic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Topic {
    /// Government, parties, elections.
    Politics,
    /// Foreign news and international affairs.
    World,
    /// Domestic, regional and local news (UK, US, New York, ...), crime, education.
    National,
    /// Business, the economy, markets, money, the media business.
    Business,
    /// Technology.
    Technology,
    /// Science and space.
    Science,
    /// Health and medicine.
    Health,
    /// Environment, climate, weather.
    Environment,
    /// Sport.
    Sport,
    /// Arts, film, music, books, television, entertainment.
    Culture,
    /// Style, fashion, food, travel, home and family.
    Lifestyle,
    /// Opinion, comment, editorials, letters.
    Opinion,
    /// None of the above, or no section found.
    #[default]
    Other,
}

impl Topic {
    /// Every topic, in table order.
    pub const ALL: [Topic; 13] = [
        Topic::Politics,
        Topic::World,
        Topic::National,
        Topic::Business,
        Topic::Technology,
        Topic::Science,
        Topic::Health,
        Topic::Environment,
        Topic::Sport,
        Topic::Culture,
        Topic::Lifestyle,
        Topic::Opinion,
        Topic::Other,
    ];

    /// The name stored in tables.
    pub fn as_str(self) -> &'static str {
        match self {
            Topic::Politics => "politics",
            Topic::World => "world",
            Topic::National => "national",
            Topic::Business => "business",
            Topic::Technology => "technology",
            Topic::Science => "science",
            Topic::Health => "health",
            Topic::Environment => "environment",
            Topic::Sport => "sport",
            Topic::Culture => "culture",
            Topic::Lifestyle => "lifestyle",
            Topic::Opinion => "opinion",
            Topic::Other => "other",
        }
    }

    /// The topic a stored name stands for.
    pub fn parse(name: &str) -> Option<Topic> {
        Topic::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// The topic of the article at `url` whose page names `section` (`articleSection`,
    /// `article:section`).
    pub fn of_article(url: &str, section: Option<&str>) -> Topic {
        url_topic(url)
            .or_else(|| section.and_then(section_topic))
            .unwrap_or(Topic::Other)
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Section names as the outlets write them in URLs and metadata, normalised by [`slug`].
const SECTIONS: &[(&str, Topic)] = &[
    // Politics.
    ("politics", Topic::Politics),
    ("uk-politics", Topic::Politics),
    ("us-politics", Topic::Politics),
    ("election", Topic::Politics),
    ("elections", Topic::Politics),
    ("government", Topic::Politics),
    ("white-house", Topic::Politics),
    ("congress", Topic::Politics),
    ("the-fix", Topic::Politics),
    // World.
    ("world", Topic::World),
    ("world-news", Topic::World),
    ("international", Topic::World),
    ("global-development", Topic::World),
    ("europe", Topic::World),
    ("asia", Topic::World),
    ("asia-pacific", Topic::World),
    ("africa", Topic::World),
    ("americas", Topic::World),
    ("middle-east", Topic::World),
    ("middleeast", Topic::World),
    ("australia-news", Topic::World),
    ("foreign", Topic::World),
    // National, regional, local.
    ("us", Topic::National),
    ("us-news", Topic::National),
    ("uk", Topic::National),
    ("uk-news", Topic::National),
    ("nation", Topic::National),
    ("national", Topic::National),
    ("nyregion", Topic::National),
    ("new-york", Topic::National),
    ("local", Topic::National),
    ("metro", Topic::National),
    ("dc-md-va", Topic::National),
    ("england", Topic::National),
    ("scotland", Topic::National),
    ("wales", Topic::National),
    ("northern-ireland", Topic::National),
    ("uk-england", Topic::National),
    ("uk-scotland", Topic::National),
    ("uk-wales", Topic::National),
    ("uk-northern-ireland", Topic::National),
    ("society", Topic::National),
    ("education", Topic::National),
    ("crime", Topic::National),
    ("law", Topic::National),
    ("religion", Topic::National),
    // Business.
    ("business", Topic::Business),
    ("money", Topic::Business),
    ("economy", Topic::Business),
    ("economics", Topic::Business),
    ("markets", Topic::Business),
    ("finance", Topic::Business),
    ("dealbook", Topic::Business),
    ("your-money", Topic::Business),
    ("realestate", Topic::Business),
    ("real-estate", Topic::Business),
    ("media", Topic::Business),
    ("business-of-sport", Topic::Business),
    // Technology.
    ("technology", Topic::Technology),
    ("tech", Topic::Technology),
    ("personaltech", Topic::Technology),
    ("innovations", Topic::Technology),
    ("the-intersect", Topic::Technology),
    // Science.
    ("science", Topic::Science),
    ("science-environment", Topic::Science),
    ("space", Topic::Science),
    // Health.
    ("health", Topic::Health),
    ("health-science", Topic::Health),
    ("wellness", Topic::Health),
    ("well", Topic::Health),
    ("medicine", Topic::Health),
    ("coronavirus", Topic::Health),
    // Environment.
    ("environment", Topic::Environment),
    ("climate", Topic::Environment),
    ("climate-environment", Topic::Environment),
    ("climate-solutions", Topic::Environment),
    ("weather", Topic::Environment),
    // Sport.
    ("sport", Topic::Sport),
    ("sports", Topic::Sport),
    ("football", Topic::Sport),
    ("soccer", Topic::Sport),
    ("nfl", Topic::Sport),
    ("nba", Topic::Sport),
    ("mlb", Topic::Sport),
    ("nhl", Topic::Sport),
    ("ncaaf", Topic::Sport),
    ("ncaab", Topic::Sport),
    ("golf", Topic::Sport),
    ("tennis", Topic::Sport),
    ("cricket", Topic::Sport),
    ("rugby-union", Topic::Sport),
    ("rugby-league", Topic::Sport),
    ("formula1", Topic::Sport),
    ("boxing", Topic::Sport),
    ("athletics", Topic::Sport),
    ("olympics", Topic::Sport),
    ("cycling", Topic::Sport),
    ("baseball", Topic::Sport),
    ("basketball", Topic::Sport),
    ("hockey", Topic::Sport),
    ("thehuddle", Topic::Sport),
    // Culture.
    ("culture", Topic::Culture),
    ("arts", Topic::Culture),
    ("art", Topic::Culture),
    ("artanddesign", Topic::Culture),
    ("entertainment", Topic::Culture),
    ("entertainment-arts", Topic::Culture),
    ("film", Topic::Culture),
    ("movies", Topic::Culture),
    ("music", Topic::Culture),
    ("books", Topic::Culture),
    ("tv", Topic::Culture),
    ("television", Topic::Culture),
    ("tv-and-radio", Topic::Culture),
    ("theater", Topic::Culture),
    ("theatre", Topic::Culture),
    ("stage", Topic::Culture),
    ("games", Topic::Culture),
    ("celebrities", Topic::Culture),
    ("people", Topic::Culture),
    ("newsbeat", Topic::Culture),
    // Lifestyle.
    ("lifestyle", Topic::Lifestyle),
    ("lifeandstyle", Topic::Lifestyle),
    ("life", Topic::Lifestyle),
    ("style", Topic::Lifestyle),
    ("fashion", Topic::Lifestyle),
    ("food", Topic::Lifestyle),
    ("dining", Topic::Lifestyle),
    ("travel", Topic::Lifestyle),
    ("home", Topic::Lifestyle),
    ("family", Topic::Lifestyle),
    ("cars", Topic::Lifestyle),
    ("t-magazine", Topic::Lifestyle),
    // Opinion.
    ("opinion", Topic::Opinion),
    ("opinions", Topic::Opinion),
    ("commentisfree", Topic::Opinion),
    ("comment", Topic::Opinion),
    ("editorials", Topic::Opinion),
    ("letters", Topic::Opinion),
    ("columnists", Topic::Opinion),
    ("voices", Topic::Opinion),
];

fn lookup(name: &str) -> Option<Topic> {
    SECTIONS.iter().find(|(n, _)| *n == name).map(|(_, t)| *t)
}

/// Lowercase, dots and apostrophes removed ("U.S." → "us"), "&" as "and", every other run
/// of non-alphanumerics one hyphen.
fn slug(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().flat_map(char::to_lowercase) {
        match c {
            '.' | '\'' | '’' => {}
            '&' => {
                if !out.is_empty() && !out.ends_with('-') {
                    out.push('-');
                }
                out.push_str("and-");
            }
            c if c.is_alphanumeric() => out.push(c),
            _ => {
                if !out.is_empty() && !out.ends_with('-') {
                    out.push('-');
                }
            }
        }
    }
    out.trim_end_matches('-').to_owned()
}

/// The last path segment of `url` that names a section.
///
/// The article's own slug, which can start with any word, is read only when it is exactly a
/// section name; a segment that ends in a numeric id (the BBC's
/// `world-us-canada-12345678`) names its section in the words before the id, matched by
/// the longest hyphen-prefix ("world-us-canada" → "world").
fn url_topic(url: &str) -> Option<Topic> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let path = rest.split_once('/').map_or("", |(_, p)| p);
    let path = path.split(['?', '#']).next().unwrap_or("");
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    segments.iter().rev().find_map(|segment| {
        let segment = segment.to_ascii_lowercase();
        if let Some(words) = before_numeric_id(&segment) {
            return longest_prefix(words);
        }
        lookup(&segment)
    })
}

/// "world-us-canada-12345678" → "world-us-canada"; `None` when the segment does not end in
/// a hyphen and digits.
fn before_numeric_id(segment: &str) -> Option<&str> {
    let (words, id) = segment.rsplit_once('-')?;
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit()) && !words.is_empty()).then_some(words)
}

fn longest_prefix(words: &str) -> Option<Topic> {
    let mut candidate = words;
    loop {
        if let Some(t) = lookup(candidate) {
            return Some(t);
        }
        candidate = candidate.rsplit_once('-')?.0;
    }
}

/// A page's section name: the whole name, else its longest hyphen-prefix, else its last
/// word that names a section ("Sport | Football" → sport).
fn section_topic(section: &str) -> Option<Topic> {
    let name = slug(section);
    if name.is_empty() {
        return None;
    }
    longest_prefix(&name).or_else(|| name.rsplit('-').find_map(lookup))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The section table in `schemas/pairs_curated.md` is the vocabulary users read: it must
    /// be [`SECTIONS`], name for name, so that neither can change without the other.
    #[test]
    fn the_schema_lists_exactly_the_section_vocabulary() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../schemas/pairs_curated.md"
        );
        let doc = std::fs::read_to_string(path).expect("schemas/pairs_curated.md");
        let table = doc
            .split("| topic | section names (URL segments or page sections) |")
            .nth(1)
            .expect("the Topics table");
        let mut documented = Vec::new();
        let mut topics = Vec::new();
        for line in table.lines().skip(2).take_while(|l| l.starts_with('|')) {
            let cells: Vec<&str> = line.trim_matches('|').split('|').map(str::trim).collect();
            let [topic, names] = cells[..] else {
                panic!("a row of two cells: {line}");
            };
            let topic = Topic::parse(topic).unwrap_or_else(|| panic!("not a topic: {topic}"));
            topics.push(topic);
            if topic != Topic::Other {
                documented.extend(names.split(", ").map(|n| (n.to_owned(), topic)));
            }
        }
        assert_eq!(topics, Topic::ALL, "one row per topic, in table order");
        let code: Vec<(String, Topic)> = SECTIONS
            .iter()
            .map(|(n, t)| ((*n).to_owned(), *t))
            .collect();
        assert_eq!(documented, code);
    }

    #[test]
    fn outlet_urls_name_their_sections() {
        let cases = [
            (
                "https://www.theguardian.com/us-news/2016/nov/02/standing-rock",
                Topic::National,
            ),
            (
                "https://www.theguardian.com/commentisfree/2019/jan/01/x",
                Topic::Opinion,
            ),
            (
                "https://www.bbc.co.uk/news/world-us-canada-51536960",
                Topic::World,
            ),
            ("https://www.bbc.com/news/uk-politics-4932", Topic::Politics),
            ("https://www.bbc.com/sport/football/52000000", Topic::Sport),
            (
                "https://www.usatoday.com/story/news/politics/2020/01/01/slug/2790/",
                Topic::Politics,
            ),
            (
                "https://www.usatoday.com/story/sports/nfl/2010/08/18/favre/1",
                Topic::Sport,
            ),
            (
                "https://www.washingtonpost.com/national/health-science/x/2014/10/01/id_story.html",
                Topic::Health,
            ),
            (
                "https://www.nytimes.com/2019/05/01/us/politics/barr-mueller.html",
                Topic::Politics,
            ),
            (
                "https://www.nytimes.com/2016/09/20/nyregion/ahmad-khan-rahami.html",
                Topic::National,
            ),
        ];
        for (url, topic) in cases {
            assert_eq!(Topic::of_article(url, None), topic, "{url}");
        }
    }

    #[test]
    fn a_slug_that_starts_with_a_section_word_is_not_a_section() {
        let url = "https://www.nytimes.com/2019/05/01/politics-of-sport.html";
        assert_eq!(Topic::of_article(url, None), Topic::Other);
        assert_eq!(
            Topic::of_article(url, Some("Sports")),
            Topic::Sport,
            "the page's section is the fallback"
        );
    }

    #[test]
    fn page_sections_are_normalised() {
        for (section, topic) in [
            ("U.S.", Topic::National),
            ("US news", Topic::National),
            ("Arts & Design", Topic::Culture),
            ("Life and style", Topic::Lifestyle),
            ("Sport | Football", Topic::Sport),
            ("Opinion", Topic::Opinion),
            ("Obituaries", Topic::Other),
            ("", Topic::Other),
        ] {
            assert_eq!(
                Topic::of_article("https://example.com/a", Some(section)),
                topic,
                "{section:?}"
            );
        }
    }

    #[test]
    fn names_round_trip() {
        for t in Topic::ALL {
            assert_eq!(Topic::parse(t.as_str()), Some(t));
        }
        assert_eq!(Topic::parse("sports"), None);
    }
}
