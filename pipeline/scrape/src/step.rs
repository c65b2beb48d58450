//! The `scrape` step: a source's article list, cut into fixed-size parts,
//! each part fetched (pages, then their captioned images) and written as
//! `articles` and `pairs` rows sorted by id.
//!
//! Parts depend only on the source (never on the shard count), so the
//! runner's resume after `kill -9` recomputes exactly the uncommitted parts:
//! no URL of a committed part is fetched again.
//!
//! Sources: `demo`, `urls:PATH`, `warc:PATH`, `live` (the outlets of
//! `data/outlets.toml`, see [`crate::discover`]), `visualnews:PATH` and
//! `nytimes800k:PATH` (see [`crate::collection`]).
//!
//! `live` discovers its article list in `plan` (sitemaps and archive pages
//! through the fetcher) and persists it, before any part runs, at
//! `<out>/scrape/live/<fingerprint>.json` ([`crate::discover::discovery_path`];
//! the fingerprint of the plain run, so `--retry-failed` reads the same
//! list). A resumed run, a `--retry-failed` run and every `--shard` read
//! that file instead of discovering again, so they plan the same parts and
//! fetch only the articles of uncommitted ones; when shards start at once
//! the first list written wins. Changing the outlets file, the dates, the
//! quota or the fetch settings changes the fingerprint and so discovers
//! afresh; delete the file to rediscover with unchanged settings (a live
//! site's sitemaps move on).
//!
//! `retry_failed` (`anchor scrape --retry-failed`) is a run of its own
//! fingerprint that starts each part from the part committed by the plain
//! run of the same settings (found through the part's marker, its files
//! checked by hash), re-fetches only rows whose error class is transient
//! and keeps every other row as it was. A killed retry resumes like any run:
//! parts it committed carry its fingerprint and are skipped.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anchor_core::ledger;
use anchor_core::step::{BoxError, PartSink, Step, StepCtx, StepId};
use anchor_core::store;
use anchor_core::tables::{self, TableDef};
use anchor_core::{Outlet, PartStats};
use serde::Serialize;
use url::Url;

use crate::collection::{Collection, CollectionArticle};
use crate::demo::photos::PhotoLibrary;
use crate::demo::server::{self, DemoServers};
use crate::demo::site::{SitePlan, demo_host};
use crate::demo::truth_table;
use crate::discover::{self, LiveSpec};
use crate::error::{Error, Result};
use crate::fetch::{FetchConfig, Fetcher, HostReport};
use crate::url_list::{UrlRow, read_url_list};
use crate::warc::{WarcArchive, WarcWriter};

mod article;
mod retry;

use article::scrape_article;

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
    /// The live outlets of an outlets file.
    Live {
        /// Outlets, dates and quota.
        spec: LiveSpec,
    },
    /// A VisualNews `data.json`.
    Visualnews {
        /// The file; images are relative to its folder.
        path: PathBuf,
    },
    /// A NYTimes800k `articles` export.
    Nytimes800k {
        /// The file; images are under `images_processed/` beside it.
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
    /// `--retry-failed`: start from the committed output of the same
    /// parameters and re-fetch only rows whose error class is transient,
    /// keeping every other row as it is. Part of the fingerprint (a retry is
    /// a different output), but omitted when off so that plain runs keep
    /// the fingerprints they always had.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub retry_failed: bool,
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
            retry_failed: false,
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
            retry_failed: false,
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
            retry_failed: false,
        }
    }
}

impl ScrapeParams {
    /// Live discovery and scraping of the outlets in `spec`, with the
    /// default polite settings, the union of the outlets' `allowed_hosts`
    /// and their per-host rates.
    pub fn live(spec: LiveSpec) -> ScrapeParams {
        let fetch = FetchConfig {
            allowed_hosts: Some(spec.outlets.allowed_hosts()),
            host_rates: spec.outlets.host_rates(),
            ..FetchConfig::default()
        };
        ScrapeParams {
            source: SourceSpec::Live { spec },
            articles_per_part: 16,
            images_per_part: 256,
            fetch: Some(fetch),
            record_warc: None,
            retry_failed: false,
        }
    }

    /// Ingest of a local collection (no fetch settings: nothing is fetched).
    pub fn collection(kind: Collection, path: PathBuf) -> ScrapeParams {
        let source = match kind {
            Collection::VisualNews => SourceSpec::Visualnews { path },
            Collection::NyTimes800k => SourceSpec::Nytimes800k { path },
        };
        ScrapeParams {
            source,
            articles_per_part: 64,
            images_per_part: 256,
            fetch: None,
            record_warc: None,
            retry_failed: false,
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
    /// The live source's article list, discovered or loaded in `plan`.
    live: OnceLock<Vec<Listed>>,
    /// The collection's articles (`visualnews`, `nytimes800k`).
    collection: Option<(Collection, Vec<CollectionArticle>)>,
    warc_writer: Option<Arc<WarcWriter>>,
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
        let mut collection = None;
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
            SourceSpec::Live { spec } => {
                spec.validate()?;
                (Vec::new(), None, "live".to_owned())
            }
            SourceSpec::Visualnews { path } => {
                let kind = Collection::VisualNews;
                collection = Some((kind, crate::collection::read(kind, path)?));
                (Vec::new(), None, kind.source().to_owned())
            }
            SourceSpec::Nytimes800k { path } => {
                let kind = Collection::NyTimes800k;
                collection = Some((kind, crate::collection::read(kind, path)?));
                (Vec::new(), None, kind.source().to_owned())
            }
        };
        let mut fetcher = {
            let _guard = runtime.enter();
            Fetcher::new(fetch)?
        };
        if let Some(archive) = replay {
            fetcher = fetcher.with_replay(archive);
        }
        let mut warc_writer = None;
        if let Some(dir) = &params.record_warc {
            let writer = Arc::new(WarcWriter::open(dir)?);
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
            // The live list exists only after discovery (`plan` writes it).
            if !matches!(params.source, SourceSpec::Live { .. }) {
                writer.write_listing(&source_name, &items)?;
            }
            fetcher = fetcher.with_recorder(Arc::clone(&writer) as Arc<dyn crate::fetch::Recorder>);
            warc_writer = Some(writer);
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
            live: OnceLock::new(),
            collection,
            warc_writer,
        })
    }

    /// The article list: the live one once `plan` has discovered or
    /// loaded it, else the source's own.
    fn articles(&self) -> &[Listed] {
        match self.live.get() {
            Some(l) => l,
            None => &self.listed,
        }
    }

    /// The live list: loaded from `<out>/scrape/live/`, else discovered and
    /// persisted there.
    fn ensure_live(&self, out: &std::path::Path, spec: &LiveSpec) -> Result<()> {
        if self.live.get().is_some() {
            return Ok(());
        }
        let path = discover::discovery_path(out, &self.base_fingerprint()?);
        let discovery = match discover::load(&path)? {
            Some(d) => {
                tracing::info!(path = %path.display(), articles = d.listed.len(), "live: reusing the discovered list");
                d
            }
            None => {
                let d = self
                    .runtime
                    .block_on(discover::discover(Arc::clone(&self.fetcher), spec));
                discover::persist(&path, d)?
            }
        };
        let mut listed = Vec::with_capacity(discovery.listed.len());
        for (i, d) in discovery.listed.iter().enumerate() {
            let url = Url::parse(&d.url).map_err(|e| {
                Error::Discovery(format!(
                    "{}: entry {i}: bad URL {:?}: {e}; delete the file to discover again",
                    path.display(),
                    d.url
                ))
            })?;
            listed.push(Listed {
                outlet: d.outlet.parse::<Outlet>().ok(),
                url,
            });
        }
        if let Some(w) = &self.warc_writer {
            let items: Vec<(String, String)> = discovery
                .listed
                .iter()
                .map(|d| (d.outlet.clone(), d.url.clone()))
                .collect();
            w.write_listing(&self.source_name, &items)?;
        }
        let _ = self.live.set(listed);
        Ok(())
    }

    /// Switches `--retry-failed` on or off for the next run of this step.
    /// The fetcher and (for the demo) the servers are kept, so a demo
    /// fault's (URL, attempt) schedule goes on where the last run left it,
    /// as a live site's state would between runs.
    pub fn set_retry_failed(&mut self, on: bool) {
        self.params.retry_failed = on;
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

    /// Writes the demo ground truth to `path` (Parquet, the `demo_truth` table's schema,
    /// tagged with the fingerprint of the parameters that planned it), if this is the demo.
    pub fn write_demo_truth(&self, path: &std::path::Path) -> Result<()> {
        let Some((plan, photos, _)) = &self.demo else {
            return Ok(());
        };
        let rows = plan.truth(&|id| photos.base(id).0);
        let batch = truth_table::to_batch(&rows)?;
        let def = &tables::demo_truth::DEF;
        let mut writer = store::PartWriter::create_at(
            path.to_path_buf(),
            def,
            &self.base_fingerprint()?,
            None,
            (def.schema)(),
        )?;
        writer.write(&batch)?;
        writer.commit()?;
        Ok(())
    }

    async fn scrape_chunk(
        &self,
        chunk: Vec<Listed>,
    ) -> (Vec<tables::articles::Row>, Vec<tables::pairs::Row>) {
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

impl StepId for ScrapeStep {
    /// Step name (subcommand and output folder).
    const NAME: &'static str = "scrape";
    /// Bump when output semantics change.
    const VERSION: u32 = 2;
}

impl Step for ScrapeStep {
    fn params(&self) -> serde_json::Result<serde_json::Value> {
        serde_json::to_value(self.clone_params_for_fingerprint())
    }

    fn outputs(&self) -> Vec<&'static TableDef> {
        [tables::articles::NAME, tables::pairs::NAME]
            .iter()
            .filter_map(|n| tables::lookup(n))
            .collect()
    }

    fn plan(&self, ctx: &StepCtx) -> std::result::Result<usize, BoxError> {
        if let SourceSpec::Live { spec } = &self.params.source {
            self.ensure_live(ctx.out(), spec)?;
        }
        let n_parts = if let Some((_, articles)) = &self.collection {
            articles
                .len()
                .div_ceil(self.params.articles_per_part.max(1))
        } else if self.url_rows.is_empty() {
            self.articles()
                .len()
                .div_ceil(self.params.articles_per_part.max(1))
        } else {
            self.url_rows
                .len()
                .div_ceil(self.params.images_per_part.max(1))
        };
        if self.params.retry_failed {
            // Checked here, before the runner records the retry as the
            // step's current run: a retry of settings that were never
            // scraped must fail without touching the ledger.
            let markers = ledger::read_markers(ctx.out(), ScrapeStep::NAME)?;
            let base = self.base_fingerprint()?;
            for part in 0..n_parts {
                let usable = markers
                    .get(&part)
                    .is_some_and(|m| m.fingerprint == base || m.fingerprint == ctx.fingerprint());
                if !usable {
                    return Err(Box::new(Error::NothingToRetry {
                        part,
                        detail: "no completion marker of these settings".to_owned(),
                    }));
                }
            }
        }
        Ok(n_parts)
    }

    fn run_part(
        &self,
        part: usize,
        ctx: &StepCtx,
        sink: &mut PartSink,
    ) -> std::result::Result<PartStats, BoxError> {
        let previous = if self.params.retry_failed {
            Some(self.previous_part(ctx, part)?)
        } else {
            None
        };
        let (n_listed, articles, pairs) = if let Some((kind, all)) = &self.collection {
            // Local files: a retry re-reads the part whole (the reads are
            // cheap and deterministic).
            let per = self.params.articles_per_part.max(1);
            let fetch = self.params.fetch.clone().unwrap_or_default();
            let mut articles = Vec::new();
            let mut pairs = Vec::new();
            let chunk: Vec<&CollectionArticle> = all.iter().skip(part * per).take(per).collect();
            for a in &chunk {
                let (row, p) =
                    crate::collection::rows(*kind, a, &fetch.image_limits, fetch.max_body_bytes);
                articles.push(row);
                pairs.extend(p);
            }
            articles.sort_by(|a, b| a.id.cmp(&b.id).then(a.url.cmp(&b.url)));
            articles.dedup_by(|a, b| a.id == b.id);
            pairs.sort_by(|a, b| a.id.cmp(&b.id).then(a.article_url.cmp(&b.article_url)));
            (chunk.len() as u64, articles, pairs)
        } else if self.url_rows.is_empty() {
            let per = self.params.articles_per_part.max(1);
            let chunk: Vec<Listed> = self
                .articles()
                .iter()
                .skip(part * per)
                .take(per)
                .cloned()
                .collect();
            let n = chunk.len() as u64;
            let (a, p) = match previous {
                Some((a, p)) => self.runtime.block_on(self.retry_chunk(chunk, a, p)),
                None => self.runtime.block_on(self.scrape_chunk(chunk)),
            };
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
            let pairs = match previous {
                Some((_, p)) => {
                    let mut p = self.runtime.block_on(self.retry_pairs(p));
                    // The order fetch_listed_images writes.
                    p.sort_by(|a, b| a.id.cmp(&b.id).then(a.image_url.cmp(&b.image_url)));
                    p
                }
                None => self.runtime.block_on(self.fetch_listed_images(chunk)),
            };
            (n, Vec::new(), pairs)
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
        sink.write(
            tables::articles::NAME,
            &tables::articles::to_batch(&articles)?,
        )?;
        sink.write(tables::pairs::NAME, &tables::pairs::to_batch(&pairs)?)?;
        Ok(stats)
    }
}
