//! A minimal HTTP/1.1 server on 127.0.0.1 for the demo site and tests.
//!
//! It reads one request per connection, asks a handler for the response and
//! closes the connection. The handler sees how many times the same path was
//! requested before (the attempt number), so faults can be a pure function
//! of (URL, attempt). Responses can be delayed (slow-server faults) and can
//! declare a `Content-Length` larger than the body they carry.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A parsed request line and headers.
#[derive(Debug, Clone)]
pub struct Request {
    /// Method, e.g. `GET`.
    pub method: String,
    /// Path and query as sent, e.g. `/img/1.jpg?w=2`.
    pub target: String,
    /// Headers, names lowercased.
    pub headers: Vec<(String, String)>,
}

/// What to send back.
#[derive(Debug, Clone, Default)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers other than `Content-Length` and `Connection`.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
    /// Wait this long before sending anything.
    pub delay: Duration,
    /// Declare this `Content-Length` instead of the body's length.
    pub declared_length: Option<u64>,
}

impl Response {
    /// A response with a body and content type.
    pub fn new(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".to_owned(), content_type.to_owned())],
            body: body.into(),
            ..Response::default()
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }
}

/// Handler: (request, attempt number starting at 0) to response.
pub type Handler = Arc<dyn Fn(&Request, u32) -> Response + Send + Sync>;

/// A running server; dropping it does not stop it (abort the task for that).
pub struct LocalServer {
    /// The bound address (127.0.0.1 and an ephemeral port).
    pub addr: SocketAddr,
    /// Requests seen per target.
    pub hits: Arc<Mutex<HashMap<String, u32>>>,
    task: tokio::task::JoinHandle<()>,
}

impl LocalServer {
    /// Binds 127.0.0.1 on an ephemeral port and serves `handler` on the
    /// current tokio runtime.
    pub async fn start(handler: Handler) -> std::io::Result<LocalServer> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let hits: Arc<Mutex<HashMap<String, u32>>> = Arc::new(Mutex::new(HashMap::new()));
        let hits2 = Arc::clone(&hits);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let handler = Arc::clone(&handler);
                let hits = Arc::clone(&hits2);
                tokio::spawn(async move {
                    // A client that hangs up early is not our problem.
                    let _ = serve_one(stream, handler, hits).await;
                });
            }
        });
        Ok(LocalServer { addr, hits, task })
    }

    /// Requests seen for `target` so far.
    pub fn hits(&self, target: &str) -> u32 {
        self.hits
            .lock()
            .map(|h| h.get(target).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// Total requests seen.
    pub fn total_hits(&self) -> u32 {
        self.hits.lock().map(|h| h.values().sum()).unwrap_or(0)
    }

    /// Stops accepting connections.
    pub fn stop(&self) {
        self.task.abort();
    }
}

async fn serve_one(
    mut stream: tokio::net::TcpStream,
    handler: Handler,
    hits: Arc<Mutex<HashMap<String, u32>>>,
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let head_end = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > 64 * 1024 {
            return Ok(());
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split_whitespace();
    let method = first.next().unwrap_or("").to_owned();
    let target = first.next().unwrap_or("/").to_owned();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let attempt = match hits.lock() {
        Ok(mut h) => {
            let e = h.entry(target.clone()).or_insert(0);
            *e += 1;
            *e - 1
        }
        Err(_) => 0,
    };
    let req = Request {
        method,
        target,
        headers,
    };
    let resp = handler(&req, attempt);
    if !resp.delay.is_zero() {
        tokio::time::sleep(resp.delay).await;
    }
    let mut out = format!("HTTP/1.1 {} {}\r\n", resp.status, reason(resp.status));
    for (k, v) in &resp.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    let len = resp.declared_length.unwrap_or(resp.body.len() as u64);
    out.push_str(&format!(
        "Content-Length: {len}\r\nConnection: close\r\n\r\n"
    ));
    stream.write_all(out.as_bytes()).await?;
    if req.method != "HEAD" {
        stream.write_all(&resp.body).await?;
    }
    stream.shutdown().await
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        301 => "Moved Permanently",
        302 => "Found",
        403 => "Forbidden",
        404 => "Not Found",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "Status",
    }
}
