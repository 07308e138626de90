"""Reading and writing data files (iterit.data.readers, files, writers): file types, errors that
say where, round trips, the shipped and real data."""

from __future__ import annotations

import gzip
import json
import re
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from iterit.data import (
    DataError,
    detect_file_type,
    load,
    load_samples,
    samples_from_records,
)
from iterit.data.sample import Sample
from iterit.errors import InvalidInputError
from tests.helpers.shared import ROOT, shared_file

EXAMPLES = ROOT / "examples"

ALPACA = [
    {"instruction": "Add the numbers.", "input": "2 and 3", "output": "5", "id": 7},
    {"instruction": "Say hi.", "input": "", "output": "Hi!", "id": 8},
    {"instruction": "Nothing to say.", "input": None, "output": "   ", "id": 9},
]


def write_jsonl(path: Path, records) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def write_json(path: Path, records) -> Path:
    path.write_text(json.dumps(records, indent=2), encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------
# file types


def test_jsonl_and_json(tmp_path):
    a = load(write_jsonl(tmp_path / "a.jsonl", ALPACA))
    b = load(write_json(tmp_path / "b.json", ALPACA))
    for d, kind in ((a, "jsonl"), (b, "json")):
        assert d.file_type == kind and d.format == "alpaca" and len(d) == 3
        assert d[0] == Sample(instruction="Add the numbers.", input="2 and 3", response="5")
        assert d[2].input == ""  # null input reads as empty
        assert d.empty.tolist() == [False, False, True] and d.n_empty == 1
        assert d.records() == ALPACA


def test_jsonl_inside_a_json_file_and_single_object(tmp_path):
    d = load(write_jsonl(tmp_path / "x.json", ALPACA))
    assert d.file_type == "jsonl" and len(d) == 3
    one = tmp_path / "one.json"
    one.write_text(json.dumps(ALPACA[0]))
    assert len(load(one)) == 1


def test_gzip_and_sniffing(tmp_path):
    gz = tmp_path / "a.jsonl.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as f:
        f.write("".join(json.dumps(r) + "\n" for r in ALPACA))
    assert detect_file_type(gz) == "jsonl"
    assert load(gz).records() == ALPACA
    noext = write_json(tmp_path / "data", ALPACA)
    assert detect_file_type(noext) == "json"
    noext2 = write_jsonl(tmp_path / "data2", ALPACA)
    assert detect_file_type(noext2) == "jsonl"


def test_parquet_round_trip_keeps_schema(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    table = pa.Table.from_pylist(ALPACA)
    pq.write_table(table, tmp_path / "d.parquet")
    d = load(tmp_path / "d.parquet")
    assert d.file_type == "parquet" and d.format == "alpaca" and d[1].response == "Hi!"
    out = d.write([2, 0], tmp_path / "sel.parquet")
    back = pq.read_table(out)
    assert back.schema == table.schema
    assert back.to_pylist() == [ALPACA[2], ALPACA[0]]
    # parquet -> jsonl by extension
    d.write([1], tmp_path / "sel.jsonl")
    assert [json.loads(x) for x in (tmp_path / "sel.jsonl").read_text().splitlines()] == [ALPACA[1]]


def test_hf_dataset_saved_to_disk(tmp_path):
    datasets = pytest.importorskip("datasets")
    ds = datasets.Dataset.from_list(ALPACA)
    ds.save_to_disk(str(tmp_path / "ds"))
    d = load(tmp_path / "ds")
    assert d.file_type == "hf" and len(d) == 3 and d[0].input == "2 and 3"
    out = d.write([1, 0], tmp_path / "sel")  # no extension: the input's type, a folder
    back = datasets.load_from_disk(str(out))
    assert back.to_list() == [ALPACA[1], ALPACA[0]]
    pq = pytest.importorskip("pyarrow.parquet")
    d.write([2, 1], tmp_path / "sel.parquet")  # a saved dataset to parquet, by extension
    assert pq.read_table(tmp_path / "sel.parquet").to_pylist() == [ALPACA[2], ALPACA[1]]
    dd = datasets.DatasetDict({"train": ds, "test": ds.select([0])})
    dd.save_to_disk(str(tmp_path / "dd"))
    assert len(load(tmp_path / "dd")) == 3
    assert len(load(tmp_path / "dd", split="test")) == 1
    with pytest.raises(DataError, match="no split 'dev'"):
        load(tmp_path / "dd", split="dev")
    (tmp_path / "plain").mkdir()
    with pytest.raises(DataError, match="not a dataset saved"):
        load(tmp_path / "plain")


def test_write_json_keeps_records_and_order(tmp_path):
    src = write_json(tmp_path / "in.json", ALPACA)
    d = load(src)
    d.write([1, 0], tmp_path / "o.json")
    assert json.loads((tmp_path / "o.json").read_text(encoding="utf-8")) == [ALPACA[1], ALPACA[0]]
    d.write([2], tmp_path / "o.jsonl.gz")
    with gzip.open(tmp_path / "o.jsonl.gz", "rt", encoding="utf-8") as f:
        assert json.loads(f.read()) == ALPACA[2]


# --------------------------------------------------------------------------------------------
# errors name the file, the line or record, and the field


def test_malformed_jsonl_names_file_and_line(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text(json.dumps(ALPACA[0]) + "\n\n" + '{"instruction": "x", "output": }\n')
    with pytest.raises(DataError) as e:
        load(p)
    assert str(p) in str(e.value) and "line 3" in str(e.value) and "invalid JSON" in str(e.value)
    assert e.value.line == 3 and isinstance(e.value, InvalidInputError)


def test_malformed_json_array_names_file_and_line(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text('[\n  {"instruction": "a", "output": "b"},\n  {"instruction": "c" "output": 1}\n]')
    with pytest.raises(DataError, match=r"bad\.json: line 3: invalid JSON"):
        load(p)


def test_missing_field_names_record_line_and_field(tmp_path):
    p = write_jsonl(tmp_path / "m.jsonl", [ALPACA[0], {"instruction": "no output"}])
    with pytest.raises(DataError) as e:
        load(p)
    msg = str(e.value)
    assert "m.jsonl" in msg and "record 1 (line 2)" in msg and "missing field 'output'" in msg
    assert e.value.record == 1 and e.value.field == "output"


def test_non_string_field_names_record_and_field(tmp_path):
    p = write_json(tmp_path / "n.json", [ALPACA[0], ALPACA[1], {"instruction": 3, "output": "x"}])
    with pytest.raises(
        DataError, match=r"n\.json: record 2: field 'instruction' must be a string, got int"
    ):
        load(p)
    p2 = write_json(tmp_path / "n2.json", [{"instruction": "i", "output": None}])
    with pytest.raises(DataError, match="field 'output' must be a string, got null"):
        load(p2)


def test_bad_turns(tmp_path):
    bad_role = [{"conversations": [{"from": "narrator", "value": "x"}]}]
    with pytest.raises(
        DataError, match="record 0: field 'conversations' turn 0: unknown role 'narrator'"
    ):
        samples_from_records(bad_role)
    bad_value = [{"conversations": [{"from": "human", "value": 5}]}]
    with pytest.raises(DataError, match="turn 0: field 'value' must be a string, got int"):
        samples_from_records(bad_value)
    with pytest.raises(DataError, match="field 'conversations' must be a list"):
        samples_from_records([{"conversations": "hi"}], format="sharegpt")


def test_unknown_and_undetectable_format(tmp_path):
    with pytest.raises(ValueError, match="unknown data format 'csv'"):
        samples_from_records(ALPACA, format="csv")
    p = write_jsonl(tmp_path / "u.jsonl", [{"text": "just text"}])
    with pytest.raises(
        DataError, match=r"u\.jsonl: record 0 \(line 1\): cannot detect the data format"
    ):
        load(p)


@pytest.mark.parametrize("content", ["", "   \n\n", "[]"])
def test_empty_file(tmp_path, content):
    p = tmp_path / "e.json"
    p.write_text(content)
    with pytest.raises(DataError, match=r"e\.json: the file is empty"):
        load(p)


def test_non_object_records_and_bad_bytes(tmp_path):
    p = tmp_path / "l.jsonl"
    p.write_text('{"instruction": "a", "output": "b"}\n[1, 2]\n')
    with pytest.raises(DataError, match=r"record 1 \(line 2\): expected a JSON object"):
        load(p)
    p2 = tmp_path / "b.jsonl"
    p2.write_bytes(b'{"instruction": "a", "output": "b"}\n{"instruction": "\xff"}\n')
    with pytest.raises(DataError, match=r"line 2: not valid UTF-8"):
        load(p2)
    with pytest.raises(DataError, match="no such file"):
        load(tmp_path / "missing.jsonl")


# --------------------------------------------------------------------------------------------
# property: whatever the text, writing and reading back gives the same samples

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(st.tuples(_text, _text, _text), min_size=1, max_size=6),
    st.sampled_from(["json", "jsonl"]),
)
def test_round_trip_property(tmp_path, rows, kind):
    recs = [{"instruction": a, "input": b, "output": c} for a, b, c in rows]
    src = tmp_path / f"p.{kind}"
    (write_json if kind == "json" else write_jsonl)(src, recs)
    d = load(src)
    out = d.write(list(range(len(recs)))[::-1], tmp_path / f"q.{kind}", overwrite=True)
    again = load(out)
    assert again.samples == d.samples[::-1]


# --------------------------------------------------------------------------------------------
# shipped examples and the real data in ../shared/data


def test_shipped_examples():
    d = load(EXAMPLES / "alpaca_mini.jsonl")
    assert d.format == "alpaca" and 60 <= len(d) <= 120 and d.n_empty == 1
    c = load(EXAMPLES / "sharegpt_mini.json")
    assert c.format == "sharegpt" and c.n_empty == 1
    assert any(s.messages for s in c.samples)


@pytest.mark.shared_data
def test_real_alpaca_union():
    d = load(shared_file("general/alpaca_union_dedup.jsonl"))
    assert len(d) == 20678 and d.format == "alpaca" and d.n_empty == 10
    assert d.lines is not None and d.lines[-1] == 20678


@pytest.mark.shared_data
def test_real_lima_sharegpt_and_dolly():
    lima = load(shared_file("general/lima_1k_fastchat.json"))
    assert lima.format == "sharegpt" and len(lima) == 1000
    assert all(s.response for s in lima.samples[:50])
    dolly = load_samples(shared_file("general/dolly_3k_alpagasus.json"))
    assert len(dolly) == 2996


@pytest.mark.parametrize("missing", ["pyarrow", "datasets"])
def test_a_missing_extra_is_a_missing_dependency_naming_the_file(tmp_path, monkeypatch, missing):
    """parquet and saved datasets need optional packages: without them the reader and the
    writer raise MissingDependencyError (an ImportError) with the file and the install line."""
    pytest.importorskip("pyarrow")
    pytest.importorskip("datasets")
    import datasets
    import pyarrow as pa
    import pyarrow.parquet as pq

    from iterit.errors import MissingDependencyError

    pq.write_table(pa.Table.from_pylist(ALPACA), tmp_path / "d.parquet")
    datasets.Dataset.from_list(ALPACA).save_to_disk(str(tmp_path / "ds"))
    # Loaded while the package is there: a jsonl to write as parquet, a saved dataset to write
    # as a saved dataset (the input's type).
    data = load(_jsonl(tmp_path)) if missing == "pyarrow" else load(tmp_path / "ds")
    for name in [m for m in sys.modules if m == missing or m.startswith(missing + ".")]:
        monkeypatch.setitem(sys.modules, name, None)  # import now fails as if not installed
    source = tmp_path / ("d.parquet" if missing == "pyarrow" else "ds")
    out = tmp_path / ("out.parquet" if missing == "pyarrow" else "out")
    with pytest.raises(
        MissingDependencyError, match=rf"{missing}.*pip install 'iterit\[cli\]'"
    ) as e:
        load(source)
    assert str(source) in str(e.value) and isinstance(e.value, ImportError)
    with pytest.raises(MissingDependencyError, match=rf"{re.escape(str(out))}.*{missing}"):
        data.write([0], out)
    assert not out.exists()


def _jsonl(folder: Path) -> Path:
    path = folder / "d.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ALPACA), encoding="utf-8")
    return path
