//! Versioned prompts (stored under `data/annotate/prompts/`) and their rendering into chat
//! templates.
//!
//! A prompt splits into a **shared prefix** (system text and few-shot turns, identical for
//! every caption, so its KV cache is computed once) and a **per-caption suffix** (the user
//! turn, the assistant header and the forced answer prefix).

use std::path::Path;

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::Error;
use crate::constrain::ANSWER_PREFIX;

/// The zero-shot prompt shipped with the crate.
pub const ZERO_SHOT_V1: &str = include_str!("../../../data/annotate/prompts/zero-shot-v1.toml");
/// The few-shot prompt shipped with the crate.
pub const FEW_SHOT_V1: &str = include_str!("../../../data/annotate/prompts/few-shot-v1.toml");
/// Candidate ranking with few-shot examples from real captions.
pub const RANK_V1: &str = include_str!("../../../data/annotate/prompts/rank-v1.toml");
/// Candidate ranking under the second candidate rules ([`crate::candidates::candidates_with`]).
pub const RANK_V2: &str = include_str!("../../../data/annotate/prompts/rank-v2.toml");
/// Candidate ranking under the third candidate rules.
pub const RANK_V3: &str = include_str!("../../../data/annotate/prompts/rank-v3.toml");
/// Candidate ranking under the fourth candidate rules, with the grammatical subject of an
/// article-led caption taken as the main subject.
pub const RANK_V4: &str = include_str!("../../../data/annotate/prompts/rank-v4.toml");
/// Candidate ranking under the fifth candidate rules, which also take a caption's opening
/// name as its main subject.
pub const RANK_V5: &str = include_str!("../../../data/annotate/prompts/rank-v5.toml");
/// Candidate ranking under the sixth candidate rules, which also keep quoted titles and named
/// groups whole and take what an opening phrase points at as the main subject.
pub const RANK_V6: &str = include_str!("../../../data/annotate/prompts/rank-v6.toml");
/// Candidate ranking under the seventh candidate rules, which also join an opening word to
/// the noun phrase it describes and take the name after opening titles as the main subject.
pub const RANK_V7: &str = include_str!("../../../data/annotate/prompts/rank-v7.toml");
/// Candidate ranking under the eighth candidate rules, which also join an article's
/// capitalised modifiers to their noun phrase and take a quotation's speaker, a name in
/// apposition and a possessed noun phrase as the main subject.
pub const RANK_V8: &str = include_str!("../../../data/annotate/prompts/rank-v8.toml");
/// Candidate ranking under the ninth candidate rules, which also read single-quoted titles,
/// carry a quotation on to its speaker and take a group before "of" ("Supporters of") and a
/// named group as the main subject.
pub const RANK_V9: &str = include_str!("../../../data/annotate/prompts/rank-v9.toml");
/// Candidate ranking under the tenth candidate rules, which also take the noun phrase an
/// article's lower-case possessive owns, an opening crowd and a model number after a name,
/// and end noun phrases at a past tense.
pub const RANK_V10: &str = include_str!("../../../data/annotate/prompts/rank-v10.toml");
/// Candidate ranking under the eleventh candidate rules, which also read an opening
/// participle with its plural noun ("Seized firearms"), a quoted title an opening name owns
/// and the name after "The … city of", and drop a time or a poll before "of".
pub const RANK_V11: &str = include_str!("../../../data/annotate/prompts/rank-v11.toml");
/// Candidate ranking under the twelfth candidate rules, which also read an opening adjective
/// or demonym with its plural noun ("Dead sardines", "Russian conscripts"), join a leading
/// initial to its name, cut a naming participle ("known") and a clergy title, and take the
/// name a position marker (", left,") sets off.
pub const RANK_V12: &str = include_str!("../../../data/annotate/prompts/rank-v12.toml");
/// Candidate ranking under the thirteenth candidate rules, which also read a team and a
/// sports position before a player's name ("New York Knicks forward Carmelo Anthony"), keep
/// a name before a comma and its role, cut an opening "Some" from a named group and take what
/// ", above," marks.
pub const RANK_V13: &str = include_str!("../../../data/annotate/prompts/rank-v13.toml");
/// Candidate ranking under the fourteenth candidate rules, which also take the noun phrase
/// that opens the sentence before its verb ("The Homo erectus skull found in ...", "Some of
/// the 30 Greenpeace activists arrested"), an opening gerund, the name after an opening
/// quotation and the name an organisation's role sets off ("its basketball coach, Mike
/// Rice").
pub const RANK_V14: &str = include_str!("../../../data/annotate/prompts/rank-v14.toml");
/// Candidate ranking under the fifteenth candidate rules, which also take the members of a
/// collective that opens the sentence ("A column of military vehicles", "Members of the Sikh
/// community"), an adjective in `-ed` inside that phrase ("Russian armored vehicles") and a
/// named group before where it is ("Drag queens at the ...").
pub const RANK_V15: &str = include_str!("../../../data/annotate/prompts/rank-v15.toml");
/// Candidate ranking under the sixteenth candidate rules, which also take what an opening
/// picture head shows ("An image taken from a video ... shows insurgents"), the name after an
/// upper-case kicker, the quoted work "A scene from" points at, an opening noun before its
/// `-s` verb ("A visitor studies ...") and an opening "People" before its verb, and drop a
/// capitalised compound adjective ("The Grammy-winning singer").
pub const RANK_V16: &str = include_str!("../../../data/annotate/prompts/rank-v16.toml");

/// Candidate ranking under the seventeenth candidate rules, which also join a prefixed name
/// to its noun ("A pro-Palestinian rally") and a middle initial to a possessive surname
/// ("Donald J. Trump’s"), and take the name a modified place noun points at ("The small
/// mountain town of Kostenets") and a named group without its classifier ("The Indianapolis
/// gospel group Zion’s Joy!").
pub const RANK_V17: &str = include_str!("../../../data/annotate/prompts/rank-v17.toml");

/// Candidate ranking under the eighteenth candidate rules, which also take the sentence's
/// subject after an opening phrase set off by a comma ("Of the nearly 7,500 papers,
/// scientists ..."), cut a possessive off a lower-case person noun ("the director’s"), join names
/// across " & " ("Hav & Mar") and a day name after an opening first name ("Jeff Saturday,
/// a former center"), and drop an organisation before a newsroom role and a name ("The Fox
/// News host Sean Hannity").
pub const RANK_V18: &str = include_str!("../../../data/annotate/prompts/rank-v18.toml");

/// Candidate ranking under the nineteenth candidate rules, which also join an opening name
/// to the plural noun it describes ("Secret Service agents"), cut a judging adjective off a
/// noun phrase ("unlikely coalition") and an adverb after it ("noodles high"), and read more
/// openers before a comma ("Across the country, ...") (the default).
pub const RANK_V19: &str = include_str!("../../../data/annotate/prompts/rank-v19.toml");

/// One worked example: a caption and its canonical answer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Example {
    /// The example caption.
    pub caption: String,
    /// Its answer, in canonical JSON.
    pub answer: String,
}

/// How the gguf backend uses the model with a prompt.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The model writes the whole answer under the span grammar.
    #[default]
    Generate,
    /// Rule-based candidate spans ([`crate::candidates`]); the model scores each as the
    /// answer's first subject and the best one becomes the main subject.
    Rank,
}

/// A versioned prompt.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Prompt {
    /// Stable version name (`few-shot-v1`); part of every cache key.
    pub version: String,
    /// System message.
    pub system: String,
    /// User message template; `{caption}` is replaced by the caption.
    pub user: String,
    /// Few-shot examples (empty for zero-shot).
    #[serde(default)]
    pub examples: Vec<Example>,
    /// How the answer is produced (default `generate`).
    #[serde(default)]
    pub mode: Mode,
    /// `rank` mode: log-probability subtracted per candidate before it in the caption, in the
    /// order of [`crate::candidates::subject_order`] (a prior for the caption's grammatical
    /// subject, which is usually what the photo shows).
    #[serde(default)]
    pub position_penalty: f64,
    /// `rank` mode: version of the candidate rules ([`crate::candidates::candidates_with`]);
    /// 1 when absent.
    #[serde(default = "first_rules")]
    pub rules: u32,
}

fn first_rules() -> u32 {
    1
}

impl Prompt {
    /// Parses a prompt from TOML text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, Error> {
        let p: Prompt = toml::from_str(text).map_err(|e| Error::Prompt {
            origin: origin.to_string(),
            detail: e.to_string(),
        })?;
        if !p.user.contains("{caption}") {
            return Err(Error::Prompt {
                origin: origin.to_string(),
                detail: "user template has no {caption}".into(),
            });
        }
        Ok(p)
    }

    /// Loads a prompt file.
    pub fn load(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// A built-in prompt by version name (`zero-shot-v1`, `few-shot-v1`).
    pub fn builtin(version: &str) -> Result<Self, Error> {
        let text = match version {
            "zero-shot-v1" => ZERO_SHOT_V1,
            "few-shot-v1" => FEW_SHOT_V1,
            "rank-v1" => RANK_V1,
            "rank-v2" => RANK_V2,
            "rank-v3" => RANK_V3,
            "rank-v4" => RANK_V4,
            "rank-v5" => RANK_V5,
            "rank-v6" => RANK_V6,
            "rank-v7" => RANK_V7,
            "rank-v8" => RANK_V8,
            "rank-v9" => RANK_V9,
            "rank-v10" => RANK_V10,
            "rank-v11" => RANK_V11,
            "rank-v12" => RANK_V12,
            "rank-v13" => RANK_V13,
            "rank-v14" => RANK_V14,
            "rank-v15" => RANK_V15,
            "rank-v16" => RANK_V16,
            "rank-v17" => RANK_V17,
            "rank-v18" => RANK_V18,
            "rank-v19" => RANK_V19,
            _ => {
                return Err(Error::Prompt {
                    origin: version.to_string(),
                    detail: "unknown built-in prompt (zero-shot-v1, few-shot-v1, rank-v1, rank-v2, rank-v3, rank-v4, rank-v5, rank-v6, rank-v7, rank-v8, rank-v9, rank-v10, rank-v11, rank-v12, rank-v13, rank-v14, rank-v15, rank-v16, rank-v17, rank-v18, rank-v19)"
                        .into(),
                });
            }
        };
        Self::from_toml(text, version)
    }

    /// The default prompt: few-shot.
    pub fn default_few_shot() -> Self {
        // The built-in text is a compile-time constant checked by a unit test.
        match Self::builtin("few-shot-v1") {
            Ok(p) => p,
            Err(e) => unreachable!("built-in prompt is invalid: {e}"),
        }
    }

    /// The user message for a caption.
    pub fn user_message(&self, caption: &str) -> String {
        self.user.replace("{caption}", caption)
    }

    /// sha256 over everything that reaches the model, for provenance next to `version`.
    pub fn fingerprint(&self) -> String {
        let mut h = Sha256::new();
        for part in [&self.version, &self.system, &self.user] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        // Generate prompts keep the fingerprints they always had.
        if self.mode == Mode::Rank {
            h.update(b"mode=rank\0");
            h.update(self.position_penalty.to_le_bytes());
            // Rank prompts under the first rules keep their fingerprints.
            if self.rules != 1 {
                h.update(b"rules\0");
                h.update(self.rules.to_le_bytes());
            }
        }
        for ex in &self.examples {
            h.update(ex.caption.as_bytes());
            h.update([0]);
            h.update(ex.answer.as_bytes());
            h.update([0]);
        }
        hex::encode(h.finalize())
    }
}

/// The chat formats we can render. Read from the GGUF `tokenizer.chat_template` by
/// recognising its markers: running arbitrary Jinja is out of scope, and these two cover
/// SmolLM2, Qwen2.5 (ChatML) and Llama 3.x.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatFormat {
    /// `<|im_start|>role\n...<|im_end|>\n` (SmolLM2, Qwen2).
    ChatMl,
    /// `<|start_header_id|>role<|end_header_id|>\n\n...<|eot_id|>` (Llama 3).
    Llama3,
}

impl ChatFormat {
    /// Recognises a chat template, or `None` for an unsupported one.
    pub fn detect(template: &str) -> Option<Self> {
        if template.contains("<|im_start|>") {
            Some(ChatFormat::ChatMl)
        } else if template.contains("<|start_header_id|>") {
            Some(ChatFormat::Llama3)
        } else {
            None
        }
    }

    fn turn(self, role: &str, content: &str) -> String {
        match self {
            ChatFormat::ChatMl => format!("<|im_start|>{role}\n{content}<|im_end|>\n"),
            ChatFormat::Llama3 => {
                format!("<|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>")
            }
        }
    }

    fn assistant_header(self) -> &'static str {
        match self {
            ChatFormat::ChatMl => "<|im_start|>assistant\n",
            ChatFormat::Llama3 => "<|start_header_id|>assistant<|end_header_id|>\n\n",
        }
    }

    /// The shared prefix: begin-of-text (Llama 3), system turn, few-shot turns.
    pub fn prefix(self, prompt: &Prompt) -> String {
        let mut s = String::new();
        if self == ChatFormat::Llama3 {
            s.push_str("<|begin_of_text|>");
        }
        s.push_str(&self.turn("system", &prompt.system));
        for ex in &prompt.examples {
            s.push_str(&self.turn("user", &prompt.user_message(&ex.caption)));
            s.push_str(&self.turn("assistant", &ex.answer));
        }
        s
    }

    /// The per-caption suffix, ending with the forced answer prefix `{"subjects":[`.
    pub fn suffix(self, prompt: &Prompt, caption: &str) -> String {
        let mut s = self.turn("user", &prompt.user_message(caption));
        s.push_str(self.assistant_header());
        s.push_str(ANSWER_PREFIX);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::{parse_answer, render_answer};

    #[test]
    fn builtins_load_and_examples_are_canonical() {
        for v in [
            "zero-shot-v1",
            "few-shot-v1",
            "rank-v1",
            "rank-v2",
            "rank-v3",
            "rank-v4",
            "rank-v5",
            "rank-v6",
            "rank-v7",
            "rank-v8",
            "rank-v9",
            "rank-v10",
            "rank-v11",
            "rank-v12",
            "rank-v13",
            "rank-v14",
            "rank-v15",
            "rank-v16",
            "rank-v17",
            "rank-v18",
            "rank-v19",
        ] {
            let p = Prompt::builtin(v).unwrap();
            assert_eq!(p.version, v);
            for ex in &p.examples {
                let subjects = parse_answer(&ex.caption, &ex.answer).unwrap();
                // The example must be exactly what the constrained decoder could produce.
                assert_eq!(render_answer(&subjects), ex.answer, "{}", ex.caption);
                let g = crate::constrain::Grammar::new(&ex.caption, 8);
                let st = g
                    .advance(&g.start(), &ex.answer.as_bytes()[ANSWER_PREFIX.len()..])
                    .unwrap();
                assert!(st.is_done());
            }
        }
        assert_eq!(Prompt::builtin("few-shot-v1").unwrap().examples.len(), 3);
        assert_eq!(Prompt::builtin("rank-v1").unwrap().rules, 1);
        assert_eq!(Prompt::builtin("rank-v2").unwrap().rules, 2);
        assert_eq!(Prompt::builtin("rank-v3").unwrap().rules, 3);
        assert_eq!(Prompt::builtin("rank-v4").unwrap().rules, 4);
        assert_eq!(Prompt::builtin("rank-v5").unwrap().rules, 5);
        assert_eq!(Prompt::builtin("rank-v6").unwrap().rules, 6);
        assert_eq!(Prompt::builtin("rank-v7").unwrap().rules, 7);
        assert_eq!(Prompt::builtin("rank-v8").unwrap().rules, 8);
        assert_eq!(Prompt::builtin("rank-v9").unwrap().rules, 9);
        assert_eq!(Prompt::builtin("rank-v10").unwrap().rules, 10);
        assert_eq!(Prompt::builtin("rank-v11").unwrap().rules, 11);
        assert_eq!(Prompt::builtin("rank-v12").unwrap().rules, 12);
        assert_eq!(Prompt::builtin("rank-v13").unwrap().rules, 13);
        assert_eq!(Prompt::builtin("rank-v14").unwrap().rules, 14);
        assert_eq!(Prompt::builtin("rank-v15").unwrap().rules, 15);
        assert_eq!(Prompt::builtin("rank-v16").unwrap().rules, 16);
        assert_eq!(Prompt::builtin("rank-v17").unwrap().rules, 17);
        assert_eq!(Prompt::builtin("rank-v18").unwrap().rules, 18);
        assert_eq!(Prompt::builtin("rank-v19").unwrap().rules, 19);
        assert!(Prompt::builtin("v0").is_err());
    }

    #[test]
    fn chatml_rendering_splits_prefix_and_suffix() {
        let p = Prompt::default_few_shot();
        let f = ChatFormat::detect("{{'<|im_start|>' + message['role']}}").unwrap();
        assert_eq!(f, ChatFormat::ChatMl);
        let pre = f.prefix(&p);
        assert!(pre.starts_with("<|im_start|>system\nYou read news"));
        assert_eq!(pre.matches("<|im_start|>assistant\n").count(), 3);
        let suf = f.suffix(&p, "Rain in Spain");
        assert_eq!(
            suf,
            "<|im_start|>user\nCaption: Rain in Spain<|im_end|>\n<|im_start|>assistant\n{\"subjects\":["
        );
        assert!(ChatFormat::detect("{{ bos_token }}[INST]").is_none());
    }

    #[test]
    fn fingerprint_changes_with_text() {
        let a = Prompt::default_few_shot();
        let mut b = a.clone();
        b.system.push('.');
        assert_ne!(a.fingerprint(), b.fingerprint());
        assert_eq!(a.fingerprint().len(), 64);
    }
}
