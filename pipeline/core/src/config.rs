//! Layered configuration: one TOML file, a scale overlay, CLI overrides.
//!
//! Resolution order, later wins:
//! 1. each section's `Default` (the paper's settings for real runs);
//! 2. the TOML file (`data/anchor.toml` by default);
//! 3. the overlay `[scale.<name>]` selected by `--scale` / `SCALE=`
//!    (e.g. `[scale.ci.scrape] demo_articles = 10`);
//! 4. `--set section.key=value` flags and the dedicated flags of each
//!    subcommand.
//!
//! A section is read into one settings struct ([`ConfigDoc::section`]) or into
//! several ([`ConfigDoc::section_parts`]): a library's own settings struct (the
//! quality thresholds of the curate step, say) next to the keys only the command
//! line tool knows. Every key of the section must be claimed by one of them, so a
//! misspelt key is an error that names it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// The key holding scale overlays.
pub const SCALE_KEY: &str = "scale";

/// A configuration document being layered.
#[derive(Debug, Clone, Default)]
pub struct ConfigDoc {
    root: toml::Table,
    source: Option<PathBuf>,
    scale: Option<String>,
}

impl ConfigDoc {
    /// Parses a TOML document.
    pub fn parse(text: &str, source: Option<PathBuf>) -> Result<Self> {
        let root: toml::Table = toml::from_str(text).map_err(|e| {
            Error::Config(match &source {
                Some(p) => format!("{}: {e}", p.display()),
                None => e.to_string(),
            })
        })?;
        Ok(ConfigDoc {
            root,
            source,
            scale: None,
        })
    }

    /// Loads `path`; a missing file is an error only when `required`.
    pub fn load(path: &Path, required: bool) -> Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text, Some(path.to_path_buf())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                Ok(ConfigDoc::default())
            }
            Err(e) => Err(Error::Config(format!("{}: {e}", path.display()))),
        }
    }

    /// The file the document came from.
    pub fn source(&self) -> Option<&Path> {
        self.source.as_deref()
    }

    /// The applied scale, if any.
    pub fn scale(&self) -> Option<&str> {
        self.scale.as_deref()
    }

    /// Merges the `[scale.<name>]` overlay into the document. A scale the
    /// file does not mention is an error, except `default_ok` names (the
    /// default scale needs no overlay).
    pub fn apply_scale(&mut self, name: &str, default_ok: &[&str]) -> Result<()> {
        let overlay = match self.root.get(SCALE_KEY) {
            Some(toml::Value::Table(scales)) => scales.get(name).cloned(),
            Some(_) => return Err(Error::Config("`scale` must be a table of overlays".into())),
            None => None,
        };
        match overlay {
            Some(toml::Value::Table(t)) => merge(&mut self.root, t),
            Some(_) => return Err(Error::Config(format!("[scale.{name}] must be a table"))),
            None if default_ok.contains(&name) => {}
            None => {
                let known: Vec<String> = match self.root.get(SCALE_KEY) {
                    Some(toml::Value::Table(s)) => s.keys().cloned().collect(),
                    _ => Vec::new(),
                };
                return Err(Error::Config(format!(
                    "unknown scale {name:?}; the config defines {known:?}"
                )));
            }
        }
        self.scale = Some(name.to_owned());
        Ok(())
    }

    /// Applies one `section.key=value` override. The value is read as a TOML
    /// value (`3`, `true`, `[1, 2]`, `"x"`), falling back to a plain string.
    pub fn set(&mut self, assignment: &str) -> Result<()> {
        let (key, raw) = assignment
            .split_once('=')
            .ok_or_else(|| Error::Config(format!("--set {assignment:?}: expected key=value")))?;
        let key = key.trim();
        let path: Vec<&str> = key.split('.').collect();
        if path.iter().any(|p| p.is_empty()) {
            return Err(Error::Config(format!(
                "--set {assignment:?}: empty key component"
            )));
        }
        let value = parse_value(raw.trim());
        self.set_value(&path, value)
    }

    /// Sets `path` to `value`, creating tables on the way.
    pub fn set_value(&mut self, path: &[&str], value: toml::Value) -> Result<()> {
        let Some((last, parents)) = path.split_last() else {
            return Err(Error::Config("empty key".into()));
        };
        let mut table = &mut self.root;
        for (depth, part) in parents.iter().enumerate() {
            let entry = table
                .entry(part.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            table = match entry {
                toml::Value::Table(t) => t,
                _ => {
                    return Err(Error::Config(format!(
                        "{} is not a table",
                        path[..=depth].join(".")
                    )));
                }
            };
        }
        table.insert(last.to_string(), value);
        Ok(())
    }

    /// Deserialises section `name` into one struct (missing keys take `T::default()`
    /// values when `T` uses `#[serde(default)]`). A key that `T` does not read is an
    /// error.
    pub fn section<T: DeserializeOwned + Serialize>(&self, name: &str) -> Result<T> {
        let mut parts = self.section_parts(name)?;
        let value = parts.part()?;
        parts.finish()?;
        Ok(value)
    }

    /// Section `name`, to be read as several structs with [`SectionParts::part`] and
    /// checked with [`SectionParts::finish`].
    pub fn section_parts(&self, name: &str) -> Result<SectionParts> {
        let table = match self.root.get(name) {
            Some(toml::Value::Table(t)) => t.clone(),
            Some(_) => return Err(Error::Config(format!("[{name}] must be a table"))),
            None => toml::Table::new(),
        };
        Ok(SectionParts {
            name: name.to_owned(),
            table,
            claimed: BTreeSet::new(),
        })
    }

    /// Top-level keys other than the scale overlays.
    pub fn sections(&self) -> impl Iterator<Item = &str> {
        self.root
            .keys()
            .map(String::as_str)
            .filter(|k| *k != SCALE_KEY)
    }
}

/// One config section being read as several settings structs, each taking the keys it
/// knows. Serde's `flatten` would do this in one struct, but it cannot be combined with
/// `deny_unknown_fields` and its errors lose the key's name; reading the parts one by
/// one keeps both.
#[derive(Debug)]
pub struct SectionParts {
    name: String,
    table: toml::Table,
    claimed: BTreeSet<String>,
}

impl SectionParts {
    /// Reads one part. A part must not set `deny_unknown_fields` (the other parts' keys
    /// are in the same table) nor skip fields when serialising: the keys it claims are
    /// the keys it writes back.
    pub fn part<T: DeserializeOwned + Serialize>(&mut self) -> Result<T> {
        let value: T =
            toml::Value::Table(self.table.clone())
                .try_into()
                .map_err(|e: toml::de::Error| {
                    let detail = e
                        .to_string()
                        .split_whitespace()
                        .collect::<Vec<_>>()
                        .join(" ");
                    Error::Config(format!("[{}]: {detail}", self.name))
                })?;
        match toml::Value::try_from(&value) {
            Ok(toml::Value::Table(written)) => {
                self.claimed.extend(written.into_iter().map(|(k, _)| k))
            }
            Ok(_) => {
                return Err(Error::Config(format!(
                    "[{}]: settings must serialise as a table",
                    self.name
                )));
            }
            Err(e) => return Err(Error::Config(format!("[{}]: {e}", self.name))),
        }
        Ok(value)
    }

    /// Errors on the keys no part read.
    pub fn finish(self) -> Result<()> {
        let unknown: Vec<&str> = self
            .table
            .keys()
            .filter(|k| !self.claimed.contains(*k))
            .map(String::as_str)
            .collect();
        if unknown.is_empty() {
            return Ok(());
        }
        let known: Vec<&str> = self.claimed.iter().map(String::as_str).collect();
        Err(Error::Config(format!(
            "[{}]: unknown key{} {}; the section takes {}",
            self.name,
            if unknown.len() == 1 { "" } else { "s" },
            unknown
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", "),
            known.join(", ")
        )))
    }
}

fn parse_value(raw: &str) -> toml::Value {
    let probe = format!("v = {raw}");
    match toml::from_str::<toml::Table>(&probe) {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or_else(|| toml::Value::String(raw.to_owned())),
        Err(_) => toml::Value::String(raw.to_owned()),
    }
}

fn merge(base: &mut toml::Table, overlay: toml::Table) {
    for (key, value) in overlay {
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            (_, value) => {
                base.insert(key, value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Deserialize, Serialize, PartialEq)]
    #[serde(default)]
    struct Scrape {
        demo_articles: u32,
        rate: f64,
        user_agent: String,
    }

    impl Default for Scrape {
        fn default() -> Self {
            Scrape {
                demo_articles: 100,
                rate: 1.0,
                user_agent: "anchor".into(),
            }
        }
    }

    const FILE: &str = r#"
[scrape]
demo_articles = 200

[scale.ci.scrape]
demo_articles = 10
"#;

    #[test]
    fn layers_apply_in_order() {
        let mut doc = ConfigDoc::parse(FILE, None).unwrap();
        assert_eq!(doc.section::<Scrape>("scrape").unwrap().demo_articles, 200);
        doc.apply_scale("ci", &["demo"]).unwrap();
        assert_eq!(doc.section::<Scrape>("scrape").unwrap().demo_articles, 10);
        doc.set("scrape.rate=2.5").unwrap();
        doc.set("scrape.user_agent=anchor/1 (+https://example.org)")
            .unwrap();
        let s: Scrape = doc.section("scrape").unwrap();
        assert_eq!(s.rate, 2.5);
        assert_eq!(s.user_agent, "anchor/1 (+https://example.org)");
        assert_eq!(doc.section::<Scrape>("absent").unwrap(), Scrape::default());
    }

    #[test]
    fn errors_are_specific() {
        let mut doc = ConfigDoc::parse(FILE, None).unwrap();
        doc.set("scrape.demo_artcles=3").unwrap();
        let err = doc.section::<Scrape>("scrape").unwrap_err().to_string();
        assert!(err.contains("unknown key `demo_artcles`"), "{err}");
        assert!(err.contains("demo_articles, rate, user_agent"), "{err}");
        let mut bad_type = ConfigDoc::parse(FILE, None).unwrap();
        bad_type.set("scrape.rate=fast").unwrap();
        let err = bad_type
            .section::<Scrape>("scrape")
            .unwrap_err()
            .to_string();
        assert!(err.contains("[scrape]") && err.contains("`rate`"), "{err}");
        assert!(
            doc.clone()
                .apply_scale("huge", &["demo"])
                .unwrap_err()
                .to_string()
                .contains("unknown scale")
        );
        assert!(doc.clone().apply_scale("demo", &["demo"]).is_ok());
        assert!(doc.set("novalue").is_err());
        assert!(
            ConfigDoc::parse("[scrape\n", Some("x.toml".into()))
                .unwrap_err()
                .to_string()
                .contains("x.toml")
        );
    }

    /// Settings a library owns, read from the same section as the tool's own keys.
    #[derive(Debug, Default, Deserialize, Serialize, PartialEq)]
    #[serde(default)]
    struct Limits {
        max_words: usize,
        languages: Vec<String>,
    }

    #[test]
    fn a_section_splits_into_parts_that_claim_every_key() {
        let mut doc = ConfigDoc::parse(FILE, None).unwrap();
        doc.set("scrape.max_words=7").unwrap();
        doc.set("scrape.languages=[\"eng\"]").unwrap();
        let mut parts = doc.section_parts("scrape").unwrap();
        let scrape: Scrape = parts.part().unwrap();
        let limits: Limits = parts.part().unwrap();
        parts.finish().unwrap();
        assert_eq!(scrape.demo_articles, 200);
        assert_eq!(limits.max_words, 7);
        assert_eq!(limits.languages, ["eng"]);

        // Either part alone leaves the other's keys unread.
        let err = doc.section::<Scrape>("scrape").unwrap_err().to_string();
        assert!(
            err.contains("unknown keys `languages`, `max_words`"),
            "{err}"
        );
        doc.set("scrape.max_wrds=7").unwrap();
        let mut parts = doc.section_parts("scrape").unwrap();
        parts.part::<Scrape>().unwrap();
        parts.part::<Limits>().unwrap();
        let err = parts.finish().unwrap_err().to_string();
        assert!(err.contains("unknown key `max_wrds`"), "{err}");

        doc.set("curate=3").unwrap();
        assert!(doc.section_parts("curate").is_err());
    }
}
