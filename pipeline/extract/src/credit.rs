//! Splitting a photo credit out of a caption.
//!
//! News captions carry their credit in a handful of conventions; each is recognised at the
//! end of the caption (or, for a few outlets, at the start):
//! - The Guardian: `… Photograph: Jane Doe/Reuters`, also `Photo:`, `Illustration:`,
//!   `Composite:`, `Image:`, `Picture:`;
//! - AP style: `… (AP Photo/Jane Doe)`, `(Photo: Jane Doe, USA TODAY)`, `(Reuters)`;
//! - The New York Times: `… Credit Jane Doe for The New York Times` (also `Credit…` and
//!   the glued `CreditJane Doe` that text extraction of its markup produces);
//! - BBC: `Image source, Getty Images` / `Image copyright Getty Images` prefixes;
//! - a bare agency name at the end: `… Getty Images`, `… EPA`.

/// Labels that introduce a credit, longest first so that `Photographs:` wins over `Photo`.
const LABELS: &[&str] = &[
    "Photographs:",
    "Photograph:",
    "Photo illustration:",
    "Illustration:",
    "Composite:",
    "Photos:",
    "Photo:",
    "Picture:",
    "Pictures:",
    "Image:",
    "Images:",
    "Video:",
    "Credit:",
    "Credits:",
];

/// Agency names recognised as a bare trailing credit.
const AGENCIES: &[&str] = &[
    "Getty Images",
    "AFP/Getty Images",
    "AFP via Getty Images",
    "Reuters",
    "EPA",
    "EPA-EFE",
    "AFP",
    "AP",
    "PA",
    "PA Media",
    "PA Wire",
    "Shutterstock",
    "Rex Features",
    "Rex/Shutterstock",
    "Alamy",
    "Bloomberg",
];

/// Labels that open a caption and are not part of it: BBC's accessible `Image caption, `.
const CAPTION_LABELS: &[&str] = &["Image caption, ", "Image caption "];

/// Markers that start a trailing credit in wire copy (matched case-insensitively), beyond
/// the [`LABELS`]: `… Photo by Jane Doe`, `… AFP PHOTO / Jane Doe`, `… Image source, EPA`.
const WIRE_MARKERS: &[&str] = &[
    "photo by ",
    "photograph by ",
    "photo credit:",
    "image source,",
    "image source:",
    "afp photo",
    "ap photo",
];

/// Words that make a parenthesised tail a credit: `(Jane Doe/The Washington Post)`,
/// `(Courtesy of the family)`, `(Pool photo)`.
const CREDIT_WORDS: &[&str] = &[
    "courtesy",
    "handout",
    "pool",
    "for the ",
    "associated press",
    "usa today",
    "washington post",
    "new york times",
    "shutterstock",
    "bloomberg",
];

/// Whether `word` occurs in `hay` with no letter or digit on either side.
fn contains_word(hay: &str, word: &str) -> bool {
    let word = word.trim_end();
    hay.match_indices(word).any(|(i, _)| {
        let before = hay[..i].chars().next_back();
        let after = hay[i + word.len()..].chars().next();
        before.is_none_or(|c| !c.is_alphanumeric()) && after.is_none_or(|c| !c.is_alphanumeric())
    })
}

/// `Jane Doe/The Washington Post`: capitalised words, a slash, an agency; short.
fn is_name_slash_agency(text: &str) -> bool {
    let Some((name, agency)) = text.split_once('/') else {
        return false;
    };
    !text.contains("://")
        && !name.trim().is_empty()
        && !agency.trim().is_empty()
        && text.split_whitespace().count() <= 8
        && name
            .split_whitespace()
            .all(|w| w.chars().next().is_some_and(char::is_uppercase))
}

/// How many credits are peeled off one caption's end (`… (AP Photo/X) Image source, Y`).
const MAX_CREDITS: usize = 3;

/// Splits `caption` into (caption text, credit). The caption keeps its own punctuation;
/// the credit loses its label (`Photograph:`), its parentheses and trailing dots. Several
/// credits at the end are all removed and joined with `"; "`.
///
/// This is the only place a caption and its credit are told apart: the `pairs` table
/// stores the two columns, and later steps never split again.
pub fn split_credit(caption: &str) -> (String, Option<String>) {
    let caption = crate::dom::collapse_ws(caption);
    if caption.is_empty() {
        return (caption, None);
    }
    if is_bare_credit(&caption) {
        return (String::new(), clean_credit(&caption));
    }
    if let Some((c, cr)) = split_prefix(&caption) {
        return (c, Some(cr));
    }
    let mut body = strip_trailing_label(strip_caption_label(&caption)).to_owned();
    let mut credits: Vec<String> = Vec::new();
    for _ in 0..MAX_CREDITS {
        let next = split_parenthesised(&body)
            .or_else(|| split_label(&body))
            .or_else(|| split_nyt_credit(&body))
            .or_else(|| split_wire_marker(&body))
            .or_else(|| split_agency(&body))
            .or_else(|| split_slash_sentence(&body));
        let Some((head, credit)) = next else { break };
        credits.push(credit);
        body = head;
    }
    credits.reverse();
    let credit = (!credits.is_empty()).then(|| credits.join("; "));
    (body, credit)
}

/// Credit labels that text extraction can leave alone at a caption's end, after its last
/// sentence, when the credit itself sat in its own element: `… with the police. Credit`.
const TRAILING_LABELS: &[&str] = &["Credit", "Credit:", "Credit…", "Credit...", "Credits:"];

/// The caption without a lone [`TRAILING_LABELS`] entry at its end.
fn strip_trailing_label(caption: &str) -> &str {
    for label in TRAILING_LABELS {
        // After a finished sentence only: "the Child Tax Credit" keeps its last word.
        if let Some(head) = caption.strip_suffix(label)
            && head.ends_with(' ')
            && head.trim_end().ends_with(['.', '!', '?', '"', '”', ')'])
        {
            return head.trim_end();
        }
    }
    caption
}

/// The caption without a leading [`CAPTION_LABELS`] entry, when text follows it.
fn strip_caption_label(caption: &str) -> &str {
    CAPTION_LABELS
        .iter()
        .find_map(|label| strip_prefix_ci(caption, label))
        .map(str::trim_start)
        .filter(|rest| rest.chars().any(char::is_alphanumeric))
        .unwrap_or(caption)
}

/// `… Photo by Jane Doe`, `… AFP PHOTO / Jane Doe`, `… Image source, EPA`: the last
/// [`WIRE_MARKERS`] entry that starts a word and is followed by a short credit.
fn split_wire_marker(caption: &str) -> Option<(String, String)> {
    let lower = caption.to_lowercase();
    // Lowercasing changes byte lengths in a few scripts; only ASCII-safe offsets are used.
    if lower.len() != caption.len() {
        return None;
    }
    let (pos, marker) = WIRE_MARKERS
        .iter()
        .filter_map(|m| lower.rfind(m).map(|p| (p, *m)))
        .max_by_key(|&(p, m)| (p, m.len()))?;
    if !caption.is_char_boundary(pos)
        || caption[..pos]
            .chars()
            .next_back()
            .is_some_and(char::is_alphanumeric)
    {
        return None;
    }
    // Agency markers are part of the credit; the others are labels.
    let credit = if marker.starts_with("afp photo") || marker.starts_with("ap photo") {
        caption[pos..].trim()
    } else {
        caption[pos + marker.len()..]
            .trim()
            .trim_start_matches([':', ',', '.', '…', ' '])
    };
    if credit.is_empty() || credit.split_whitespace().count() > 12 {
        return None;
    }
    let head = caption[..pos]
        .trim_end()
        .trim_end_matches(['|', '-', '–', '—', ','])
        .trim_end();
    Some((head.to_owned(), clean_credit(credit)?))
}

/// A trailing `Name Surname/Agency` sentence: `… Brussels. Yves Herman/Reuters`.
fn split_slash_sentence(caption: &str) -> Option<(String, String)> {
    let trimmed = caption.trim_end_matches([' ', '.']);
    let start = trimmed.rfind(". ").map(|p| p + 2)?;
    let tail = &trimmed[start..];
    is_name_slash_agency(tail).then(|| {
        (
            trimmed[..start].trim_end().to_owned(),
            tail.trim().to_owned(),
        )
    })
}

/// Tidies a credit found in its own element: strips labels such as `Photograph:`,
/// `Credit`, `Image source,`, `Image copyright`, surrounding parentheses and spaces.
pub fn clean_credit(credit: &str) -> Option<String> {
    let mut c = crate::dom::collapse_ws(credit);
    loop {
        let before = c.len();
        for prefix in [
            "Image source, ",
            "Image source,",
            "Image source ",
            "Image copyright ",
            "Image copyright, ",
            "copyright ",
            "Credit: ",
            "Credit…",
            "Credit...",
            "Credit ",
            "Credits: ",
            "By ",
        ] {
            if let Some(rest) = strip_prefix_ci(&c, prefix) {
                c = rest.trim().to_string();
            }
        }
        for label in LABELS {
            if let Some(rest) = strip_prefix_ci(&c, label) {
                c = rest.trim().to_string();
            }
        }
        // "CreditJane Doe": the label glued to the name by text extraction.
        if let Some(rest) = c.strip_prefix("Credit")
            && rest.chars().next().is_some_and(char::is_uppercase)
        {
            c = rest.to_string();
        }
        if c.starts_with('(') && c.ends_with(')') {
            c = c[1..c.len() - 1].trim().to_string();
        }
        if c.len() == before {
            break;
        }
    }
    let c = trim_final_period(&c);
    if c.is_empty() || c.eq_ignore_ascii_case("credit") {
        None
    } else {
        Some(c)
    }
}

/// Company and name suffixes whose period belongs to the credit ("Lucasfilm Ltd.").
const ABBREVIATIONS: &[&str] = &["Ltd", "Inc", "Co", "Corp", "Jr", "Sr", "Bros"];

/// A credit without the sentence's closing period, unless the period ends an abbreviation.
fn trim_final_period(c: &str) -> String {
    let bare = c.trim_end_matches('.').trim();
    let last_word = bare.rsplit([' ', ',']).next().unwrap_or(bare);
    if c.trim_end().ends_with('.') && ABBREVIATIONS.contains(&last_word) {
        format!("{bare}.")
    } else {
        bare.to_string()
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

/// A "caption" that is only a credit, such as `EPA/OLIVIER DOULIERY`: an agency/photographer
/// pair with no lowercase word.
fn is_bare_credit(caption: &str) -> bool {
    caption.contains('/')
        && !caption.contains("://")
        && !caption.chars().any(char::is_lowercase)
        && caption.chars().filter(|c| c.is_alphabetic()).count() >= 4
}

/// BBC prefixes: `Image source, Getty Images Image caption, The caption`.
fn split_prefix(caption: &str) -> Option<(String, String)> {
    for (src, cap) in [
        ("Image source, ", "Image caption, "),
        ("Image copyright ", "Image caption "),
    ] {
        if let Some(rest) = caption.strip_prefix(src) {
            let (credit, text) = match rest.find(cap) {
                Some(i) => (&rest[..i], &rest[i + cap.len()..]),
                None => (rest, ""),
            };
            let credit = clean_credit(credit)?;
            return Some((text.trim().to_string(), credit));
        }
    }
    None
}

/// `(AP Photo/Jane Doe)`, `(Photo: Jane Doe, USA TODAY)`, `(Reuters)` at the end.
fn split_parenthesised(caption: &str) -> Option<(String, String)> {
    let trimmed = caption.trim_end_matches(['.', ' ']);
    let body = trimmed.strip_suffix(')')?;
    let open = body.rfind('(')?;
    let inner = body[open + 1..].trim();
    let lower = inner.to_ascii_lowercase();
    let is_credit = lower.starts_with("ap photo")
        || lower.starts_with("photo:")
        || lower.starts_with("photo by")
        || lower.starts_with("photos:")
        || lower.starts_with("photograph:")
        || lower.starts_with("image:")
        || lower.starts_with("credit")
        || lower.contains("/getty")
        || lower.contains("getty images")
        || lower.starts_with("reuters")
        || lower.starts_with("ap/")
        || lower.starts_with("afp")
        || lower.starts_with("epa")
        || AGENCIES.iter().any(|a| a.eq_ignore_ascii_case(inner))
        || CREDIT_WORDS.iter().any(|w| contains_word(&lower, w))
        || is_name_slash_agency(inner);
    if !is_credit {
        return None;
    }
    let credit = clean_credit(inner)?;
    let credit = credit
        .strip_prefix("Photo by ")
        .map(str::to_string)
        .unwrap_or(credit);
    Some((body[..open].trim().to_string(), credit))
}

/// `… Photograph: Jane Doe/Reuters` and the other labels.
fn split_label(caption: &str) -> Option<(String, String)> {
    let mut best: Option<usize> = None;
    for label in LABELS {
        // The last occurrence that starts a word; "Photograph:" inside a quote earlier in
        // the caption is not the credit.
        if let Some(i) = caption.rfind(label) {
            let starts_word = i == 0
                || caption[..i].ends_with(' ')
                || caption[..i].ends_with('.')
                || caption[..i].ends_with('|');
            if starts_word && best.is_none_or(|b| i > b) {
                best = Some(i);
            }
        }
    }
    let i = best?;
    let credit = clean_credit(&caption[i..])?;
    let text = caption[..i].trim().trim_end_matches('|').trim().to_string();
    Some((text, credit))
}

/// New York Times: `Credit Jane Doe for The New York Times`, `Credit…Jane Doe`,
/// `CreditJane Doe` (the label and the name in adjacent elements).
fn split_nyt_credit(caption: &str) -> Option<(String, String)> {
    let i = caption.rfind("Credit")?;
    let before = &caption[..i];
    let after = &caption[i + "Credit".len()..];
    // "Credit" must start a word and be followed by the name (capital, dots or space).
    let ok_before = before.is_empty() || before.ends_with(' ') || before.ends_with('.');
    // After the label's separators ("Credit…", "Credit: ") comes a name, capitalised.
    let starts_sep = after
        .chars()
        .next()
        .is_some_and(|c| c == ' ' || c == '…' || c == '.' || c == ':' || c.is_uppercase());
    let ok_after = starts_sep
        && after
            .trim_start_matches([' ', '…', '.', ':'])
            .chars()
            .next()
            .is_some_and(char::is_uppercase);
    if !(ok_before && ok_after) {
        return None;
    }
    let credit = clean_credit(&caption[i..])?;
    Some((before.trim().to_string(), credit))
}

/// A bare agency name ending the caption: `… Getty Images`, `… EPA`.
fn split_agency(caption: &str) -> Option<(String, String)> {
    let trimmed = caption.trim_end_matches('.').trim_end();
    let mut best: Option<&str> = None;
    for a in AGENCIES {
        if let Some(head) = trimmed.strip_suffix(a)
            && (head.ends_with(". ")
                || head.ends_with(' ') && head.trim_end().ends_with(['.', '!', '?', '"', '”']))
            && best.is_none_or(|b| a.len() > b.len())
        {
            best = Some(a);
        }
    }
    let a = best?;
    let head = &trimmed[..trimmed.len() - a.len()];
    // Widen to a credit such as "Jane Doe/Getty Images" glued to the agency.
    Some((head.trim().to_string(), a.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(s: &str) -> (String, Option<String>) {
        split_credit(s)
    }

    #[test]
    fn guardian_photograph_label() {
        let (c, cr) = split("Kristen Wiig in Bridesmaids. Photograph: Suzanne Hanover/Universal");
        assert_eq!(c, "Kristen Wiig in Bridesmaids.");
        assert_eq!(cr.as_deref(), Some("Suzanne Hanover/Universal"));
    }

    #[test]
    fn guardian_composite_and_illustration() {
        assert_eq!(
            split("A montage. Composite: Guardian Design; Getty")
                .1
                .as_deref(),
            Some("Guardian Design; Getty")
        );
        assert_eq!(
            split("Drawing of a whale. Illustration: Jo Bloggs")
                .1
                .as_deref(),
            Some("Jo Bloggs")
        );
    }

    #[test]
    fn ap_photo_parenthesised() {
        let (c, cr) = split("Protesters gather in Phoenix. (AP Photo/Matt York)");
        assert_eq!(c, "Protesters gather in Phoenix.");
        assert_eq!(cr.as_deref(), Some("AP Photo/Matt York"));
        let (c, cr) = split("The jail in New York. (Photo: Jane Doe, USA TODAY)");
        assert_eq!(c, "The jail in New York.");
        assert_eq!(cr.as_deref(), Some("Jane Doe, USA TODAY"));
    }

    #[test]
    fn parenthesised_non_credit_stays() {
        let (c, cr) = split("Senator John Smith (D-Ariz.) speaks.");
        assert_eq!(c, "Senator John Smith (D-Ariz.) speaks.");
        assert_eq!(cr, None);
        let (c, cr) = split("The new treaty (left)");
        assert_eq!(c, "The new treaty (left)");
        assert_eq!(cr, None);
    }

    #[test]
    fn nyt_credit_forms() {
        let (c, cr) = split("Traders in Shanghai. Credit Aly Song/Reuters");
        assert_eq!(c, "Traders in Shanghai.");
        assert_eq!(cr.as_deref(), Some("Aly Song/Reuters"));
        let (c, cr) = split("Traders in Shanghai.CreditAly Song/Reuters");
        assert_eq!(c, "Traders in Shanghai.");
        assert_eq!(cr.as_deref(), Some("Aly Song/Reuters"));
        let (_, cr) = split("A street. Credit…Jim Wilson/The New York Times");
        assert_eq!(cr.as_deref(), Some("Jim Wilson/The New York Times"));
    }

    #[test]
    fn credit_inside_a_word_is_not_a_credit() {
        let (c, cr) = split("Creditors meet in London to discuss the debt.");
        assert_eq!(c, "Creditors meet in London to discuss the debt.");
        assert_eq!(cr, None);
        let (c, cr) = split("A discredited Credit union");
        assert_eq!(cr, None, "{c}");
    }

    #[test]
    fn bbc_image_source_prefix() {
        let (c, cr) = split("Image source, Getty Images Image caption, Andrew Cuomo speaks");
        assert_eq!(c, "Andrew Cuomo speaks");
        assert_eq!(cr.as_deref(), Some("Getty Images"));
    }

    #[test]
    fn caption_that_is_only_a_credit() {
        let (c, cr) = split("EPA/OLIVIER DOULIERY");
        assert_eq!(c, "");
        assert_eq!(cr.as_deref(), Some("EPA/OLIVIER DOULIERY"));
        let (c, cr) = split("NATO/EU SUMMIT");
        assert_eq!(cr.as_deref(), Some("NATO/EU SUMMIT"), "{c}");
    }

    #[test]
    fn bare_agency_suffix() {
        let (c, cr) = split("Julian Assange leaves court. Getty Images");
        assert_eq!(c, "Julian Assange leaves court.");
        assert_eq!(cr.as_deref(), Some("Getty Images"));
        // An agency name inside the sentence is not a credit.
        let (_, cr) = split("He worked for Reuters");
        assert_eq!(cr, None);
    }

    #[test]
    fn clean_credit_labels() {
        assert_eq!(
            clean_credit("Photograph: Jane Doe/AP").as_deref(),
            Some("Jane Doe/AP")
        );
        assert_eq!(clean_credit("Image source, EPA").as_deref(), Some("EPA"));
        assert_eq!(clean_credit("Credit").as_deref(), None);
        assert_eq!(clean_credit("  ").as_deref(), None);
        assert_eq!(clean_credit("(Reuters)").as_deref(), Some("Reuters"));
        assert_eq!(
            clean_credit("CreditCreditJeon Heon-Kyun/EPA, via Shutterstock").as_deref(),
            Some("Jeon Heon-Kyun/EPA, via Shutterstock")
        );
        // A sentence's period goes; an abbreviation's stays.
        assert_eq!(clean_credit("Reuters.").as_deref(), Some("Reuters"));
        assert_eq!(
            clean_credit("Lucasfilm Ltd.").as_deref(),
            Some("Lucasfilm Ltd.")
        );
        assert_eq!(
            clean_credit("Acme Co., Inc.").as_deref(),
            Some("Acme Co., Inc.")
        );
    }

    #[test]
    fn wire_and_bbc_styles() {
        let cases = [
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
            (
                "Fans cheer as the team arrives in Dallas. (Jabin Botsford/The Washington Post)",
                "Fans cheer as the team arrives in Dallas.",
                "Jabin Botsford/The Washington Post",
            ),
            (
                "President Biden speaks at the White House. Credit...Doug Mills/The New York Times",
                "President Biden speaks at the White House.",
                "Doug Mills/The New York Times",
            ),
            (
                "Riot police stand guard in Paris. AFP PHOTO / Jane Doe",
                "Riot police stand guard in Paris.",
                "AFP PHOTO / Jane Doe",
            ),
            (
                "The harbour at dawn. Photo by Jane Doe",
                "The harbour at dawn.",
                "Jane Doe",
            ),
        ];
        for (raw, text, credit) in cases {
            let (c, cr) = split(raw);
            assert_eq!(c, text, "{raw}");
            assert_eq!(cr.as_deref(), Some(credit), "{raw}");
        }
    }

    #[test]
    fn several_credits_are_all_removed_in_order() {
        let (c, cr) = split("Troops on patrol. (AP Photo/Jane Doe) Image source, Reuters");
        assert_eq!(c, "Troops on patrol.");
        assert_eq!(cr.as_deref(), Some("AP Photo/Jane Doe; Reuters"));
    }

    #[test]
    fn a_lone_caption_label_is_kept() {
        assert_eq!(split("Image caption, ").0, "Image caption,");
        let (c, cr) = split("Image caption, Whale expert Hori Parata.");
        assert_eq!((c.as_str(), cr), ("Whale expert Hori Parata.", None));
    }

    #[test]
    fn a_lone_credit_label_at_the_end_is_dropped() {
        let (c, cr) = split("He was wounded in a gunfight with the police. Credit");
        assert_eq!(
            (c.as_str(), cr),
            ("He was wounded in a gunfight with the police.", None)
        );
        // A word ending in the label, or the label alone, stays.
        assert_eq!(
            split("Families claim the Child Tax Credit").0,
            "Families claim the Child Tax Credit"
        );
        assert_eq!(split("Credit").0, "Credit");
    }

    #[test]
    fn credit_words_count_only_as_whole_words() {
        let (c, cr) = split("Fans celebrate in the city centre (Liverpool)");
        assert_eq!(
            (c.as_str(), cr),
            ("Fans celebrate in the city centre (Liverpool)", None)
        );
        let (_, cr) = split("The couple on their wedding day (Courtesy of the family)");
        assert_eq!(cr.as_deref(), Some("Courtesy of the family"));
    }

    #[test]
    fn a_slash_inside_the_caption_is_not_a_credit() {
        let (c, cr) = split("Trade talks resume. the EU/UK deal is close");
        assert_eq!(cr, None, "{c}");
        let (c, cr) = split("Workers repair a road near the river (pictured on Monday).");
        assert_eq!(cr, None, "{c}");
    }

    #[test]
    fn odd_input_does_not_panic() {
        for s in [
            "(",
            ")",
            "()",
            "Credit",
            "Photograph:",
            "ü(",
            "(ü)",
            "Image source, ",
            "…Credit…",
        ] {
            let _ = split(s);
            let _ = clean_credit(s);
        }
    }
}
