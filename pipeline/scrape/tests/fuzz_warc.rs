//! Property test: the WARC reader turns any damaged recording into an error naming the
//! record, never a panic. Seeds are well-formed records (a listing, a response, a recorded
//! failure), then cut, spliced and bit-flipped; the bytes are gzip-compressed as a
//! recording is. Bounded: `PROPTEST_CASES` (default 256 per property) sets the run.

use std::io::Write;

use anchor_scrape::warc::WarcArchive;
use flate2::Compression;
use flate2::write::GzEncoder;
use proptest::prelude::*;

fn record(kind: &str, uri: &str, content_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "WARC/1.1\r\nWARC-Type: {kind}\r\nWARC-Target-URI: {uri}\r\n\
         Content-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out.extend_from_slice(b"\r\n\r\n");
    out
}

/// A small valid recording: what `anchor scrape --record-warc` writes, in miniature.
fn seed() -> Vec<u8> {
    let mut data = record(
        "metadata",
        "urn:anchor:listing",
        "application/warc-fields",
        b"anchor-source: demo\r\nanchor-article: guardian http://127.0.0.1/a\r\n",
    );
    data.extend(record(
        "response",
        "http://127.0.0.1/a",
        "application/http; msgtype=response",
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\nhello",
    ));
    data.extend(record(
        "metadata",
        "http://127.0.0.1/b.jpg",
        "application/warc-fields",
        b"anchor-error-class: timeout\r\nanchor-error-message: slow\r\n",
    ));
    data
}

fn open(bytes: &[u8]) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let path = dir.path().join("scrape.warc.gz");
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(bytes).map_err(|e| e.to_string())?;
    std::fs::write(&path, gz.finish().map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    // Ok or a typed error are both fine; a panic fails the property.
    let _ = WarcArchive::open(&path);
    Ok(())
}

#[test]
fn the_seed_itself_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("scrape.warc.gz");
    let mut gz = GzEncoder::new(Vec::new(), Compression::fast());
    gz.write_all(&seed()).unwrap();
    std::fs::write(&path, gz.finish().unwrap()).unwrap();
    let archive = WarcArchive::open(&path).unwrap();
    assert_eq!(archive.source.as_deref(), Some("demo"));
    assert_eq!(archive.listing.len(), 1);
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        open(&bytes).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn damaged_recordings_never_panic(
        cut in 0usize..700,
        flips in proptest::collection::vec((0usize..700, any::<u8>()), 0..6),
        splice in proptest::collection::vec(any::<u8>(), 0..24),
        at in 0usize..700,
    ) {
        let mut data = seed();
        for (i, b) in flips {
            let n = data.len();
            data[i % n] ^= b;
        }
        let at = at % (data.len() + 1);
        data.splice(at..at, splice);
        data.truncate(cut.max(1).min(data.len()));
        open(&data).map_err(TestCaseError::fail)?;
    }

    #[test]
    fn absurd_content_lengths_never_panic(len in prop_oneof![any::<u64>(), (u64::MAX - 200)..=u64::MAX]) {
        // A valid recording, then one record whose length points past any end.
        let mut data = seed();
        let head = format!("WARC/1.1\r\nWARC-Type: response\r\nContent-Length: {len}\r\n\r\nabc");
        data.extend_from_slice(head.as_bytes());
        open(&data).map_err(TestCaseError::fail)?;
    }
}
