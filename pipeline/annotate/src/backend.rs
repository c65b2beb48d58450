//! The backend trait every subject extractor implements, and what it returns.

use std::ops::AddAssign;

use serde::Serialize;

use crate::Result;
use crate::parse::ParseError;
use crate::subject::Subject;

/// Token counts and timings of one or more annotations. They go to the step's stats, never
/// to the table (the table must be byte-identical across reruns).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct GenStats {
    /// Captions annotated.
    pub captions: u64,
    /// Prompt tokens processed (per-caption suffix; the shared prefix is counted once in
    /// `prefix_tokens`).
    pub prompt_tokens: u64,
    /// Seconds spent on prompt processing.
    pub prompt_secs: f64,
    /// Tokens generated.
    pub gen_tokens: u64,
    /// Answer tokens the grammar forced (fed in batched forward passes, not sampled).
    pub forced_tokens: u64,
    /// Seconds spent generating (model forward plus constrained token picking).
    pub gen_secs: f64,
    /// Of `gen_secs`, seconds spent picking tokens under the grammar (constraint overhead).
    pub pick_secs: f64,
    /// Shared-prefix tokens encoded once at load.
    pub prefix_tokens: u64,
    /// Attempts that were retried (openai backend).
    pub retries: u64,
}

impl GenStats {
    /// Prompt tokens per second (0 when nothing was measured).
    pub fn prompt_tok_per_s(&self) -> f64 {
        ratio(self.prompt_tokens as f64, self.prompt_secs)
    }

    /// Generated tokens per second (0 when nothing was measured).
    pub fn gen_tok_per_s(&self) -> f64 {
        ratio(self.gen_tokens as f64, self.gen_secs)
    }

    /// Captions per second of model time (prompt plus generation).
    pub fn captions_per_s(&self) -> f64 {
        ratio(self.captions as f64, self.prompt_secs + self.gen_secs)
    }
}

fn ratio(n: f64, secs: f64) -> f64 {
    if secs > 0.0 { n / secs } else { 0.0 }
}

impl AddAssign for GenStats {
    fn add_assign(&mut self, o: Self) {
        self.captions += o.captions;
        self.prompt_tokens += o.prompt_tokens;
        self.prompt_secs += o.prompt_secs;
        self.gen_tokens += o.gen_tokens;
        self.gen_secs += o.gen_secs;
        self.forced_tokens += o.forced_tokens;
        self.pick_secs += o.pick_secs;
        self.prefix_tokens += o.prefix_tokens;
        self.retries += o.retries;
    }
}

/// The result for one caption.
#[derive(Debug, Clone, PartialEq)]
pub struct Annotation {
    /// Valid subjects (empty when `error` is set).
    pub subjects: Vec<Subject>,
    /// The model's raw answer text (for the heuristic backend, the canonical rendering).
    pub raw: String,
    /// Why the answer was rejected, if it was; the row is kept and carries this class.
    pub error: Option<ParseError>,
    /// Tokens and timings for this caption.
    pub stats: GenStats,
}

/// A subject extractor.
///
/// `annotate` returns `Err` only when the backend itself is broken (model failed to run);
/// a bad answer is an `Ok(Annotation)` whose `error` is set.
pub trait Backend {
    /// Stable backend name stored in the table (`gguf`, `heuristic`, `openai`).
    fn name(&self) -> &'static str;
    /// Identity of the model: the GGUF file's sha256, the served model name, or the
    /// heuristic's version.
    fn model_id(&self) -> String;
    /// Prompt version, `None` for backends without a prompt.
    fn prompt_version(&self) -> Option<String>;
    /// Annotates one caption.
    fn annotate(&mut self, caption: &str) -> Result<Annotation>;
    /// Annotates several captions; backends that can batch or run concurrently override it.
    fn annotate_batch(&mut self, captions: &[&str]) -> Result<Vec<Annotation>> {
        captions.iter().map(|c| self.annotate(c)).collect()
    }
}
