//! `--retry-failed`: a rerun that starts from the committed output of the same
//! parameters and fetches again only the rows whose error may pass (timeouts, 5xx,
//! connection errors), keeping every other row as it was.

use std::collections::BTreeMap;
use std::sync::Arc;

use anchor_core::ledger::{self, PartMarker};
use anchor_core::step::StepCtx;
use anchor_core::{store, tables};
use url::Url;

use super::article::apply_fetch;
use super::{Listed, ScrapeParams, ScrapeStep};
use crate::error::{Error, Result};
use crate::fetch::Expect;
use crate::outcome::ErrorClass;
use anchor_core::step::StepId;

/// Whether a row's recorded error class may succeed on a later run.
fn is_transient(error_class: Option<&str>) -> bool {
    error_class
        .and_then(ErrorClass::parse)
        .is_some_and(ErrorClass::is_transient)
}

impl ScrapeStep {
    /// The fingerprint of these parameters without `retry_failed`: the run
    /// whose committed output a retry starts from.
    pub(super) fn base_fingerprint(&self) -> Result<String> {
        let mut plain = self.clone_params_for_fingerprint();
        plain.retry_failed = false;
        let params = serde_json::to_value(&plain).map_err(|source| {
            Error::Core(anchor_core::Error::Params {
                step: ScrapeStep::NAME.to_owned(),
                source,
            })
        })?;
        Ok(ledger::fingerprint(
            ScrapeStep::NAME,
            ScrapeStep::VERSION,
            &params,
            &BTreeMap::new(),
        ))
    }

    pub(super) fn clone_params_for_fingerprint(&self) -> ScrapeParams {
        let mut p = self.params.clone();
        if let Some(f) = p.fetch.as_mut() {
            f.resolve_overrides.clear();
        }
        p
    }

    /// The committed rows of `part` that a retry starts from: the part's
    /// marker must come from the plain run of the same parameters (or from
    /// this very retry, when it is forced again), and its files must still
    /// hash to what the marker recorded.
    pub(super) fn previous_part(
        &self,
        ctx: &StepCtx,
        part: usize,
    ) -> Result<(Vec<tables::articles::Row>, Vec<tables::pairs::Row>)> {
        let unusable = |detail: String| Error::NothingToRetry { part, detail };
        let marker: PartMarker =
            ledger::read_json(&ledger::marker_path(ctx.out(), ScrapeStep::NAME, part))?
                .ok_or_else(|| unusable("no completion marker".to_owned()))?;
        if marker.fingerprint != self.base_fingerprint()? && marker.fingerprint != ctx.fingerprint()
        {
            return Err(unusable(
                "it was written with other parameters or another source".to_owned(),
            ));
        }
        let read = |table: &str| -> Result<Vec<arrow_array::RecordBatch>> {
            let file = marker
                .files
                .get(table)
                .ok_or_else(|| unusable(format!("the marker lists no {table} file")))?;
            let dir = store::table_dir(ctx.out(), table);
            store::check_part(table, &dir, file, true).map_err(|e| unusable(e.to_string()))?;
            Ok(store::read_file(&dir.join(&file.file))?)
        };
        let mut articles = Vec::new();
        for batch in read(tables::articles::NAME)? {
            articles.extend(tables::articles::from_batch(&batch)?);
        }
        let mut pairs = Vec::new();
        for batch in read(tables::pairs::NAME)? {
            pairs.extend(tables::pairs::from_batch(&batch)?);
        }
        Ok((articles, pairs))
    }

    /// Re-fetches the images of `pairs` whose class is transient; every
    /// other row is returned untouched. Attempts add up over runs.
    pub(super) async fn retry_pairs(
        &self,
        pairs: Vec<tables::pairs::Row>,
    ) -> Vec<tables::pairs::Row> {
        let mut set = tokio::task::JoinSet::new();
        let mut kept = Vec::with_capacity(pairs.len());
        for p in pairs {
            if !is_transient(p.error_class.as_deref()) {
                kept.push(p);
                continue;
            }
            let Ok(url) = Url::parse(&p.image_url) else {
                // A transient class on an unparseable URL cannot happen
                // (those end as invalid_url); keep the row rather than guess.
                kept.push(p);
                continue;
            };
            let fetcher = Arc::clone(&self.fetcher);
            set.spawn(async move {
                let f = fetcher.fetch(&url, Expect::Image).await;
                let before = p.attempts;
                let mut p = p;
                apply_fetch(&mut p, &f);
                p.attempts = p.attempts.saturating_add(before);
                p
            });
        }
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok(p) => kept.push(p),
                Err(e) => tracing::error!(error = %e, "retry task failed"),
            }
        }
        kept
    }

    /// `--retry-failed` for an article part: articles whose page failed
    /// transiently are scraped again whole (they have no pairs); the
    /// transient pairs of the others are re-fetched; the rest is kept.
    pub(super) async fn retry_chunk(
        &self,
        chunk: Vec<Listed>,
        articles: Vec<tables::articles::Row>,
        pairs: Vec<tables::pairs::Row>,
    ) -> (Vec<tables::articles::Row>, Vec<tables::pairs::Row>) {
        let by_url: BTreeMap<String, Listed> =
            chunk.into_iter().map(|l| (l.url.to_string(), l)).collect();
        let mut again = Vec::new();
        let mut dropped_ids = std::collections::BTreeSet::new();
        let mut kept_articles = Vec::with_capacity(articles.len());
        for a in articles {
            match by_url.get(&a.url) {
                Some(listed) if is_transient(a.error_class.as_deref()) => {
                    dropped_ids.insert(a.id.clone());
                    again.push(listed.clone());
                }
                _ => kept_articles.push(a),
            }
        }
        let old_pairs: Vec<tables::pairs::Row> = pairs
            .into_iter()
            .filter(|p| !dropped_ids.contains(&p.article_id))
            .collect();
        let (new_articles, new_pairs) = self.scrape_chunk(again).await;
        let mut pairs = self.retry_pairs(old_pairs).await;
        kept_articles.extend(new_articles);
        pairs.extend(new_pairs);
        kept_articles.sort_by(|a, b| a.id.cmp(&b.id).then(a.url.cmp(&b.url)));
        pairs.sort_by(|a, b| a.id.cmp(&b.id).then(a.article_url.cmp(&b.article_url)));
        (kept_articles, pairs)
    }
}
