//! Live discovery: from each outlet's seeds (news sitemaps, sitemap indexes,
//! dated sitemaps and archive pages) to an ordered, de-duplicated list of
//! article URLs within the date range and the per-outlet quota.
//!
//! Every document goes through the [`Fetcher`], so robots.txt, the per-host
//! rate and `allowed_hosts` apply to discovery as to articles. Nothing is
//! dropped silently: each document fetched is recorded with its status, and
//! each link left out is counted under its reason (`not_article`,
//! `host_not_allowed`, `out_of_range`, `undated`, `over_quota`,
//! `sitemap_before_since`, `sitemap_cap`); links on hosts outside
//! `allowed_hosts` are also listed one by one.
//!
//! Order: per outlet, newest day first, then URL; the quota keeps the head
//! of that order; the outlets' lists are then interleaved round-robin in
//! [`Outlet::ALL`] order so that every part spreads its requests over all
//! outlets' hosts.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anchor_core::Outlet;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::error::{Error, Result};
use crate::fetch::{Expect, Fetcher, host_key};
use crate::outlets::{Day, Granularity, OutletSpec, OutletsConfig, expand_dated, granularity};
use crate::sitemap::{self, Kind};

/// The live source's parameters (all part of the step's fingerprint).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveSpec {
    /// The outlets file's content, validated (its path is not part of the
    /// fingerprint, its content is).
    pub outlets: OutletsConfig,
    /// First day (inclusive).
    pub since: Option<Day>,
    /// Last day (inclusive).
    pub until: Option<Day>,
    /// Articles per outlet at most.
    pub per_outlet: Option<usize>,
}

impl LiveSpec {
    /// Checks the range.
    pub fn validate(&self) -> Result<()> {
        if let (Some(s), Some(u)) = (self.since, self.until)
            && s > u
        {
            return Err(Error::Discovery(format!(
                "--since {s} is after --until {u}"
            )));
        }
        Ok(())
    }

    fn range(&self) -> Option<(Day, Day)> {
        Some((self.since?, self.until?))
    }

    fn in_range(&self, day: Day) -> bool {
        self.since.is_none_or(|s| day >= s) && self.until.is_none_or(|u| day <= u)
    }
}

/// One article URL of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Discovered {
    /// Stored outlet name.
    pub outlet: String,
    /// The article URL.
    pub url: String,
    /// Its day, when the sitemap or URL gave one.
    pub day: Option<String>,
}

/// One discovery document fetched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Visit {
    /// Stored outlet name.
    pub outlet: String,
    /// The document URL.
    pub url: String,
    /// Fetch status (`success`, `refused`, ...), or `unparseable`.
    pub status: String,
    /// Error class or parse error.
    pub error: Option<String>,
    /// `index`, `urlset` or `html`, when parsed.
    pub kind: Option<String>,
    /// Links it held.
    pub entries: usize,
}

/// A link left out and listed by name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dropped {
    /// Stored outlet name.
    pub outlet: String,
    /// The link.
    pub url: String,
    /// Why.
    pub reason: String,
}

/// The persisted outcome of discovery: the plan and how it came about.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Discovery {
    /// The article list the parts are cut from, in order.
    pub listed: Vec<Discovered>,
    /// Every document fetched.
    pub visits: Vec<Visit>,
    /// Links on hosts outside `allowed_hosts`.
    pub dropped: Vec<Dropped>,
    /// Per outlet: counts of links kept (`listed`) and left out, by reason.
    pub counts: BTreeMap<String, BTreeMap<String, u64>>,
}

/// Where the discovery of the run with `fingerprint` lives under `out`.
pub fn discovery_path(out: &Path, fingerprint: &str) -> PathBuf {
    let short: String = fingerprint.chars().take(16).collect();
    out.join("scrape")
        .join("live")
        .join(format!("{short}.json"))
}

/// Reads a persisted discovery, if there is one.
pub fn load(path: &Path) -> Result<Option<Discovery>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
            Error::Discovery(format!(
                "{} is unreadable ({e}); delete it to discover again",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(Error::Io {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Persists `discovery` at `path` unless another process got there first
/// (two shards discovering at once): the first file written wins and is
/// what this function returns, so every shard plans the same parts.
pub fn persist(path: &Path, discovery: Discovery) -> Result<Discovery> {
    let io = |source: std::io::Error| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = anchor_core::ledger::unique_temporary(path);
    let json = serde_json::to_vec_pretty(&discovery)
        .map_err(|e| Error::Discovery(format!("serialising the discovery: {e}")))?;
    std::fs::write(&tmp, json).map_err(io)?;
    let linked = std::fs::hard_link(&tmp, path);
    let _ = std::fs::remove_file(&tmp);
    match linked {
        Ok(()) => Ok(discovery),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            load(path)?.ok_or_else(|| Error::Discovery(format!("{} vanished", path.display())))
        }
        Err(e) => Err(io(e)),
    }
}

/// An article URL kept for the plan, with its day.
type Kept = (String, Option<Day>);

#[derive(Default)]
struct OutletRun {
    visits: Vec<Visit>,
    dropped: Vec<Dropped>,
    counts: BTreeMap<String, u64>,
    kept: Vec<(String, Option<Day>)>,
}

impl OutletRun {
    fn count(&mut self, reason: &str) {
        *self.counts.entry(reason.to_owned()).or_default() += 1;
    }
}

/// Runs discovery for every configured outlet (outlets concurrently, each
/// outlet's documents one after another).
pub async fn discover(fetcher: Arc<Fetcher>, spec: &LiveSpec) -> Discovery {
    let mut set = tokio::task::JoinSet::new();
    for (outlet, outlet_spec) in spec.outlets.entries() {
        let fetcher = Arc::clone(&fetcher);
        let outlet_spec = outlet_spec.clone();
        let patterns = spec.outlets.patterns(outlet);
        let spec = spec.clone();
        set.spawn(async move {
            let run = discover_outlet(&fetcher, outlet, &outlet_spec, &patterns, &spec).await;
            (outlet, run)
        });
    }
    let mut runs: BTreeMap<Outlet, OutletRun> = BTreeMap::new();
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok((o, r)) => {
                runs.insert(o, r);
            }
            Err(e) => tracing::error!(error = %e, "discovery task failed"),
        }
    }
    let mut out = Discovery::default();
    let mut queues: Vec<(Outlet, VecDeque<Kept>)> = Vec::new();
    for (outlet, run) in runs {
        tracing::info!(outlet = outlet.as_str(), listed = run.kept.len(), counts = ?run.counts, "discovered");
        out.visits.extend(run.visits);
        out.dropped.extend(run.dropped);
        let mut counts = run.counts;
        counts.insert("listed".to_owned(), run.kept.len() as u64);
        out.counts.insert(outlet.as_str().to_owned(), counts);
        queues.push((outlet, run.kept.into()));
    }
    while queues.iter().any(|(_, q)| !q.is_empty()) {
        for (outlet, q) in &mut queues {
            if let Some((url, day)) = q.pop_front() {
                out.listed.push(Discovered {
                    outlet: outlet.as_str().to_owned(),
                    url,
                    day: day.map(|d| d.to_string()),
                });
            }
        }
    }
    out
}

fn host_allowed(url: &Url, spec: &OutletSpec) -> bool {
    let host = url.host_str().unwrap_or("").to_ascii_lowercase();
    let key = host_key(url).unwrap_or_default();
    spec.allowed_hosts.contains(&host) || spec.allowed_hosts.contains(&key)
}

async fn discover_outlet(
    fetcher: &Fetcher,
    outlet: Outlet,
    spec: &OutletSpec,
    patterns: &[regex::Regex],
    live: &LiveSpec,
) -> OutletRun {
    let name = outlet.as_str().to_owned();
    let mut run = OutletRun::default();
    let mut queue: VecDeque<(String, Option<Day>)> = VecDeque::new();
    for seed in &spec.seeds {
        let g = granularity(seed);
        if g != Granularity::Fixed && live.range().is_none() {
            tracing::warn!(outlet = %name, seed, "templated seed skipped: it needs --since and --until");
            run.count("seed_needs_range");
            continue;
        }
        for (url, day) in expand_dated(seed, live.range()) {
            // A daily archive page dates the links on it that carry no date.
            queue.push_back((url, day.filter(|_| g == Granularity::Day)));
        }
    }
    let mut visited: BTreeSet<String> = BTreeSet::new();
    let mut candidates: BTreeMap<String, Option<Day>> = BTreeMap::new();
    let mut documents = 0usize;
    while let Some((doc_url, doc_day)) = queue.pop_front() {
        if !visited.insert(doc_url.clone()) {
            continue;
        }
        if documents >= spec.max_sitemaps {
            run.count("sitemap_cap");
            continue;
        }
        documents += 1;
        let mut visit = Visit {
            outlet: name.clone(),
            url: doc_url.clone(),
            status: "refused".to_owned(),
            error: None,
            kind: None,
            entries: 0,
        };
        let url = match Url::parse(&doc_url) {
            Ok(u) => u,
            Err(e) => {
                visit.error = Some(format!("invalid_url: {e}"));
                run.visits.push(visit);
                continue;
            }
        };
        let fetched = fetcher.fetch(&url, Expect::Listing).await;
        visit.status = fetched.status.as_str().to_owned();
        visit.error = fetched.error_class.map(|c| c.as_str().to_owned());
        let Some(body) = fetched.body.as_ref() else {
            run.visits.push(visit);
            continue;
        };
        let doc = match sitemap::parse(&fetched.final_url, body) {
            Ok(d) => d,
            Err(e) => {
                visit.status = "unparseable".to_owned();
                visit.error = Some(e);
                run.visits.push(visit);
                continue;
            }
        };
        visit.kind = Some(
            match doc.kind {
                Kind::Index => "index",
                Kind::UrlSet => "urlset",
                Kind::Html => "html",
            }
            .to_owned(),
        );
        visit.entries = doc.entries.len();
        run.visits.push(visit);
        for entry in doc.entries {
            let Ok(mut link) = Url::parse(&entry.loc) else {
                run.count("invalid_url");
                continue;
            };
            link.set_fragment(None);
            if doc.kind == Kind::Index {
                if !host_allowed(&link, spec) {
                    run.count("host_not_allowed");
                    run.dropped.push(Dropped {
                        outlet: name.clone(),
                        url: link.to_string(),
                        reason: "host_not_allowed".to_owned(),
                    });
                    continue;
                }
                // A sitemap last changed before the range cannot list an
                // article published in it.
                if let (Some(since), Some(day)) = (live.since, entry.day())
                    && day < since
                {
                    run.count("sitemap_before_since");
                    continue;
                }
                queue.push_back((link.to_string(), None));
                continue;
            }
            let text = link.to_string();
            if !patterns.iter().any(|p| p.is_match(&text)) {
                run.count("not_article");
                continue;
            }
            if !host_allowed(&link, spec) {
                run.count("host_not_allowed");
                run.dropped.push(Dropped {
                    outlet: name.clone(),
                    url: text,
                    reason: "host_not_allowed".to_owned(),
                });
                continue;
            }
            let day = entry
                .day()
                .or_else(|| sitemap::day_in_url(&text))
                .or(doc_day);
            let bounded = live.since.is_some() || live.until.is_some();
            match day {
                None if bounded => {
                    run.count("undated");
                    continue;
                }
                Some(d) if !live.in_range(d) => {
                    run.count("out_of_range");
                    continue;
                }
                _ => {}
            }
            match candidates.get_mut(&text) {
                Some(existing) => {
                    run.count("duplicate");
                    if existing.is_none() {
                        *existing = day;
                    }
                }
                None => {
                    candidates.insert(text, day);
                }
            }
        }
    }
    let mut kept: Vec<(String, Option<Day>)> = candidates.into_iter().collect();
    // Newest first, undated last, then by URL: a pure function of the set.
    kept.sort_by(|a, b| match (a.1, b.1) {
        (Some(x), Some(y)) => y.cmp(&x).then_with(|| a.0.cmp(&b.0)),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => a.0.cmp(&b.0),
    });
    if let Some(n) = live.per_outlet
        && kept.len() > n
    {
        *run.counts.entry("over_quota".to_owned()).or_default() += (kept.len() - n) as u64;
        kept.truncate(n);
    }
    run.kept = kept;
    run
}
