//! `data/outlets.toml`: how the live source finds and fetches each outlet's
//! articles.
//!
//! ```toml
//! [outlets.guardian]
//! rate = 1.0                      # requests per second per host
//! seeds = ["https://www.theguardian.com/sitemaps/news.xml",
//!          "https://www.theguardian.com/theguardian/{yyyy}/{mon}/{dd}"]
//! allowed_hosts = ["www.theguardian.com", "i.guim.co.uk"]
//! article_patterns = ['^https://www\.theguardian\.com/.+/\d{4}/[a-z]{3}/\d{2}/[^/]+$']
//! max_sitemaps = 400              # optional, sitemaps and archive pages fetched
//! [outlets.guardian.host_rates]   # optional, overrides `rate` for one host
//! "i.guim.co.uk" = 2.0
//! ```
//!
//! Seed placeholders: `{yyyy}`, `{mm}`, `{dd}` (zero-padded), `{m}`, `{d}`
//! (unpadded), `{mon}` (`jan`), `{month}` (`january`). A seed with a day
//! placeholder is expanded once per day of `--since..=--until`, one with
//! only month placeholders once per month, one with only `{yyyy}` once per
//! year.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

use anchor_core::{Outlet, time};
use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A calendar day (proleptic Gregorian).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Day {
    /// Year.
    pub year: i32,
    /// Month, 1–12.
    pub month: u32,
    /// Day of month, 1–31.
    pub day: u32,
}

impl Day {
    /// Parses `YYYY-MM-DD`, also as the first ten characters of a W3C
    /// datetime (`2024-02-24T10:00:00Z`): the date as the site wrote it, its
    /// offset ignored.
    pub fn parse_prefix(s: &str) -> Option<Day> {
        let s = s.trim();
        let head = s.get(..10)?;
        let b = head.as_bytes();
        if b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let year: i32 = head[..4].parse().ok()?;
        let month: u32 = head[5..7].parse().ok()?;
        let day: u32 = head[8..10].parse().ok()?;
        Day::new(year, month, day)
    }

    /// A valid day, or `None`.
    pub fn new(year: i32, month: u32, day: u32) -> Option<Day> {
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        Some(Day { year, month, day })
    }

    /// Days since 1970-01-01.
    pub fn to_days(self) -> i64 {
        time::days_from_civil(
            i64::from(self.year),
            i64::from(self.month),
            i64::from(self.day),
        )
    }

    /// The day `days` after 1970-01-01.
    pub fn from_days(days: i64) -> Day {
        let (year, month, day) = time::civil_from_days(days);
        Day {
            year: i32::try_from(year).unwrap_or(i32::MAX),
            month,
            day,
        }
    }
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl fmt::Display for Day {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl std::str::FromStr for Day {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Day, String> {
        if s.trim().len() != 10 {
            return Err(format!("{s:?} is not a YYYY-MM-DD date"));
        }
        Day::parse_prefix(s).ok_or_else(|| format!("{s:?} is not a valid YYYY-MM-DD date"))
    }
}

impl TryFrom<String> for Day {
    type Error = String;

    fn try_from(s: String) -> std::result::Result<Day, String> {
        s.parse()
    }
}

impl From<Day> for String {
    fn from(d: Day) -> String {
        d.to_string()
    }
}

/// One outlet's discovery and politeness settings, as written in the file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutletSpec {
    /// Requests per second per host of this outlet.
    pub rate: f64,
    /// Per-host overrides of `rate`.
    #[serde(default)]
    pub host_rates: BTreeMap<String, f64>,
    /// Sitemap, sitemap-index and archive-page URLs, possibly templated.
    pub seeds: Vec<String>,
    /// Hosts that may be contacted for this outlet: article hosts and image CDNs.
    pub allowed_hosts: Vec<String>,
    /// A discovered URL is an article when it matches one of these.
    pub article_patterns: Vec<String>,
    /// Most sitemaps and archive pages fetched for this outlet.
    #[serde(default = "default_max_sitemaps")]
    pub max_sitemaps: usize,
}

fn default_max_sitemaps() -> usize {
    400
}

/// The whole file, validated: outlets under their stored names
/// ([`Outlet::as_str`]), whatever spelling the file used.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutletsConfig {
    /// Per outlet, by stored name.
    pub outlets: BTreeMap<String, OutletSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OutletsFile {
    outlets: BTreeMap<String, OutletSpec>,
}

/// The placeholders a seed may carry.
const PLACEHOLDERS: [&str; 7] = ["{yyyy}", "{mm}", "{dd}", "{m}", "{d}", "{mon}", "{month}"];

/// How often a templated seed changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Granularity {
    /// No placeholder.
    Fixed,
    /// `{yyyy}` only.
    Year,
    /// Month placeholders, no day.
    Month,
    /// A day placeholder.
    Day,
}

/// The granularity of `seed`.
pub fn granularity(seed: &str) -> Granularity {
    if seed.contains("{dd}") || seed.contains("{d}") {
        Granularity::Day
    } else if ["{mm}", "{m}", "{mon}", "{month}"]
        .iter()
        .any(|p| seed.contains(p))
    {
        Granularity::Month
    } else if seed.contains("{yyyy}") {
        Granularity::Year
    } else {
        Granularity::Fixed
    }
}

/// `seed` with its placeholders filled in for `day`.
pub fn fill(seed: &str, day: Day) -> String {
    let month = anchor_text::MONTHS[(day.month as usize).saturating_sub(1) % 12];
    seed.replace("{yyyy}", &format!("{:04}", day.year))
        .replace("{mm}", &format!("{:02}", day.month))
        .replace("{dd}", &format!("{:02}", day.day))
        .replace("{month}", month)
        .replace("{mon}", &month[..3])
        .replace("{m}", &day.month.to_string())
        .replace("{d}", &day.day.to_string())
}

/// The URLs of `seed` over `since..=until`, newest first, without repeats.
/// A fixed seed is itself; a templated seed without a range is nothing.
pub fn expand(seed: &str, range: Option<(Day, Day)>) -> Vec<String> {
    expand_dated(seed, range)
        .into_iter()
        .map(|(u, _)| u)
        .collect()
}

/// [`expand`], each URL with the day (first of its month or year for
/// coarser seeds) it was filled in for; `None` for a fixed seed.
pub fn expand_dated(seed: &str, range: Option<(Day, Day)>) -> Vec<(String, Option<Day>)> {
    let g = granularity(seed);
    if g == Granularity::Fixed {
        return vec![(seed.to_owned(), None)];
    }
    let Some((since, until)) = range else {
        return Vec::new();
    };
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    let mut d = until.to_days();
    while d >= since.to_days() {
        let day = Day::from_days(d);
        let key = match g {
            Granularity::Day => day,
            Granularity::Month => Day { day: 1, ..day },
            _ => Day {
                month: 1,
                day: 1,
                ..day
            },
        };
        if seen.insert(key) {
            out.push((fill(seed, key), Some(key)));
        }
        d -= 1;
    }
    out
}

impl OutletsConfig {
    /// Reads and validates `path`.
    pub fn load(path: &Path) -> Result<OutletsConfig> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Outlets {
            path: path.to_path_buf(),
            detail: format!("cannot be read ({e}); name another with --outlets FILE"),
        })?;
        OutletsConfig::parse(&text).map_err(|detail| Error::Outlets {
            path: path.to_path_buf(),
            detail,
        })
    }

    /// Parses and validates the file's text; the error says what is wrong
    /// and where.
    pub fn parse(text: &str) -> std::result::Result<OutletsConfig, String> {
        let file: OutletsFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let mut outlets = BTreeMap::new();
        for (name, mut spec) in file.outlets {
            let outlet: Outlet =
                name.parse()
                    .map_err(|e: anchor_core::outlet::UnknownOutlet| {
                        format!("[outlets.{name}]: {e}")
                    })?;
            let at = |what: String| format!("[outlets.{name}]: {what}");
            if !(spec.rate.is_finite() && spec.rate > 0.0) {
                return Err(at(format!("rate {} must be a positive number", spec.rate)));
            }
            for (host, rate) in &spec.host_rates {
                if !(rate.is_finite() && *rate > 0.0) {
                    return Err(at(format!("host_rates.{host:?} = {rate} must be positive")));
                }
            }
            if spec.seeds.is_empty() {
                return Err(at("seeds is empty".to_owned()));
            }
            if spec.allowed_hosts.is_empty() {
                return Err(at("allowed_hosts is empty".to_owned()));
            }
            spec.allowed_hosts = spec
                .allowed_hosts
                .iter()
                .map(|h| h.trim().to_ascii_lowercase())
                .collect();
            for seed in &spec.seeds {
                let mut probe = fill(seed, Day::from_days(0));
                for p in PLACEHOLDERS {
                    probe = probe.replace(p, "");
                }
                if let Some(open) = probe.find('{') {
                    return Err(at(format!(
                        "seed {seed:?}: unknown placeholder at {:?} (known: {})",
                        &probe[open..],
                        PLACEHOLDERS.join(" ")
                    )));
                }
                let url = url::Url::parse(&fill(seed, Day::from_days(0)))
                    .map_err(|e| at(format!("seed {seed:?} is not a URL: {e}")))?;
                let host = url.host_str().unwrap_or("").to_ascii_lowercase();
                let key = crate::fetch::host_key(&url).unwrap_or_default();
                if !spec.allowed_hosts.contains(&host) && !spec.allowed_hosts.contains(&key) {
                    return Err(at(format!(
                        "seed {seed:?}: its host {host} is not in allowed_hosts"
                    )));
                }
            }
            if spec.article_patterns.is_empty() {
                return Err(at("article_patterns is empty".to_owned()));
            }
            for p in &spec.article_patterns {
                Regex::new(p).map_err(|e| at(format!("article pattern {p:?}: {e}")))?;
            }
            if outlets.insert(outlet.as_str().to_owned(), spec).is_some() {
                return Err(format!(
                    "outlet {} is configured twice (under two spellings)",
                    outlet.as_str()
                ));
            }
        }
        if outlets.is_empty() {
            return Err("no [outlets.NAME] section".to_owned());
        }
        Ok(OutletsConfig { outlets })
    }

    /// Keeps only `names` (stored names or collection spellings).
    pub fn select(&mut self, names: &[String]) -> std::result::Result<(), String> {
        let mut keep = BTreeSet::new();
        for n in names {
            let o: Outlet = n
                .parse()
                .map_err(|e: anchor_core::outlet::UnknownOutlet| e.to_string())?;
            if !self.outlets.contains_key(o.as_str()) {
                return Err(format!(
                    "outlet {} is not configured in the outlets file",
                    o.as_str()
                ));
            }
            keep.insert(o.as_str().to_owned());
        }
        self.outlets.retain(|o, _| keep.contains(o));
        Ok(())
    }

    /// The configured outlets in [`Outlet::ALL`] order.
    pub fn entries(&self) -> Vec<(Outlet, &OutletSpec)> {
        Outlet::ALL
            .iter()
            .filter_map(|o| self.outlets.get(o.as_str()).map(|s| (*o, s)))
            .collect()
    }

    /// Every allowed host of every outlet.
    pub fn allowed_hosts(&self) -> BTreeSet<String> {
        self.outlets
            .values()
            .flat_map(|s| s.allowed_hosts.iter().cloned())
            .collect()
    }

    /// Per-host request rates: each outlet's `rate` on its hosts, then its
    /// `host_rates`. A host shared by two outlets gets the slower rate.
    pub fn host_rates(&self) -> BTreeMap<String, f64> {
        let mut rates: BTreeMap<String, f64> = BTreeMap::new();
        let mut put = |host: &str, rate: f64| {
            let e = rates.entry(host.to_ascii_lowercase()).or_insert(rate);
            *e = e.min(rate);
        };
        for spec in self.outlets.values() {
            for h in &spec.allowed_hosts {
                put(h, spec.host_rates.get(h).copied().unwrap_or(spec.rate));
            }
            for (h, r) in &spec.host_rates {
                put(h, *r);
            }
        }
        rates
    }

    /// Compiled article patterns of `outlet`.
    pub fn patterns(&self, outlet: Outlet) -> Vec<Regex> {
        self.outlets
            .get(outlet.as_str())
            .map(|s| {
                s.article_patterns
                    .iter()
                    // Validated in `parse`.
                    .filter_map(|p| Regex::new(p).ok())
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_round_trip_and_expand() {
        let d = Day::parse_prefix("2024-02-28T23:00:00+01:00").unwrap();
        assert_eq!(Day::from_days(d.to_days() + 1).to_string(), "2024-02-29");
        assert_eq!(Day::from_days(d.to_days() + 2).to_string(), "2024-03-01");
        assert_eq!(Day::from_days(0).to_string(), "1970-01-01");
        assert!("2023-02-29".parse::<Day>().is_err());
        assert!("2023-2-1".parse::<Day>().is_err());
        let range = Some(("2024-01-30".parse().unwrap(), "2024-02-01".parse().unwrap()));
        assert_eq!(
            expand("https://x.test/{yyyy}/{mon}/{dd}", range),
            vec![
                "https://x.test/2024/feb/01",
                "https://x.test/2024/jan/31",
                "https://x.test/2024/jan/30"
            ]
        );
        assert_eq!(
            expand("https://x.test/{month}-{m}", range),
            vec!["https://x.test/february-2", "https://x.test/january-1"]
        );
        assert!(expand("https://x.test/{yyyy}", None).is_empty());
        assert_eq!(
            expand("https://x.test/a.xml", None),
            vec!["https://x.test/a.xml"]
        );
    }

    #[test]
    fn validation_names_the_problem() {
        let ok = r#"
            [outlets.usa_today]
            rate = 1.0
            seeds = ["https://www.usatoday.com/sitemap/{yyyy}/{month}/{d}/"]
            allowed_hosts = ["www.usatoday.com"]
            article_patterns = ['^https://www\.usatoday\.com/story/']
        "#;
        let cfg = OutletsConfig::parse(ok).unwrap();
        assert_eq!(cfg.entries()[0].0, Outlet::UsaToday);
        let bad_placeholder = ok.replace("{d}", "{day}");
        assert!(
            OutletsConfig::parse(&bad_placeholder)
                .unwrap_err()
                .contains("unknown placeholder")
        );
        let bad_host = ok.replace(
            "allowed_hosts = [\"www.usatoday.com\"]",
            "allowed_hosts = [\"x.test\"]",
        );
        assert!(
            OutletsConfig::parse(&bad_host)
                .unwrap_err()
                .contains("not in allowed_hosts")
        );
        let bad_re = ok.replace("'^https", "'(^https");
        assert!(
            OutletsConfig::parse(&bad_re)
                .unwrap_err()
                .contains("article pattern")
        );
        let bad_outlet = ok.replace("usa_today", "reuters");
        assert!(
            OutletsConfig::parse(&bad_outlet)
                .unwrap_err()
                .contains("reuters")
        );
    }
}
