"""iterit.workflows.select: select from loaded data and write the selection with its sidecars."""

from __future__ import annotations

import json

import numpy as np
import pytest

from iterit.artifacts.selection_files import read_selection_meta, read_selection_rows
from iterit.config import SelectionConfig
from iterit.data import load
from iterit.errors import ConfigError, DataError, IteritError, OutputExistsError
from iterit.selection.strategies import select_samples
from iterit.workflows.select import (
    complexity_values,
    needs_ifd,
    parse_complexity_kind,
    select_dataset,
)
from tests.helpers.cli import EXAMPLE


def test_parse_complexity_kind():
    assert parse_complexity_kind(" IFD ") == "ifd"
    assert parse_complexity_kind("column: quality") == "column:quality"
    for bad in ("column:", "entropy", ""):
        with pytest.raises(ConfigError, match="expected ifd, length, none or column:NAME"):
            parse_complexity_kind(bad)


def test_needs_ifd():
    assert needs_ifd("iterit", "ifd", model=None, scores_file=None)
    assert not needs_ifd("random", "ifd", model=None, scores_file=None)
    assert needs_ifd("random", "ifd", model="m", scores_file=None)
    assert not needs_ifd("iterit", "length", model="m", scores_file=None)


def test_select_dataset_writes_the_picks_and_sidecars(tmp_path):
    loaded = load(EXAMPLE)
    ifd = np.random.default_rng(0).uniform(0.2, 1.2, len(loaded))
    out = tmp_path / "sel.jsonl"
    done = select_dataset(
        loaded, out, SelectionConfig(budget=8), scores={"ifd": ifd}, meta={"model": "m"}
    )
    want = select_samples(loaded.samples, 8, complexity=ifd, max_complexity=1.0)
    assert done.selection.indices.tolist() == want.indices.tolist()
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert written == loaded.records(want.indices)
    rows = read_selection_rows(out)
    assert [r["index"] for r in rows[:8]] == want.indices.tolist()
    assert [r["rank"] for r in rows[:8]] == list(range(8))
    assert len(rows) == len(loaded) and {r["status"] for r in rows[:8]} == {"selected"}
    meta = read_selection_meta(out)
    assert meta == done.meta and meta["model"] == "m" and meta["n_selected"] == 8
    assert meta["n_ifd_ge_1"] == int((ifd >= 1).sum()) and meta["complexity"] == "ifd"


def test_select_dataset_refuses_an_existing_output_and_leaves_nothing(tmp_path):
    loaded = load(EXAMPLE)
    out = tmp_path / "sel.jsonl"
    out.write_text("precious\n")
    with pytest.raises(OutputExistsError):
        select_dataset(loaded, out, SelectionConfig(budget=3), complexity_kind="none")
    assert out.read_text() == "precious\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sel.jsonl"]


def test_column_complexity_errors_are_data_errors(tmp_path):
    src = tmp_path / "d.jsonl"
    recs = [{"instruction": f"q{i}", "output": f"a {i}", "quality": i} for i in range(5)]
    recs[3]["quality"] = "high"
    src.write_text("".join(json.dumps(r) + "\n" for r in recs))
    loaded = load(src)
    with pytest.raises(DataError, match="record 3: field 'quality' must be a number") as e:
        complexity_values(loaded, "column:quality", None)
    assert e.value.record == 3 and e.value.field == "quality"
    with pytest.raises(DataError, match="record 0: missing field 'other'"):
        complexity_values(loaded, "column:other", None)


def test_library_errors_name_no_flags(tmp_path):
    loaded = load(EXAMPLE)
    with pytest.raises(IteritError) as e:
        select_dataset(loaded, tmp_path / "o.jsonl", SelectionConfig(budget=3, strategy="best"))
    assert "--" not in str(e.value)
