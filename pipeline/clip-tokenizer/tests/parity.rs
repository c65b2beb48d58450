//! Parity with open_clip's `SimpleTokenizer` on varied captions. Runs when
//! `ANCHOR_PYTHON` names a Python with `open-clip-torch` and the vocabulary has been
//! fetched to `data/models/open-clip/bpe_simple_vocab_16e6.txt.gz`.

use anchor_clip_tokenizer::{ClipTokenizer, END_ID, START_ID};
use std::path::{Path, PathBuf};

fn vocab() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/models/open-clip/bpe_simple_vocab_16e6.txt.gz")
}

const CAPTIONS: &[&str] = &[
    "Chancellor Angela Merkel arrives for talks in Brussels",
    "A photo of X, Y. German Chancellor Angela Merkel’s “crucial” visit to Paris on Oct. 3, 2018",
    "  Protesters   gather outside\tthe White House\non Monday  ",
    "Tom &amp; Jerry&#39;s café in Zürich — naïve façade, 1,200 people",
    "Emmanuel Macron, left, and Theresa May at 10 Downing St. on 21/03/2019 (AFP/Getty Images)",
    "New York's mayor Bill de Blasio (D) didn't say he'd veto it; they've said they'll re-try.",
    "日本の首相 安倍晋三 meets Xi Jinping in 北京 🙂👍🏽",
    "ＦＵＬＬＷＩＤＴＨ ｔｅｘｔ and ﬁnancial ligatures",
    "Ünïcödé ÀÉÎÕÜ ßẞ Ελληνικά Русский текст",
    "U.S. President Donald J. Trump's $1.5-trillion tax cut, 99% of it #MAGA @realDonaldTrump",
    "Players of the England national football team celebrate after scoring during the FIFA World Cup 2018 quarter-final match between Sweden and England at the Samara Arena in Samara, Russia, on July 7, 2018, as fans cheer in the stands behind them and photographers crowd the pitch",
    "<start_of_text> literal special tokens <end_of_text>",
    "Greek PM ΚΥΡΙΑΚΟΣ ΜΗΤΣΟΤΑΚΗΣ' visit: ΟΔΟΣ ΣΑ ΑΘΗΝΑΣ. Σ'S",
    "Zero\u{200b}width, soft\u{ad}hyphen, ideographic\u{3000}space and ｈａｌｆ ﾊﾝｶｸ",
    "",
];

#[test]
fn matches_open_clip_simple_tokenizer() {
    let Some(py) = std::env::var_os("ANCHOR_PYTHON") else {
        eprintln!("skipping: ANCHOR_PYTHON not set");
        return;
    };
    let path = vocab();
    if !path.exists() {
        eprintln!("skipping: {} absent (make fetch-models)", path.display());
        return;
    }
    let tok = ClipTokenizer::from_file(&path).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("captions.hex");
    let hex: Vec<String> = CAPTIONS
        .iter()
        .map(|c| {
            if c.is_empty() {
                "20".to_string()
            } else {
                c.bytes().map(|b| format!("{b:02x}")).collect()
            }
        })
        .collect();
    std::fs::write(&input, hex.join("\n")).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/open_clip_tokenize.py");
    let out = std::process::Command::new(py)
        .arg(script)
        .arg(&path)
        .arg(&input)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let theirs: Vec<Vec<u32>> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split_whitespace().map(|t| t.parse().unwrap()).collect())
        .collect();
    assert_eq!(theirs.len(), CAPTIONS.len());
    for (caption, want) in CAPTIONS.iter().zip(&theirs) {
        // The empty caption is sent as a single space: the same after cleaning.
        let got = tok.tokenize(if caption.is_empty() { " " } else { caption });
        assert_eq!(&got.ids, want, "caption {caption:?}");
    }
}

#[test]
fn subject_spans_map_to_tokens() {
    let path = vocab();
    if !path.exists() {
        eprintln!("skipping: {} absent (make fetch-models)", path.display());
        return;
    }
    let tok = ClipTokenizer::from_file(&path).unwrap();
    let caption = "Chancellor Angela Merkel arrives for talks in Brussels";
    let enc = tok.tokenize(caption);
    assert_eq!(enc.ids[0], START_ID);
    assert_eq!(enc.ids[enc.len - 1], END_ID);
    let start = caption.find("Angela Merkel").unwrap();
    let positions = enc.positions_overlapping(start..start + "Angela Merkel".len());
    assert!(!positions.is_empty());
    let text: String = tok.decode(&positions.iter().map(|&i| enc.ids[i]).collect::<Vec<_>>());
    assert_eq!(text.trim(), "angela merkel");
    for &i in &positions {
        let span = enc.spans[i].clone().unwrap();
        assert!(caption[span].chars().all(|c| c.is_alphabetic()));
    }
}
