//! The `urls:PATH` source: a list of image URLs with captions, as img2dataset
//! takes it — CSV, TSV, JSONL or Parquet, chosen by the file extension.
//!
//! Columns: `url` (image URL, required), `caption` (required), `article_url`
//! and `outlet` (optional). Other columns are ignored.

use std::path::Path;

use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_schema::DataType;

use crate::error::{Error, Result};

/// One listed image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlRow {
    /// Image URL.
    pub image_url: String,
    /// Caption.
    pub caption: String,
    /// Article URL, if given.
    pub article_url: Option<String>,
    /// Outlet name, if given.
    pub outlet: Option<String>,
}

/// Reads the list at `path`.
pub fn read_url_list(path: &Path) -> Result<Vec<UrlRow>> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let bad = |row: usize, detail: String| Error::UrlList {
        path: path.to_owned(),
        row,
        detail,
    };
    let read = || {
        std::fs::read_to_string(path).map_err(|e| Error::Io {
            path: path.to_owned(),
            source: e,
        })
    };
    let records: Records = match ext.as_str() {
        "csv" => delimited(&read()?, ',').map_err(|(r, d)| bad(r, d))?,
        "tsv" => delimited(&read()?, '\t').map_err(|(r, d)| bad(r, d))?,
        "jsonl" | "json" => {
            let mut out = Vec::new();
            for (i, line) in read()?.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let v: serde_json::Value = serde_json::from_str(line)
                    .map_err(|e| bad(i + 1, format!("invalid JSON: {e}")))?;
                let obj = v
                    .as_object()
                    .ok_or_else(|| bad(i + 1, "not a JSON object".into()))?;
                out.push(
                    obj.iter()
                        .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                        .collect(),
                );
            }
            out
        }
        "parquet" => parquet_records(path).map_err(|d| bad(0, d))?,
        other => {
            return Err(bad(
                0,
                format!("unknown list format {other:?} (csv, tsv, jsonl, parquet)"),
            ));
        }
    };
    let mut rows = Vec::with_capacity(records.len());
    for (i, rec) in records.into_iter().enumerate() {
        let get = |name: &str| {
            rec.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.trim().to_owned())
        };
        let image_url = get("url")
            .filter(|u| !u.is_empty())
            .ok_or_else(|| bad(i + 1, "missing `url`".into()))?;
        let caption = get("caption").ok_or_else(|| bad(i + 1, "missing `caption`".into()))?;
        rows.push(UrlRow {
            image_url,
            caption,
            article_url: get("article_url").filter(|s| !s.is_empty()),
            outlet: get("outlet").filter(|s| !s.is_empty()),
        });
    }
    Ok(rows)
}

/// Records as (column, value) pairs.
type Records = Vec<Vec<(String, String)>>;

/// RFC 4180 parsing with a header line; quotes may hold delimiters, newlines
/// and doubled quotes.
fn delimited(text: &str, sep: char) -> std::result::Result<Records, (usize, String)> {
    let mut records: Vec<Vec<String>> = Vec::new();
    let mut field = String::new();
    let mut record: Vec<String> = Vec::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    field.push('"');
                    chars.next();
                }
                '"' => quoted = false,
                _ => field.push(c),
            }
        } else if c == '"' && field.is_empty() {
            quoted = true;
        } else if c == sep {
            record.push(std::mem::take(&mut field));
        } else if c == '\n' {
            record.push(std::mem::take(&mut field).trim_end_matches('\r').to_owned());
            records.push(std::mem::take(&mut record));
        } else {
            field.push(c);
        }
    }
    if quoted {
        return Err((records.len(), "unterminated quoted field".into()));
    }
    if !field.is_empty() || !record.is_empty() {
        record.push(field.trim_end_matches('\r').to_owned());
        records.push(record);
    }
    let mut it = records
        .into_iter()
        .filter(|r| !(r.len() == 1 && r[0].is_empty()));
    let header = it.next().ok_or((0, "empty file".to_owned()))?;
    let mut out = Vec::new();
    for (i, r) in it.enumerate() {
        if r.len() != header.len() {
            return Err((
                i + 1,
                format!("{} fields, header has {}", r.len(), header.len()),
            ));
        }
        out.push(header.iter().cloned().zip(r).collect());
    }
    Ok(out)
}

fn parquet_records(path: &Path) -> std::result::Result<Records, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| e.to_string())?
        .build()
        .map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for batch in reader {
        let batch: RecordBatch = batch.map_err(|e| e.to_string())?;
        let schema = batch.schema();
        let mut cols: Vec<(String, Vec<Option<String>>)> = Vec::new();
        for (i, f) in schema.fields().iter().enumerate() {
            let col = batch.column(i);
            let values: Vec<Option<String>> = match f.data_type() {
                DataType::Utf8 => col
                    .as_string_opt::<i32>()
                    .map(|a| a.iter().map(|v| v.map(str::to_owned)).collect())
                    .unwrap_or_default(),
                DataType::LargeUtf8 => col
                    .as_string_opt::<i64>()
                    .map(|a| a.iter().map(|v| v.map(str::to_owned)).collect())
                    .unwrap_or_default(),
                DataType::Utf8View => col
                    .as_string_view_opt()
                    .map(|a| a.iter().map(|v| v.map(str::to_owned)).collect())
                    .unwrap_or_default(),
                _ => continue,
            };
            cols.push((f.name().clone(), values));
        }
        for r in 0..batch.num_rows() {
            out.push(
                cols.iter()
                    .filter_map(|(n, v)| v.get(r).cloned().flatten().map(|s| (n.clone(), s)))
                    .collect(),
            );
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_csv_tsv_and_jsonl() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("l.csv");
        std::fs::write(&csv, "url,caption,outlet\nhttp://a/1.jpg,\"Merkel, in Brussels \"\"today\"\"\",bbc\r\nhttp://a/2.jpg,Plain,\n").unwrap();
        let rows = read_url_list(&csv).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].caption, "Merkel, in Brussels \"today\"");
        assert_eq!(rows[0].outlet.as_deref(), Some("bbc"));
        assert_eq!(rows[1].outlet, None);
        let tsv = dir.path().join("l.tsv");
        std::fs::write(&tsv, "caption\turl\nA cat\thttp://a/3.jpg\n").unwrap();
        assert_eq!(read_url_list(&tsv).unwrap()[0].image_url, "http://a/3.jpg");
        let jsonl = dir.path().join("l.jsonl");
        std::fs::write(
            &jsonl,
            "{\"url\":\"http://a/4.jpg\",\"caption\":\"x\",\"article_url\":\"http://a/p\"}\n",
        )
        .unwrap();
        assert_eq!(
            read_url_list(&jsonl).unwrap()[0].article_url.as_deref(),
            Some("http://a/p")
        );
        let broken = dir.path().join("b.csv");
        std::fs::write(&broken, "url,caption\nhttp://a/1.jpg\n").unwrap();
        let err = read_url_list(&broken).unwrap_err().to_string();
        assert!(err.contains("row 1"), "{err}");
    }
}
