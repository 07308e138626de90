"""File types and the JSON Lines loop (iterit.data.files)."""

from __future__ import annotations

from pathlib import Path

import pytest

from iterit.data.files import detect_file_type, output_file_type, read_jsonl_records
from iterit.errors import DataError, ScoresFileError


def test_file_type_by_name_and_output_type():
    assert detect_file_type(Path("x.jsonl.gz")) == "jsonl"
    assert output_file_type("o.parquet", "json") == "parquet"
    assert output_file_type("o.txt", "jsonl") == "jsonl"


def test_jsonl_loop_skips_blanks_and_names_lines():
    text = '{"a": 1}\n\n{"a": "x\u2028y"}\n'  # U+2028 inside a string: not a line break
    records, lines = read_jsonl_records(Path("f.jsonl"), text)
    assert [r["a"] for r in records] == [1, "x\u2028y"] and lines == [1, 3]
    with pytest.raises(DataError, match=r"f\.jsonl: record 1 \(line 2\): expected a JSON object"):
        read_jsonl_records(Path("f.jsonl"), '{"a": 1}\n[1]\n')
    with pytest.raises(ScoresFileError, match="line 1: invalid JSON"):
        read_jsonl_records(Path("s.jsonl"), "{\n", error=ScoresFileError)
