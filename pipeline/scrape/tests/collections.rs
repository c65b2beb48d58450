//! `visualnews:PATH` and `nytimes800k:PATH`: tiny synthetic collections in
//! a temp dir (real JPEGs) become `articles` and `pairs` rows; a missing or
//! broken image file is a row with a status, never a skipped row.

use std::collections::BTreeMap;
use std::path::Path;

use anchor_core::step::{self, RunOptions};
use anchor_core::store::TableReader;
use anchor_core::tables::{articles, pairs};
use anchor_scrape::collection::Collection;
use anchor_scrape::demo::photos::{generated, jpeg};
use anchor_scrape::step::{ScrapeParams, ScrapeStep};
use arrow_array::cast::AsArray;
use arrow_array::{Array, RecordBatch};

fn read(out: &Path, table: &str) -> Vec<RecordBatch> {
    TableReader::open(out, table, None)
        .unwrap()
        .read_all(None, 1024)
        .map(|b| b.unwrap())
        .collect()
}

/// Rows as maps of column name to the string form of the value.
fn rows(batches: &[RecordBatch], cols: &[&str]) -> Vec<BTreeMap<String, Option<String>>> {
    let mut out = Vec::new();
    for b in batches {
        for i in 0..b.num_rows() {
            let mut row = BTreeMap::new();
            for c in cols {
                let a = b.column_by_name(c).unwrap();
                let v = if a.is_null(i) {
                    None
                } else if let Some(s) = a.as_string_opt::<i32>() {
                    Some(s.value(i).to_owned())
                } else if let Some(n) = a.as_primitive_opt::<arrow_array::types::Int32Type>() {
                    Some(n.value(i).to_string())
                } else if let Some(bl) = a.as_boolean_opt() {
                    Some(bl.value(i).to_string())
                } else {
                    Some("<other>".to_owned())
                };
                row.insert((*c).to_owned(), v);
            }
            out.push(row);
        }
    }
    out
}

fn run(kind: Collection, file: &Path, out: &Path) {
    let step = ScrapeStep::new(ScrapeParams::collection(kind, file.to_path_buf()), None).unwrap();
    step::run(&step, out, &RunOptions::default()).unwrap();
}

#[test]
fn visualnews_records_become_rows_with_statuses() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("visualnews");
    std::fs::create_dir_all(root.join("bbc/images/0001")).unwrap();
    std::fs::create_dir_all(root.join("usa_today/images")).unwrap();
    let photo = jpeg(&generated(3), 85);
    std::fs::write(root.join("bbc/images/0001/a.jpg"), &photo).unwrap();
    std::fs::write(root.join("bbc/images/0001/b.jpg"), jpeg(&generated(4), 85)).unwrap();
    // Truncated: a JPEG header and no data.
    std::fs::write(root.join("usa_today/images/broken.jpg"), &photo[..200]).unwrap();
    let data = serde_json::json!([
        {"id": 1, "source": "bbc", "topic": "world", "caption": "Crowds gather in Kyiv. Photograph: Jane Doe/Reuters",
         "image_path": "./bbc/images/0001/a.jpg", "article_path": "./bbc/articles/0001.txt"},
        {"id": 2, "source": "bbc", "topic": "world", "caption": "The mayor speaks to reporters",
         "image_path": "./bbc/images/0001/b.jpg", "article_path": "./bbc/articles/0001.txt"},
        {"id": 3, "source": "usa_today", "topic": "sport", "caption": "A broken photo",
         "image_path": "./usa_today/images/broken.jpg", "article_path": "./usa_today/articles/7.txt"},
        {"id": 4, "source": "washington_post", "topic": "politics", "caption": "A photo that was never unpacked",
         "image_path": "./washington_post/images/missing.jpg", "article_path": "./washington_post/articles/9.txt"}
    ]);
    let file = root.join("data.json");
    std::fs::write(&file, serde_json::to_vec(&data).unwrap()).unwrap();
    let out = dir.path().join("out");
    run(Collection::VisualNews, &file, &out);

    let arts = rows(
        &read(&out, articles::NAME),
        &[
            articles::URL,
            articles::OUTLET,
            articles::SOURCE,
            articles::SECTION,
            articles::N_IMAGES,
        ],
    );
    let mut by_url: BTreeMap<String, BTreeMap<String, Option<String>>> = arts
        .into_iter()
        .map(|r| (r[articles::URL].clone().unwrap(), r))
        .collect();
    assert_eq!(by_url.len(), 3, "{by_url:?}");
    let bbc = by_url.remove("visualnews:bbc/articles/0001.txt").unwrap();
    assert_eq!(bbc[articles::OUTLET].as_deref(), Some("bbc"));
    assert_eq!(bbc[articles::SOURCE].as_deref(), Some("visualnews"));
    assert_eq!(bbc[articles::SECTION].as_deref(), Some("world"));
    assert_eq!(bbc[articles::N_IMAGES].as_deref(), Some("2"));
    assert_eq!(
        by_url["visualnews:usa_today/articles/7.txt"][articles::OUTLET].as_deref(),
        Some("usatoday")
    );
    assert_eq!(
        by_url["visualnews:washington_post/articles/9.txt"][articles::OUTLET].as_deref(),
        Some("washingtonpost")
    );

    let p = rows(
        &read(&out, pairs::NAME),
        &[
            pairs::IMAGE_URL,
            pairs::CAPTION,
            pairs::CREDIT,
            pairs::STATUS,
            pairs::ERROR_CLASS,
            pairs::WIDTH,
            pairs::POSITION,
            pairs::IS_LEAD,
            pairs::SHA256,
        ],
    );
    let by_img: BTreeMap<String, BTreeMap<String, Option<String>>> = p
        .into_iter()
        .map(|r| (r[pairs::IMAGE_URL].clone().unwrap(), r))
        .collect();
    assert_eq!(by_img.len(), 4);
    let a = &by_img["visualnews:bbc/images/0001/a.jpg"];
    assert_eq!(a[pairs::STATUS].as_deref(), Some("success"));
    assert_eq!(a[pairs::CAPTION].as_deref(), Some("Crowds gather in Kyiv."));
    assert_eq!(a[pairs::CREDIT].as_deref(), Some("Jane Doe/Reuters"));
    assert_eq!(a[pairs::POSITION].as_deref(), Some("0"));
    assert_eq!(a[pairs::IS_LEAD].as_deref(), Some("true"));
    assert_eq!(
        a[pairs::SHA256].as_deref(),
        Some(anchor_core::ids::sha256_hex(&photo).as_str())
    );
    assert_eq!(
        a[pairs::WIDTH].as_deref(),
        Some(generated(3).width().to_string().as_str())
    );
    let b = &by_img["visualnews:bbc/images/0001/b.jpg"];
    assert_eq!(b[pairs::POSITION].as_deref(), Some("1"));
    assert_eq!(b[pairs::IS_LEAD].as_deref(), Some("false"));
    let broken = &by_img["visualnews:usa_today/images/broken.jpg"];
    assert_eq!(broken[pairs::STATUS].as_deref(), Some("failed_to_decode"));
    assert!(broken[pairs::ERROR_CLASS].is_some());
    let missing = &by_img["visualnews:washington_post/images/missing.jpg"];
    assert_eq!(
        missing[pairs::STATUS].as_deref(),
        Some("failed_to_download")
    );
    assert_eq!(missing[pairs::ERROR_CLASS].as_deref(), Some("not_found"));
}

#[test]
fn nytimes800k_documents_become_rows() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("nyt");
    std::fs::create_dir_all(root.join("images_processed")).unwrap();
    std::fs::write(
        root.join("images_processed/5c1a9e.jpg"),
        jpeg(&generated(9), 85),
    )
    .unwrap();
    let docs = [
        serde_json::json!({
            "_id": {"$oid": "5c1a9e000000000000000001"},
            "web_url": "https://www.nytimes.com/2019/05/01/world/europe/story.html",
            "pub_date": {"$date": {"$numberLong": "1556712000000"}},
            "headline": {"main": "A Story From Europe"},
            "section_name": "World",
            "parsed_section": [
                {"type": "paragraph", "text": "Text.", "hash": "p1"},
                {"type": "caption", "text": "Chancellor Angela Merkel in Berlin. Credit Markus Schreiber/Associated Press", "hash": "5c1a9e"},
                {"type": "paragraph", "text": "More text.", "hash": "p2"},
                {"type": "caption", "text": "A second photo, not in the download.", "hash": "77aa00"}
            ]
        }),
        serde_json::json!({
            "_id": "no-images",
            "web_url": "https://www.nytimes.com/2019/05/02/us/text-only.html",
            "pub_date": "2019-05-02T08:00:00+0000",
            "headline": {"main": "Words Only"},
            "parsed_section": [{"type": "paragraph", "text": "Only text.", "hash": "p"}]
        }),
    ];
    let file = root.join("articles.json");
    let lines: Vec<String> = docs.iter().map(|d| d.to_string()).collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    let out = dir.path().join("out");
    run(Collection::NyTimes800k, &file, &out);

    let arts = rows(
        &read(&out, articles::NAME),
        &[
            articles::URL,
            articles::OUTLET,
            articles::HEADLINE,
            articles::PUBLISHED_AT,
            articles::SECTION,
            articles::STATUS,
            articles::ERROR_CLASS,
        ],
    );
    let by_url: BTreeMap<String, BTreeMap<String, Option<String>>> = arts
        .into_iter()
        .map(|r| (r[articles::URL].clone().unwrap(), r))
        .collect();
    let story = &by_url["https://www.nytimes.com/2019/05/01/world/europe/story.html"];
    assert_eq!(story[articles::OUTLET].as_deref(), Some("nytimes"));
    assert_eq!(
        story[articles::HEADLINE].as_deref(),
        Some("A Story From Europe")
    );
    assert_eq!(
        story[articles::PUBLISHED_AT].as_deref(),
        Some("2019-05-01T12:00:00Z")
    );
    assert_eq!(story[articles::SECTION].as_deref(), Some("World"));
    let text_only = &by_url["https://www.nytimes.com/2019/05/02/us/text-only.html"];
    assert_eq!(
        text_only[articles::ERROR_CLASS].as_deref(),
        Some("no_images")
    );

    let p = rows(
        &read(&out, pairs::NAME),
        &[
            pairs::IMAGE_URL,
            pairs::CAPTION,
            pairs::CREDIT,
            pairs::STATUS,
            pairs::ERROR_CLASS,
            pairs::SOURCE,
        ],
    );
    assert_eq!(p.len(), 2);
    let by_img: BTreeMap<String, BTreeMap<String, Option<String>>> = p
        .into_iter()
        .map(|r| (r[pairs::IMAGE_URL].clone().unwrap(), r))
        .collect();
    let ok = &by_img["nytimes800k:images_processed/5c1a9e.jpg"];
    assert_eq!(ok[pairs::STATUS].as_deref(), Some("success"));
    assert_eq!(ok[pairs::SOURCE].as_deref(), Some("nytimes800k"));
    assert_eq!(
        ok[pairs::CAPTION].as_deref(),
        Some("Chancellor Angela Merkel in Berlin.")
    );
    assert_eq!(
        ok[pairs::CREDIT].as_deref(),
        Some("Markus Schreiber/Associated Press")
    );
    let gone = &by_img["nytimes800k:images_processed/77aa00.jpg"];
    assert_eq!(gone[pairs::STATUS].as_deref(), Some("failed_to_download"));
    assert_eq!(gone[pairs::ERROR_CLASS].as_deref(), Some("not_found"));
}

#[test]
fn malformed_collections_name_file_and_record() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("data.json");
    std::fs::write(
        &file,
        r#"[{"id": 1, "source": "reuters", "caption": "x", "image_path": "a.jpg"}]"#,
    )
    .unwrap();
    let err = ScrapeStep::new(
        ScrapeParams::collection(Collection::VisualNews, file.clone()),
        None,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("record 1") && err.contains("reuters"), "{err}");
    std::fs::write(
        &file,
        r#"[{"id": 1, "source": "bbc", "caption": "x", "image_path": "../../etc/passwd"}]"#,
    )
    .unwrap();
    let err = ScrapeStep::new(ScrapeParams::collection(Collection::VisualNews, file), None)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("without `..`"), "{err}");
}
