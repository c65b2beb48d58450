//! The byte-level BPE of OpenAI CLIP (`bpe_simple_vocab_16e6.txt.gz`).

use std::collections::HashMap;

/// GPT-2's reversible byte → printable char table.
pub(crate) fn bytes_to_unicode() -> [char; 256] {
    let mut table = ['\0'; 256];
    let printable = |b: u32| {
        (0x21..=0x7E).contains(&b) || (0xA1..=0xAC).contains(&b) || (0xAE..=0xFF).contains(&b)
    };
    let mut extra = 0u32;
    for b in 0u32..256 {
        let code = if printable(b) {
            b
        } else {
            extra += 1;
            255 + extra
        };
        table[b as usize] = char::from_u32(code).unwrap_or('\u{FFFD}');
    }
    table
}

/// The order CLIP's vocabulary lists the 256 byte chars: printable ones first.
pub(crate) fn byte_vocab_order() -> Vec<u8> {
    let table = bytes_to_unicode();
    let mut order: Vec<u8> = (0..=255u8).collect();
    order.sort_by_key(|&b| table[b as usize] as u32);
    order
}

/// Merges a word (its symbols, the last one carrying `</w>`) by rank, lowest first.
/// Returns the pieces; each piece is a run of the input symbols.
pub(crate) fn merge(symbols: Vec<String>, ranks: &HashMap<(String, String), u32>) -> Vec<String> {
    let mut word = symbols;
    while word.len() > 1 {
        let best = word
            .windows(2)
            .filter_map(|w| {
                ranks
                    .get(&(w[0].clone(), w[1].clone()))
                    .map(|&r| (r, w[0].clone(), w[1].clone()))
            })
            .min_by_key(|(r, _, _)| *r);
        let Some((_, first, second)) = best else {
            break;
        };
        let mut next = Vec::with_capacity(word.len());
        let mut i = 0;
        while i < word.len() {
            if i + 1 < word.len() && word[i] == first && word[i + 1] == second {
                next.push(format!("{first}{second}"));
                i += 2;
            } else {
                next.push(std::mem::take(&mut word[i]));
                i += 1;
            }
        }
        word = next;
    }
    word
}
