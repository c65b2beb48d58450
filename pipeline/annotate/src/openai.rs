//! The `openai` backend: any OpenAI-compatible chat-completions server (vLLM, llama.cpp
//! server, Ollama), with concurrency, retries and timeouts.
//!
//! The HTTP client is a small HTTP/1.1 one over `std::net` (plain `http://` only): the
//! servers this is for run next to the annotator on a cluster network, and keeping this crate
//! free of an async runtime keeps its build small. Every request is `Connection: close`.
//!
//! Failure policy: transport errors, timeouts, 429 and 5xx are retried with exponential
//! backoff; an answer that does not parse or validate is retried too (the request is the
//! same, but sampling servers may answer differently). After `max_attempts` the caption's
//! [`Annotation`] carries the last error class: it is recorded, never dropped.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::Result;
use crate::backend::{Annotation, Backend, GenStats};
use crate::parse::{ErrorClass, ParseError, parse_answer};
use crate::prompt::Prompt;

/// Options of the `openai` backend.
#[derive(Debug, Clone)]
pub struct OpenAiOptions {
    /// Base URL, e.g. `http://127.0.0.1:8000/v1` (`/chat/completions` is appended).
    pub base_url: String,
    /// Model name sent in the request.
    pub model: String,
    /// Optional bearer token.
    pub api_key: Option<String>,
    /// The prompt.
    pub prompt: Prompt,
    /// Concurrent requests in `annotate_batch`.
    pub concurrency: usize,
    /// Attempts per caption (first try included).
    pub max_attempts: u32,
    /// Connect + read + write timeout per attempt.
    pub timeout: Duration,
    /// First backoff delay; doubles per retry.
    pub backoff: Duration,
    /// `max_tokens` of the request.
    pub max_tokens: u32,
}

impl Default for OpenAiOptions {
    fn default() -> Self {
        OpenAiOptions {
            base_url: "http://127.0.0.1:8000/v1".into(),
            model: "default".into(),
            api_key: None,
            prompt: Prompt::default_few_shot(),
            concurrency: 8,
            max_attempts: 3,
            timeout: Duration::from_secs(60),
            backoff: Duration::from_millis(500),
            max_tokens: 256,
        }
    }
}

/// The `openai` backend.
#[derive(Debug, Clone)]
pub struct OpenAiBackend {
    opts: OpenAiOptions,
}

/// A failed attempt: its class, detail, and whether retrying can help.
struct Attempt {
    error: ParseError,
}

impl OpenAiBackend {
    /// Creates the backend (no request is made until the first caption).
    pub fn new(opts: OpenAiOptions) -> Self {
        OpenAiBackend { opts }
    }

    fn messages(&self, caption: &str) -> Value {
        let p = &self.opts.prompt;
        let mut m = vec![json!({"role": "system", "content": p.system})];
        for ex in &p.examples {
            m.push(json!({"role": "user", "content": p.user_message(&ex.caption)}));
            m.push(json!({"role": "assistant", "content": ex.answer}));
        }
        m.push(json!({"role": "user", "content": p.user_message(caption)}));
        Value::Array(m)
    }

    /// One HTTP request; returns the assistant's content.
    fn request(&self, caption: &str) -> std::result::Result<(String, u64, u64), Attempt> {
        let transport = |class, detail: String| Attempt {
            error: ParseError { class, detail },
        };
        let url = self.opts.base_url.trim_end_matches('/');
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            transport(
                ErrorClass::Transport,
                format!("{url}: only http:// URLs are supported"),
            )
        })?;
        let (host, base_path) = rest.split_once('/').map_or((rest, ""), |(h, p)| (h, p));
        let path = format!("/{base_path}/chat/completions").replace("//", "/");
        let body = json!({
            "model": self.opts.model,
            "messages": self.messages(caption),
            "temperature": 0,
            "max_tokens": self.opts.max_tokens,
        })
        .to_string();
        let mut req = format!(
            "POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        if let Some(k) = &self.opts.api_key {
            req.push_str(&format!("Authorization: Bearer {k}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(&body);

        let io_err = |e: std::io::Error| {
            let class = if matches!(
                e.kind(),
                std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock
            ) {
                ErrorClass::Timeout
            } else {
                ErrorClass::Transport
            };
            transport(class, format!("{host}: {e}"))
        };
        let addr = host
            .to_socket_addrs()
            .map_err(io_err)?
            .next()
            .ok_or_else(|| transport(ErrorClass::Transport, format!("{host}: no address")))?;
        let mut stream = TcpStream::connect_timeout(&addr, self.opts.timeout).map_err(io_err)?;
        stream
            .set_read_timeout(Some(self.opts.timeout))
            .map_err(io_err)?;
        stream
            .set_write_timeout(Some(self.opts.timeout))
            .map_err(io_err)?;
        stream.write_all(req.as_bytes()).map_err(io_err)?;
        let mut resp = Vec::new();
        stream.read_to_end(&mut resp).map_err(io_err)?;

        let resp = String::from_utf8_lossy(&resp);
        let (head, body) = resp
            .split_once("\r\n\r\n")
            .ok_or_else(|| transport(ErrorClass::Transport, "malformed HTTP response".into()))?;
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| transport(ErrorClass::Transport, "no HTTP status".into()))?;
        if status != 200 {
            return Err(transport(ErrorClass::Transport, format!("HTTP {status}")));
        }
        let chunked = head
            .lines()
            .any(|l| l.to_ascii_lowercase().replace(' ', "") == "transfer-encoding:chunked");
        let body = if chunked {
            dechunk(body)
        } else {
            body.to_string()
        };
        let v: Value = serde_json::from_str(&body)
            .map_err(|e| transport(ErrorClass::Transport, format!("response is not JSON: {e}")))?;
        let content = v
            .pointer("/choices/0/message/content")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                transport(
                    ErrorClass::Transport,
                    "no choices[0].message.content".into(),
                )
            })?;
        let usage = |k: &str| {
            v.pointer(&format!("/usage/{k}"))
                .and_then(Value::as_u64)
                .unwrap_or(0)
        };
        Ok((
            content.to_string(),
            usage("prompt_tokens"),
            usage("completion_tokens"),
        ))
    }

    fn annotate_one(&self, caption: &str) -> Annotation {
        let mut stats = GenStats {
            captions: 1,
            ..GenStats::default()
        };
        let mut last = Annotation {
            subjects: Vec::new(),
            raw: String::new(),
            error: None,
            stats,
        };
        let attempts = self.opts.max_attempts.max(1);
        for attempt in 0..attempts {
            if attempt > 0 {
                stats.retries += 1;
                std::thread::sleep(self.opts.backoff * 2u32.saturating_pow(attempt - 1));
            }
            let t0 = Instant::now();
            let result = self.request(caption);
            stats.gen_secs += t0.elapsed().as_secs_f64();
            match result {
                Ok((raw, prompt_tokens, gen_tokens)) => {
                    stats.prompt_tokens += prompt_tokens;
                    stats.gen_tokens += gen_tokens;
                    match parse_answer(caption, &raw) {
                        Ok(subjects) => {
                            return Annotation {
                                subjects,
                                raw,
                                error: None,
                                stats,
                            };
                        }
                        Err(e) => {
                            tracing::debug!(attempt, class = %e.class, "invalid answer, retrying");
                            last = Annotation {
                                subjects: Vec::new(),
                                raw,
                                error: Some(e),
                                stats,
                            };
                        }
                    }
                }
                Err(a) => {
                    tracing::debug!(attempt, class = %a.error.class, "request failed, retrying");
                    last = Annotation {
                        subjects: Vec::new(),
                        raw: String::new(),
                        error: Some(a.error),
                        stats,
                    };
                }
            }
        }
        last.stats = stats;
        last
    }
}

/// Decodes a chunked transfer-encoded body.
fn dechunk(body: &str) -> String {
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

impl Backend for OpenAiBackend {
    fn name(&self) -> &'static str {
        "openai"
    }

    fn model_id(&self) -> String {
        self.opts.model.clone()
    }

    fn prompt_version(&self) -> Option<String> {
        Some(self.opts.prompt.version.clone())
    }

    fn annotate(&mut self, caption: &str) -> Result<Annotation> {
        Ok(self.annotate_one(caption))
    }

    /// Runs up to `concurrency` requests at once; results keep the input order.
    fn annotate_batch(&mut self, captions: &[&str]) -> Result<Vec<Annotation>> {
        let next = AtomicUsize::new(0);
        let slots: Mutex<Vec<Option<Annotation>>> = Mutex::new(vec![None; captions.len()]);
        let workers = self.opts.concurrency.clamp(1, captions.len().max(1));
        std::thread::scope(|s| {
            for _ in 0..workers {
                s.spawn(|| {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(c) = captions.get(i) else { break };
                        let a = self.annotate_one(c);
                        // A poisoned lock means another worker panicked; its panic is
                        // propagated by `scope`, so our result may be dropped.
                        if let Ok(mut slots) = slots.lock() {
                            slots[i] = Some(a);
                        }
                    }
                });
            }
        });
        let slots = slots.into_inner().unwrap_or_default();
        Ok(slots
            .into_iter()
            .map(|a| {
                a.unwrap_or_else(|| Annotation {
                    subjects: Vec::new(),
                    raw: String::new(),
                    error: Some(ParseError {
                        class: ErrorClass::Transport,
                        detail: "worker failed".into(),
                    }),
                    stats: GenStats::default(),
                })
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::sync::Arc;
    use std::sync::atomic::AtomicU32;

    /// A fake chat-completions server on 127.0.0.1. Behaviour depends on the caption:
    /// - "Rain in Spain": first attempt answers a non-span, the retry answers correctly;
    /// - "Server down": always HTTP 500;
    /// - "Slow": sleeps past the client timeout;
    /// - anything else: a valid answer naming the caption's first word, sent chunked.
    fn serve(hits: Arc<AtomicU32>) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let hits = hits.clone();
                std::thread::spawn(move || {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    // Read headers, then exactly Content-Length bytes of body.
                    let body = loop {
                        let n = conn.read(&mut chunk).unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        let text = String::from_utf8_lossy(&buf).to_string();
                        if let Some((head, body)) = text.split_once("\r\n\r\n") {
                            let len: usize = head
                                .lines()
                                .find_map(|l| l.strip_prefix("Content-Length: "))
                                .and_then(|v| v.parse().ok())
                                .unwrap_or(0);
                            if body.len() >= len {
                                break body.to_string();
                            }
                        }
                    };
                    let req: Value = serde_json::from_str(&body).unwrap();
                    let msgs = req["messages"].as_array().unwrap();
                    let user = msgs.last().unwrap()["content"]
                        .as_str()
                        .unwrap()
                        .to_string();
                    let caption = user.trim_start_matches("Caption: ").to_string();
                    let n = hits.fetch_add(1, Ordering::SeqCst);
                    let reply = |content: String| {
                        json!({
                            "choices": [{"message": {"role": "assistant", "content": content}}],
                            "usage": {"prompt_tokens": 100, "completion_tokens": 20}
                        })
                        .to_string()
                    };
                    let resp = if caption == "Server down" {
                        "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n"
                            .to_string()
                    } else if caption == "Slow" {
                        std::thread::sleep(Duration::from_millis(1500));
                        String::new()
                    } else if caption == "Rain in Spain" && n.is_multiple_of(2) {
                        let b = reply(r#"{"subjects":[{"text":"France"}]}"#.into());
                        format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{b}", b.len())
                    } else {
                        let first = caption.split_whitespace().next().unwrap_or("x");
                        let b = reply(format!(
                            "```json\n{{\"subjects\":[{{\"text\":\"{first}\",\"kind\":\"other\",\"weight\":1.1}}]}}\n```"
                        ));
                        format!(
                            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
                            b.len()
                        )
                    };
                    let _ = conn.write_all(resp.as_bytes());
                });
            }
        });
        format!("http://{addr}/v1")
    }

    fn backend(url: String) -> OpenAiBackend {
        OpenAiBackend::new(OpenAiOptions {
            base_url: url,
            model: "test-model".into(),
            concurrency: 4,
            max_attempts: 2,
            timeout: Duration::from_millis(500),
            backoff: Duration::from_millis(10),
            ..OpenAiOptions::default()
        })
    }

    #[test]
    fn retries_invalid_answers_then_succeeds() {
        let hits = Arc::new(AtomicU32::new(0));
        let mut b = backend(serve(hits.clone()));
        let a = b.annotate("Rain in Spain").unwrap();
        assert!(a.error.is_none(), "{:?}", a.error);
        assert_eq!(a.subjects[0].text, "Rain");
        assert_eq!(a.stats.retries, 1);
        assert_eq!(a.stats.gen_tokens, 40);
        assert_eq!(hits.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn failures_are_recorded_with_classes() {
        let mut b = backend(serve(Arc::new(AtomicU32::new(0))));
        let a = b.annotate("Server down").unwrap();
        assert_eq!(a.error.unwrap().class, ErrorClass::Transport);
        assert_eq!(a.stats.retries, 1);
        let a = b.annotate("Slow").unwrap();
        assert_eq!(a.error.unwrap().class, ErrorClass::Timeout);
        let mut dead = backend("http://127.0.0.1:1/v1".into());
        assert_eq!(
            dead.annotate("x").unwrap().error.unwrap().class,
            ErrorClass::Transport
        );
        let mut tls = backend("https://example.invalid/v1".into());
        assert_eq!(
            tls.annotate("x").unwrap().error.unwrap().class,
            ErrorClass::Transport
        );
    }

    #[test]
    fn batch_is_concurrent_and_ordered() {
        let mut b = backend(serve(Arc::new(AtomicU32::new(0))));
        let caps: Vec<String> = (0..12)
            .map(|i| format!("Caption{i} about things"))
            .collect();
        let refs: Vec<&str> = caps.iter().map(String::as_str).collect();
        let out = b.annotate_batch(&refs).unwrap();
        assert_eq!(out.len(), 12);
        for (i, a) in out.iter().enumerate() {
            assert_eq!(a.subjects[0].text, format!("Caption{i}"));
            a.subjects[0].validate(&caps[i]).unwrap();
        }
    }
}
