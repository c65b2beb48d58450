//! Per-part statistics that add up into a step's `stats.json`.

use std::collections::BTreeMap;
use std::ops::AddAssign;

use serde::{Deserialize, Serialize};

/// What one part (or, summed, a whole step) did.
///
/// Counts are deterministic; `elapsed_s` and anything in `timings` are
/// wall-clock measurements and therefore live only here, never in a table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PartStats {
    /// Rows read (or work items considered).
    pub rows_in: u64,
    /// Rows written to the step's main output.
    pub rows_out: u64,
    /// Rows kept with `keep = false` or not produced, by stable drop reason.
    #[serde(default)]
    pub dropped: BTreeMap<String, u64>,
    /// Other deterministic counters (e.g. `http_429`, `bytes`).
    #[serde(default)]
    pub counters: BTreeMap<String, u64>,
    /// Wall-clock measurements in seconds (latencies, throughput inputs).
    #[serde(default)]
    pub timings: BTreeMap<String, f64>,
    /// Wall-clock seconds spent on the part(s).
    #[serde(default)]
    pub elapsed_s: f64,
}

impl PartStats {
    /// Counts one dropped row under `reason`.
    pub fn drop_row(&mut self, reason: &str) {
        *self.dropped.entry(reason.to_owned()).or_default() += 1;
    }

    /// Adds `n` to counter `name`.
    pub fn count(&mut self, name: &str, n: u64) {
        *self.counters.entry(name.to_owned()).or_default() += n;
    }

    /// Adds `seconds` to timing `name`.
    pub fn time(&mut self, name: &str, seconds: f64) {
        *self.timings.entry(name.to_owned()).or_default() += seconds;
    }

    /// Total dropped rows over all reasons.
    pub fn dropped_total(&self) -> u64 {
        self.dropped.values().sum()
    }
}

impl AddAssign<&PartStats> for PartStats {
    fn add_assign(&mut self, rhs: &PartStats) {
        self.rows_in += rhs.rows_in;
        self.rows_out += rhs.rows_out;
        for (k, v) in &rhs.dropped {
            *self.dropped.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &rhs.counters {
            *self.counters.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &rhs.timings {
            *self.timings.entry(k.clone()).or_default() += v;
        }
        self.elapsed_s += rhs.elapsed_s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_add_up() {
        let mut a = PartStats {
            rows_in: 3,
            rows_out: 2,
            ..Default::default()
        };
        a.drop_row("too_small");
        let mut b = PartStats {
            rows_in: 5,
            rows_out: 4,
            ..Default::default()
        };
        b.drop_row("too_small");
        b.drop_row("nsfw");
        b.count("bytes", 10);
        a += &b;
        assert_eq!((a.rows_in, a.rows_out), (8, 6));
        assert_eq!(a.dropped["too_small"], 2);
        assert_eq!(a.dropped_total(), 3);
        assert_eq!(a.counters["bytes"], 10);
    }
}
