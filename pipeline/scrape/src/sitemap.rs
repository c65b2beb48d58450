//! Sitemaps (sitemaps.org 0.9 with Google News `news:` entries), sitemap
//! indexes and HTML archive pages, read into one shape: a list of links with
//! the dates the document gives them.

use std::io::Read;

use quick_xml::events::Event;
use url::Url;

use crate::outlets::Day;

/// What a discovery document turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `<sitemapindex>`: its links are further sitemaps.
    Index,
    /// `<urlset>`: its links are pages.
    UrlSet,
    /// An HTML page (a dated archive): its links are candidate pages.
    Html,
}

/// One link found in a discovery document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The absolute URL.
    pub loc: String,
    /// `<news:publication_date>`, as written.
    pub published: Option<String>,
    /// `<lastmod>`, as written.
    pub lastmod: Option<String>,
}

impl Entry {
    /// The entry's day: the news publication date, else `lastmod`.
    pub fn day(&self) -> Option<Day> {
        self.published
            .as_deref()
            .and_then(Day::parse_prefix)
            .or_else(|| self.lastmod.as_deref().and_then(Day::parse_prefix))
    }
}

/// A parsed discovery document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// What it is.
    pub kind: Kind,
    /// Its links, in document order.
    pub entries: Vec<Entry>,
}

/// Inflated sitemaps are capped here: the sitemaps.org limit is 50 MB.
const MAX_INFLATED: u64 = 64 << 20;

/// Parses `body` fetched from `url`: gunzips `.xml.gz` bodies, then reads a
/// sitemap or sitemap index, or (for anything that is not one) the page's
/// `<a href>` links resolved against `url`.
pub fn parse(url: &Url, body: &[u8]) -> Result<Document, String> {
    let inflated;
    let body = if body.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(body)
            .take(MAX_INFLATED + 1)
            .read_to_end(&mut out)
            .map_err(|e| format!("gunzip: {e}"))?;
        if out.len() as u64 > MAX_INFLATED {
            return Err(format!("inflates past {MAX_INFLATED} bytes"));
        }
        inflated = out;
        &inflated[..]
    } else {
        body
    };
    let head = String::from_utf8_lossy(&body[..body.len().min(4096)]).to_ascii_lowercase();
    if head.contains("<sitemapindex") || head.contains("<urlset") {
        parse_xml(body)
    } else {
        Ok(parse_html(url, &String::from_utf8_lossy(body)))
    }
}

fn parse_xml(body: &[u8]) -> Result<Document, String> {
    let mut reader = quick_xml::Reader::from_reader(body);
    reader.config_mut().trim_text(true);
    let mut buf = Vec::new();
    let mut kind = None;
    let mut entries = Vec::new();
    let mut current: Option<Entry> = None;
    // The element whose text is being read and that text so far.
    let mut field: Option<String> = None;
    let mut text = String::new();
    loop {
        let event = reader
            .read_event_into(&mut buf)
            .map_err(|e| format!("XML at byte {}: {e}", reader.buffer_position()))?;
        match event {
            Event::Start(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).to_ascii_lowercase();
                match name.as_str() {
                    "sitemapindex" if kind.is_none() => kind = Some(Kind::Index),
                    "urlset" if kind.is_none() => kind = Some(Kind::UrlSet),
                    "sitemap" | "url" => {
                        current = Some(Entry {
                            loc: String::new(),
                            published: None,
                            lastmod: None,
                        });
                    }
                    "loc" | "lastmod" | "publication_date" => {
                        field = Some(name);
                        text.clear();
                    }
                    _ => {}
                }
            }
            Event::Text(t) if field.is_some() => {
                text.push_str(&t.decode().map_err(|e| format!("XML text: {e}"))?);
            }
            Event::CData(t) if field.is_some() => {
                text.push_str(&String::from_utf8_lossy(&t));
            }
            Event::GeneralRef(r) if field.is_some() => {
                if let Some(c) = r.resolve_char_ref().map_err(|e| format!("XML: {e}"))? {
                    text.push(c);
                } else {
                    let name = r.decode().map_err(|e| format!("XML: {e}"))?;
                    let resolved = quick_xml::escape::resolve_xml_entity(&name)
                        .ok_or_else(|| format!("XML: unknown entity &{name};"))?;
                    text.push_str(resolved);
                }
            }
            Event::End(e) => {
                let name = String::from_utf8_lossy(e.local_name().as_ref()).to_ascii_lowercase();
                if field.as_deref() == Some(name.as_str()) {
                    if let Some(entry) = current.as_mut() {
                        let value = text.trim().to_owned();
                        match name.as_str() {
                            // `<image:loc>` inside `<url>` is also a `loc`;
                            // the page's own comes first.
                            "loc" if entry.loc.is_empty() => entry.loc = value,
                            "lastmod" => entry.lastmod = Some(value),
                            "publication_date" => entry.published = Some(value),
                            _ => {}
                        }
                    }
                    field = None;
                } else if (name == "sitemap" || name == "url")
                    && let Some(entry) = current.take()
                    && !entry.loc.is_empty()
                {
                    entries.push(entry);
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    let kind = kind.ok_or_else(|| "no <urlset> or <sitemapindex> root".to_owned())?;
    Ok(Document { kind, entries })
}

fn parse_html(url: &Url, html: &str) -> Document {
    let doc = scraper::Html::parse_document(html);
    let mut entries = Vec::new();
    if let Ok(sel) = scraper::Selector::parse("a[href]") {
        for a in doc.select(&sel) {
            let Some(href) = a.value().attr("href") else {
                continue;
            };
            let Ok(mut abs) = url.join(href.trim()) else {
                continue;
            };
            abs.set_fragment(None);
            entries.push(Entry {
                loc: abs.to_string(),
                published: None,
                lastmod: None,
            });
        }
    }
    Document {
        kind: Kind::Html,
        entries,
    }
}

/// The day written in an article URL (`/2024/02/24/`, `/2024/feb/24/`,
/// `/2024-02-24/`), when it has one.
pub fn day_in_url(url: &str) -> Option<Day> {
    static RE: std::sync::OnceLock<Option<regex::Regex>> = std::sync::OnceLock::new();
    let re = RE
        .get_or_init(|| {
            regex::Regex::new(r"/((?:19|20)\d{2})[/-]([01]\d|[a-z]{3})[/-]([0-3]\d)(?:/|$|-)").ok()
        })
        .as_ref()?;
    let c = re.captures(url)?;
    let year: i32 = c.get(1)?.as_str().parse().ok()?;
    let m = c.get(2)?.as_str();
    let month = match m.parse::<u32>() {
        Ok(n) => n,
        Err(_) => {
            const MON: [&str; 12] = [
                "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
            ];
            u32::try_from(MON.iter().position(|x| *x == m)? + 1).ok()?
        }
    };
    let day: u32 = c.get(3)?.as_str().parse().ok()?;
    Day::new(year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_news_sitemaps_indexes_and_archive_pages() {
        let base = Url::parse("https://www.example.com/sitemaps/news.xml").unwrap();
        let news = r#"<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"
        xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"
        xmlns:image="http://www.google.com/schemas/sitemap-image/1.1">
  <url><loc>https://www.example.com/world/2024/feb/24/a?x=1&amp;y=2</loc>
    <news:news><news:publication><news:name>X</news:name></news:publication>
      <news:publication_date>2024-02-24T10:00:00+00:00</news:publication_date></news:news>
    <image:image><image:loc>https://i.example.com/p.jpg</image:loc></image:image>
  </url>
  <url><loc><![CDATA[https://www.example.com/b]]></loc><lastmod>2024-02-20</lastmod></url>
</urlset>"#;
        let doc = parse(&base, news.as_bytes()).unwrap();
        assert_eq!(doc.kind, Kind::UrlSet);
        assert_eq!(doc.entries.len(), 2);
        assert_eq!(
            doc.entries[0].loc,
            "https://www.example.com/world/2024/feb/24/a?x=1&y=2"
        );
        assert_eq!(doc.entries[0].day().unwrap().to_string(), "2024-02-24");
        assert_eq!(doc.entries[1].loc, "https://www.example.com/b");
        assert_eq!(doc.entries[1].day().unwrap().to_string(), "2024-02-20");

        let index = "<sitemapindex><sitemap><loc>https://www.example.com/s1.xml.gz</loc>\
                     <lastmod>2024-01-01</lastmod></sitemap></sitemapindex>";
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, index.as_bytes()).unwrap();
        let doc = parse(&base, &gz.finish().unwrap()).unwrap();
        assert_eq!(doc.kind, Kind::Index);
        assert_eq!(doc.entries[0].loc, "https://www.example.com/s1.xml.gz");

        let html = r#"<html><body><a href="/world/2024/feb/24/c#top">c</a><a>no</a></body></html>"#;
        let doc = parse(&base, html.as_bytes()).unwrap();
        assert_eq!(doc.kind, Kind::Html);
        assert_eq!(doc.entries.len(), 1);
        assert_eq!(
            doc.entries[0].loc,
            "https://www.example.com/world/2024/feb/24/c"
        );

        assert!(parse(&base, b"<urlset><url><loc>&bogus;</loc></url></urlset>").is_err());
    }

    #[test]
    fn finds_days_in_urls() {
        let d = |u: &str| day_in_url(u).map(|d| d.to_string());
        assert_eq!(
            d("https://www.theguardian.com/world/2024/feb/24/x").as_deref(),
            Some("2024-02-24")
        );
        assert_eq!(
            d("https://www.nytimes.com/2020/10/10/us/x.html").as_deref(),
            Some("2020-10-10")
        );
        assert_eq!(d("https://www.bbc.co.uk/news/world-12345678"), None);
        assert_eq!(d("https://x.test/2024/02/31/x"), None);
    }
}
