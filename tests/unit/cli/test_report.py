"""iterit.cli.report: ``iterit report``'s checks before any work (output folder, --scores
without --data, matplotlib) and what it hands the library (the report's builder and writer are
replaced here; tests/integration/cli/test_report.py draws real reports)."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("click")

import iterit.report
from iterit.errors import DataError
from tests.helpers.cli import EXAMPLE, fail, fake_scores, run
from tests.helpers.report import run_dir


@pytest.fixture
def library(monkeypatch):
    """The report library replaced: records the calls, writes nothing."""
    calls = SimpleNamespace(build=[], write=[])

    def build_report(source, *, data=None, scores=None, top=20):
        calls.build.append(SimpleNamespace(source=source, data=data, scores=scores, top=top))
        return "REPORT"

    def write_report(rep, out, *, overwrite=False, progress=None):
        calls.write.append(
            SimpleNamespace(rep=rep, out=out, overwrite=overwrite, progress=progress)
        )
        return Path(out) / "report.html"

    monkeypatch.setattr(iterit.report, "build_report", build_report)
    monkeypatch.setattr(iterit.report, "write_report", write_report)
    monkeypatch.setattr(iterit.report, "terminal_summary", lambda rep: f"SUMMARY OF {rep}")
    return calls


def test_the_source_is_reported_into_the_folder(library, tmp_path):
    run_folder = run_dir(tmp_path)
    out = tmp_path / "rep"
    text = run("report", run_folder, "--out", out).output
    (build,) = library.build
    assert build.source == run_folder and build.data is None and build.scores is None
    assert build.top == 20
    (write,) = library.write
    assert write.rep == "REPORT" and write.out == out and write.overwrite is False
    assert text == f"SUMMARY OF REPORT\n\nreport: {out / 'report.html'}\n"


def test_top_is_passed_and_must_be_positive(library, tmp_path):
    source = run_dir(tmp_path)
    run("report", source, "--out", tmp_path / "rep", "--top", "3")
    assert library.build[0].top == 3
    msg = fail("report", source, "--out", tmp_path / "r2", "--top", "0", code=2)
    assert "--top" in msg and len(library.build) == 1


def test_a_relative_output_folder_is_in_the_working_folder(library, tmp_path, monkeypatch):
    source = run_dir(tmp_path)
    monkeypatch.chdir(tmp_path)
    run("report", source, "--out", "rep")
    assert library.write[0].out == Path("rep")


def test_a_missing_output_folder_is_created_as_by_the_other_commands(library, tmp_path):
    out = tmp_path / "missing" / "rep"
    run("report", run_dir(tmp_path), "--out", out)  # no refusal: the writer creates it
    assert Path(library.write[0].out) == out  # (tests/integration/cli/test_report.py)


def test_an_existing_output_needs_overwrite_and_must_be_a_folder(library, tmp_path):
    source = run_dir(tmp_path)
    out = tmp_path / "rep"
    out.mkdir()
    msg = fail("report", source, "--out", out, code=1)
    assert msg == f"Error: {str(out)!r} already exists (pass --overwrite)"
    run("report", source, "--out", out, "--overwrite")
    assert library.write[0].overwrite is True
    a_file = tmp_path / "rep.txt"
    a_file.write_text("keep me")
    for extra in ((), ("--overwrite",)):
        msg = fail("report", source, "--out", a_file, *extra, code=2)  # click refuses a file
        assert "--out" in msg and "is a file" in msg
    assert a_file.read_text() == "keep me" and len(library.build) == 1


def test_scores_need_data(library, tmp_path):
    scores, _ = fake_scores(tmp_path, 97)
    msg = fail("report", run_dir(tmp_path), "--out", tmp_path / "rep", "--scores", scores, code=2)
    assert msg == "Error: --scores needs --data (to check the scores against it)"
    assert library.build == []


def test_data_and_scores_are_loaded_and_checked_against_each_other(library, tmp_path):
    scores, ifd = fake_scores(tmp_path, 97)  # examples/alpaca_mini.jsonl holds 97 records
    source = run_dir(tmp_path)
    run("report", source, "--out", tmp_path / "rep", "--data", EXAMPLE, "--scores", scores)
    build = library.build[0]
    assert len(build.data) == 97 and build.data.format == "alpaca"
    np.testing.assert_allclose(build.scores, ifd)
    (tmp_path / "other").mkdir()
    short, _ = fake_scores(tmp_path / "other", 5)  # scores for other data
    msg = fail("report", source, "--out", tmp_path / "r2", "--data", EXAMPLE, "--scores", short)
    assert msg.startswith("Error: ") and "scores.jsonl" in msg
    assert len(library.build) == 1  # refused before the report is built


def test_the_data_format_options_apply(library, tmp_path):
    data = tmp_path / "renamed.jsonl"
    data.write_text('{"question": "q", "answer": "a"}\n')
    run(
        "report", run_dir(tmp_path), "--out", tmp_path / "rep", "--data", data,
        "--field", "instruction=question", "--field", "output=answer",
    )  # fmt: skip
    loaded = library.build[0].data
    assert loaded.samples[0].instruction == "q" and loaded.samples[0].response == "a"


def test_a_library_error_is_one_line(monkeypatch, tmp_path):
    def build_report(*args, **kwargs):
        raise DataError("no selection log", path=tmp_path)

    monkeypatch.setattr(iterit.report, "build_report", build_report)
    msg = fail("report", tmp_path, "--out", tmp_path / "rep", code=1)
    assert msg == f"Error: {tmp_path}: no selection log"
    assert not (tmp_path / "rep").exists()


def test_without_matplotlib_it_says_how_to_install_it(library, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    msg = fail("report", run_dir(tmp_path), "--out", tmp_path / "rep", code=1)
    assert "iterit report needs matplotlib" in msg and "pip install 'iterit[cli]'" in msg
    assert library.build == [] and not (tmp_path / "rep").exists()


def test_a_source_that_does_not_exist_is_a_usage_error(library, tmp_path):
    msg = fail("report", tmp_path / "nothing", "--out", tmp_path / "rep", code=2)
    assert "RUN_DIR_OR_SELECTION" in msg and "does not exist" in msg
