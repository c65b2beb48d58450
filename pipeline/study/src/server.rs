//! The rating page and its JSON API, served over HTTP/1.1 on a loopback address.
//!
//! - `GET /`: the page (`page.html`): the caption, the two images, the two questions one
//!   after the other, keyboard shortcuts (`A`/`←` left, `S`/`↓` equal, `D`/`→` right),
//!   progress, and the rater's id (asked once, kept in the address).
//! - `GET /api/next?rater=ID`: the rater's progress and next pair. Each rater has their
//!   own order (a permutation seeded by the id), so a rater who comes back resumes where
//!   they stopped and two raters do not see the pairs in the same order.
//! - `POST /api/vote` with `{"rater", "pair_id", "subjects", "quality", "millis"}`:
//!   records the vote (see [`VoteStore::record`]) and answers as `/api/next` does.
//! - `GET /image/PAIR/left|right`: the image bytes.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex};

use anchor_core::rng::Rng;
use anchor_core::tables::votes;
use serde::Deserialize;
use serde_json::json;

use crate::store::{Study, VoteStore, valid_rater};
use crate::{Error, Result};

const PAGE: &str = include_str!("page.html");
const MAX_HEAD: usize = 16 * 1024;
const MAX_BODY: usize = 16 * 1024;
const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
/// Longer than a day is a rater who left the page open: the time is kept as a day.
const MAX_MILLIS: u64 = 24 * 3600 * 1000;

/// The study being served and its votes.
pub struct Server {
    study: Study,
    index: HashMap<String, usize>,
    store: Mutex<VoteStore>,
}

/// An HTTP response.
struct Response {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
}

impl Response {
    fn json(status: u16, value: &serde_json::Value) -> Self {
        Response {
            status,
            content_type: "application/json",
            body: value.to_string().into_bytes(),
        }
    }

    fn error(status: u16, message: impl Into<String>) -> Self {
        Response::json(status, &json!({ "error": message.into() }))
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        413 => "Payload Too Large",
        _ => "Internal Server Error",
    }
}

/// `%XX` and `+` decoded; `None` for a malformed escape or non-UTF-8 result.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn query_param(query: &str, name: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .and_then(|(_, v)| percent_decode(v))
}

fn image_type(bytes: &[u8]) -> &'static str {
    if bytes.starts_with(b"\x89PNG") {
        "image/png"
    } else if bytes.starts_with(&[0xFF, 0xD8]) {
        "image/jpeg"
    } else if bytes.len() > 12 && &bytes[8..12] == b"WEBP" {
        "image/webp"
    } else {
        "application/octet-stream"
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Vote {
    rater: String,
    pair_id: String,
    subjects: String,
    quality: String,
    millis: u64,
}

impl Server {
    /// The study under `out` with its votes so far.
    pub fn open(out: &Path) -> Result<Self> {
        let study = Study::load(out)?;
        let store = VoteStore::open(out, &study)?;
        let index = study
            .pairs
            .iter()
            .enumerate()
            .map(|(i, p)| (p.pair_id.clone(), i))
            .collect();
        Ok(Server {
            study,
            index,
            store: Mutex::new(store),
        })
    }

    /// Pairs in the study.
    pub fn len(&self) -> usize {
        self.study.pairs.len()
    }

    /// Whether the study has no pairs (never, for a made study).
    pub fn is_empty(&self) -> bool {
        self.study.pairs.is_empty()
    }

    /// Answers connections on `listener` until the process stops, one thread each.
    pub fn serve(self: Arc<Self>, listener: TcpListener) -> Result<()> {
        for stream in listener.incoming() {
            let stream = match stream {
                Ok(s) => s,
                // A connection that failed before it was accepted concerns that client only.
                Err(_) => continue,
            };
            let server = self.clone();
            std::thread::spawn(move || server.handle(stream));
        }
        Ok(())
    }

    fn handle(&self, stream: TcpStream) {
        // A client that opens a connection and sends nothing must not hold a thread forever.
        let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
        let response = match read_request(&stream) {
            Ok((method, target, body)) => self.route(&method, &target, &body),
            Err(r) => r,
        };
        let mut stream = stream;
        let head = format!(
            "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
            response.status,
            reason(response.status),
            response.content_type,
            response.body.len()
        );
        // A client that went away needs no answer.
        let _ = stream
            .write_all(head.as_bytes())
            .and_then(|()| stream.write_all(&response.body))
            .and_then(|()| stream.flush());
    }

    fn route(&self, method: &str, target: &str, body: &[u8]) -> Response {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        match (method, path) {
            ("GET", "/" | "/index.html") => Response {
                status: 200,
                content_type: "text/html; charset=utf-8",
                body: PAGE.as_bytes().to_vec(),
            },
            ("GET", "/api/next") => match query_param(query, "rater") {
                Some(rater) if valid_rater(&rater) => self.next(&rater),
                _ => Response::error(400, "give ?rater=ID: 1 to 64 letters, digits, - _ . or @"),
            },
            ("POST", "/api/vote") => self.vote(body),
            ("GET", p) if p.starts_with("/image/") => self.image(&p["/image/".len()..]),
            (_, "/" | "/index.html" | "/api/next" | "/api/vote") => {
                Response::error(405, format!("{method} is not allowed on {path}"))
            }
            _ => Response::error(404, format!("no such page: {path}")),
        }
    }

    /// The rater's order of the pairs.
    fn order(&self, rater: &str) -> Vec<usize> {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(rater.as_bytes());
        let mut word = [0u8; 8];
        word.copy_from_slice(&digest[..8]);
        Rng::new(u64::from_le_bytes(word), 0).permutation(self.study.pairs.len())
    }

    fn next(&self, rater: &str) -> Response {
        let store = match self.store.lock() {
            Ok(s) => s,
            Err(_) => return Response::error(500, "a previous request failed while voting"),
        };
        let answered = store.count(rater);
        let next = self
            .order(rater)
            .into_iter()
            .map(|i| &self.study.pairs[i])
            .find(|p| !store.has_voted(rater, &p.pair_id));
        let pair = next.map(|p| {
            json!({
                "id": p.pair_id,
                "caption": p.caption,
                "left": format!("/image/{}/left", p.pair_id),
                "right": format!("/image/{}/right", p.pair_id),
            })
        });
        Response::json(
            200,
            &json!({
                "rater": rater,
                "answered": answered,
                "total": self.study.pairs.len(),
                "done": pair.is_none(),
                "pair": pair,
            }),
        )
    }

    fn vote(&self, body: &[u8]) -> Response {
        let vote: Vote = match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(e) => {
                return Response::error(
                    400,
                    format!("a vote is {{rater, pair_id, subjects, quality, millis}}: {e}"),
                );
            }
        };
        if !valid_rater(&vote.rater) {
            return Response::error(400, "rater: 1 to 64 letters, digits, - _ . or @");
        }
        if !self.index.contains_key(&vote.pair_id) {
            return Response::error(400, format!("no pair {} in this study", vote.pair_id));
        }
        for (question, answer) in [("subjects", &vote.subjects), ("quality", &vote.quality)] {
            if !votes::CHOICES.contains(&answer.as_str()) {
                return Response::error(
                    400,
                    format!("{question}: {answer:?} is not one of left, right, equal"),
                );
            }
        }
        {
            let mut store = match self.store.lock() {
                Ok(s) => s,
                Err(_) => return Response::error(500, "a previous request failed while voting"),
            };
            match store.record(
                &vote.rater,
                &vote.pair_id,
                &vote.subjects,
                &vote.quality,
                vote.millis.min(MAX_MILLIS),
            ) {
                Ok(()) => {}
                Err(Error::Input(message)) => return Response::error(409, message),
                Err(e) => return Response::error(500, format!("the vote was not stored: {e}")),
            }
        }
        self.next(&vote.rater)
    }

    fn image(&self, rest: &str) -> Response {
        let Some((pair_id, side)) = rest.split_once('/') else {
            return Response::error(404, "an image is /image/PAIR/left or /image/PAIR/right");
        };
        let Some(pair) = self.index.get(pair_id).map(|&i| &self.study.pairs[i]) else {
            return Response::error(404, format!("no pair {pair_id} in this study"));
        };
        let bytes = match side {
            "left" => &pair.left_image,
            "right" => &pair.right_image,
            _ => return Response::error(404, "an image is /image/PAIR/left or /image/PAIR/right"),
        };
        Response {
            status: 200,
            content_type: image_type(bytes),
            body: bytes.clone(),
        }
    }
}

/// Reads one request: method, target and body. A malformed or oversized request gets the
/// response to send instead.
fn read_request(stream: &TcpStream) -> std::result::Result<(String, String, Vec<u8>), Response> {
    let mut reader = BufReader::new(stream.take((MAX_HEAD + MAX_BODY) as u64));
    let mut line = String::new();
    let bad = |m: &str| Response::error(400, m.to_owned());
    reader
        .read_line(&mut line)
        .map_err(|_| bad("the request line could not be read"))?;
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target), Some(_version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("malformed request line"));
    };
    let (method, target) = (method.to_owned(), target.to_owned());
    let mut length = 0usize;
    let mut head = line.len();
    loop {
        let mut header = String::new();
        let n = reader
            .read_line(&mut header)
            .map_err(|_| bad("a header could not be read"))?;
        head += n;
        if head > MAX_HEAD {
            return Err(Response::error(413, "request headers too large"));
        }
        if n == 0 || header == "\r\n" || header == "\n" {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.trim().eq_ignore_ascii_case("content-length")
        {
            length = value
                .trim()
                .parse()
                .map_err(|_| bad("Content-Length is not a number"))?;
        }
    }
    if length > MAX_BODY {
        return Err(Response::error(413, "request body too large"));
    }
    let mut body = vec![0u8; length];
    reader
        .read_exact(&mut body)
        .map_err(|_| bad("the body is shorter than its Content-Length"))?;
    Ok((method, target, body))
}

/// Binds the study's address: `127.0.0.1:port` (0 = any free port).
pub fn bind(port: u16) -> Result<TcpListener> {
    let addr = format!("127.0.0.1:{port}");
    TcpListener::bind(&addr).map_err(|e| Error::io(addr, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_are_decoded() {
        assert_eq!(
            query_param("rater=ann%40lab&x=1", "rater").as_deref(),
            Some("ann@lab")
        );
        assert_eq!(query_param("x=1", "rater"), None);
        assert_eq!(query_param("rater=%zz", "rater"), None);
        assert_eq!(percent_decode("a+b%2Fc").as_deref(), Some("a b/c"));
    }

    #[test]
    fn image_types_come_from_the_bytes() {
        assert_eq!(image_type(b"\x89PNG\r\n\x1a\n"), "image/png");
        assert_eq!(image_type(&[0xFF, 0xD8, 0xFF]), "image/jpeg");
        assert_eq!(image_type(b"RIFF\0\0\0\0WEBPVP8 "), "image/webp");
        assert_eq!(image_type(b"??"), "application/octet-stream");
    }

    #[test]
    fn rater_ids_are_checked() {
        assert!(valid_rater("ann.smith@lab-2_x"));
        assert!(!valid_rater(""));
        assert!(!valid_rater("a b"));
        assert!(!valid_rater(&"a".repeat(65)));
    }
}
