//! Parsing and validating model answers into [`Subject`]s, with stable error classes.
//!
//! Models answer with `{"subjects":[{"text":..,"kind":..,"weight":..}, ..]}`, sometimes
//! wrapped in a Markdown fence or chatter, sometimes as a bare array. The parser is strict
//! about what matters (every subject is a span of the caption, a known kind, a weight in
//! range) and forgiving about packaging, so that an answer is rejected only for a reason
//! that a retry or a better model could fix. Each rejection carries an [`ErrorClass`].

use serde_json::Value;

use crate::subject::{
    Kind, SpanError, Subject, WEIGHT_MAX, WEIGHT_MIN, WEIGHT_NEUTRAL, canonicalise,
    weight_for_pluses,
};

/// Why an answer was rejected. `as_str` names are stable: they are stored in tables and stats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ErrorClass {
    /// No JSON object or array in the answer.
    NoJson,
    /// Something JSON-like that does not parse.
    InvalidJson,
    /// JSON of the wrong shape (no `subjects` list, item not an object, text not a string).
    WrongShape,
    /// A subject text is not a span of the caption.
    NotASpan,
    /// An unknown `kind`.
    BadKind,
    /// A weight outside the documented range.
    WeightOutOfRange,
    /// An empty subject text.
    EmptySubject,
    /// The backend timed out (after retries).
    Timeout,
    /// The backend failed at the transport level (HTTP status, connection).
    Transport,
    /// Generation itself failed (model error, no allowed token).
    Generation,
}

impl ErrorClass {
    /// Stable snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::NoJson => "no_json",
            ErrorClass::InvalidJson => "invalid_json",
            ErrorClass::WrongShape => "wrong_shape",
            ErrorClass::NotASpan => "not_a_span",
            ErrorClass::BadKind => "bad_kind",
            ErrorClass::WeightOutOfRange => "weight_out_of_range",
            ErrorClass::EmptySubject => "empty_subject",
            ErrorClass::Timeout => "timeout",
            ErrorClass::Transport => "transport",
            ErrorClass::Generation => "generation",
        }
    }
}

impl std::fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rejected answer: its class and a human-readable detail.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{class}: {detail}")]
pub struct ParseError {
    /// Stable class.
    pub class: ErrorClass,
    /// What exactly was wrong.
    pub detail: String,
}

fn err(class: ErrorClass, detail: impl Into<String>) -> ParseError {
    ParseError {
        class,
        detail: detail.into(),
    }
}

impl From<SpanError> for ParseError {
    fn from(e: SpanError) -> Self {
        let class = match e {
            SpanError::NotASpan { .. } | SpanError::BadOffsets { .. } => ErrorClass::NotASpan,
            SpanError::Empty => ErrorClass::EmptySubject,
            SpanError::WeightOutOfRange { .. } => ErrorClass::WeightOutOfRange,
        };
        err(class, e.to_string())
    }
}

/// Extracts the outermost JSON value from an answer: strips a Markdown fence and any text
/// around the first `{` or `[` and its matching closer.
fn extract_json(answer: &str) -> Result<&str, ParseError> {
    let start = answer
        .find(['{', '['])
        .ok_or_else(|| err(ErrorClass::NoJson, "no '{' or '[' in the answer"))?;
    let (open, close) = if answer[start..].starts_with('{') {
        ('{', '}')
    } else {
        ('[', ']')
    };
    // Walk to the matching closer, ignoring brackets inside strings.
    let mut depth = 0i32;
    let mut in_str = false;
    let mut escaped = false;
    for (i, c) in answer[start..].char_indices() {
        if in_str {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            continue;
        }
        if c == '"' {
            in_str = true;
        } else if c == open {
            depth += 1;
        } else if c == close {
            depth -= 1;
            if depth == 0 {
                return Ok(&answer[start..start + i + c.len_utf8()]);
            }
        }
    }
    Err(err(
        ErrorClass::InvalidJson,
        "unterminated JSON value (answer cut off?)",
    ))
}

/// Reads a weight: a number, a numeric string, or a string of pluses (`"++"` = 1.21).
fn parse_weight(v: Option<&Value>, text: &str) -> Result<f64, ParseError> {
    let w = match v {
        None | Some(Value::Null) => return Ok(WEIGHT_NEUTRAL),
        Some(Value::Number(n)) => n.as_f64(),
        Some(Value::String(s)) if !s.is_empty() && s.chars().all(|c| c == '+') => {
            Some(weight_for_pluses(s.len() as u32))
        }
        Some(Value::String(s)) => s.trim().parse::<f64>().ok(),
        Some(_) => None,
    };
    let w = w.ok_or_else(|| {
        err(
            ErrorClass::WrongShape,
            format!("weight of {text:?} is not a number"),
        )
    })?;
    if !(w.is_finite() && (WEIGHT_MIN..=WEIGHT_MAX).contains(&w)) {
        return Err(err(
            ErrorClass::WeightOutOfRange,
            format!("weight {w} of {text:?} outside [{WEIGHT_MIN}, {WEIGHT_MAX}]"),
        ));
    }
    Ok(w)
}

/// Parses a model answer for `caption` into canonical subjects (sorted by position,
/// deduplicated), or says why it cannot.
pub fn parse_answer(caption: &str, answer: &str) -> Result<Vec<Subject>, ParseError> {
    let json = extract_json(answer)?;
    let value: Value =
        serde_json::from_str(json).map_err(|e| err(ErrorClass::InvalidJson, e.to_string()))?;
    let items = match &value {
        Value::Array(items) => items,
        Value::Object(map) => match map.get("subjects") {
            Some(Value::Array(items)) => items,
            _ => return Err(err(ErrorClass::WrongShape, "no \"subjects\" list")),
        },
        _ => return Err(err(ErrorClass::WrongShape, "not an object or array")),
    };
    let mut subjects = Vec::with_capacity(items.len());
    for item in items {
        let (text, kind, weight) = match item {
            // A bare string is a subject with defaults; small models do this.
            Value::String(s) => (s.as_str(), None, None),
            Value::Object(o) => {
                let text = o
                    .get("text")
                    .or_else(|| o.get("subject"))
                    .and_then(Value::as_str)
                    .ok_or_else(|| {
                        err(ErrorClass::WrongShape, "subject without a \"text\" string")
                    })?;
                (
                    text,
                    o.get("kind").or_else(|| o.get("type")),
                    o.get("weight"),
                )
            }
            _ => return Err(err(ErrorClass::WrongShape, "subject is not an object")),
        };
        let kind = match kind {
            None | Some(Value::Null) => Kind::Other,
            Some(Value::String(k)) => Kind::parse(k).ok_or_else(|| {
                err(
                    ErrorClass::BadKind,
                    format!("unknown kind {k:?} for {text:?}"),
                )
            })?,
            Some(_) => {
                return Err(err(
                    ErrorClass::BadKind,
                    format!("kind of {text:?} is not a string"),
                ));
            }
        };
        let weight = parse_weight(weight, text)?;
        subjects.push(Subject::locate(caption, text, weight, kind)?);
    }
    Ok(canonicalise(subjects))
}

/// Renders subjects as the canonical answer JSON (`{"subjects":[...]}`), the format the
/// few-shot examples use and the constrained decoder produces.
pub fn render_answer(subjects: &[Subject]) -> String {
    // Written by hand, not with `json!`, to keep the key order text, kind, weight: the model
    // picks the span first and classifies it second, and the grammar expects that order.
    let items: Vec<String> = subjects
        .iter()
        .map(|s| {
            format!(
                "{{\"text\":{},\"kind\":\"{}\",\"weight\":{}}}",
                Value::String(s.text.clone()),
                s.kind.as_str(),
                Value::from(s.weight),
            )
        })
        .collect();
    format!("{{\"subjects\":[{}]}}", items.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAP: &str = "Firefighters battle a wildfire near Athens, Greece, on Tuesday.";

    #[test]
    fn parses_canonical_answer() {
        let a = r#"{"subjects":[{"text":"wildfire","kind":"event","weight":1.21},{"text":"Firefighters","kind":"person","weight":1.1}]}"#;
        let s = parse_answer(CAP, a).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].text, "Firefighters"); // sorted by position
        assert_eq!(s[1].kind, Kind::Event);
        assert_eq!(s[1].weight, 1.21);
        assert_eq!(&CAP[s[1].start as usize..s[1].end as usize], "wildfire");
    }

    #[test]
    fn tolerates_fences_chatter_plus_weights_and_bare_arrays() {
        let a = "Sure! Here you go:\n```json\n{\"subjects\": [{\"text\": \"Athens\", \"kind\": \"location\", \"weight\": \"++\"}]}\n```";
        let s = parse_answer(CAP, a).unwrap();
        assert_eq!((s[0].kind, s[0].weight), (Kind::Place, 1.21));
        let s = parse_answer(CAP, r#"["Greece", "wildfire"]"#).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].kind, Kind::Other);
        assert_eq!(s[0].weight, 1.0);
    }

    #[test]
    fn error_classes() {
        let class = |a: &str| parse_answer(CAP, a).unwrap_err().class;
        assert_eq!(class("no idea"), ErrorClass::NoJson);
        assert_eq!(
            class("{\"subjects\":[{\"text\":\"Athens\""),
            ErrorClass::InvalidJson
        );
        assert_eq!(class("{\"subjects\": 3}"), ErrorClass::WrongShape);
        assert_eq!(
            class(r#"{"subjects":[{"text":"Rome"}]}"#),
            ErrorClass::NotASpan
        );
        assert_eq!(
            class(r#"{"subjects":[{"text":"Athens","kind":"city-ish"}]}"#),
            ErrorClass::BadKind
        );
        assert_eq!(
            class(r#"{"subjects":[{"text":"Athens","weight":5}]}"#),
            ErrorClass::WeightOutOfRange
        );
        assert_eq!(
            class(r#"{"subjects":[{"text":" "}]}"#),
            ErrorClass::EmptySubject
        );
    }

    #[test]
    fn render_round_trips() {
        let s = parse_answer(
            CAP,
            r#"{"subjects":[{"text":"Athens","kind":"place","weight":1.1}]}"#,
        )
        .unwrap();
        assert_eq!(parse_answer(CAP, &render_answer(&s)).unwrap(), s);
        assert_eq!(
            render_answer(&s),
            r#"{"subjects":[{"text":"Athens","kind":"place","weight":1.1}]}"#
        );
    }
}
