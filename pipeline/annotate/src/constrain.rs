//! Constrained decoding: a byte-level state machine over the answer's JSON shape whose
//! subject texts can only be word-bounded spans of the caption, and a token picker that
//! applies it to a whole vocabulary.
//!
//! The machine starts right after the forced prefix `{"subjects":[` (fed as prompt) and
//! accepts exactly
//!
//! ```text
//! ]}  |  {"text":"SPAN","kind":"KIND","weight":W} (,{"text":...})* ]}
//! ```
//!
//! where SPAN is the JSON-escaped text of a caption span that starts and ends on word
//! boundaries, KIND one of the six kinds and W one of the compel weights `1.1^k`. Every
//! accepted string therefore parses with [`crate::parse::parse_answer`], whatever the model
//! weights are. It ends because a span can only grow up to the caption's end and the list
//! is capped at `max_subjects`, so [`Grammar::max_answer_bytes`] bounds the answer length.

use crate::subject::{Kind, MAX_PLUSES, is_word_end, is_word_start, weight_for_pluses};

/// The prefix of every answer, fed to the model as part of the prompt.
pub const ANSWER_PREFIX: &str = "{\"subjects\":[";

/// What follows a completed literal alternative.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    Span,
    Kind,
    Weight,
    AfterItem,
    Done,
}

/// One alternative literal and where it leads.
type Alt = (Vec<u8>, Next);

/// Literal alternatives of each choice point. No alternative is a prefix of another, so the
/// first one fully matched is the only one alive.
#[derive(Debug)]
struct Tables {
    list_open: Vec<Alt>,
    after_item: Vec<Alt>,
    after_item_full: Vec<Alt>,
    close_span: Vec<Alt>,
    kinds: Vec<Alt>,
    weights: Vec<Alt>,
}

impl Tables {
    fn new() -> Self {
        let lit = |s: &str, n| (s.as_bytes().to_vec(), n);
        let weights = (0..=MAX_PLUSES)
            .map(|k| {
                // serde_json's own float formatting, so the text parses back identically.
                let w = serde_json::Value::from(weight_for_pluses(k)).to_string();
                (format!("{w}}}").into_bytes(), Next::AfterItem)
            })
            .collect();
        Tables {
            list_open: vec![lit("]}", Next::Done), lit("{\"text\":\"", Next::Span)],
            after_item: vec![lit("]}", Next::Done), lit(",{\"text\":\"", Next::Span)],
            after_item_full: vec![lit("]}", Next::Done)],
            close_span: vec![lit(",\"kind\":\"", Next::Kind)],
            kinds: Kind::ALL
                .iter()
                .map(|k| lit(&format!("{}\",\"weight\":", k.as_str()), Next::Weight))
                .collect(),
            weights,
        }
    }
}

/// Which literal table a choice state walks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Table {
    ListOpen,
    AfterItem,
    AfterItemFull,
    CloseSpan,
    Kinds,
    Weights,
}

/// The machine's state between bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    /// Matching literal alternatives: `alive` is a bitmask over the table, `pos` the bytes
    /// matched so far.
    Choice {
        table: Table,
        pos: usize,
        alive: u32,
    },
    /// Inside a subject text: the escaped-caption positions consistent with the bytes so
    /// far, and how many bytes were consumed.
    Span { cands: Vec<usize>, consumed: usize },
    /// The answer is complete.
    Done,
}

/// The per-caption grammar: the escaped caption and its allowed span starts and ends.
#[derive(Debug)]
pub struct Grammar {
    escaped: Vec<u8>,
    starts: Vec<usize>,
    /// `close_ok[i]`: a span may end at escaped offset `i`.
    close_ok: Vec<bool>,
    /// `next_close[i]`: the first `j >= i` with `close_ok[j]` (`usize::MAX` if none), so a
    /// span is never extended into a dead end such as a caption's final full stop.
    next_close: Vec<usize>,
    max_subjects: usize,
    tables: Tables,
}

/// A position in the grammar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    mode: Mode,
    items: usize,
    /// Escaped-caption ranges of the subjects already given: a text may not be repeated
    /// (small models otherwise list the same span again with another kind).
    chosen: Vec<(usize, usize)>,
}

impl Grammar {
    /// Builds the grammar of `caption`, allowing at most `max_subjects` subjects.
    pub fn new(caption: &str, max_subjects: usize) -> Self {
        let mut escaped = Vec::with_capacity(caption.len() + 8);
        let mut starts = Vec::new();
        let mut close_ok = Vec::new();
        for (i, c) in caption.char_indices() {
            let at = escaped.len();
            close_ok.resize(at + 1, false);
            close_ok[at] = is_word_end(caption, i);
            if is_word_start(caption, i) {
                starts.push(at);
            }
            // serde_json's escaping of one char (quotes, backslashes, control chars).
            let esc = serde_json::Value::String(c.to_string()).to_string();
            escaped.extend_from_slice(&esc.as_bytes()[1..esc.len() - 1]);
        }
        close_ok.resize(escaped.len() + 1, false);
        close_ok[escaped.len()] = is_word_end(caption, caption.len());
        let mut next_close = vec![usize::MAX; close_ok.len()];
        for i in (0..close_ok.len()).rev() {
            next_close[i] = if close_ok[i] {
                i
            } else {
                next_close.get(i + 1).copied().unwrap_or(usize::MAX)
            };
        }
        Grammar {
            escaped,
            starts,
            close_ok,
            next_close,
            max_subjects,
            tables: Tables::new(),
        }
    }

    /// The state right after [`ANSWER_PREFIX`].
    pub fn start(&self) -> State {
        // A caption without a single word can only get the empty list.
        let table = if self.starts.is_empty() {
            Table::AfterItemFull
        } else {
            Table::ListOpen
        };
        State {
            mode: self.choice(table),
            items: 0,
            chosen: Vec::new(),
        }
    }

    /// An upper bound on the answer's length in bytes (so in tokens): every token consumes
    /// at least one byte, so decoding within this many steps always reaches `Done`.
    pub fn max_answer_bytes(&self) -> usize {
        let item = self.escaped.len() + 64;
        (self.max_subjects + 1) * item + 8
    }

    fn table(&self, t: Table) -> &[Alt] {
        match t {
            Table::ListOpen => &self.tables.list_open,
            Table::AfterItem => &self.tables.after_item,
            Table::AfterItemFull => &self.tables.after_item_full,
            Table::CloseSpan => &self.tables.close_span,
            Table::Kinds => &self.tables.kinds,
            Table::Weights => &self.tables.weights,
        }
    }

    fn choice(&self, table: Table) -> Mode {
        let n = self.table(table).len();
        Mode::Choice {
            table,
            pos: 0,
            alive: (1u32 << n) - 1,
        }
    }

    /// True when the span `start..end` (escaped offsets) repeats a subject already given.
    fn repeats(&self, chosen: &[(usize, usize)], start: usize, end: usize) -> bool {
        let text = &self.escaped[start..end];
        chosen.iter().any(|&(s, e)| &self.escaped[s..e] == text)
    }

    /// A span may close at candidate position `c` after `consumed` bytes.
    fn can_close(&self, chosen: &[(usize, usize)], c: usize, consumed: usize) -> bool {
        consumed > 0 && self.close_ok[c] && !self.repeats(chosen, c - consumed, c)
    }

    /// Whether a span started at `start` and now at `pos` can still end validly: some
    /// allowed end at or after `pos` gives a non-empty text not given before.
    fn viable(&self, chosen: &[(usize, usize)], start: usize, pos: usize) -> bool {
        let mut j = self.next_close.get(pos).copied().unwrap_or(usize::MAX);
        while j != usize::MAX {
            if j > start && !self.repeats(chosen, start, j) {
                return true;
            }
            j = self.next_close.get(j + 1).copied().unwrap_or(usize::MAX);
        }
        false
    }

    fn enter(&self, next: Next, items: usize, chosen: Vec<(usize, usize)>) -> State {
        let mode = match next {
            Next::Span => Mode::Span {
                cands: self.starts.clone(),
                consumed: 0,
            },
            Next::Kind => self.choice(Table::Kinds),
            Next::Weight => self.choice(Table::Weights),
            Next::AfterItem
                if items >= self.max_subjects
                    || !self.starts.iter().any(|&s| self.viable(&chosen, s, s)) =>
            {
                // Full, or every possible span was already given.
                self.choice(Table::AfterItemFull)
            }
            Next::AfterItem => self.choice(Table::AfterItem),
            Next::Done => Mode::Done,
        };
        State {
            mode,
            items,
            chosen,
        }
    }

    /// Advances `state` by one byte, or returns `None` when the byte is not allowed.
    pub fn step(&self, state: &State, b: u8) -> Option<State> {
        match &state.mode {
            Mode::Done => None,
            Mode::Choice { table, pos, alive } => {
                let alts = self.table(*table);
                let mut next_alive = 0u32;
                for (i, (lit, _)) in alts.iter().enumerate() {
                    if alive & (1 << i) != 0 && lit.get(*pos) == Some(&b) {
                        next_alive |= 1 << i;
                    }
                }
                if next_alive == 0 {
                    return None;
                }
                let pos = pos + 1;
                for (i, (lit, next)) in alts.iter().enumerate() {
                    if next_alive & (1 << i) != 0 && lit.len() == pos {
                        // A subject is counted when its closing brace is matched.
                        let items = state.items + usize::from(*table == Table::Weights);
                        return Some(self.enter(*next, items, state.chosen.clone()));
                    }
                }
                Some(State {
                    mode: Mode::Choice {
                        table: *table,
                        pos,
                        alive: next_alive,
                    },
                    items: state.items,
                    chosen: state.chosen.clone(),
                })
            }
            Mode::Span { cands, consumed } => {
                // Closing quote at an allowed end. At such a position the escaped caption
                // never holds a bare `"` (it would be `\"`), so this cannot be mistaken for
                // a quote inside the text.
                let closing = cands
                    .iter()
                    .find(|&&c| b == b'"' && self.can_close(&state.chosen, c, *consumed));
                if let Some(&c) = closing {
                    let mut chosen = state.chosen.clone();
                    chosen.push((c - consumed, c));
                    return Some(State {
                        mode: self.choice(Table::CloseSpan),
                        items: state.items,
                        chosen,
                    });
                }
                let cands: Vec<usize> = cands
                    .iter()
                    .filter(|&&c| {
                        self.escaped.get(c) == Some(&b)
                            && self.viable(&state.chosen, c - consumed, c + 1)
                    })
                    .map(|&c| c + 1)
                    .collect();
                if cands.is_empty() {
                    return None;
                }
                Some(State {
                    mode: Mode::Span {
                        cands,
                        consumed: consumed + 1,
                    },
                    items: state.items,
                    chosen: state.chosen.clone(),
                })
            }
        }
    }

    /// Advances by a whole byte string (a token), or `None` if any byte is refused.
    pub fn advance(&self, state: &State, bytes: &[u8]) -> Option<State> {
        if bytes.is_empty() {
            return None;
        }
        let mut s = state.clone();
        for &b in bytes {
            s = self.step(&s, b)?;
        }
        Some(s)
    }

    /// Whether `bytes` is an allowed continuation. Same answer as `advance(..).is_some()`
    /// but without allocating in the common (span) case: each candidate is followed alone,
    /// which is equivalent because at most one reading of a byte exists per candidate.
    pub fn accepts(&self, state: &State, bytes: &[u8]) -> bool {
        match &state.mode {
            Mode::Span { cands, consumed } => cands.iter().any(|&c| {
                for (pos, (k, &b)) in (c..).zip(bytes.iter().enumerate()) {
                    if b == b'"' && self.can_close(&state.chosen, pos, consumed + k) {
                        // Every candidate holds the same text, so which one closes does not
                        // change what `repeats` sees later.
                        let mut chosen = state.chosen.clone();
                        chosen.push((pos - (consumed + k), pos));
                        let rest = State {
                            mode: self.choice(Table::CloseSpan),
                            items: state.items,
                            chosen,
                        };
                        return bytes.len() == k + 1
                            || self.advance(&rest, &bytes[k + 1..]).is_some();
                    }
                    if self.escaped.get(pos) != Some(&b) {
                        return false;
                    }
                }
                !bytes.is_empty() && self.viable(&state.chosen, c - consumed, c + bytes.len())
            }),
            _ => self.advance(state, bytes).is_some(),
        }
    }

    /// The bytes that may come next (a cheap pre-filter for the vocabulary scan).
    pub fn first_bytes(&self, state: &State) -> [bool; 256] {
        let mut out = [false; 256];
        match &state.mode {
            Mode::Done => {}
            Mode::Choice { table, pos, alive } => {
                for (i, (lit, _)) in self.table(*table).iter().enumerate() {
                    if let Some(&b) = lit.get(*pos).filter(|_| alive & (1 << i) != 0) {
                        out[b as usize] = true;
                    }
                }
            }
            Mode::Span { cands, consumed } => {
                for &c in cands {
                    if let Some(&b) = self.escaped.get(c) {
                        out[b as usize] = true;
                    }
                    if self.can_close(&state.chosen, c, *consumed) {
                        out[b'"' as usize] = true;
                    }
                }
            }
        }
        out
    }
}

impl Grammar {
    /// The bytes the grammar forces next, whatever the model prefers: the common prefix of
    /// the live literal alternatives, repeated through the states it leads to (for example
    /// `","kind":"` after a span, `rson","weight":1.` after `pe`). Decoding feeds them in one
    /// batched forward pass instead of one step per token ("jump-forward" decoding).
    pub fn forced(&self, state: &State) -> Vec<u8> {
        let mut out = Vec::new();
        let mut st = state.clone();
        while let Mode::Choice { table, pos, alive } = &st.mode {
            let alts = self.table(*table);
            let mut live = alts
                .iter()
                .enumerate()
                .filter(|(i, _)| alive & (1 << i) != 0)
                .map(|(_, (lit, _))| lit.get(*pos..).unwrap_or_default());
            let Some(first) = live.next() else { break };
            let common = live.fold(first.len(), |n, l| {
                n.min(first.iter().zip(l).take_while(|(a, b)| a == b).count())
            });
            if common == 0 {
                break;
            }
            let bytes = first[..common].to_vec();
            let Some(next) = self.advance(&st, &bytes) else {
                break;
            };
            // Leave the item's closing `}` to the model: in the few-shot answers it is part
            // of a merged token (`},{"`), and feeding it alone (token-boundary mismatch)
            // makes small models close the list after one subject.
            if matches!(
                next.mode,
                Mode::Choice {
                    table: Table::AfterItem | Table::AfterItemFull,
                    ..
                }
            ) {
                break;
            }
            st = next;
            out.extend_from_slice(&bytes);
        }
        out
    }
}

impl State {
    /// True once the answer is complete.
    pub fn is_done(&self) -> bool {
        self.mode == Mode::Done
    }
}

/// The byte strings of a vocabulary, indexed by first byte, for masked greedy picking.
#[derive(Debug)]
pub struct TokenBytes {
    bytes: Vec<Vec<u8>>,
    by_first: Vec<Vec<u32>>,
}

impl TokenBytes {
    /// Builds the table from each token's bytes; `None` marks tokens that must never be
    /// produced inside an answer (special/control tokens).
    pub fn new(tokens: Vec<Option<Vec<u8>>>) -> Self {
        let mut by_first = vec![Vec::new(); 256];
        let mut bytes = Vec::with_capacity(tokens.len());
        for (id, t) in tokens.into_iter().enumerate() {
            let t = t.unwrap_or_default();
            if let Some(&b) = t.first() {
                by_first[b as usize].push(id as u32);
            }
            bytes.push(t);
        }
        TokenBytes { bytes, by_first }
    }

    /// The bytes of token `id` (empty for special tokens).
    pub fn get(&self, id: u32) -> &[u8] {
        self.bytes.get(id as usize).map_or(&[], Vec::as_slice)
    }

    /// Vocabulary size.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// True for an empty vocabulary.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Greedy pick under the grammar: the allowed token with the highest logit (lowest id on
    /// ties, so decoding is deterministic). `None` when no token is allowed.
    pub fn pick(&self, grammar: &Grammar, state: &State, logits: &[f32]) -> Option<u32> {
        let first = grammar.first_bytes(state);
        let mut best: Option<(f32, u32)> = None;
        for (b, ids) in self.by_first.iter().enumerate() {
            if !first[b] {
                continue;
            }
            for &id in ids {
                let Some(&l) = logits.get(id as usize) else {
                    continue;
                };
                let better = match best {
                    None => true,
                    Some((bl, bid)) => l > bl || (l == bl && id < bid),
                };
                if better && grammar.accepts(state, &self.bytes[id as usize]) {
                    best = Some((l, id));
                }
            }
        }
        best.map(|(_, id)| id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_answer;

    const CAP: &str = "Pope Francis greets \"pilgrims\" in St Peter's Square";

    fn run(g: &Grammar, text: &str) -> Option<State> {
        g.advance(&g.start(), text.as_bytes())
    }

    #[test]
    fn accepts_valid_answers_only() {
        let g = Grammar::new(CAP, 4);
        let ok = r#"{"text":"Pope Francis","kind":"person","weight":1.21},{"text":"\"pilgrims","kind":"person","weight":1.0}]}"#;
        // `"pilgrims` is not word-start-bounded (starts at a quote): refused.
        assert!(run(&g, ok).is_none());
        let ok = r#"{"text":"Pope Francis","kind":"person","weight":1.21},{"text":"pilgrims","kind":"person","weight":1.0}]}"#;
        assert!(run(&g, ok).unwrap().is_done());
        assert!(run(&g, "]}").unwrap().is_done());
        // Not a span, partial word, bad kind, bad weight.
        assert!(run(&g, r#"{"text":"Pope Benedict"#).is_none());
        assert!(run(&g, r#"{"text":"Fran"#).is_some()); // may still become "Francis"
        assert!(run(&g, r#"{"text":"Fran""#).is_none()); // but cannot end mid-word
        assert!(run(&g, r#"{"text":"Pope","kind":"pope"#).is_none());
        assert!(run(&g, r#"{"text":"Pope","kind":"person","weight":2.0"#).is_none());
        // Partial word end: "Pop" then closing quote.
        assert!(run(&g, r#"{"text":"Pop""#).is_none());
        // Apostrophes are inside the escaped text; "St Peter's Square" is a span.
        let s = format!(
            "{ANSWER_PREFIX}{}",
            r#"{"text":"St Peter's Square","kind":"place","weight":1.1}]}"#
        );
        assert!(run(&g, &s[ANSWER_PREFIX.len()..]).unwrap().is_done());
        assert_eq!(parse_answer(CAP, &s).unwrap()[0].text, "St Peter's Square");
    }

    #[test]
    fn forced_bytes_follow_the_literals() {
        let g = Grammar::new("Rain in Spain", 1);
        let st = run(&g, r#"{"text":"Spain""#).unwrap();
        assert_eq!(g.forced(&st), b",\"kind\":\"");
        let st = run(&g, r#"{"text":"Spain","kind":"pe"#).unwrap();
        assert_eq!(g.forced(&st), b"rson\",\"weight\":1.");
        // The item's closing brace is left to the model (token boundaries, see `forced`),
        // but once it is given and the list is full, `]}` is forced.
        let st = run(&g, r#"{"text":"Spain","kind":"person","weight":1.1"#).unwrap();
        assert!(g.forced(&st).is_empty());
        let st = g.advance(&st, b"}").unwrap();
        assert_eq!(g.forced(&st), b"]}");
        assert!(g.forced(&g.start()).is_empty());
    }

    #[test]
    fn refuses_repeated_subjects() {
        let g = Grammar::new("Rain in Spain and Spain", 4);
        let one = r#"{"text":"Spain","kind":"place","weight":1.0},{"text":"Spain"#;
        let st = run(&g, one).unwrap();
        assert!(!g.accepts(&st, b"\""));
        assert!(g.advance(&st, b"\"").is_none());
        assert!(!g.first_bytes(&st)[b'"' as usize]);
        // A longer span starting the same way is still fine.
        assert!(
            run(
                &g,
                r#"{"text":"Spain","kind":"place","weight":1.0},{"text":"Spain and Spain""#
            )
            .is_some()
        );
    }

    #[test]
    fn spans_never_reach_a_dead_end() {
        let g = Grammar::new("Rain in Spain.", 2);
        let st = run(&g, r#"{"text":"Spain"#).unwrap();
        assert!(g.advance(&st, b".").is_none());
        assert!(!g.accepts(&st, b"."));
        // Once "Spain" is given, "Spain" cannot start a second, identical subject at all
        // beyond its last letter... but "Spain" was the only way to end, so the second span
        // cannot even begin there.
        let st = run(
            &g,
            r#"{"text":"Spain","kind":"place","weight":1.0},{"text":""#,
        )
        .unwrap();
        assert!(!g.accepts(&st, b"S"));
        assert!(g.accepts(&st, b"Rain"));
    }

    #[test]
    fn exhausted_captions_close_the_list() {
        let g = Grammar::new("Rain", 6);
        let st = run(&g, r#"{"text":"Rain","kind":"event","weight":1.0}"#).unwrap();
        assert!(g.advance(&st, b",").is_none());
        assert!(g.advance(&st, b"]}").unwrap().is_done());
        let g = Grammar::new("...", 6);
        assert!(run(&g, "{").is_none());
        assert!(run(&g, "]}").unwrap().is_done());
    }

    #[test]
    fn caps_the_number_of_subjects() {
        let g = Grammar::new("Rain in Spain", 1);
        let one = r#"{"text":"Rain","kind":"event","weight":1.0}"#;
        let st = run(&g, one).unwrap();
        assert!(g.advance(&st, b",").is_none());
        assert!(g.advance(&st, b"]}").unwrap().is_done());
    }

    #[test]
    fn accepts_agrees_with_advance_on_many_fragments() {
        let g = Grammar::new(CAP, 3);
        let full = r#"{"text":"Pope Francis","kind":"person","weight":1.21},{"text":"St Peter's Square","kind":"place","weight":1.1}]}"#;
        let frags = [
            "Pope",
            "Pope Francis\"",
            "\",\"kind",
            "F",
            "\"",
            "s Square\",",
            "x",
            "Pope Franc",
            " ",
        ];
        let mut st = g.start();
        for (i, &b) in full.as_bytes().iter().enumerate() {
            for f in frags {
                assert_eq!(
                    g.accepts(&st, f.as_bytes()),
                    g.advance(&st, f.as_bytes()).is_some(),
                    "fragment {f:?} after {:?}",
                    &full[..i]
                );
            }
            st = g.step(&st, b).unwrap();
        }
        assert!(st.is_done());
    }

    #[test]
    fn random_picks_always_parse() {
        // Whatever the logits, masked greedy decoding yields a parseable, valid answer.
        let table = anchor_clip_tokenizer::unicode_to_bytes();
        assert_eq!(table.len(), 256);
        let mut vocab: Vec<Option<Vec<u8>>> = (0..=255u8).map(|b| Some(vec![b])).collect();
        for w in [
            "Pope", " Francis", "\",\"", "kind", "\":\"", "{\"", "}]", "]}", "1.", "Square",
        ] {
            vocab.push(Some(w.as_bytes().to_vec()));
        }
        vocab.push(None);
        let tb = TokenBytes::new(vocab);
        let mut seed = 7u64;
        // A caption ending in a full stop: spans must not run into it and get stuck.
        let cap = "Pope Francis greets \"pilgrims\" in St Peter's Square on Sunday.";
        for round in 0..200 {
            let g = Grammar::new(cap, 1 + round % 4);
            let mut st = g.start();
            let mut out = ANSWER_PREFIX.to_string().into_bytes();
            for _ in 0..g.max_answer_bytes() {
                if st.is_done() {
                    break;
                }
                let logits: Vec<f32> = (0..tb.len())
                    .map(|_| {
                        seed = seed
                            .wrapping_mul(6364136223846793005)
                            .wrapping_add(1442695040888963407);
                        (seed >> 40) as f32
                    })
                    .collect();
                let id = tb.pick(&g, &st, &logits).unwrap();
                out.extend_from_slice(tb.get(id));
                st = g.advance(&st, tb.get(id)).unwrap();
            }
            assert!(st.is_done());
            let text = String::from_utf8(out).unwrap();
            parse_answer(cap, &text).unwrap_or_else(|e| panic!("{text}: {e}"));
        }
    }
}
