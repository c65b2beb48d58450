//! Prints what an adapter finds on a saved page: `cargo run -p anchor-extract --example dump
//! -- OUTLET|auto PAGE.html [PAGE_URL]`. One JSON line per image, then the article metadata.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [outlet, path, rest @ ..] = args.as_slice() else {
        eprintln!("usage: dump OUTLET|auto PAGE.html [PAGE_URL]");
        return ExitCode::from(2);
    };
    let outlet = match outlet.as_str() {
        "auto" | "generic" => None,
        name => match name.parse() {
            Ok(o) => Some(o),
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::from(2);
            }
        },
    };
    let html = match std::fs::read(path) {
        Ok(b) => String::from_utf8_lossy(&b).into_owned(),
        Err(e) => {
            eprintln!("{path}: {e}");
            return ExitCode::from(1);
        }
    };
    let page_url = rest
        .first()
        .cloned()
        .unwrap_or_else(|| format!("file://{path}"));
    let page_url = match url::Url::parse(&page_url) {
        Ok(u) => u,
        Err(e) => {
            eprintln!("{page_url}: {e}");
            return ExitCode::from(2);
        }
    };
    let ex = anchor_extract::extract(outlet, &page_url, &html);
    for img in &ex.images {
        println!("{}", anchor_extract::to_json_line(img));
    }
    eprintln!("adapter: {}", ex.adapter);
    eprintln!("article: {:?}", ex.article);
    for n in &ex.notes {
        eprintln!("note: {n}");
    }
    ExitCode::SUCCESS
}
