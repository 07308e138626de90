"""iterit.report and ``iterit report``: plots, HTML, tables, the training run log."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from iterit.cli import main
from iterit.report import (
    build_report,
    format_table,
    jaccard,
    read_selection_log,
    top_ngrams,
    write_report,
)
from tests.helpers.shared import ROOT

pytest.importorskip("matplotlib")

EXAMPLE = ROOT / "examples" / "alpaca_mini.jsonl"
PNG = b"\x89PNG\r\n\x1a\n"


def cli(*args, code=0):
    res = CliRunner().invoke(main, [str(a) for a in args])
    assert res.exit_code == code, res.output
    return res.output


def test_format_table_and_jaccard():
    text = format_table([("a", "1"), ("long name", "22")], title="T")
    assert text.splitlines()[0] == "T" and "long name  22" in text
    table = format_table([["1", "x"], ["10", "y"]], headers=["n", "s"])
    assert table.splitlines()[1].startswith("--")
    assert jaccard([1, 2, 3], [2, 3, 4]) == 0.5 and jaccard([], []) == 1.0


def test_top_ngrams_uses_the_selectors_tokens():
    grams = top_ngrams(["The cat sat. The cat!", "a cat, the DOG"], top=3)
    assert grams[1][0] == ("cat", 2, 3)  # documents, then occurrences
    assert grams[2][0] == ("the cat", 1, 2)
    assert all(" a " not in f" {g} " for g, _, _ in grams[1])  # 1-char tokens are dropped


def test_read_selection_log_is_tolerant(tmp_path):
    log = tmp_path / "iterit_selection.jsonl"
    lines = [
        {"epoch": 0, "picks": [1, 2, 3], "ifd": [0.5, 0.6, 0.7], "extra": {"x": 1}},
        {"something": "else"},
        {"epoch": 1, "picks": [9, 9]},
        {"epoch": 1, "picks": [2, 3, 4], "score": [1, 2, 3]},  # a resume rewrote epoch 1
    ]
    log.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    recs = read_selection_log(log)
    assert [r["epoch"] for r in recs] == [0, 1] and recs[1]["picks"] == [2, 3, 4]
    log.write_text("{oops\n")
    with pytest.raises(ValueError, match="line 1: invalid JSON"):
        read_selection_log(log)


def _run_dir(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    rng = np.random.default_rng(0)
    picks = [[int(i) for i in rng.choice(96, 10, replace=False)] for _ in range(3)]
    picks[1][:7] = picks[0][:7]
    recs = [
        {
            "epoch": e,
            "strategy": "iterit",
            "diversity": "response",
            "n_samples": 97,
            "pool_size": 30,
            "n_candidates": 28 - e,
            "budget": 10,
            "picks": p,
            "ifd": [float(v) for v in rng.uniform(0.3, 0.99, 10)],
            "score": [1.0] * 10,
            "overlap_prev": None,
            "future_field": [1, 2],
        }
        for e, p in enumerate(picks)
    ]
    (run / "iterit_selection.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    config = {"data": str(EXAMPLE), "data_format": "auto", "fields": None, "epochs": 3}
    (run / "iterit_train_config.json").write_text(json.dumps(config))
    return run


def test_run_report(tmp_path):
    run = _run_dir(tmp_path)
    recs = read_selection_log(run / "iterit_selection.jsonl")
    rep = build_report(run)
    assert rep.overlap is not None and rep.overlap.shape == (3, 3)
    assert rep.overlap[0, 1] == pytest.approx(jaccard(recs[0]["picks"], recs[1]["picks"]))
    assert set(rep.lengths) == {"all", "epoch 0", "epoch 1", "epoch 2"}  # data found in the run
    assert rep.ngrams and rep.ngram_docs == 10
    html_path = write_report(rep, tmp_path / "rep")
    page = html_path.read_text(encoding="utf-8")
    for name in ("ifd.png", "lengths.png", "overlap.png", "ngrams.png"):
        assert (tmp_path / "rep" / name).read_bytes().startswith(PNG)
    # self-contained: every image is inline, nothing is fetched
    srcs = re.findall(r'src="([^"]+)"', page)
    assert len(srcs) == 4 and all(s.startswith("data:image/png;base64,") for s in srcs)
    assert base64.b64decode(srcs[0].split(",", 1)[1]).startswith(PNG)
    assert "Jaccard" in page and "epoch 2" in page
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    assert summary["overlap"]["labels"] == ["epoch 0", "epoch 1", "epoch 2"]


def test_report_command_on_a_selection(tmp_path):
    out = tmp_path / "sel.jsonl"
    cli("select", EXAMPLE, "--complexity", "length", "--budget", "10", "--out", out)
    text = cli("report", out, "--out", tmp_path / "rep")
    assert "records" in text and "report.html" in text
    files = sorted(p.name for p in (tmp_path / "rep").iterdir())
    assert files == ["lengths.png", "ngrams.png", "overlap.png", "report.html", "summary.json"]
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    assert summary["summary"]["empty responses (never selected)"] == "1"
    # The output exists: refused, then replaced with --overwrite.
    res = CliRunner().invoke(main, ["report", str(out), "--out", str(tmp_path / "rep")])
    assert res.exit_code != 0 and "already exists" in res.output and "Traceback" not in res.output
    cli("report", out, "--out", tmp_path / "rep", "--overwrite")
    res = CliRunner().invoke(main, ["report", str(out), "--out", str(tmp_path / "no" / "rep")])
    assert res.exit_code != 0 and "does not exist" in res.output


def test_report_with_ifd(tmp_path):
    n = 97
    rng = np.random.default_rng(2)
    scores = tmp_path / "s.jsonl"
    scores.write_text(
        "".join(
            json.dumps({"index": i, "ifd": float(v)}) + "\n"
            for i, v in enumerate(rng.uniform(0.2, 1.3, n))
        )
    )
    out = tmp_path / "sel.json"
    cli("select", EXAMPLE, "--scores", scores, "--budget", "10", "--out", out)
    rep = build_report(out)
    assert rep.ifd_all is not None and "selected" in rep.ifd_sets
    assert any("IFD >= 1" in k for k, _ in rep.summary)
    write_report(rep, tmp_path / "r")
    assert (tmp_path / "r" / "ifd.png").read_bytes().startswith(PNG)


def test_report_of_something_else_fails_cleanly(tmp_path):
    res = CliRunner().invoke(main, ["report", str(EXAMPLE), "--out", str(tmp_path / "r")])
    assert res.exit_code != 0 and "not a selection written by `iterit select`" in res.output
    empty = tmp_path / "empty_run"
    empty.mkdir()
    res = CliRunner().invoke(main, ["report", str(empty), "--out", str(tmp_path / "r")])
    assert res.exit_code != 0 and "no selection log" in res.output
    assert not (tmp_path / "r").exists()
