"""``iterit report``: a selection or a training run to an HTML folder, and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from iterit.cli import main
from iterit.report import build_report, write_report
from tests.helpers.cli import EXAMPLE, ROOT, fail, run
from tests.helpers.report import PNG, run_dir

pytest.importorskip("matplotlib")


def test_report_command_on_a_selection(tmp_path):
    out = tmp_path / "sel.jsonl"
    run("select", EXAMPLE, "--complexity", "length", "--budget", "10", "--out", out)
    text = run("report", out, "--out", tmp_path / "rep").output
    assert "records" in text and "report.html" in text
    files = sorted(p.name for p in (tmp_path / "rep").iterdir())
    assert files == ["lengths.png", "ngrams.png", "overlap.png", "report.html", "summary.json"]
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    assert summary["summary"]["empty responses (never selected)"] == "1"
    # The output exists: refused, then replaced with --overwrite.
    assert "already exists" in fail("report", out, "--out", tmp_path / "rep")
    run("report", out, "--out", tmp_path / "rep", "--overwrite")
    # A missing output folder is created, like every other command's.
    run("report", out, "--out", tmp_path / "no" / "rep", "--quiet")
    assert (tmp_path / "no" / "rep" / "report.html").is_file()


def test_select_and_report_show_assistant_turns_of_conversations(tmp_path):
    data, out = ROOT / "examples" / "sharegpt_mini.json", tmp_path / "sel.jsonl"
    chosen = run("select", data, "--complexity", "length", "--budget", "3", "--out", out).output
    text = run("report", out, "--out", tmp_path / "rep").output
    for printed in (chosen, text):
        assert "assistant turns per sample: all / selected" in printed
        assert "mean 1.38, max 2 / mean 1.67, max 2" in printed


def test_report_command_on_a_run(tmp_path):
    text = run("report", run_dir(tmp_path), "--out", tmp_path / "rep").output
    assert "iterit training run: run" in text and "Jaccard between epochs" in text
    assert (tmp_path / "rep" / "overlap.png").read_bytes().startswith(PNG)


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
    run("select", EXAMPLE, "--scores", scores, "--budget", "10", "--out", out)
    rep = build_report(out)
    assert rep.ifd_all is not None and "selected" in rep.ifd_sets
    assert any("IFD >= 1" in k for k, _ in rep.summary)
    write_report(rep, tmp_path / "r")
    assert (tmp_path / "r" / "ifd.png").read_bytes().startswith(PNG)
    assert "--scores needs --data" in fail(
        "report", out, "--scores", scores, "--out", tmp_path / "x"
    )


def test_report_of_something_else_fails_cleanly(tmp_path):
    msg = fail("report", EXAMPLE, "--out", tmp_path / "r")
    assert "not a selection written by `iterit select`" in msg
    empty = tmp_path / "empty_run"
    empty.mkdir()
    assert "no selection log" in fail("report", empty, "--out", tmp_path / "r")
    assert not (tmp_path / "r").exists()
    res = CliRunner().invoke(main, ["report", str(empty), "--out", str(tmp_path / "r")])
    assert res.exit_code == 1
