"""Reads tables written by anchor's store with pyarrow, Polars and pandas and
checks them against the documented schemas in schemas/<table>.md.

usage: check_store_interop.py OUT_DIR SCHEMAS_DIR
"""
import pathlib
import sys

import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq


def documented_columns(md_path):
    cols = []
    in_table = False
    for line in md_path.read_text().splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and cells[0] == "column" and cells[1] == "arrow type":
            in_table = True
            continue
        if in_table:
            if not line.strip().startswith("|"):
                break
            if set(cells[0]) <= set("-:"):
                continue
            cols.append((cells[0], cells[1], cells[2] == "yes"))
    return cols


# arrow-rs Display names -> pyarrow types, for the types our tables use.
SIMPLE = {
    "Utf8": pa.string(),
    "Int32": pa.int32(),
    "Int64": pa.int64(),
    "Float32": pa.float32(),
    "Float64": pa.float64(),
    "Boolean": pa.bool_(),
    "Binary": pa.binary(),
    "UInt64": pa.uint64(),
    "List(Utf8)": pa.list_(pa.string()),
    'Struct("bytes": Binary, "path": Utf8)': pa.struct([("bytes", pa.binary()), ("path", pa.string())]),
}


def check(table_dir, md_path):
    name = table_dir.name
    cols = documented_columns(md_path)
    assert cols, f"{md_path}: no column table"
    arrow_table = pq.read_table(table_dir)
    assert arrow_table.column_names == [c[0] for c in cols], (arrow_table.column_names, cols)
    for (col, arrow_type, nullable), field in zip(cols, arrow_table.schema):
        want = SIMPLE.get(arrow_type)
        assert want is not None, f"{name}.{col}: add {arrow_type!r} to SIMPLE"
        assert field.type.equals(want), f"{name}.{col}: pyarrow sees {field.type}, doc says {arrow_type}"
        assert field.nullable == nullable, f"{name}.{col}: nullable {field.nullable}, doc says {nullable}"

    frame = pl.read_parquet(str(table_dir / "*.parquet"))
    assert frame.columns == [c[0] for c in cols]
    assert frame.height == arrow_table.num_rows > 0
    pdf = pd.read_parquet(table_dir)
    assert list(pdf.columns) == [c[0] for c in cols]
    assert len(pdf) == arrow_table.num_rows

    if name == "pairs":
        image = frame["image"][0]
        assert image["path"] == "photo.jpg" and image["bytes"].startswith(b"\xff\xd8"), image
        assert frame["image"][1] is None
        assert frame["error_class"].to_list() == [None, "http_404"]
        assert pdf["is_lead"].tolist() == [True, False]
    if name == "articles":
        assert frame["authors"].to_list() == [["Jane Doe", "John Roe"]]
    print(f"ok {name}: {arrow_table.num_rows} rows, {len(cols)} columns")


def main():
    out, schemas = map(pathlib.Path, sys.argv[1:3])
    for table_dir in sorted(p for p in out.iterdir() if p.is_dir()):
        check(table_dir, schemas / f"{table_dir.name}.md")


if __name__ == "__main__":
    main()
