//! The `scrape` step: a source's article list, cut into fixed-size parts,
//! each part fetched (pages, then their captioned images) and written as
//! `articles` and `pairs` rows sorted by id.
//!
//! Parts depend only on the source (never on the shard count), so the
//! runner's resume after `kill -9` recomputes exactly the uncommitted parts:
//! no URL of a committed part is fetched again.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anchor_core::ids::{article_id, pair_id, sha256_hex};
use anchor_core::step::{BoxError, PartSink, Step, StepCtx};
use anchor_core::tables::{self, TableDef};
use anchor_core::{Outlet, PartStats};
use serde::Serialize;
use url::Url;

use crate::demo::photos::PhotoLibrary;
use crate::demo::server::{self, DemoServers};
use crate::demo::site::{SitePlan, demo_host};
use crate::demo::truth_table;
use crate::error::{Error, Result};
use crate::fetch::{Expect, FetchConfig, Fetcher, HostReport};
use crate::rows::{ArticleRow, PairRow, articles_batch, pairs_batch};
use crate::url_list::{UrlRow, read_url_list};
use crate::warc::{WarcArchive, WarcWriter};

/// Step name (subcommand and output folder).
pub const NAME: &str = "scrape";

/// Bump when output semantics change.
pub const VERSION: u32 = 1;

/// Where the articles come from.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum SourceSpec {
    /// The embedded demo site.
    Demo {
        /// Number of articles.
        articles: usize,
    },
    /// A list of image URLs and captions (CSV/TSV/JSONL/Parquet).
    Urls {
        /// The list.
        path: PathBuf,
    },
    /// Replay of a recording made with `record_warc`.
    Warc {
        /// The `.warc.gz` file.
        path: PathBuf,
    },
}

/// Parameters of the step; everything that shapes its output.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScrapeParams {
    /// The source.
    pub source: SourceSpec,
    /// Articles per part.
    pub articles_per_part: usize,
    /// Listed images per part (`urls` source).
    pub images_per_part: usize,
    /// Fetcher settings (DNS overrides are excluded from the fingerprint:
    /// the demo's ports change every run, its URLs do not).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fetch: Option<FetchConfig>,
    /// Record every exchange to `<dir>/scrape.warc.gz` (not part of the
    /// fingerprint: recording does not change the output).
    #[serde(skip)]
    pub record_warc: Option<PathBuf>,
}

impl ScrapeParams {
    /// The demo with `articles` articles and demo fetch settings.
    pub fn demo(articles: usize) -> ScrapeParams {
        ScrapeParams {
            source: SourceSpec::Demo { articles },
            articles_per_part: 16,
            images_per_part: 256,
            fetch: Some(demo_fetch_config()),
            record_warc: None,
        }
    }

    /// The image list at `path`, fetched with the default (live, polite)
    /// settings.
    pub fn urls(path: PathBuf) -> ScrapeParams {
        ScrapeParams {
            source: SourceSpec::Urls { path },
            articles_per_part: 16,
            images_per_part: 256,
            fetch: Some(FetchConfig::default()),
            record_warc: None,
        }
    }

    /// Replay of the recording at `path`, with the demo's retry settings
    /// (replay reproduces attempts only under the settings it was recorded
    /// with) and no host restriction (the archive is the limit).
    pub fn warc(path: PathBuf) -> ScrapeParams {
        ScrapeParams {
            source: SourceSpec::Warc { path },
            articles_per_part: 16,
            images_per_part: 256,
            fetch: Some(FetchConfig {
                allowed_hosts: None,
                ..demo_fetch_config()
            }),
            record_warc: None,
        }
    }
}

/// The demo's fetch settings: polite code paths all run, but with a request
/// rate and timeouts sized so that a demo scrape takes seconds, not hours.
pub fn demo_fetch_config() -> FetchConfig {
    FetchConfig {
        default_rate_per_sec: 200.0,
        max_concurrency: 32,
        request_timeout: Duration::from_millis(1000),
        connect_timeout: Duration::from_millis(1000),
        max_retries: 2,
        backoff_base: Duration::from_millis(50),
        backoff_max: Duration::from_secs(2),
        max_body_bytes: 8 << 20,
        allow_private_addresses: true,
        allowed_hosts: Some(Outlet::ALL.iter().map(|o| demo_host(*o)).collect()),
        ..FetchConfig::default()
    }
}

/// One listed article.
#[derive(Debug, Clone)]
struct Listed {
    outlet: Option<Outlet>,
    url: Url,
}

/// The scrape step, with its runtime, fetcher and (for the demo) servers.
pub struct ScrapeStep {
    params: ScrapeParams,
    source_name: String,
    listed: Vec<Listed>,
    url_rows: Vec<UrlRow>,
    fetcher: Arc<Fetcher>,
    runtime: tokio::runtime::Runtime,
    demo: Option<(Arc<SitePlan>, Arc<PhotoLibrary>, DemoServers)>,
}

impl ScrapeStep {
    /// Prepares the step: starts the demo servers when the source is the
    /// demo. `photos_dir` holds the demo's public-domain photos (optional).
    pub fn new(params: ScrapeParams, photos_dir: Option<PathBuf>) -> Result<ScrapeStep> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(Error::Runtime)?;
        let mut fetch = params.fetch.clone().unwrap_or_default();
        let mut replay: Option<Arc<WarcArchive>> = None;
        let mut url_rows = Vec::new();
        let (listed, demo, source_name) = match &params.source {
            SourceSpec::Demo { articles } => {
                let plan = Arc::new(SitePlan::new(*articles));
                let photos = Arc::new(PhotoLibrary::load(photos_dir.as_deref())?);
                let servers = runtime
                    .block_on(server::start(
                        Arc::clone(&plan),
                        Arc::clone(&photos),
                        fetch.request_timeout,
                    ))
                    .map_err(|e| Error::Demo(e.to_string()))?;
                fetch.resolve_overrides.extend(servers.resolve_overrides());
                let listed = plan
                    .articles
                    .iter()
                    .map(|a| Listed {
                        outlet: Some(a.outlet),
                        url: a.url.clone(),
                    })
                    .collect();
                (listed, Some((plan, photos, servers)), "demo".to_owned())
            }
            SourceSpec::Urls { path } => {
                url_rows = read_url_list(path)?;
                (Vec::new(), None, "urls".to_owned())
            }
            SourceSpec::Warc { path } => {
                let archive = WarcArchive::open(path)?;
                let mut listed = Vec::with_capacity(archive.listing.len());
                for (row, (outlet, url)) in archive.listing.iter().enumerate() {
                    let url = Url::parse(url).map_err(|e| Error::Warc {
                        path: path.clone(),
                        record: 0,
                        detail: format!("listing entry {row}: bad URL {url:?}: {e}"),
                    })?;
                    listed.push(Listed {
                        outlet: outlet.parse::<Outlet>().ok(),
                        url,
                    });
                }
                let name = archive.source.clone().unwrap_or_else(|| "warc".to_owned());
                replay = Some(Arc::new(archive));
                (listed, None, name)
            }
        };
        let mut fetcher = {
            let _guard = runtime.enter();
            Fetcher::new(fetch)?
        };
        if let Some(archive) = replay {
            fetcher = fetcher.with_replay(archive);
        }
        if let Some(dir) = &params.record_warc {
            let writer = WarcWriter::open(dir)?;
            let items: Vec<(String, String)> = listed
                .iter()
                .map(|l: &Listed| {
                    (
                        l.outlet
                            .map_or_else(|| "unknown".to_owned(), |o| o.as_str().to_owned()),
                        l.url.to_string(),
                    )
                })
                .collect();
            writer.write_listing(&source_name, &items)?;
            fetcher = fetcher.with_recorder(Arc::new(writer));
        }
        let fetcher = Arc::new(fetcher);
        Ok(ScrapeStep {
            params,
            source_name,
            listed,
            url_rows,
            fetcher,
            runtime,
            demo,
        })
    }

    /// Per-host statistics of this process's fetches.
    pub fn host_reports(&self) -> Vec<HostReport> {
        self.fetcher.host_reports()
    }

    /// The demo plan, when the source is the demo.
    pub fn demo_plan(&self) -> Option<&SitePlan> {
        self.demo.as_ref().map(|(p, _, _)| p.as_ref())
    }

    /// The demo servers, when the source is the demo.
    pub fn demo_servers(&self) -> Option<&DemoServers> {
        self.demo.as_ref().map(|(_, _, s)| s)
    }

    /// Writes the demo ground truth to `path` (Parquet), if this is the demo.
    pub fn write_demo_truth(&self, path: &std::path::Path) -> Result<()> {
        let Some((plan, photos, _)) = &self.demo else {
            return Ok(());
        };
        let rows = plan.truth(&|id| photos.base(id).0);
        let batch = truth_table::to_batch(&rows)?;
        write_parquet(path, &batch)
    }

    async fn scrape_chunk(&self, chunk: Vec<Listed>) -> (Vec<ArticleRow>, Vec<PairRow>) {
        let mut set = tokio::task::JoinSet::new();
        for item in chunk {
            let fetcher = Arc::clone(&self.fetcher);
            let source = self.source_name.clone();
            set.spawn(async move { scrape_article(fetcher, item, source).await });
        }
        let mut articles = Vec::new();
        let mut pairs = Vec::new();
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok((a, p)) => {
                    articles.push(a);
                    pairs.extend(p);
                }
                Err(e) => tracing::error!(error = %e, "article task failed"),
            }
        }
        articles.sort_by(|a, b| a.id.cmp(&b.id).then(a.url.cmp(&b.url)));
        pairs.sort_by(|a, b| a.id.cmp(&b.id).then(a.article_url.cmp(&b.article_url)));
        (articles, pairs)
    }
}

impl ScrapeStep {
    /// The `urls` source: each listed image becomes a pair row; no article
    /// pages are fetched (the article URL, when given, only names the pair).
    async fn fetch_listed_images(&self, chunk: Vec<UrlRow>) -> Vec<PairRow> {
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
        let mut pairs: Vec<PairRow> = Vec::new();
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

fn write_parquet(path: &std::path::Path, batch: &arrow_array::RecordBatch) -> Result<()> {
    let io = |e: std::io::Error| Error::Io {
        path: path.to_owned(),
        source: e,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension("parquet.tmp");
    let file = std::fs::File::create(&tmp).map_err(io)?;
    let pq = |e: parquet::errors::ParquetError| Error::Table {
        table: truth_table::NAME.to_owned(),
        detail: e.to_string(),
    };
    let mut w = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).map_err(pq)?;
    w.write(batch).map_err(pq)?;
    w.close().map_err(pq)?;
    std::fs::rename(&tmp, path).map_err(io)
}

async fn scrape_article(
    fetcher: Arc<Fetcher>,
    item: Listed,
    source: String,
) -> (ArticleRow, Vec<PairRow>) {
    let page = fetcher.fetch(&item.url, Expect::Page).await;
    let outlet_name = item
        .outlet
        .or_else(|| anchor_extract::detect_outlet(&item.url))
        .map_or_else(|| "unknown".to_owned(), |o| o.as_str().to_owned());
    let mut row = ArticleRow {
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
) -> PairRow {
    let mut p = PairRow {
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
        p.status = f.status.as_str().to_owned();
        p.error_class = f.error_class.map(|c| c.as_str().to_owned());
        p.error_message = f.error_message.clone();
        p.http_status = f.http_status.map(i32::from);
        p.attempts = i32::try_from(f.attempts).unwrap_or(i32::MAX);
        p.content_type = f.content_type.clone();
        if let (Some(body), Some(info)) = (f.body.as_ref(), f.image) {
            p.sha256 = Some(sha256_hex(body));
            p.width = i32::try_from(info.width).ok();
            p.height = i32::try_from(info.height).ok();
            p.bytes = Some(body.to_vec());
        }
    }
    p
}

impl Step for ScrapeStep {
    fn name(&self) -> &'static str {
        NAME
    }

    fn version(&self) -> u32 {
        VERSION
    }

    fn params(&self) -> serde_json::Value {
        let mut p = self.params.clone();
        if let Some(f) = p.fetch.as_mut() {
            f.resolve_overrides.clear();
        }
        serde_json::to_value(&p).unwrap_or(serde_json::Value::Null)
    }

    fn outputs(&self) -> Vec<&'static TableDef> {
        [tables::articles::NAME, tables::pairs::NAME]
            .iter()
            .filter_map(|n| tables::lookup(n))
            .collect()
    }

    fn plan(&self, _ctx: &StepCtx) -> std::result::Result<usize, BoxError> {
        if !self.url_rows.is_empty() {
            return Ok(self
                .url_rows
                .len()
                .div_ceil(self.params.images_per_part.max(1)));
        }
        Ok(self
            .listed
            .len()
            .div_ceil(self.params.articles_per_part.max(1)))
    }

    fn run_part(
        &self,
        part: usize,
        _ctx: &StepCtx,
        sink: &mut PartSink,
    ) -> std::result::Result<PartStats, BoxError> {
        let (n_listed, articles, pairs) = if self.url_rows.is_empty() {
            let per = self.params.articles_per_part.max(1);
            let chunk: Vec<Listed> = self
                .listed
                .iter()
                .skip(part * per)
                .take(per)
                .cloned()
                .collect();
            let n = chunk.len() as u64;
            let (a, p) = self.runtime.block_on(self.scrape_chunk(chunk));
            (n, a, p)
        } else {
            let per = self.params.images_per_part.max(1);
            let chunk: Vec<UrlRow> = self
                .url_rows
                .iter()
                .skip(part * per)
                .take(per)
                .cloned()
                .collect();
            let n = chunk.len() as u64;
            (
                n,
                Vec::new(),
                self.runtime.block_on(self.fetch_listed_images(chunk)),
            )
        };
        let mut stats = PartStats {
            rows_in: n_listed,
            rows_out: pairs.len() as u64,
            ..PartStats::default()
        };
        let mut by_class: BTreeMap<String, u64> = BTreeMap::new();
        for a in &articles {
            *by_class
                .entry(format!(
                    "articles_{}",
                    a.error_class.as_deref().unwrap_or("success")
                ))
                .or_default() += 1;
        }
        for p in &pairs {
            *by_class
                .entry(format!(
                    "pairs_{}",
                    p.error_class.as_deref().unwrap_or("success")
                ))
                .or_default() += 1;
            stats.count("attempts", u64::try_from(p.attempts).unwrap_or(0));
            stats.count(
                "image_bytes",
                p.bytes.as_ref().map_or(0, |b| b.len() as u64),
            );
            if let Some(class) = &p.error_class {
                stats.drop_row(class);
            }
        }
        for (k, v) in by_class {
            stats.count(&k, v);
        }
        sink.write(tables::articles::NAME, &articles_batch(&articles)?)?;
        sink.write(tables::pairs::NAME, &pairs_batch(&pairs)?)?;
        Ok(stats)
    }
}
