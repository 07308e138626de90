"""``iterit compare`` on a tiny random Llama (a local model folder) and real Alpaca records, CPU
only: the files it writes, the table it prints, and its errors."""

from __future__ import annotations

import csv
import importlib.util
import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from iterit.artifacts import COMPARE_CSV, COMPARE_HTML, COMPARE_JSON
from tests.helpers.cli import fail, run
from tests.helpers.tiny_run import TINY_RUN_OPTIONS, write_tiny_run_inputs
from tests.helpers.training import real_samples

pytestmark = pytest.mark.slow

N = 24


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    return write_tiny_run_inputs(tmp_path_factory.mktemp("cmp"), real_samples(N, offset=500))


def args(folder, out, *extra):
    return (
        "compare",
        "--model",
        folder / "model",
        "--data",
        folder / "data.jsonl",
        "--output-dir",
        out,
        "--budget",
        "4",
        "--epochs",
        "1",
        *TINY_RUN_OPTIONS,
        *extra,
    )


def test_compare_writes_table_csv_json_html(setup, tmp_path):
    out = tmp_path / "cmp"
    res = run(*args(setup, out, "--arms", "random,longest", "--ifd-variant", "loss-ratio"))
    assert "mean NLL of the reference responses" in res.output
    with open(out / COMPARE_CSV, encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [(r["arm"], r["epoch"]) for r in rows] == [
        ("base", "0"),
        ("random", "1"),
        ("longest", "1"),
    ]
    assert all(r["eval"] == "held-out" and float(r["nll"]) > 0 for r in rows)
    doc = json.loads((out / COMPARE_JSON).read_text())
    assert set(doc["arms"]) == {"random", "longest"}
    assert doc["settings"]["ifd_variant"] == "loss-ratio"
    assert "<img" in (out / COMPARE_HTML).read_text()


def test_unknown_arm_is_one_error_line(setup, tmp_path):
    assert "unknown arm" in fail(*args(setup, tmp_path / "x", "--arms", "random,best"))


@pytest.mark.skipif(importlib.util.find_spec("lm_eval") is not None, reason="lm_eval installed")
def test_lm_eval_missing_is_a_clear_error(setup, tmp_path):
    msg = fail(*args(setup, tmp_path / "y", "--lm-eval", "hellaswag"))
    assert "lm_eval" in msg and "pip install lm-eval" in msg
    assert not (tmp_path / "y").exists()  # refused before any work
