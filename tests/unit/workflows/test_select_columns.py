"""iterit.workflows.select_columns: a selection on a file's Arrow columns makes the same picks
and writes the same files, byte for byte, as one on the loaded records."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from iterit.config import SelectionConfig
from iterit.data import load
from iterit.data.columns import ColumnarData
from iterit.workflows.select import select_dataset
from iterit.workflows.select_columns import columns_for_selection
from tests.helpers.cli import EXAMPLE

pytest.importorskip("pyarrow")

ELIGIBLE = {"data_format": "auto", "fields": None, "split": None}


def _selection(strategy: str = "iterit", diversity: str = "response") -> SelectionConfig:
    return SelectionConfig(budget=7, strategy=strategy, diversity=diversity)


def _columns(path: Path, strategy: str = "iterit", kind: str = "none", **over) -> ColumnarData:
    got = columns_for_selection(
        path, _selection(strategy), **{**ELIGIBLE, **over}, complexity_kind=kind, ifd=False
    )
    assert isinstance(got, ColumnarData)
    return got


def _outputs(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.parent.iterdir())}


def _parquet_copy(tmp_path: Path) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "mini.parquet"
    pq.write_table(pa.Table.from_pylist(load(EXAMPLE).records()), path)
    return path


@pytest.mark.parametrize(
    ("strategy", "kind"),
    [("iterit", "none"), ("iterit", "length"), ("longest", "none"), ("random", "none")],
)
@pytest.mark.parametrize("source", ["jsonl", "parquet"])
@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_same_picks_and_files_as_the_record_path(
    tmp_path: Path, strategy: str, kind: str, source: str, suffix: str
) -> None:
    path = EXAMPLE if source == "jsonl" else _parquet_copy(tmp_path)
    config = SelectionConfig(budget=7, strategy=strategy, seed=3)
    done = {}
    for name, data in (("records", load(path)), ("columns", _columns(path, strategy, kind))):
        out = tmp_path / name / f"sel{suffix}"
        out.parent.mkdir()
        done[name] = (select_dataset(data, out, config, complexity_kind=kind), _outputs(out))
    (by_records, files_r), (by_columns, files_c) = done["records"], done["columns"]
    assert by_columns.selection.indices.tolist() == by_records.selection.indices.tolist()
    np.testing.assert_array_equal(by_columns.selection.scores, by_records.selection.scores)
    assert files_c.keys() == files_r.keys()
    for name in files_r:
        if name.endswith(".run.json"):  # timings
            continue
        if name.endswith(".meta.json"):  # names the output, which is in another folder
            meta_c, meta_r = (json.loads(f[name]) for f in (files_c, files_r))
            assert meta_c.pop("output") != meta_r.pop("output")
            assert meta_c == meta_r
            continue
        assert files_c[name] == files_r[name], name


def test_only_selections_that_need_no_records_use_columns(tmp_path: Path) -> None:
    def columns(strategy="iterit", diversity="response", **over):
        args = {**ELIGIBLE, "complexity_kind": "none", "ifd": False}
        return columns_for_selection(EXAMPLE, _selection(strategy, diversity), **{**args, **over})

    assert isinstance(columns(), ColumnarData)
    assert columns(ifd=True) is None
    assert columns(complexity_kind="column:quality") is None
    assert columns(diversity="both") is None
    assert isinstance(columns(diversity="both", strategy="random"), ColumnarData)
    assert columns(data_format="alpaca") is None
    assert columns(split="train") is None
    gz = tmp_path / "d.jsonl.gz"
    gz.write_bytes(b"")
    assert (
        columns_for_selection(gz, _selection(), **ELIGIBLE, complexity_kind="none", ifd=False)
        is None
    )
