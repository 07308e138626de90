"""iterit.data.writers: JSON / JSON Lines (plain and gzipped, values JSON lacks converted),
parquet that keeps the input's schema, and saved datasets; every write atomic and refusing to
replace a file unless asked."""

from __future__ import annotations

import datetime
import gzip
import json

import numpy as np
import pytest

from iterit.data.readers import LoadedData
from iterit.data.sample import Sample
from iterit.data.writers import write_hf, write_json_records, write_parquet
from iterit.errors import OutputExistsError

RECORDS = [
    {"instruction": "Add.", "input": "1 2", "output": "3"},
    {"instruction": "Café?", "input": "", "output": "Oui."},
]


def _loaded(records=RECORDS, **kw) -> LoadedData:
    samples = [Sample(r["instruction"], r["output"], input=r["input"]) for r in records]
    return LoadedData(samples, "alpaca", {}, "jsonl", _records=list(records), **kw)


def test_jsonl_is_one_record_a_line_in_utf8(tmp_path):
    out = write_json_records(RECORDS, tmp_path / "o.jsonl", kind="jsonl", overwrite=False)
    text = out.read_text(encoding="utf-8")
    assert text.splitlines() == [json.dumps(r, ensure_ascii=False) for r in RECORDS]
    assert text.endswith("\n") and "Café" in text


def test_json_is_one_array(tmp_path):
    out = write_json_records(RECORDS, tmp_path / "o.json", kind="json", overwrite=False)
    assert json.loads(out.read_text(encoding="utf-8")) == RECORDS


def test_gz_output_is_gzipped_and_byte_stable(tmp_path):
    a = write_json_records(RECORDS, tmp_path / "a.jsonl.gz", kind="jsonl", overwrite=False)
    b = write_json_records(RECORDS, tmp_path / "b.jsonl.gz", kind="jsonl", overwrite=False)
    lines = gzip.decompress(a.read_bytes()).decode("utf-8").splitlines()
    assert [json.loads(line) for line in lines] == RECORDS
    assert a.read_bytes() == b.read_bytes()  # no name or time in the gzip header


def test_values_json_lacks_are_converted(tmp_path):
    rec = {
        "i": np.int64(3),
        "f": np.float32(0.5),
        "a": np.arange(3),
        "d": datetime.date(2024, 1, 2),
        "b": b"\x00\xff",
        "o": complex(1, 2),
    }
    out = write_json_records([rec], tmp_path / "o.jsonl", kind="jsonl", overwrite=False)
    got = json.loads(out.read_text())
    assert got == {"i": 3, "f": 0.5, "a": [0, 1, 2], "d": "2024-01-02", "b": "AP8=", "o": "(1+2j)"}


def test_an_existing_output_is_kept_unless_overwrite(tmp_path):
    out = tmp_path / "o.jsonl"
    out.write_text("old\n")
    with pytest.raises(OutputExistsError):
        write_json_records(RECORDS, out, kind="jsonl", overwrite=False)
    assert out.read_text() == "old\n"
    write_json_records(RECORDS[:1], out, kind="jsonl", overwrite=True)
    assert [json.loads(x) for x in out.read_text().splitlines()] == RECORDS[:1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.jsonl"]  # no temporary left


def test_parquet_from_records_takes_the_indices_in_order(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    out = write_parquet(_loaded(), np.array([1, 0]), tmp_path / "o.parquet", overwrite=False)
    assert pq.read_table(out).to_pylist() == [RECORDS[1], RECORDS[0]]


def test_parquet_keeps_the_input_tables_schema(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.table(
        {
            "instruction": ["a", "b", "c"],
            "output": ["x", "y", "z"],
            "score": pa.array([1, 2, 3], type=pa.int16()),
        }
    )
    data = LoadedData([], "alpaca", {}, "parquet", _table=table)
    out = write_parquet(data, np.array([2, 0]), tmp_path / "o.parquet", overwrite=False)
    got = pq.read_table(out)
    assert got.schema == table.schema
    assert got.column("instruction").to_pylist() == ["c", "a"]


def test_saved_dataset_round_trips(tmp_path):
    datasets = pytest.importorskip("datasets")
    out = write_hf(_loaded(), np.array([1]), tmp_path / "ds", overwrite=False)
    assert datasets.load_from_disk(str(out)).to_list() == [RECORDS[1]]
    with pytest.raises(OutputExistsError):
        write_hf(_loaded(), np.array([0]), out, overwrite=False)
