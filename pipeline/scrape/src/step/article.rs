//! One article: its page fetched and run through the outlet's adapter, then each
//! captioned image fetched, giving an `articles` row and its `pairs` rows. The `urls`
//! source skips the page and fetches listed images only.

use std::sync::Arc;

use anchor_core::ids::{article_id, pair_id, sha256_hex};
use anchor_core::tables;
use url::Url;

use super::{Listed, ScrapeStep};
use crate::fetch::{Expect, Fetched, Fetcher};
use crate::url_list::UrlRow;

impl ScrapeStep {
    /// The `urls` source: each listed image becomes a pair row; no article
    /// pages are fetched (the article URL, when given, only names the pair).
    pub(super) async fn fetch_listed_images(&self, chunk: Vec<UrlRow>) -> Vec<tables::pairs::Row> {
        let mut set = tokio::task::JoinSet::new();
        for row in chunk {
            let fetcher = Arc::clone(&self.fetcher);
            set.spawn(async move {
                let fetched = match Url::parse(&row.image_url) {
                    Ok(u) => Some(fetcher.fetch(&u, Expect::Image).await),
                    Err(_) => None,
                };
                (row, fetched)
            });
        }
        let mut pairs: Vec<tables::pairs::Row> = Vec::new();
        while let Some(joined) = set.join_next().await {
            let Ok((row, fetched)) = joined else { continue };
            let article_url = row
                .article_url
                .clone()
                .unwrap_or_else(|| row.image_url.clone());
            let outlet = row
                .outlet
                .clone()
                .or_else(|| {
                    Url::parse(&article_url)
                        .ok()
                        .and_then(|u| anchor_extract::detect_outlet(&u))
                        .map(|o| o.as_str().to_owned())
                })
                .unwrap_or_else(|| "unknown".to_owned());
            let img = anchor_extract::CaptionedImage {
                image_url: row.image_url.clone(),
                caption: row.caption.clone(),
                ..Default::default()
            };
            pairs.push(pair_row(&img, fetched, &article_url, &outlet, "urls"));
        }
        pairs.sort_by(|a, b| a.id.cmp(&b.id).then(a.image_url.cmp(&b.image_url)));
        // The same (article, image) listed twice is one pair.
        pairs.dedup_by(|a, b| a.id == b.id);
        pairs
    }
}

pub(super) async fn scrape_article(
    fetcher: Arc<Fetcher>,
    item: Listed,
    source: String,
) -> (tables::articles::Row, Vec<tables::pairs::Row>) {
    let page = fetcher.fetch(&item.url, Expect::Page).await;
    let outlet_name = item
        .outlet
        .or_else(|| anchor_extract::detect_outlet(&item.url))
        .map_or_else(|| "unknown".to_owned(), |o| o.as_str().to_owned());
    let mut row = tables::articles::Row {
        id: article_id(item.url.as_str()),
        outlet: outlet_name.clone(),
        source: source.to_owned(),
        url: item.url.to_string(),
        canonical_url: item.url.to_string(),
        headline: None,
        published_at: None,
        section: None,
        authors: Vec::new(),
        adapter: None,
        n_images: 0,
        status: page.status.as_str().to_owned(),
        error_class: page.error_class.map(|c| c.as_str().to_owned()),
        error_message: page.error_message.clone(),
        http_status: page.http_status.map(i32::from),
    };
    let Some(body) = page.body.as_ref() else {
        return (row, Vec::new());
    };
    let html = String::from_utf8_lossy(body);
    let ex = anchor_extract::extract(item.outlet, &page.final_url, &html);
    let canonical = ex
        .article
        .canonical_url
        .clone()
        .unwrap_or_else(|| page.final_url.to_string());
    row.id = article_id(&canonical);
    row.canonical_url = canonical.clone();
    row.headline = ex.article.headline.clone();
    row.published_at = ex.article.published_at.clone();
    row.section = ex.article.section.clone();
    row.authors = ex.article.authors.clone();
    row.adapter = Some(ex.adapter.clone());
    row.n_images = i32::try_from(ex.images.len()).unwrap_or(i32::MAX);
    if ex.images.is_empty() {
        row.status = crate::outcome::ErrorClass::NoImages
            .status()
            .as_str()
            .to_owned();
        row.error_class = Some(crate::outcome::ErrorClass::NoImages.as_str().to_owned());
        row.error_message = Some(format!("no captioned image found by {}", ex.adapter));
    }
    let mut set = tokio::task::JoinSet::new();
    for img in ex.images {
        let fetcher = Arc::clone(&fetcher);
        set.spawn(async move {
            let fetched = match Url::parse(&img.image_url) {
                Ok(u) => Some(fetcher.fetch(&u, Expect::Image).await),
                Err(_) => None,
            };
            (img, fetched)
        });
    }
    let mut pairs = Vec::new();
    while let Some(joined) = set.join_next().await {
        let Ok((img, fetched)) = joined else { continue };
        pairs.push(pair_row(&img, fetched, &canonical, &outlet_name, &source));
    }
    (row, pairs)
}

/// A pair row from an extracted image and its fetch.
fn pair_row(
    img: &anchor_extract::CaptionedImage,
    fetched: Option<crate::fetch::Fetched>,
    article_url: &str,
    outlet: &str,
    source: &str,
) -> tables::pairs::Row {
    let mut p = tables::pairs::Row {
        id: pair_id(article_url, &img.image_url),
        article_id: article_id(article_url),
        outlet: outlet.to_owned(),
        source: source.to_owned(),
        article_url: article_url.to_owned(),
        image_url: img.image_url.clone(),
        position: i32::try_from(img.position).unwrap_or(i32::MAX),
        is_lead: img.is_lead,
        caption: img.caption.clone(),
        credit: img.credit.clone(),
        alt: img.alt.clone(),
        bytes: None,
        sha256: None,
        width: None,
        height: None,
        content_type: None,
        status: crate::outcome::FetchStatus::Refused.as_str().to_owned(),
        error_class: Some(crate::outcome::ErrorClass::InvalidUrl.as_str().to_owned()),
        error_message: Some(format!("unparseable image URL {:?}", img.image_url)),
        http_status: None,
        attempts: 0,
    };
    if let Some(f) = fetched {
        apply_fetch(&mut p, &f);
    }
    p
}

/// Overwrites the fetch-derived fields of `p` with the result of `f` (the
/// caption, position and ids stay as the page gave them).
pub(super) fn apply_fetch(p: &mut tables::pairs::Row, f: &Fetched) {
    p.status = f.status.as_str().to_owned();
    p.error_class = f.error_class.map(|c| c.as_str().to_owned());
    p.error_message = f.error_message.clone();
    p.http_status = f.http_status.map(i32::from);
    p.attempts = i32::try_from(f.attempts).unwrap_or(i32::MAX);
    p.content_type = f.content_type.clone();
    p.sha256 = None;
    p.width = None;
    p.height = None;
    p.bytes = None;
    if let (Some(body), Some(info)) = (f.body.as_ref(), f.image) {
        p.sha256 = Some(sha256_hex(body));
        p.width = i32::try_from(info.width).ok();
        p.height = i32::try_from(info.height).ok();
        p.bytes = Some(body.to_vec());
    }
}
