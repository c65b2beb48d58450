//! WARC/1.1 recording and replay, so a scrape can be replayed without network access.
//!
//! Every exchange the fetcher makes becomes one record, each its own gzip
//! member (the `.warc.gz` convention that lets readers seek by record):
//! a `response` record (`application/http; msgtype=response`) holding the
//! status line, headers and the body as far as it was read, or — for a
//! request that got no response (timeout, connect failure) — a `metadata`
//! record with the error class. The first record of a recording is a
//! `metadata` record listing the source's articles, so `warc:PATH` replays
//! the same list. Replay serves the records of each URL in recorded order,
//! which reproduces retries attempt by attempt.

use std::collections::{HashMap, VecDeque};
use std::fs::{File, OpenOptions};
use std::io::{BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::fetch::{Exchange, ExchangeOutcome, Recorder, Replay};
use crate::outcome::ErrorClass;

/// URI of the listing record.
pub const LISTING_URI: &str = "urn:anchor:listing";

/// The file a recording directory holds.
pub fn warc_path(dir: &Path) -> PathBuf {
    dir.join("scrape.warc.gz")
}

/// Appends records to `<dir>/scrape.warc.gz`.
pub struct WarcWriter {
    path: PathBuf,
    file: Mutex<File>,
}

impl WarcWriter {
    /// Opens (appending) the recording in `dir`.
    pub fn open(dir: &Path) -> Result<WarcWriter> {
        let path = warc_path(dir);
        let io = |e| Error::Io {
            path: path.clone(),
            source: e,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        Ok(WarcWriter {
            path,
            file: Mutex::new(file),
        })
    }

    /// Records the source's article list: `source` name and (outlet, URL).
    pub fn write_listing(&self, source: &str, items: &[(String, String)]) -> Result<()> {
        let mut payload = format!("anchor-source: {source}\r\n");
        for (outlet, url) in items {
            payload.push_str(&format!("anchor-article: {outlet} {url}\r\n"));
        }
        self.write_record(
            "metadata",
            LISTING_URI,
            "application/warc-fields",
            payload.as_bytes(),
            None,
        )
        .map_err(|e| Error::Io {
            path: self.path.clone(),
            source: e,
        })
    }

    fn write_record(
        &self,
        kind: &str,
        uri: &str,
        content_type: &str,
        payload: &[u8],
        truncated: Option<&str>,
    ) -> std::io::Result<()> {
        let digest = Sha256::digest(payload);
        let mut id_src = Sha256::new();
        id_src.update(uri.as_bytes());
        id_src.update(digest);
        id_src.update(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
                .to_le_bytes(),
        );
        let id = hex::encode(&id_src.finalize()[..16]);
        let uuid = format!(
            "{}-{}-{}-{}-{}",
            &id[..8],
            &id[8..12],
            &id[12..16],
            &id[16..20],
            &id[20..32]
        );
        let mut head = format!(
            "WARC/1.1\r\nWARC-Type: {kind}\r\nWARC-Record-ID: <urn:uuid:{uuid}>\r\nWARC-Date: {}\r\nWARC-Target-URI: {uri}\r\nContent-Type: {content_type}\r\nWARC-Payload-Digest: sha256:{}\r\n",
            warc_date(),
            hex::encode(digest),
        );
        if let Some(t) = truncated {
            head.push_str(&format!("WARC-Truncated: {t}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", payload.len()));
        let mut gz = GzEncoder::new(
            Vec::with_capacity(payload.len() / 2 + 256),
            Compression::fast(),
        );
        gz.write_all(head.as_bytes())?;
        gz.write_all(payload)?;
        gz.write_all(b"\r\n\r\n")?;
        let member = gz.finish()?;
        let mut file = self
            .file
            .lock()
            .map_err(|_| std::io::Error::other("WARC writer lock poisoned"))?;
        file.write_all(&member)
    }
}

impl Recorder for WarcWriter {
    fn record(&self, ex: &Exchange) -> std::io::Result<()> {
        match &ex.outcome {
            ExchangeOutcome::Response {
                status,
                headers,
                body,
            } => {
                let mut payload = format!("HTTP/1.1 {status} {}\r\n", reason(*status)).into_bytes();
                let mut declared: Option<u64> = None;
                for (k, v) in headers {
                    if k.eq_ignore_ascii_case("content-length") {
                        declared = v.trim().parse().ok();
                    }
                    payload.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
                }
                payload.extend_from_slice(b"\r\n");
                payload.extend_from_slice(body);
                let truncated = declared
                    .filter(|n| *n != body.len() as u64)
                    .map(|_| "length");
                self.write_record(
                    "response",
                    &ex.url,
                    "application/http; msgtype=response",
                    &payload,
                    truncated,
                )
            }
            ExchangeOutcome::Failed { class, message } => {
                let payload = format!(
                    "anchor-error-class: {class}\r\nanchor-error-message: {}\r\n",
                    message.replace(['\r', '\n'], " ")
                );
                self.write_record(
                    "metadata",
                    &ex.url,
                    "application/warc-fields",
                    payload.as_bytes(),
                    None,
                )
            }
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        404 => "Not Found",
        429 => "Too Many Requests",
        _ => "Status",
    }
}

/// RFC 3339 UTC time of now, seconds precision (WARC-Date).
fn warc_date() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Per URL: outcomes still to serve, and the last one served.
type Queues = HashMap<String, (VecDeque<ExchangeOutcome>, Option<ExchangeOutcome>)>;

/// A parsed recording, served by URL in recorded order.
pub struct WarcArchive {
    /// The source name recorded in the listing.
    pub source: Option<String>,
    /// The recorded article list: (outlet, URL).
    pub listing: Vec<(String, String)>,
    queues: Mutex<Queues>,
}

impl WarcArchive {
    /// Reads every record of `path`.
    pub fn open(path: &Path) -> Result<WarcArchive> {
        let io = |e| Error::Io {
            path: path.to_owned(),
            source: e,
        };
        let mut data = Vec::new();
        MultiGzDecoder::new(BufReader::new(File::open(path).map_err(io)?))
            .read_to_end(&mut data)
            .map_err(io)?;
        let bad = |record: usize, detail: String| Error::Warc {
            path: path.to_owned(),
            record,
            detail,
        };
        let mut archive = WarcArchive {
            source: None,
            listing: Vec::new(),
            queues: Mutex::new(HashMap::new()),
        };
        let mut queues: Queues = HashMap::new();
        let mut pos = 0usize;
        let mut record = 0usize;
        while pos < data.len() {
            let rest = &data[pos..];
            let Some(head_end) = find(rest, b"\r\n\r\n") else {
                return Err(bad(record, "record header has no end".into()));
            };
            let head = String::from_utf8_lossy(&rest[..head_end]).into_owned();
            if !head.starts_with("WARC/1.") {
                return Err(bad(
                    record,
                    format!("not a WARC record: {:?}", head.lines().next()),
                ));
            }
            let fields = parse_fields(&head);
            let len: usize = field(&fields, "content-length")
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| bad(record, "missing Content-Length".into()))?;
            let start = head_end + 4;
            // A corrupt length may point past any end (or overflow): both are a short payload.
            let payload = start
                .checked_add(len)
                .and_then(|end| rest.get(start..end))
                .ok_or_else(|| bad(record, "payload shorter than Content-Length".into()))?;
            let kind = field(&fields, "warc-type").unwrap_or("");
            let uri = field(&fields, "warc-target-uri").unwrap_or("").to_owned();
            match kind {
                "metadata" if uri == LISTING_URI && archive.source.is_none() => {
                    let text = String::from_utf8_lossy(payload);
                    for (k, v) in parse_fields(&text) {
                        match k.as_str() {
                            "anchor-source" => archive.source = Some(v),
                            "anchor-article" => {
                                if let Some((o, u)) = v.split_once(' ') {
                                    archive.listing.push((o.to_owned(), u.to_owned()));
                                }
                            }
                            _ => {}
                        }
                    }
                }
                // A later listing (a resumed recording) repeats the first.
                "metadata" if uri == LISTING_URI => {}
                "metadata" => {
                    let text = String::from_utf8_lossy(payload);
                    let f = parse_fields(&text);
                    let class = field(&f, "anchor-error-class")
                        .and_then(ErrorClass::parse)
                        .ok_or_else(|| {
                            bad(
                                record,
                                "metadata record without a known anchor-error-class".into(),
                            )
                        })?;
                    let message = field(&f, "anchor-error-message").unwrap_or("").to_owned();
                    queues
                        .entry(uri)
                        .or_default()
                        .0
                        .push_back(ExchangeOutcome::Failed { class, message });
                }
                "response" => {
                    let outcome = parse_http(payload).map_err(|d| bad(record, d))?;
                    queues.entry(uri).or_default().0.push_back(outcome);
                }
                _ => {}
            }
            pos += start + len;
            // Records end with CRLF CRLF.
            while data.get(pos).is_some_and(|b| *b == b'\r' || *b == b'\n') {
                pos += 1;
            }
            record += 1;
        }
        archive.queues = Mutex::new(queues);
        Ok(archive)
    }
}

impl Replay for WarcArchive {
    fn next(&self, url: &str) -> Option<ExchangeOutcome> {
        let mut q = self.queues.lock().ok()?;
        let (queue, last) = q.get_mut(url)?;
        match queue.pop_front() {
            Some(o) => {
                *last = Some(o.clone());
                Some(o)
            }
            // Asked more often than recorded: repeat the last answer.
            None => last.clone(),
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn parse_fields(text: &str) -> Vec<(String, String)> {
    text.split("\r\n")
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect()
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn parse_http(payload: &[u8]) -> std::result::Result<ExchangeOutcome, String> {
    let head_end = find(payload, b"\r\n\r\n").ok_or("HTTP block has no header end")?;
    let head = String::from_utf8_lossy(&payload[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status: u16 = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    Ok(ExchangeOutcome::Response {
        status,
        headers,
        body: Bytes::copy_from_slice(&payload[head_end + 4..]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let w = WarcWriter::open(dir.path()).unwrap();
        w.write_listing("demo", &[("bbc".into(), "http://bbc.demo.test/a".into())])
            .unwrap();
        let url = "http://bbc.demo.test/x.jpg".to_owned();
        let r1 = ExchangeOutcome::Failed {
            class: ErrorClass::Timeout,
            message: "slow".into(),
        };
        let r2 = ExchangeOutcome::Response {
            status: 200,
            headers: vec![("Content-Type".into(), "image/jpeg".into())],
            body: Bytes::from_static(b"\xFF\xD8\xFFdata\r\n\r\nmore"),
        };
        for o in [&r1, &r2] {
            w.record(&Exchange {
                url: url.clone(),
                outcome: o.clone(),
            })
            .unwrap();
        }
        let a = WarcArchive::open(&warc_path(dir.path())).unwrap();
        assert_eq!(a.source.as_deref(), Some("demo"));
        assert_eq!(
            a.listing,
            vec![("bbc".to_owned(), "http://bbc.demo.test/a".to_owned())]
        );
        assert_eq!(a.next(&url), Some(r1));
        assert_eq!(a.next(&url), Some(r2.clone()));
        assert_eq!(a.next(&url), Some(r2), "repeats the last answer");
        assert_eq!(a.next("http://other/"), None);
        assert!(warc_date().ends_with('Z') && warc_date().len() == 20);
    }
}
