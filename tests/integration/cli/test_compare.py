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
    assert [(r["arm"], r["seed"], r["epoch"]) for r in rows] == [
        ("base", "", "0"),
        ("random", "42", "1"),
        ("longest", "42", "1"),
    ]
    assert all(r["eval"] == "held-out" and float(r["nll"]) > 0 for r in rows)
    doc = json.loads((out / COMPARE_JSON).read_text())
    assert set(doc["arms"]) == {"random/seed-42", "longest/seed-42"}
    assert doc["settings"]["ifd_variant"] == "loss-ratio"
    (line,) = [d["line"] for d in doc["summary"]["differences"]]
    assert line.startswith("longest - random at epoch 1: ") and line in res.output
    page = (out / COMPARE_HTML).read_text()
    assert "<img" in page and line in page

    # The same folder with another setting: one error line naming it and the ways out.
    msg = fail(*args(setup, out, "--arms", "random,longest", "--max-length", "64"))
    assert "max_length" in msg and "new output folder" in msg and "--overwrite" in msg
    assert "Traceback" not in msg


def test_eval_file_in_another_format_and_bad_seeds(setup, tmp_path):
    msgs = tmp_path / "chat.jsonl"
    msgs.write_text(
        '{"messages": [{"role": "user", "content": "Say hi."}, '
        '{"role": "assistant", "content": "Hi there."}]}\n'
    )
    msg = fail(*args(setup, tmp_path / "z", "--eval", msgs, "--eval-format", "alpaca"))
    assert "chat.jsonl" in msg and "instruction" in msg  # forced format: that file's error
    assert "seeds" in fail(*args(setup, tmp_path / "s", "--seeds", "1,x"))


def test_unknown_arm_is_one_error_line(setup, tmp_path):
    assert "unknown arm" in fail(*args(setup, tmp_path / "x", "--arms", "random,best"))


@pytest.mark.skipif(importlib.util.find_spec("lm_eval") is not None, reason="lm_eval installed")
def test_lm_eval_missing_is_a_clear_error(setup, tmp_path):
    msg = fail(*args(setup, tmp_path / "y", "--lm-eval", "hellaswag"))
    assert "lm_eval" in msg and "pip install lm-eval" in msg
    assert not (tmp_path / "y").exists()  # refused before any work
