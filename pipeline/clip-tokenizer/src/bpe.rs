//! The byte-level BPE of OpenAI CLIP (`bpe_simple_vocab_16e6.txt.gz`).

use std::collections::HashMap;

/// GPT-2's reversible byte → printable char table: byte-level BPE
/// vocabularies (GPT-2, CLIP, Llama 3, Qwen2, SmolLM2) spell each byte as
/// one printable char.
pub fn bytes_to_unicode() -> [char; 256] {
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

/// [`bytes_to_unicode`] inverted: a byte-level token's chars back to bytes.
pub fn unicode_to_bytes() -> HashMap<char, u8> {
    bytes_to_unicode()
        .iter()
        .zip(0..=255u8)
        .map(|(&c, b)| (c, b))
        .collect()
}

/// The order CLIP's vocabulary lists the 256 byte chars: printable ones first.
pub(crate) fn byte_vocab_order() -> Vec<u8> {
    let table = bytes_to_unicode();
    let mut order: Vec<u8> = (0..=255u8).collect();
    order.sort_by_key(|&b| table[b as usize] as u32);
    order
}

/// The 256 byte chars in the order CLIP's vocabulary lists them (its first
/// 256 entries).
pub fn byte_chars_in_vocab_order() -> Vec<char> {
    let table = bytes_to_unicode();
    byte_vocab_order()
        .into_iter()
        .map(|b| table[b as usize])
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_byte_table_is_a_bijection_and_its_inverse_undoes_it() {
        let table = bytes_to_unicode();
        let inverse = unicode_to_bytes();
        assert_eq!(inverse.len(), 256);
        for b in 0..=255u8 {
            assert_eq!(inverse[&table[b as usize]], b);
        }
        // GPT-2's table: printable bytes stand for themselves, space is U+0120.
        assert_eq!(table[b'a' as usize], 'a');
        assert_eq!(table[b' ' as usize], '\u{120}');
    }

    #[test]
    fn vocabulary_order_lists_printable_bytes_first() {
        let chars = byte_chars_in_vocab_order();
        assert_eq!(chars.len(), 256);
        assert_eq!(chars[0], '!');
        assert_eq!(chars[93], '~');
        assert_eq!(chars[188], '\u{100}');
    }
}
