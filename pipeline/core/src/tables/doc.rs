//! Checks a `schemas/<table>.md` Markdown table against a declared schema.
//!
//! The doc holds one Markdown table with the header
//! `| column | arrow type | nullable | meaning |`; the arrow type is written as
//! arrow-rs `Display`s it (`Utf8`, `Int64`, `Struct("bytes": Binary, "path": Utf8)`).

use arrow_schema::Schema;

/// One documented column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocColumn {
    /// Column name.
    pub name: String,
    /// Arrow type as written.
    pub arrow_type: String,
    /// Whether the column is nullable.
    pub nullable: bool,
    /// What the column means.
    pub meaning: String,
}

/// Parses the column table out of a schema doc.
pub fn parse(markdown: &str) -> Result<Vec<DocColumn>, String> {
    let mut lines = markdown.lines().map(str::trim);
    let header = lines
        .by_ref()
        .find(|l| {
            let cells = cells(l);
            cells.len() >= 4 && cells[0] == "column" && cells[1] == "arrow type"
        })
        .ok_or("no `| column | arrow type | nullable | meaning |` table found")?;
    let width = cells(header).len();
    let mut columns = Vec::new();
    for line in lines {
        if !line.starts_with('|') {
            break;
        }
        let cells = cells(line);
        if cells
            .iter()
            .all(|c| c.chars().all(|ch| ch == '-' || ch == ':'))
        {
            continue;
        }
        if cells.len() != width {
            return Err(format!(
                "row {line:?} has {} cells, expected {width}",
                cells.len()
            ));
        }
        let nullable = match cells[2].as_str() {
            "yes" | "true" => true,
            "no" | "false" => false,
            other => {
                return Err(format!(
                    "column {}: nullable must be yes/no, got {other:?}",
                    cells[0]
                ));
            }
        };
        columns.push(DocColumn {
            name: cells[0].trim_matches('`').to_owned(),
            arrow_type: cells[1].trim_matches('`').to_owned(),
            nullable,
            meaning: cells[3].clone(),
        });
    }
    Ok(columns)
}

fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    inner.split('|').map(|c| c.trim().to_owned()).collect()
}

/// Checks `markdown` documents exactly the columns of `schema`, in order,
/// with the same types and nullability, and a meaning for each.
pub fn check(schema: &Schema, markdown: &str) -> Result<(), String> {
    let documented = parse(markdown)?;
    let mut problems = Vec::new();
    for (i, field) in schema.fields().iter().enumerate() {
        let Some(doc) = documented.get(i) else {
            problems.push(format!("column {} is not documented", field.name()));
            continue;
        };
        if doc.name != *field.name() {
            problems.push(format!(
                "column {i}: doc says {}, code says {}",
                doc.name,
                field.name()
            ));
        }
        let code_type = field.data_type().to_string();
        if doc.arrow_type != code_type {
            problems.push(format!(
                "column {}: doc type {}, code type {code_type}",
                field.name(),
                doc.arrow_type
            ));
        }
        if doc.nullable != field.is_nullable() {
            problems.push(format!(
                "column {}: doc nullable {}, code nullable {}",
                field.name(),
                doc.nullable,
                field.is_nullable()
            ));
        }
        if doc.meaning.is_empty() {
            problems.push(format!("column {} has no meaning", field.name()));
        }
    }
    for extra in documented.iter().skip(schema.fields().len()) {
        problems.push(format!("doc has column {} that the code lacks", extra.name));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use arrow_schema::{DataType, Field};

    use super::*;

    #[test]
    fn detects_each_kind_of_disagreement() {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Utf8, false),
            Field::new("n", DataType::Int64, true),
        ]);
        let good = "# t\n\n| column | arrow type | nullable | meaning |\n|---|---|---|---|\n| `id` | `Utf8` | no | key |\n| n | Int64 | yes | count |\n";
        assert_eq!(check(&schema, good), Ok(()));
        let wrong_type = good.replace("| Int64 |", "| Int32 |");
        assert!(
            check(&schema, &wrong_type)
                .unwrap_err()
                .contains("doc type Int32")
        );
        let wrong_null = good.replace("| no |", "| yes |");
        assert!(
            check(&schema, &wrong_null)
                .unwrap_err()
                .contains("nullable")
        );
        let missing = good.replace("| n | Int64 | yes | count |\n", "");
        assert!(
            check(&schema, &missing)
                .unwrap_err()
                .contains("not documented")
        );
        assert!(check(&schema, "no table here").is_err());
    }
}
