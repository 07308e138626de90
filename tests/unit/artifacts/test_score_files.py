"""Scores files: write/read in every format, alignment by index, content keys, clear errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from iterit import Sample
from iterit.artifacts.score_files import (
    SCORE_COLUMNS,
    ifd_columns,
    read_scores,
    read_table,
    sample_keys,
    write_table,
)
from iterit.data.keys import content_keys
from iterit.errors import OutputExistsError, ScoresFileError

SAMPLES = [Sample(f"q{i}", f"answer {i}") for i in range(4)]
IFD = np.array([0.5, np.nan, 1.2, 0.0])


def _columns():
    n = np.zeros(4, dtype=np.int64)
    return ifd_columns({"ifd": IFD, "nll_cond": IFD, "nll_prior": IFD, "n_tokens": n}, SAMPLES)


def test_columns_use_the_content_key_and_the_candidate_rule():
    cols = _columns()
    assert tuple(cols) == SCORE_COLUMNS
    assert cols["key"] == content_keys(SAMPLES) == sample_keys(SAMPLES)
    assert cols["valid"].tolist() == [True, False, False, False]  # 0.0 is not > 0


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".csv", ".parquet"])
def test_round_trip(tmp_path, suffix):
    if suffix == ".parquet":
        pytest.importorskip("pyarrow")
    path = write_table(tmp_path / f"s{suffix}", _columns())
    back = read_scores(path, SAMPLES)
    np.testing.assert_array_equal(back["ifd"], IFD)
    assert list(read_table(path))[:2] == ["index", "ifd"]
    with pytest.raises(OutputExistsError):
        write_table(path, _columns())


def test_index_aligns_rows_and_other_columns(tmp_path):
    p = tmp_path / "s.jsonl"
    rows = [{"index": i, "ifd": 0.1 * i, "complexity": 1 - 0.1 * i} for i in (3, 1, 0, 2)]
    p.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = read_scores(p, SAMPLES)
    np.testing.assert_allclose(out["ifd"], [1.0, 0.9, 0.8, 0.7])  # complexity by default
    np.testing.assert_allclose(read_scores(p, SAMPLES, column="ifd")["ifd"], [0, 0.1, 0.2, 0.3])


def test_errors_name_the_file_row_and_column(tmp_path):
    p = tmp_path / "bad.jsonl"
    cols = _columns()
    cols["key"][2] = "0" * 32
    write_table(p, cols)
    with pytest.raises(ScoresFileError, match=r"bad\.jsonl: row 2 \(record 2\).*different text"):
        read_scores(p, SAMPLES)
    p.write_text('{"ifd": 0.5}\n')
    with pytest.raises(ScoresFileError, match="1 rows but the data has 4 records"):
        read_scores(p, SAMPLES)
    p.write_text('{"ifd": "high"}\n' * 4)
    with pytest.raises(ScoresFileError, match="row 0: column 'ifd' is not a number"):
        read_scores(p, SAMPLES)
    p.write_text('{"score": 1}\n' * 4)
    with pytest.raises(ScoresFileError, match="no 'ifd' column"):
        read_scores(p, SAMPLES)
    p.write_text('{"index": 7, "ifd": 1}\n')
    with pytest.raises(ScoresFileError, match="index 7 is out of range"):
        read_scores(p, SAMPLES)
    p.write_text('{"ifd": 1\n')
    with pytest.raises(ScoresFileError, match="line 1: invalid JSON"):
        read_scores(p, SAMPLES)
    assert issubclass(ScoresFileError, ValueError)
