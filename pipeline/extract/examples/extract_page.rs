//! Prints one JSON line per captioned image of a saved page, like `anchor scrape extract`:
//! `cargo run -p anchor-extract --example extract_page -- scrape extract --outlet bbc --url URL PAGE`
//! (the leading `scrape extract` is accepted so that scripts written for the `anchor` binary
//! can run against this example).

use std::process::ExitCode;

fn main() -> ExitCode {
    let mut outlet = None;
    let mut page_url = None;
    let mut page = None;
    let mut args = std::env::args().skip(1).peekable();
    while let Some(a) = args.next() {
        match a.as_str() {
            "scrape" | "extract" => {}
            "--outlet" => outlet = args.next(),
            "--url" => page_url = args.next(),
            _ => page = Some(a),
        }
    }
    let (Some(page_url), Some(page)) = (page_url, page) else {
        eprintln!("usage: extract_page [--outlet NAME] --url URL PAGE");
        return ExitCode::from(2);
    };
    let outlet = match outlet.map(|o| o.parse::<anchor_extract::Outlet>()) {
        Some(Ok(o)) => Some(o),
        Some(Err(e)) => {
            eprintln!("--outlet: {e}");
            return ExitCode::from(2);
        }
        None => None,
    };
    let url = match url::Url::parse(&page_url) {
        Ok(u) => u,
        Err(e) => {
            eprintln!("--url {page_url:?}: {e}");
            return ExitCode::from(2);
        }
    };
    let bytes = match std::fs::read(&page) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("reading {page}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let html = String::from_utf8_lossy(&bytes);
    let found = anchor_extract::extract(outlet, &url, &html);
    for image in &found.images {
        println!("{}", anchor_extract::to_json_line(image));
    }
    eprintln!("adapter: {}", found.adapter);
    ExitCode::SUCCESS
}
