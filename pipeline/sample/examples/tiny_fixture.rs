//! Writes a tiny random base model (`DIR/model`) and `N` test-split captions with subjects
//! (`DIR/out`), so `anchor sample` can be tried and timed without real weights or a dataset:
//!
//! ```text
//! cargo run -p anchor-sample --example tiny_fixture -- /tmp/tiny 8
//! anchor --out /tmp/tiny/out sample --base /tmp/tiny/model --resolution 32 --steps 20
//! ```

use std::path::PathBuf;

use anchor_sample::testing::{FixtureCaption, write_inputs, write_random_base};

const CAPTIONS: [(&str, &[&str]); 4] = [
    (
        "Chancellor Angela Merkel arrives for talks in Brussels",
        &["Angela Merkel", "Brussels"],
    ),
    (
        "Fans of Manchester United celebrate at Old Trafford",
        &["Manchester United", "Old Trafford"],
    ),
    ("Rain falls on an empty street at dusk", &[]),
    (
        "President Joe Biden speaks at the White House",
        &["Joe Biden", "White House"],
    ),
];

fn main() -> anchor_sample::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "tiny-sample".into()));
    let n: usize = match args.next() {
        Some(s) => s
            .parse()
            .map_err(|_| anchor_sample::Error::Config(format!("N must be a number, got {s:?}")))?,
        None => 8,
    };
    write_random_base(&dir.join("model"))?;
    let captions: Vec<FixtureCaption> = (0..n)
        .map(|i| {
            let (caption, subjects) = CAPTIONS[i % CAPTIONS.len()];
            FixtureCaption {
                id: format!("{i:016x}"),
                caption: caption.into(),
                split: "test".into(),
                subset: if subjects.is_empty() {
                    "non_entity"
                } else {
                    "entity"
                }
                .into(),
                outlet: "bbc".into(),
                topic: "world".into(),
                kept: true,
                subjects: Some(subjects.iter().map(|s| (s.to_string(), 1.21)).collect()),
            }
        })
        .collect();
    write_inputs(&dir.join("out"), &captions)?;
    println!(
        "wrote {} and {} captions under {}",
        dir.join("model").display(),
        n,
        dir.join("out").display()
    );
    Ok(())
}
