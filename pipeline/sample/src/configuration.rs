//! The paper's compared configurations (ANCHOR, arXiv 2404.10141, Table 3): which weights,
//! which prompt and which token weights each one uses.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

use crate::error::Error;

/// One of the compared configurations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Configuration {
    /// The base model, the caption as is.
    Base,
    /// The base model with subject-weighted conditioning at inference (no training).
    Weighting,
    /// The base model plus the LoRA trained without weighting.
    Lora,
    /// The `lora` LoRA with subject weighting at inference.
    LoraWeighting,
    /// SAFE: the LoRA trained with weighted conditioning, sampled with it too, as it was trained.
    Safe,
    /// The base model with the subjects spelled out first: "A photo of X, Y. caption".
    Prefix,
}

impl Configuration {
    /// Every configuration, in table order (sorted by name).
    pub const ALL: [Configuration; 6] = [
        Configuration::Base,
        Configuration::Lora,
        Configuration::LoraWeighting,
        Configuration::Prefix,
        Configuration::Safe,
        Configuration::Weighting,
    ];

    /// The name used in the `configuration` column and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Configuration::Base => "base",
            Configuration::Weighting => "weighting",
            Configuration::Lora => "lora",
            Configuration::LoraWeighting => "lora+weighting",
            Configuration::Safe => "safe",
            Configuration::Prefix => "prefix",
        }
    }

    /// The LoRA this configuration applies (its key in the train manifest's `loras`).
    pub fn lora(self) -> Option<&'static str> {
        match self {
            Configuration::Lora | Configuration::LoraWeighting => Some("lora"),
            Configuration::Safe => Some("safe"),
            Configuration::Base | Configuration::Weighting | Configuration::Prefix => None,
        }
    }

    /// Whether subject tokens are up-weighted in the text embedding.
    pub fn weighted(self) -> bool {
        matches!(
            self,
            Configuration::Weighting | Configuration::LoraWeighting | Configuration::Safe
        )
    }

    /// The text given to the tokenizer for `caption` with subject texts `subjects` (in caption
    /// order). Only `prefix` changes it; with no subjects there is nothing to prefix and the
    /// caption is used as is (rather than "A photo of . caption").
    pub fn prompt(self, caption: &str, subjects: &[&str]) -> String {
        match self {
            Configuration::Prefix if !subjects.is_empty() => {
                let mut seen: Vec<&str> = Vec::with_capacity(subjects.len());
                for s in subjects {
                    if !seen.contains(s) {
                        seen.push(s);
                    }
                }
                format!("A photo of {}. {caption}", seen.join(", "))
            }
            _ => caption.to_owned(),
        }
    }
}

impl fmt::Display for Configuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Configuration {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Configuration::ALL
            .into_iter()
            .find(|c| c.as_str() == s.trim())
            .ok_or_else(|| {
                Error::Config(format!(
                    "unknown configuration {s:?} (known: {})",
                    Configuration::ALL.map(Configuration::as_str).join(", ")
                ))
            })
    }
}

impl Serialize for Configuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// The sampler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SchedulerKind {
    /// DDIM, eta 0 (the paper's).
    Ddim,
    /// Euler discrete.
    Euler,
}

impl SchedulerKind {
    /// The name in the `scheduler` column.
    pub fn as_str(self) -> &'static str {
        match self {
            SchedulerKind::Ddim => "ddim",
            SchedulerKind::Euler => "euler",
        }
    }
}

impl FromStr for SchedulerKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s.trim() {
            "ddim" => Ok(SchedulerKind::Ddim),
            "euler" => Ok(SchedulerKind::Euler),
            other => Err(Error::Config(format!(
                "unknown scheduler {other:?} (known: ddim, euler)"
            ))),
        }
    }
}

/// Where subject weights come from in the weighted configurations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightingKind {
    /// Every subject at [`anchor_sd::FIXED_SUBJECT_WEIGHT`] (1.1^2, the research code's `++`).
    Fixed,
    /// The weights the annotator gave (`subjects.subjects[].weight`).
    Llm,
}

impl WeightingKind {
    /// The model crate's weighting rule.
    pub fn weighting(self) -> anchor_sd::Weighting {
        match self {
            WeightingKind::Fixed => anchor_sd::Weighting::Fixed(anchor_sd::FIXED_SUBJECT_WEIGHT),
            WeightingKind::Llm => anchor_sd::Weighting::Llm,
        }
    }
}

impl FromStr for WeightingKind {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s.trim() {
            "fixed" => Ok(WeightingKind::Fixed),
            "llm" => Ok(WeightingKind::Llm),
            other => Err(Error::Config(format!(
                "unknown weighting {other:?} (known: fixed, llm)"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort_like_the_table() {
        for c in Configuration::ALL {
            assert_eq!(c.as_str().parse::<Configuration>().ok(), Some(c));
        }
        let mut names: Vec<&str> = Configuration::ALL.map(Configuration::as_str).to_vec();
        names.sort_unstable();
        assert_eq!(
            names,
            Configuration::ALL.map(Configuration::as_str).to_vec()
        );
        assert!("lora-weighting".parse::<Configuration>().is_err());
    }

    #[test]
    fn prefix_prompt_spells_the_subjects_out() {
        let caption = "Chancellor Angela Merkel arrives for talks in Brussels";
        let p = Configuration::Prefix.prompt(caption, &["Angela Merkel", "Brussels", "Brussels"]);
        assert_eq!(
            p,
            "A photo of Angela Merkel, Brussels. Chancellor Angela Merkel arrives for talks in Brussels"
        );
        assert_eq!(Configuration::Prefix.prompt(caption, &[]), caption);
        assert_eq!(Configuration::Safe.prompt(caption, &["Brussels"]), caption);
    }

    #[test]
    fn loras_and_weighting_follow_the_paper() {
        use Configuration::*;
        let loras: Vec<Option<&str>> = [Base, Weighting, Lora, LoraWeighting, Safe, Prefix]
            .map(Configuration::lora)
            .to_vec();
        assert_eq!(
            loras,
            vec![None, None, Some("lora"), Some("lora"), Some("safe"), None]
        );
        let weighted: Vec<bool> = [Base, Weighting, Lora, LoraWeighting, Safe, Prefix]
            .map(Configuration::weighted)
            .to_vec();
        assert_eq!(weighted, vec![false, true, false, true, true, false]);
    }
}
