//! `anchor annotate`: the step over a small `pairs_curated` built here (heuristic and
//! OpenAI-compatible backends), idempotence, the durable cache (prompt-version change, more
//! data, `kill -9` + resume with byte-identical output), `--caption`, `--report`, and the
//! real SmolLM2 GGUF when it is present.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anchor_annotate::step::{SubjectRow, read_subjects};
use anchor_core::PartStats;
use anchor_core::step::{self, BoxError, PartSink, RunOptions, Step, StepCtx, StepId};
use anchor_core::tables::{TableDef, pairs_curated, splits};
use arrow_array::{ArrayRef, BooleanArray, RecordBatch, StringArray, new_null_array};
use arrow_schema::{DataType, SchemaRef};

use crate::util::{Run, TestDir};

/// Captions in the style of news captions; every third row is dropped by curation.
const CAPTIONS: &[&str] = &[
    "Chancellor Angela Merkel arrives for talks in Brussels.",
    "Firefighters battle a wildfire near Athens, Greece, on Tuesday.",
    "A fisherman repairs his nets on the harbour wall at dawn.",
    "Lionel Messi lifts the World Cup trophy at Lusail Stadium in Qatar.",
    "Protesters gather outside the Houses of Parliament in London.",
    "Fans of Atlético Madrid cheer in Zürich before the final.",
    "Pope Francis greets pilgrims in St Peter's Square on Sunday.",
    "A tractor ploughs a field near Norwich as rain clouds gather.",
    "President Joe Biden boards Air Force One at Joint Base Andrews.",
    "Rescue workers search the rubble of a collapsed building in Antakya.",
    "Children play in a fountain during the heatwave in Paris.",
    "Serena Williams serves during her match at Wimbledon.",
    "Snow covers the roofs of houses in the village of Hallstatt, Austria.",
    "Emmanuel Macron shakes hands with Olaf Scholz at the Elysee Palace.",
    "A nurse prepares a vaccine at a clinic in Nairobi, Kenya.",
    "Commuters wait on a crowded platform at Shinjuku station in Tokyo.",
    "Ukrainian soldiers ride a tank near Bakhmut.",
    "A farmer inspects his wheat crop in Kansas.",
    "Taylor Swift performs at Wembley Stadium in London.",
    "Volunteers clean oil from a beach in Brittany.",
    "The Northern Lights over a lake in Tromso, Norway.",
    "King Charles III waves from the balcony of Buckingham Palace.",
    "A cyclist rides past the Colosseum in Rome.",
    "Elderly residents queue for water in Khartoum.",
    "Chancellor Angela Merkel arrives for talks in Brussels.",
    "Smoke rises over the city of Gaza after an air strike.",
    "Rain in Spain",
    "Never valid",
    "A dog runs along the beach at Brighton.",
    "Students celebrate their exam results in Belfast.",
    "Workers repair a power line after the storm in Florida.",
    "A giant panda eats bamboo at a zoo in Chengdu.",
    "Firefighters tackle a blaze at a warehouse in Manchester.",
    "Queen Elizabeth II at the state opening of Parliament.",
    "A man walks his dog through a snowy park in Berlin.",
    "Athletes compete in the marathon in Boston.",
];

fn fixture_ids() -> Vec<String> {
    (0..CAPTIONS.len())
        .map(|i| format!("pair-{i:04}"))
        .collect()
}

/// A column of `len` default values for a non-null field of `dt`.
fn default_column(dt: &DataType, len: usize) -> ArrayRef {
    match dt {
        DataType::Utf8 => Arc::new(StringArray::from(vec!["x"; len])),
        DataType::Boolean => Arc::new(BooleanArray::from(vec![false; len])),
        DataType::Int32 => Arc::new(arrow_array::Int32Array::from(vec![0; len])),
        DataType::Int64 => Arc::new(arrow_array::Int64Array::from(vec![0; len])),
        DataType::Float64 => Arc::new(arrow_array::Float64Array::from(vec![0.0; len])),
        DataType::List(item) => {
            let mut b =
                arrow_array::builder::ListBuilder::new(arrow_array::builder::StringBuilder::new())
                    .with_field(item.clone());
            for _ in 0..len {
                b.append(true);
            }
            Arc::new(b.finish())
        }
        other => panic!("fixture has no default for {other}"),
    }
}

/// A batch of `schema` with `given` columns and defaults (null when nullable) elsewhere.
fn batch(schema: SchemaRef, len: usize, given: BTreeMap<&str, ArrayRef>) -> RecordBatch {
    let cols = schema
        .fields()
        .iter()
        .map(|f| match given.get(f.name().as_str()) {
            Some(a) => a.clone(),
            None if f.is_nullable() => new_null_array(f.data_type(), len),
            None => default_column(f.data_type(), len),
        })
        .collect();
    RecordBatch::try_new(schema, cols).unwrap()
}

/// Writes `pairs_curated` (every caption; `kept` when `i % 3 != 1` or `i` is below
/// `kept_every_row_below`) and `splits` (kept rows) with the core schemas, as curate and
/// split would.
struct Fixture {
    kept_every_row_below: usize,
}

impl Fixture {
    fn kept(&self) -> Vec<bool> {
        (0..CAPTIONS.len())
            .map(|i| i % 3 != 1 || i < self.kept_every_row_below)
            .collect()
    }
}

struct FixtureSplit<'a>(&'a Fixture);

impl StepId for Fixture {
    const NAME: &'static str = "fixture_curate";
    const VERSION: u32 = 1;
}

impl Step for Fixture {
    fn params(&self) -> serde_json::Result<serde_json::Value> {
        Ok(serde_json::json!({ "kept_every_row_below": self.kept_every_row_below }))
    }
    fn outputs(&self) -> Vec<&'static TableDef> {
        vec![&pairs_curated::DEF]
    }
    fn plan(&self, _ctx: &StepCtx) -> Result<usize, BoxError> {
        Ok(1)
    }
    fn run_part(
        &self,
        _p: usize,
        _c: &StepCtx,
        sink: &mut PartSink,
    ) -> Result<PartStats, BoxError> {
        let n = CAPTIONS.len();
        let kept = self.kept();
        let given = BTreeMap::from([
            (
                pairs_curated::ID,
                Arc::new(StringArray::from(fixture_ids())) as ArrayRef,
            ),
            (
                pairs_curated::CAPTION,
                Arc::new(StringArray::from(CAPTIONS.to_vec())),
            ),
            (
                pairs_curated::SUBSET,
                Arc::new(StringArray::from_iter_values(
                    (0..n).map(|i| if i % 4 == 2 { "non_entity" } else { "entity" }),
                )),
            ),
            (pairs_curated::KEPT, Arc::new(BooleanArray::from(kept))),
        ]);
        sink.write(
            pairs_curated::NAME,
            &batch(pairs_curated::schema(), n, given),
        )?;
        Ok(PartStats::default())
    }
}

impl StepId for FixtureSplit<'_> {
    const NAME: &'static str = "fixture_split";
    const VERSION: u32 = 1;
}

impl Step for FixtureSplit<'_> {
    fn params(&self) -> serde_json::Result<serde_json::Value> {
        self.0.params()
    }
    fn outputs(&self) -> Vec<&'static TableDef> {
        vec![&splits::DEF]
    }
    fn plan(&self, _ctx: &StepCtx) -> Result<usize, BoxError> {
        Ok(1)
    }
    fn run_part(
        &self,
        _p: usize,
        _c: &StepCtx,
        sink: &mut PartSink,
    ) -> Result<PartStats, BoxError> {
        let ids: Vec<String> = fixture_ids()
            .into_iter()
            .zip(self.0.kept())
            .filter_map(|(id, k)| k.then_some(id))
            .collect();
        let n = ids.len();
        let given = BTreeMap::from([
            (splits::ID, Arc::new(StringArray::from(ids)) as ArrayRef),
            (
                splits::SPLIT,
                Arc::new(StringArray::from_iter_values(
                    (0..n).map(|i| ["train", "val", "test"][i % 3]),
                )),
            ),
        ]);
        sink.write(splits::NAME, &batch(splits::schema(), n, given))?;
        Ok(PartStats::default())
    }
}

fn write_inputs(out: &Path, kept_every_row_below: usize) -> usize {
    let f = Fixture {
        kept_every_row_below,
    };
    let opts = RunOptions::default();
    step::run(&f, out, &opts).unwrap();
    step::run(&FixtureSplit(&f), out, &opts).unwrap();
    f.kept().iter().filter(|k| **k).count()
}

fn kept_captions(kept_every_row_below: usize) -> Vec<(String, String)> {
    let f = Fixture {
        kept_every_row_below,
    };
    let mut v: Vec<(String, String)> = fixture_ids()
        .into_iter()
        .zip(CAPTIONS.iter().map(|c| c.to_string()))
        .zip(f.kept())
        .filter_map(|(r, k)| k.then_some(r))
        .collect();
    v.sort();
    v
}

fn subject_files(out: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(out.join("subjects"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

fn markers(out: &Path) -> usize {
    std::fs::read_dir(out.join("annotate/parts"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter(|e| e.file_name().to_string_lossy().ends_with(".json"))
                .count()
        })
        .unwrap_or(0)
}

fn assert_valid(rows: &[SubjectRow], kept: &[(String, String)]) {
    let got: Vec<(String, String)> = rows
        .iter()
        .map(|r| (r.id.clone(), r.caption.clone()))
        .collect();
    assert_eq!(got, kept, "one row per kept caption, sorted by id");
    for r in rows {
        for s in &r.subjects {
            s.validate(&r.caption)
                .unwrap_or_else(|e| panic!("{}: {e}", r.id));
            assert_eq!(&r.caption[s.start as usize..s.end as usize], s.text);
        }
    }
}

#[test]
fn heuristic_annotate_is_idempotent_and_valid() {
    let dir = TestDir::new();
    let out = dir.path().join("out");
    write_inputs(&out, 0);
    let args = [
        "--out",
        "out",
        "--jobs",
        "1",
        "annotate",
        "--backend",
        "heuristic",
        "--captions-per-part",
        "4",
    ];
    let first = Run::of(dir.anchor().args(args)).success().stdout();
    assert!(
        first.contains("annotate: done, 6 parts computed"),
        "{first}"
    );
    // The repeated Merkel caption is answered once and replayed from the cache.
    assert!(
        first.contains("1 captions from cache, 23 annotated"),
        "{first}"
    );
    let rows = read_subjects(&out).unwrap();
    assert_valid(&rows, &kept_captions(0));
    assert!(rows.iter().all(|r| r.backend == "heuristic"
        && r.prompt_version.is_none()
        && r.error_class.is_none()));
    assert!(rows.iter().filter(|r| !r.subjects.is_empty()).count() > 20);
    let merkel = rows.iter().find(|r| r.id == "pair-0000").unwrap();
    assert!(
        merkel.subjects.iter().any(|s| s.text == "Angela Merkel"),
        "{merkel:?}"
    );

    let again = Run::of(dir.anchor().args(args)).success().stdout();
    assert!(again.contains("annotate: up to date"), "{again}");

    // Forced: everything comes from the cache, byte-identical.
    let before = subject_files(&out);
    let forced = Run::of(dir.anchor().args(args).arg("--force"))
        .success()
        .stdout();
    assert!(
        forced.contains("24 captions from cache, 0 annotated"),
        "{forced}"
    );
    assert_eq!(subject_files(&out), before);

    let stats: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("annotate/stats.json")).unwrap())
            .unwrap();
    assert_eq!(stats["rows_out"], 24);
    assert_eq!(
        stats["counters"]["split_train"].as_u64().unwrap()
            + stats["counters"]["split_val"].as_u64().unwrap()
            + stats["counters"]["split_test"].as_u64().unwrap(),
        24
    );
}

/// A chat-completions server on 127.0.0.1 answering with the caption's first word (valid),
/// except: "Rain in Spain" gets a non-span on its first attempt and a valid answer on the
/// retry; "Never valid" always gets a non-span. Counts requests per caption.
struct Server {
    url: String,
    hits: Arc<Mutex<BTreeMap<String, u32>>>,
    stop: Arc<AtomicBool>,
}

impl Server {
    fn start(delay: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        let hits: Arc<Mutex<BTreeMap<String, u32>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (h, s) = (hits.clone(), stop.clone());
        listener.set_nonblocking(true).unwrap();
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let h = h.clone();
                        std::thread::spawn(move || serve_one(conn, &h, delay));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
        });
        Server { url, hits, stop }
    }

    fn total(&self) -> u32 {
        self.hits.lock().unwrap().values().sum()
    }

    fn hits(&self, caption: &str) -> u32 {
        self.hits.lock().unwrap().get(caption).copied().unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn serve_one(mut conn: std::net::TcpStream, hits: &Mutex<BTreeMap<String, u32>>, delay: Duration) {
    conn.set_nonblocking(false).ok();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let body = loop {
        let n = conn.read(&mut chunk).unwrap_or(0);
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .and_then(|v| v.trim().parse().ok())
                })
                .unwrap_or(0);
            if body.len() >= len {
                break body.to_string();
            }
        }
    };
    let req: serde_json::Value = serde_json::from_str(&body).unwrap();
    let user = req["messages"].as_array().unwrap().last().unwrap()["content"]
        .as_str()
        .unwrap()
        .to_string();
    let caption = user.trim_start_matches("Caption: ").to_string();
    let attempt = {
        let mut h = hits.lock().unwrap();
        let n = h.entry(caption.clone()).or_default();
        *n += 1;
        *n
    };
    std::thread::sleep(delay);
    let first = caption.split_whitespace().next().unwrap_or("x").to_string();
    let content = if caption == "Never valid" || (caption == "Rain in Spain" && attempt == 1) {
        r#"{"subjects":[{"text":"Atlantis","kind":"place","weight":1.1}]}"#.to_string()
    } else {
        format!(r#"{{"subjects":[{{"text":"{first}","kind":"other","weight":1.21}}]}}"#)
    };
    let b = serde_json::json!({
        "choices": [{"message": {"role": "assistant", "content": content}}],
        "usage": {"prompt_tokens": 50, "completion_tokens": 12}
    })
    .to_string();
    let resp = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
        b.len()
    );
    let _ = conn.write_all(resp.as_bytes());
}

fn openai_args<'a>(out: &'a str, url: &'a str, prompt: &'a str) -> Vec<&'a str> {
    vec![
        "--out",
        out,
        "--jobs",
        "1",
        "--set",
        "annotate.max_attempts=2",
        "annotate",
        "--backend",
        "openai",
        "--endpoint",
        url,
        "--served-model",
        "test-model",
        "--prompt",
        prompt,
        "--concurrency",
        "1",
        "--captions-per-part",
        "3",
    ]
}

#[test]
fn openai_annotate_caches_retries_and_records_errors() {
    let dir = TestDir::new();
    let out = dir.path().join("out");
    let kept = write_inputs(&out, 0);
    let unique = kept - 1; // the Merkel caption occurs twice
    let server = Server::start(Duration::ZERO);
    let run = |prompt: &str| {
        Run::of(dir.anchor().args(openai_args("out", &server.url, prompt)))
            .success()
            .stdout()
    };
    let first = run("few-shot-v1");
    assert!(first.contains("annotate: done"), "{first}");
    assert!(first.contains("rejected answers: not_a_span 1"), "{first}");
    let rows = read_subjects(&out).unwrap();
    assert_valid(&rows, &kept_captions(0));
    // Retried once, then valid; the never-valid caption is kept with its error class.
    assert_eq!(server.hits("Rain in Spain"), 2);
    assert_eq!(server.hits("Never valid"), 2);
    let rain = rows.iter().find(|r| r.caption == "Rain in Spain").unwrap();
    assert!(rain.error_class.is_none() && rain.subjects[0].text == "Rain");
    let never = rows.iter().find(|r| r.caption == "Never valid").unwrap();
    assert_eq!(never.error_class.as_deref(), Some("not_a_span"));
    assert!(never.subjects.is_empty() && never.raw.contains("Atlantis"));
    assert!(rows.iter().all(|r| r.backend == "openai"
        && r.model_id == "test-model"
        && r.prompt_version.as_deref() == Some("few-shot-v1")));
    // Each distinct caption was asked once (plus the two retries).
    assert_eq!(server.total() as usize, unique + 2);
    let few_shot_files = subject_files(&out);

    assert!(run("few-shot-v1").contains("annotate: up to date"));
    assert_eq!(server.total() as usize, unique + 2);

    // A new prompt version recomputes every row that used the prompt...
    let zero = run("zero-shot-v1");
    assert!(
        zero.contains(&format!("1 captions from cache, {unique} annotated")),
        "{zero}"
    );
    // (The server answers "Rain in Spain" validly from its second request on.)
    let asked = (unique + 2) + (unique + 1);
    assert_eq!(server.total() as usize, asked);
    let rows = read_subjects(&out).unwrap();
    assert!(
        rows.iter()
            .all(|r| r.prompt_version.as_deref() == Some("zero-shot-v1"))
    );
    // ...and going back replays the cache: no request, the same bytes as before.
    let back = run("few-shot-v1");
    assert!(
        back.contains(&format!("{kept} captions from cache, 0 annotated")),
        "{back}"
    );
    assert_eq!(server.total() as usize, asked);
    assert_eq!(subject_files(&out), few_shot_files);

    // More data: only the new captions are requested.
    let more = write_inputs(&out, 9);
    assert_eq!(more, kept + 3);
    let grown = run("few-shot-v1");
    assert!(
        grown.contains(&format!("{kept} captions from cache, 3 annotated")),
        "{grown}"
    );
    assert_eq!(server.total() as usize, asked + 3);
    assert_valid(&read_subjects(&out).unwrap(), &kept_captions(9));
}

#[test]
fn openai_annotate_survives_kill_9() {
    let dir = TestDir::new();
    let kept = write_inputs(&dir.path().join("reference"), 0);
    write_inputs(&dir.path().join("killed"), 0);
    let slow = Server::start(Duration::from_millis(60));
    Run::of(
        dir.anchor()
            .args(openai_args("reference", &slow.url, "few-shot-v1")),
    )
    .success();

    let server = Server::start(Duration::from_millis(60));
    let killed = dir.path().join("killed");
    let mut child = dir
        .anchor()
        .args(openai_args("killed", &server.url, "few-shot-v1"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while markers(&killed) < 2 {
        assert!(Instant::now() < deadline, "annotate made no progress");
        assert!(
            child.try_wait().unwrap().is_none(),
            "annotate finished before it could be killed"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // Land inside the next part: its first caption is cached, the part is not committed.
    std::thread::sleep(Duration::from_millis(90));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let committed = markers(&killed);
    let parts = kept.div_ceil(3);
    assert!(
        committed < parts,
        "the kill must land mid-run ({committed} of {parts})"
    );
    let before = server.total();

    let resumed = Run::of(
        dir.anchor()
            .args(openai_args("killed", &server.url, "few-shot-v1")),
    )
    .success()
    .stdout();
    assert!(
        resumed.contains(&format!("{committed} resumed")),
        "{resumed}"
    );
    assert_eq!(
        subject_files(&killed),
        subject_files(&dir.path().join("reference"))
    );
    // Nothing answered before the kill was asked again, except at most the one request
    // in flight when it landed.
    let asked_twice = server.total() as usize - (kept - 1 + 2);
    assert!(
        asked_twice <= 1,
        "{asked_twice} captions re-requested (before kill: {before})"
    );
}

fn model() -> Option<PathBuf> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../data/models/SmolLM2-135M-Instruct.Q4_1.gguf");
    p.is_file().then_some(p)
}

#[test]
fn caption_mode_and_report_with_heuristic() {
    let dir = TestDir::new();
    let cap = "Chancellor Angela Merkel arrives for talks in Brussels.";
    let out = Run::of(
        dir.anchor()
            .args(["annotate", "--backend", "heuristic", "--caption", cap]),
    )
    .success()
    .stdout();
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let subs: Vec<anchor_annotate::Subject> =
        serde_json::from_value(v["subjects"].clone()).unwrap();
    assert!(subs.iter().any(|s| s.text == "Angela Merkel"), "{out}");
    for s in &subs {
        s.validate(cap).unwrap();
    }
    assert_eq!(v["backend"], "heuristic");

    // Several captions in one call: repeated flags and stdin lines, one JSON line each, in order.
    let caps = [cap, "Rescue workers search the rubble in Hatay."];
    let mut child = dir
        .anchor()
        .args([
            "annotate",
            "--backend",
            "heuristic",
            "--caption",
            caps[0],
            "--caption",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "{}\n\n{}", caps[1], caps[0]).unwrap();
    }
    let many = child.wait_with_output().unwrap();
    assert!(
        many.status.success(),
        "{}",
        String::from_utf8_lossy(&many.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8(many.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let got: Vec<&str> = lines
        .iter()
        .map(|v| v["caption"].as_str().unwrap())
        .collect();
    assert_eq!(got, [caps[0], caps[1], caps[0]]);
    assert_eq!(lines[0]["subjects"], lines[2]["subjects"]);

    let report = Run::of(dir.anchor().args([
        "--out",
        "out",
        "annotate",
        "--report",
        "--backends",
        "heuristic",
    ]))
    .success()
    .stdout();
    for subset in [
        "all",
        "written",
        "real-tune",
        "real-heldout",
        "entity",
        "non_entity",
    ] {
        assert!(
            report.contains(&format!("| heuristic | {subset} |")),
            "{subset}: {report}"
        );
    }
    assert!(report.contains("| heuristic | written | 154 |"), "{report}");
    assert!(report.contains("main R") && report.contains("main-subject recall"));
    let written = std::fs::read_to_string(dir.path().join("out/annotate/report.md")).unwrap();
    assert_eq!(written, report);
    let preds =
        std::fs::read_to_string(dir.path().join("out/annotate/report-heuristic.jsonl")).unwrap();
    let all_rows = report
        .lines()
        .find(|l| l.starts_with("| heuristic | all |"))
        .unwrap();
    assert!(all_rows.contains(&format!("| {} |", preds.lines().count())));

    // A subset flag scores only that subset.
    let held = Run::of(dir.anchor().args([
        "--out",
        "out",
        "annotate",
        "--report",
        "--backends",
        "heuristic",
        "--subset",
        "real-heldout",
    ]))
    .success()
    .stdout();
    assert!(!held.contains("| heuristic | written |"), "{held}");
    assert!(held.contains("| heuristic | real-heldout |"), "{held}");

    // A missing model names the command that fetches it (exit status 2: the user's to fix).
    let missing =
        Run::of(
            dir.anchor()
                .args(["annotate", "--model", "nowhere.gguf", "--caption", cap]),
        );
    assert_eq!(missing.code(), Some(2), "{}", missing.stderr());
    assert!(
        missing.stderr().contains("make annotate"),
        "{}",
        missing.stderr()
    );
    assert!(missing.stderr().contains("fetch-models.sh smollm2"));
}

#[test]
fn gguf_smollm2_annotates_every_row_validly() {
    let Some(model) = model() else {
        eprintln!(
            "skipping: data/models/SmolLM2-135M-Instruct.Q4_1.gguf not found (scripts/fetch-models.sh smollm2)"
        );
        return;
    };
    let dir = TestDir::new();
    let cap = "Lionel Messi lifts the World Cup trophy at Lusail Stadium in Qatar.";
    let m = model.display().to_string();
    let one = Run::of(
        dir.anchor()
            .args(["annotate", "--model", &m, "--caption", cap]),
    )
    .success()
    .stdout();
    let v: serde_json::Value = serde_json::from_str(one.trim()).unwrap();
    assert_eq!(v["backend"], "gguf");
    assert!(v["error_class"].is_null(), "{one}");
    let subs: Vec<anchor_annotate::Subject> =
        serde_json::from_value(v["subjects"].clone()).unwrap();
    assert!(!subs.is_empty(), "{one}");
    for s in &subs {
        s.validate(cap).unwrap();
    }
    // One model load for several captions: one valid line each, the same answer for the same
    // caption (the cache holds nothing of the previous caption).
    let cap2 = "Rescue workers search the rubble after an earthquake in Hatay, Turkey.";
    let many = Run::of(dir.anchor().args([
        "annotate",
        "--model",
        &m,
        "--caption",
        cap,
        "--caption",
        cap2,
        "--caption",
        cap,
    ]))
    .success()
    .stdout();
    let lines: Vec<serde_json::Value> = many
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{many}");
    assert_eq!(lines[0]["subjects"], v["subjects"], "{many}");
    assert_eq!(lines[2]["subjects"], v["subjects"], "{many}");
    assert!(lines[1]["error_class"].is_null(), "{many}");

    let out = dir.path().join("out");
    write_inputs(&out, 0);
    let run = Run::of(dir.anchor().args([
        "--out",
        "out",
        "annotate",
        "--model",
        &m,
        "--captions-per-part",
        "8",
    ]))
    .success()
    .stdout();
    assert!(run.contains("annotate: done"), "{run}");
    let rows = read_subjects(&out).unwrap();
    assert_valid(&rows, &kept_captions(0));
    for r in &rows {
        assert!(
            r.error_class.is_none(),
            "{}: {:?} {}",
            r.id,
            r.error_class,
            r.raw
        );
        assert_eq!(r.backend, "gguf");
        assert_eq!(
            r.model_id,
            "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
        );
    }
    let nonempty = rows.iter().filter(|r| !r.subjects.is_empty()).count();
    assert!(
        nonempty * 10 >= rows.len() * 9,
        "{nonempty} of {} rows have subjects",
        rows.len()
    );
}
