"""The Arrow column path against the record path on the same small files: same texts, same
empty flags and word counts, same output bytes; every input it does not take goes back to the
record path (which names the file, line and field of a bad value)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from iterit.data import load
from iterit.data.columns import read_columns, write_picked
from iterit.errors import DataError, OutputExistsError

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

RECORDS = [
    {"instruction": "Say hi", "input": "", "output": "Hi there, friend."},
    {"instruction": "Ünïcödé", "output": "Οδός  ΣΊΣΥΦΟΣ\u2028line", "extra": {"k": [1, 2]}},
    {"instruction": "blank", "input": None, "output": " \u3000\t"},
    {"instruction": "x", "input": "ctx", "output": "one two\u00a0three"},
    {"instruction": "y", "input": "", "output": ""},
]


def _jsonl(tmp_path: Path, records: list, name: str = "d.jsonl", compact: bool = False) -> Path:
    sep = (",", ":") if compact else None
    lines = [json.dumps(r, ensure_ascii=False, separators=sep) for r in records]
    # Blank lines, whitespace-only lines and CRLF endings, which the record path skips or keeps.
    text = "\n" + "\n  \n".join(lines[:2]) + "\r\n" + "\n".join(lines[2:]) + "\n\n"
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _parquet(tmp_path: Path, records: list) -> Path:
    path = tmp_path / "d.parquet"
    pq.write_table(pa.Table.from_pylist([{k: r.get(k) for k in RECORDS[0]} for r in records]), path)
    return path


@pytest.mark.parametrize("make", ["jsonl", "jsonl-compact", "parquet"])
def test_same_texts_flags_and_words_as_the_record_path(tmp_path: Path, make: str) -> None:
    path = (
        _parquet(tmp_path, RECORDS)
        if make == "parquet"
        else _jsonl(tmp_path, RECORDS, compact=make.endswith("compact"))
    )
    data = read_columns(path)
    loaded = load(path)
    assert data is not None and len(data) == len(loaded) == len(RECORDS)
    assert (data.format, data.fields) == (loaded.format, loaded.fields)
    assert data.response.to_pylist() == [s.response for s in loaded.samples]
    assert data.columns["instruction"].to_pylist() == [s.instruction for s in loaded.samples]
    assert data.empty.tolist() == loaded.empty.tolist()
    assert data.response_words().tolist() == [len(s.response.split()) for s in loaded.samples]


@pytest.mark.parametrize("make", ["jsonl", "jsonl-compact", "parquet"])
@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".parquet"])
def test_picked_records_are_written_as_the_record_path_writes_them(
    tmp_path: Path, make: str, suffix: str
) -> None:
    path = (
        _parquet(tmp_path, RECORDS)
        if make == "parquet"
        else _jsonl(tmp_path, RECORDS, compact=make.endswith("compact"))
    )
    picks = np.array([3, 0, 4, 1])
    data = read_columns(path)
    assert data is not None
    ours = write_picked(data, picks, tmp_path / f"ours{suffix}")
    theirs = load(path).write(picks, tmp_path / f"theirs{suffix}")
    if suffix == ".parquet":
        assert pq.read_table(ours).equals(pq.read_table(theirs))
    else:
        assert ours.read_bytes() == theirs.read_bytes()
    with pytest.raises(OutputExistsError):
        write_picked(data, picks, ours)  # exists, no overwrite


@pytest.mark.parametrize(
    "bad",
    [
        '{"instruction": "a", "output": null}',
        '{"instruction": "a", "output": 3}',
        '{"instruction": "a"}',
        '{"instruction": "a", "output": "b"',
        "[1, 2]",
    ],
)
def test_bad_records_go_back_to_the_record_path_which_names_them(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps(RECORDS[0]) + "\n" + bad + "\n", encoding="utf-8")
    assert read_columns(path) is None
    with pytest.raises(DataError) as e:
        load(path)
    assert "bad.jsonl" in str(e.value) and "line 2" in str(e.value)


def test_inputs_it_does_not_take(tmp_path: Path) -> None:
    conv = {"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}
    assert read_columns(_jsonl(tmp_path, [conv], "conv.jsonl")) is None
    bom = tmp_path / "bom.jsonl"
    bom.write_bytes(b"\xef\xbb\xbf" + json.dumps(RECORDS[0]).encode() + b"\n")
    assert read_columns(bom) is None
    assert load(bom).samples[0].response == RECORDS[0]["output"]
    numbers = tmp_path / "n.parquet"
    pq.write_table(pa.table({"instruction": ["a"], "output": [1]}), numbers)
    assert read_columns(numbers) is None
    with pytest.raises(DataError):
        load(numbers)
    nulls = tmp_path / "nulls.parquet"
    pq.write_table(pa.table({"instruction": ["a", "b"], "output": ["x", None]}), nulls)
    assert read_columns(nulls) is None


def test_dolly_names_and_field_overrides(tmp_path: Path) -> None:
    records = [
        {"instruction": "q", "context": "c", "response": "r s"},
        {"instruction": "p", "response": ""},
    ]
    path = _jsonl(tmp_path, records, "dolly.jsonl")
    data = read_columns(path)
    assert data is not None and data.fields == load(path).fields
    assert data.response.to_pylist() == ["r s", ""]
    renamed = _jsonl(tmp_path, [{"q": "a", "answer": "b c"}], "renamed.jsonl")
    data = read_columns(renamed, {"instruction": "q", "output": "answer"})
    assert data is not None and data.response.to_pylist() == ["b c"]
