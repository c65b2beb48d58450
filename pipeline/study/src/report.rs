//! The study's results: per-rater attention-check accuracy, win rates per configuration
//! pair with 95% percentile-bootstrap intervals, and a Bradley–Terry ranking, for each of
//! the two questions.
//!
//! Only raters whose attention-check accuracy reaches `min_attention` count (raters who
//! answered no check count too, and the report says so). An `equal` answer is half a win
//! for each side, in the win rates and in the Bradley–Terry fit (Hunter's MM algorithm,
//! with a prior of 0.1 wins each way per compared pair so a configuration that never won
//! keeps a finite strength).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anchor_core::rng::Rng;
use anchor_core::tables::{study_pairs, votes};

use crate::{Error, Result};

/// The questions, as `votes` columns, with their headings.
pub const QUESTIONS: [(&str, &str); 2] = [
    (
        "subjects",
        "Which image better shows the caption's subjects",
    ),
    ("quality", "Which image is of better quality"),
];

const PRIOR_WINS: f64 = 0.1;

/// How the report is computed.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportParams {
    /// Raters below this attention-check accuracy are left out.
    pub min_attention: f64,
    /// Bootstrap resamples per interval.
    pub resamples: usize,
    /// Seed of the resampling.
    pub seed: u64,
}

impl Default for ReportParams {
    fn default() -> Self {
        ReportParams {
            min_attention: 0.75,
            resamples: 2000,
            seed: 0,
        }
    }
}

/// One rater's record.
#[derive(Debug, Clone, PartialEq)]
pub struct Rater {
    /// The rater's id.
    pub rater: String,
    /// Pairs answered.
    pub votes: usize,
    /// Attention checks answered.
    pub checks: usize,
    /// Attention checks answered right (the first question).
    pub checks_passed: usize,
    /// Whether the rater's votes count.
    pub kept: bool,
    /// Median seconds per vote, when the times were kept.
    pub median_seconds: Option<f64>,
}

/// One configuration pair on one question.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// `subjects` or `quality`.
    pub question: &'static str,
    /// The configuration whose win rate is given.
    pub a: String,
    /// The other configuration.
    pub b: String,
    /// Votes counted.
    pub votes: usize,
    /// Votes for `a`.
    pub wins_a: usize,
    /// Votes for `b`.
    pub wins_b: usize,
    /// `equal` answers.
    pub ties: usize,
    /// `(wins_a + ties / 2) / votes`.
    pub win_rate: f64,
    /// 2.5th percentile of the bootstrap win rates.
    pub ci_low: f64,
    /// 97.5th percentile of the bootstrap win rates.
    pub ci_high: f64,
}

/// A configuration's Bradley–Terry strength on one question.
#[derive(Debug, Clone, PartialEq)]
pub struct Strength {
    /// `subjects` or `quality`.
    pub question: &'static str,
    /// 1 for the strongest.
    pub rank: usize,
    /// The configuration.
    pub configuration: String,
    /// Natural log of the strength; the configurations' logs sum to 0.
    pub log_strength: f64,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Comparison pairs in the study.
    pub compare_pairs: usize,
    /// Attention-check pairs in the study.
    pub attention_pairs: usize,
    /// Every rater, by id.
    pub raters: Vec<Rater>,
    /// Win rates, per question then configuration pair.
    pub comparisons: Vec<Comparison>,
    /// Rankings, per question, strongest first.
    pub ranking: Vec<Strength>,
    /// The settings used.
    pub params: ReportParams,
}

fn median(values: &mut [u64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let n = values.len();
    let m = if n % 2 == 1 {
        values[n / 2] as f64
    } else {
        (values[n / 2 - 1] + values[n / 2]) as f64 / 2.0
    };
    Some(m / 1000.0)
}

/// The 2.5th and 97.5th percentiles of the mean of `outcomes` over `resamples`
/// resamples with replacement.
pub fn bootstrap_interval(outcomes: &[f64], resamples: usize, rng: &mut Rng) -> (f64, f64) {
    if outcomes.is_empty() || resamples == 0 {
        return (f64::NAN, f64::NAN);
    }
    let n = outcomes.len();
    let mut means: Vec<f64> = (0..resamples)
        .map(|_| {
            (0..n)
                .map(|_| outcomes[rng.below(n as u64) as usize])
                .sum::<f64>()
                / n as f64
        })
        .collect();
    means.sort_by(f64::total_cmp);
    let at = |q: f64| means[((q * resamples as f64).floor() as usize).min(resamples - 1)];
    (at(0.025), at(0.975))
}

/// Bradley–Terry log-strengths from `wins[(i, j)]` (wins of i over j, ties as halves),
/// by Hunter's MM iterations, normalised to sum 0.
pub fn bradley_terry(configurations: &[String], wins: &HashMap<(usize, usize), f64>) -> Vec<f64> {
    let k = configurations.len();
    let mut p = vec![1.0f64; k];
    let games = |i: usize, j: usize| {
        wins.get(&(i, j)).copied().unwrap_or(0.0) + wins.get(&(j, i)).copied().unwrap_or(0.0)
    };
    for _ in 0..10_000 {
        let mut next = vec![0.0; k];
        for i in 0..k {
            let w: f64 = (0..k)
                .filter(|&j| j != i)
                .map(|j| wins.get(&(i, j)).copied().unwrap_or(0.0))
                .sum();
            let denominator: f64 = (0..k)
                .filter(|&j| j != i && games(i, j) > 0.0)
                .map(|j| games(i, j) / (p[i] + p[j]))
                .sum();
            next[i] = if denominator > 0.0 {
                w / denominator
            } else {
                p[i]
            };
        }
        let mean_log = next.iter().map(|x| x.ln()).sum::<f64>() / k as f64;
        for x in &mut next {
            *x /= mean_log.exp();
        }
        let change = next
            .iter()
            .zip(&p)
            .map(|(a, b)| (a.ln() - b.ln()).abs())
            .fold(0.0, f64::max);
        p = next;
        if change < 1e-12 {
            break;
        }
    }
    p.iter().map(|x| x.ln()).collect()
}

/// Computes the report from the study's pairs, its votes and the vote times.
pub fn build(
    pairs: &[study_pairs::Row],
    votes: &[votes::Row],
    timing: &BTreeMap<String, Vec<u64>>,
    params: &ReportParams,
) -> Result<Report> {
    let by_id: HashMap<&str, &study_pairs::Row> =
        pairs.iter().map(|p| (p.pair_id.as_str(), p)).collect();
    let mut raters: BTreeMap<&str, Rater> = BTreeMap::new();
    for v in votes {
        let pair = by_id.get(v.pair_id.as_str()).ok_or_else(|| {
            Error::Input(format!(
                "a vote of {} names pair {}, which the study does not have",
                v.rater, v.pair_id
            ))
        })?;
        let r = raters.entry(&v.rater).or_insert_with(|| Rater {
            rater: v.rater.clone(),
            votes: 0,
            checks: 0,
            checks_passed: 0,
            kept: true,
            median_seconds: timing.get(&v.rater).and_then(|t| median(&mut t.clone())),
        });
        r.votes += 1;
        if pair.kind == study_pairs::ATTENTION {
            r.checks += 1;
            r.checks_passed += usize::from(pair.expected.as_deref() == Some(v.subjects.as_str()));
        }
    }
    for r in raters.values_mut() {
        r.kept = r.checks == 0 || r.checks_passed as f64 / r.checks as f64 >= params.min_attention;
    }

    // Orient each configuration pair: the configuration in more pairs first (the one the
    // others were compared against), then by name.
    let compare: Vec<&study_pairs::Row> = pairs
        .iter()
        .filter(|p| p.kind == study_pairs::COMPARE)
        .collect();
    let mut appearances: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for p in &compare {
        appearances
            .entry(&p.left_configuration)
            .or_default()
            .insert(&p.right_configuration);
        appearances
            .entry(&p.right_configuration)
            .or_default()
            .insert(&p.left_configuration);
    }
    let orient = |x: &str, y: &str| -> (String, String) {
        let (nx, ny) = (appearances[x].len(), appearances[y].len());
        if (nx, std::cmp::Reverse(x)) >= (ny, std::cmp::Reverse(y)) {
            (x.to_owned(), y.to_owned())
        } else {
            (y.to_owned(), x.to_owned())
        }
    };
    let configurations: Vec<String> = appearances.keys().map(|c| (*c).to_owned()).collect();
    let index: HashMap<&str, usize> = configurations
        .iter()
        .enumerate()
        .map(|(i, c)| (c.as_str(), i))
        .collect();

    let mut comparisons = Vec::new();
    let mut ranking = Vec::new();
    for (q, (question, _)) in QUESTIONS.iter().enumerate() {
        // outcome of a over b per vote: 1, 0.5 or 0.
        let mut outcomes: BTreeMap<(String, String), Vec<f64>> = BTreeMap::new();
        let mut wins: HashMap<(usize, usize), f64> = HashMap::new();
        for v in votes {
            if !raters.get(v.rater.as_str()).is_some_and(|r| r.kept) {
                continue;
            }
            let pair = by_id[v.pair_id.as_str()];
            if pair.kind != study_pairs::COMPARE {
                continue;
            }
            let answer = if q == 0 { &v.subjects } else { &v.quality };
            let (l, r) = (&pair.left_configuration, &pair.right_configuration);
            let left_score = match answer.as_str() {
                "left" => 1.0,
                "right" => 0.0,
                "equal" => 0.5,
                other => {
                    return Err(Error::Input(format!(
                        "vote of {} on {}: {question} {other:?} is not left, right or equal",
                        v.rater, v.pair_id
                    )));
                }
            };
            let (a, b) = orient(l, r);
            let a_score = if a == *l {
                left_score
            } else {
                1.0 - left_score
            };
            outcomes
                .entry((a.clone(), b.clone()))
                .or_default()
                .push(a_score);
            *wins
                .entry((index[a.as_str()], index[b.as_str()]))
                .or_default() += a_score;
            *wins
                .entry((index[b.as_str()], index[a.as_str()]))
                .or_default() += 1.0 - a_score;
        }
        let mut rng = Rng::new(params.seed, q as u64);
        for ((a, b), o) in &outcomes {
            let (low, high) = bootstrap_interval(o, params.resamples, &mut rng);
            comparisons.push(Comparison {
                question,
                a: a.clone(),
                b: b.clone(),
                votes: o.len(),
                wins_a: o.iter().filter(|&&x| x == 1.0).count(),
                wins_b: o.iter().filter(|&&x| x == 0.0).count(),
                ties: o.iter().filter(|&&x| x == 0.5).count(),
                win_rate: o.iter().sum::<f64>() / o.len() as f64,
                ci_low: low,
                ci_high: high,
            });
        }
        for (a, others) in &appearances {
            for b in others {
                *wins.entry((index[a], index[b])).or_default() += PRIOR_WINS;
            }
        }
        let strengths = bradley_terry(&configurations, &wins);
        let mut order: Vec<usize> = (0..configurations.len()).collect();
        order.sort_by(|&i, &j| strengths[j].total_cmp(&strengths[i]).then(i.cmp(&j)));
        for (rank, i) in order.into_iter().enumerate() {
            ranking.push(Strength {
                question,
                rank: rank + 1,
                configuration: configurations[i].clone(),
                log_strength: strengths[i],
            });
        }
    }
    Ok(Report {
        compare_pairs: compare.len(),
        attention_pairs: pairs.len() - compare.len(),
        raters: raters.into_values().collect(),
        comparisons,
        ranking,
        params: params.clone(),
    })
}

fn fmt_rate(x: f64) -> String {
    if x.is_nan() {
        "–".into()
    } else {
        format!("{x:.3}")
    }
}

/// Writes `study.md`, `study.csv` (win rates) and `study_ranking.csv` into `dir`
/// (temporary files renamed into place); returns their paths.
pub fn write(dir: &Path, report: &Report) -> Result<Vec<PathBuf>> {
    let p = &report.params;
    let kept: Vec<&Rater> = report.raters.iter().filter(|r| r.kept).collect();
    let mut md = String::new();
    let _ = writeln!(md, "# Human preference study\n");
    let _ = writeln!(
        md,
        "{} comparison pairs and {} attention checks; {} raters, {} kept (attention-check accuracy at least {}; a rater who answered no check is kept). Each comparison asks two questions; `equal` counts as half a win for each side. Intervals: 95% percentile bootstrap over votes ({} resamples, seed {}). Ranking: Bradley–Terry strengths (log scale, summing to 0) by Hunter's MM algorithm with a prior of {PRIOR_WINS} wins each way per compared pair.\n",
        report.compare_pairs,
        report.attention_pairs,
        report.raters.len(),
        kept.len(),
        p.min_attention,
        p.resamples,
        p.seed
    );
    let _ = writeln!(md, "## Raters\n");
    let _ = writeln!(
        md,
        "| rater | votes | attention checks passed | kept | median seconds per vote |"
    );
    let _ = writeln!(md, "|---|---:|---:|---|---:|");
    for r in &report.raters {
        let _ = writeln!(
            md,
            "| {} | {} | {}/{} | {} | {} |",
            r.rater,
            r.votes,
            r.checks_passed,
            r.checks,
            if r.kept { "yes" } else { "no" },
            r.median_seconds.map_or("–".into(), |s| format!("{s:.1}"))
        );
    }
    let mut csv = String::from(
        "question,configuration_a,configuration_b,votes,wins_a,wins_b,ties,win_rate_a,ci_low,ci_high\n",
    );
    let mut ranking_csv = String::from("question,rank,configuration,log_strength\n");
    for (question, heading) in QUESTIONS {
        let _ = writeln!(md, "\n## {heading}?\n");
        let _ = writeln!(
            md,
            "| A | B | votes | A wins | B wins | equal | A's win rate | 95% interval |"
        );
        let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---:|---|");
        for c in report.comparisons.iter().filter(|c| c.question == question) {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | [{}, {}] |",
                c.a,
                c.b,
                c.votes,
                c.wins_a,
                c.wins_b,
                c.ties,
                fmt_rate(c.win_rate),
                fmt_rate(c.ci_low),
                fmt_rate(c.ci_high)
            );
            let _ = writeln!(
                csv,
                "{question},{},{},{},{},{},{},{},{},{}",
                c.a, c.b, c.votes, c.wins_a, c.wins_b, c.ties, c.win_rate, c.ci_low, c.ci_high
            );
        }
        let _ = writeln!(
            md,
            "\n| rank | configuration | Bradley–Terry log-strength |"
        );
        let _ = writeln!(md, "|---:|---|---:|");
        for s in report.ranking.iter().filter(|s| s.question == question) {
            let _ = writeln!(
                md,
                "| {} | {} | {:.3} |",
                s.rank, s.configuration, s.log_strength
            );
            let _ = writeln!(
                ranking_csv,
                "{question},{},{},{}",
                s.rank, s.configuration, s.log_strength
            );
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut written = Vec::new();
    for (name, text) in [
        ("study.md", md),
        ("study.csv", csv),
        ("study_ranking.csv", ranking_csv),
    ] {
        let path = dir.join(name);
        let tmp = anchor_core::ledger::unique_temporary(&path);
        std::fs::write(&tmp, text).map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(
        id: &str,
        kind: &str,
        left: &str,
        right: &str,
        expected: Option<&str>,
    ) -> study_pairs::Row {
        study_pairs::Row {
            pair_id: id.into(),
            kind: kind.into(),
            caption_id: "c".into(),
            caption: "a caption".into(),
            seed: 42,
            left_configuration: left.into(),
            right_configuration: right.into(),
            left_id: "c".into(),
            right_id: "c".into(),
            expected: expected.map(str::to_owned),
            left_image: vec![],
            right_image: vec![],
        }
    }

    fn vote(
        rater: &str,
        pair_id: &str,
        position: i64,
        subjects: &str,
        quality: &str,
    ) -> votes::Row {
        votes::Row {
            rater: rater.into(),
            pair_id: pair_id.into(),
            position,
            subjects: subjects.into(),
            quality: quality.into(),
        }
    }

    #[test]
    fn win_rates_intervals_ranking_and_attention_exclusions() {
        let pairs = vec![
            pair("q1", "compare", "safe", "base", None),
            pair("q2", "compare", "base", "safe", None),
            pair("q3", "compare", "lora", "safe", None),
            pair("q4", "compare", "safe", "lora", None),
            pair("q5", "attention", "safe", "safe", Some("right")),
        ];
        // ann prefers safe on subjects, calls quality equal, passes the check;
        // bob always answers left and fails the check: left out.
        let votes = vec![
            vote("ann", "q1", 0, "left", "equal"),
            vote("ann", "q2", 1, "right", "equal"),
            vote("ann", "q3", 2, "right", "left"),
            vote("ann", "q4", 3, "left", "right"),
            vote("ann", "q5", 4, "right", "left"),
            vote("bob", "q1", 0, "left", "left"),
            vote("bob", "q2", 1, "left", "left"),
            vote("bob", "q5", 2, "left", "left"),
        ];
        let timing = BTreeMap::from([("ann".to_owned(), vec![1000, 3000, 2000, 4000, 5000])]);
        let r = build(&pairs, &votes, &timing, &ReportParams::default()).unwrap();
        assert_eq!((r.compare_pairs, r.attention_pairs), (4, 1));
        let ann = &r.raters[0];
        assert_eq!(
            (ann.votes, ann.checks, ann.checks_passed, ann.kept),
            (5, 1, 1, true)
        );
        assert_eq!(ann.median_seconds, Some(3.0));
        assert!(!r.raters[1].kept);
        // safe is in both configuration pairs: it is A, and wins every subjects vote.
        let subjects: Vec<&Comparison> = r
            .comparisons
            .iter()
            .filter(|c| c.question == "subjects")
            .collect();
        assert_eq!(subjects.len(), 2);
        for c in &subjects {
            assert_eq!(c.a, "safe");
            assert_eq!((c.votes, c.wins_a, c.wins_b, c.ties), (2, 2, 0, 0));
            assert_eq!((c.win_rate, c.ci_low, c.ci_high), (1.0, 1.0, 1.0));
        }
        let quality: Vec<&Comparison> = r
            .comparisons
            .iter()
            .filter(|c| c.question == "quality")
            .collect();
        let vs_base = quality.iter().find(|c| c.b == "base").unwrap();
        assert_eq!((vs_base.ties, vs_base.win_rate), (2, 0.5));
        let vs_lora = quality.iter().find(|c| c.b == "lora").unwrap();
        // q3: lora left, "left" → lora wins; q4: safe left, "right" → lora wins.
        assert_eq!(
            (vs_lora.wins_a, vs_lora.wins_b, vs_lora.win_rate),
            (0, 2, 0.0)
        );
        let first = |q: &str| {
            r.ranking
                .iter()
                .find(|s| s.question == q && s.rank == 1)
                .unwrap()
                .configuration
                .clone()
        };
        assert_eq!(first("subjects"), "safe");
        assert_eq!(first("quality"), "lora");
        let logs: f64 = r
            .ranking
            .iter()
            .filter(|s| s.question == "subjects")
            .map(|s| s.log_strength)
            .sum();
        assert!(logs.abs() < 1e-9);

        let dir = tempfile::tempdir().unwrap();
        let files = write(dir.path(), &r).unwrap();
        let md = std::fs::read_to_string(&files[0]).unwrap();
        assert!(md.contains("| bob | 3 | 0/1 | no |"), "{md}");
        assert!(
            md.contains("| safe | base | 2 | 2 | 0 | 0 | 1.000 | [1.000, 1.000] |"),
            "{md}"
        );
        let csv = std::fs::read_to_string(&files[1]).unwrap();
        assert!(csv.contains("quality,safe,lora,2,0,2,0,0,0,0"), "{csv}");
        // A vote on a pair the study lacks is an error, not a silent drop.
        let stray = [vote("cy", "q9", 0, "left", "left")];
        assert!(build(&pairs, &stray, &timing, &ReportParams::default()).is_err());
    }

    #[test]
    fn bootstrap_intervals_cover_the_mean_and_narrow_with_more_votes() {
        let mut rng = Rng::new(1, 0);
        let few: Vec<f64> = (0..10).map(|i| f64::from(i % 2 == 0)).collect();
        let many: Vec<f64> = (0..1000).map(|i| f64::from(i % 2 == 0)).collect();
        let (a, b) = bootstrap_interval(&few, 2000, &mut rng);
        let (c, d) = bootstrap_interval(&many, 2000, &mut rng);
        assert!(a < 0.5 && 0.5 < b, "{a} {b}");
        assert!(c < 0.5 && 0.5 < d && d - c < (b - a) / 3.0, "{c} {d}");
    }

    #[test]
    fn bradley_terry_recovers_the_strength_order() {
        let configs: Vec<String> = ["x", "y", "z"].iter().map(|s| (*s).to_owned()).collect();
        // x beats y 8:2, y beats z 7:3, x beats z 9:1.
        let wins = HashMap::from([
            ((0, 1), 8.0),
            ((1, 0), 2.0),
            ((1, 2), 7.0),
            ((2, 1), 3.0),
            ((0, 2), 9.0),
            ((2, 0), 1.0),
        ]);
        let s = bradley_terry(&configs, &wins);
        assert!(s[0] > s[1] && s[1] > s[2], "{s:?}");
        // The MM fixed point: each one's wins equal its expected wins.
        let p: Vec<f64> = s.iter().map(|x| x.exp()).collect();
        let expected_x = 10.0 * p[0] / (p[0] + p[1]) + 10.0 * p[0] / (p[0] + p[2]);
        assert!((expected_x - 17.0).abs() < 1e-6, "{expected_x}");
    }
}
