"""iterit.artifacts.run_files: the files of a training run folder (selection log, run summary,
resolved configuration): their names, round trips, atomic replacement and the errors that name
the file and line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from iterit.artifacts import names, run_files
from iterit.artifacts.epoch_records import EpochRecord, EpochSummary, RunSummary
from iterit.errors import DataError
from tests.helpers.cli import leftovers


def rec(epoch: int, picks: list[int], **kw) -> EpochRecord:
    return EpochRecord(epoch=epoch, picks=picks, budget=len(picks), **kw)


def summary() -> RunSummary:
    e0 = EpochSummary(
        epoch=0,
        n_scored=8,
        n_trained=2,
        pool_size=4,
        overlap_prev=None,
        score_forward_calls=3,
        timings={"score_s": 0.5, "train_s": 1.25},
    )
    return RunSummary(n_samples=8, budget=2, rescore="ifd", pool_size=4, epochs=[e0])


def test_paths_are_the_owned_names_inside_the_run_folder(tmp_path):
    assert run_files.selection_log_path(tmp_path) == tmp_path / names.SELECTION_LOG
    assert run_files.summary_path(str(tmp_path)) == tmp_path / names.SELECTION_SUMMARY
    assert run_files.train_config_path(tmp_path) == tmp_path / names.TRAIN_CONFIG


def test_the_log_keeps_the_given_order_one_line_per_record(tmp_path):
    path = run_files.selection_log_path(tmp_path)
    recs = [rec(2, [5]), rec(0, [1, 2]), rec(1, [3])]
    run_files.write_selection_log(path, iter(recs))  # any iterable
    lines = path.read_text(encoding="utf-8").split("\n")
    assert lines[-1] == "" and len(lines) == 4  # newline-terminated, nothing else
    assert [json.loads(ln)["epoch"] for ln in lines[:-1]] == [2, 0, 1]
    assert run_files.read_selection_log(path) == recs
    objs, line_numbers = run_files.read_selection_log_lines(path)
    assert [o["picks"] for o in objs] == [[5], [1, 2], [3]] and line_numbers == [1, 2, 3]


def test_an_empty_log_round_trips(tmp_path):
    path = tmp_path / "log.jsonl"
    run_files.write_selection_log(path, [])
    assert path.read_text() == ""
    assert run_files.read_selection_log(path) == []


def test_a_rewrite_replaces_the_log_whole(tmp_path):
    # A resumed run rewrites its log to match its restored state: no line of the old one stays.
    path = tmp_path / "log.jsonl"
    run_files.write_selection_log(path, [rec(0, [1]), rec(1, [2]), rec(2, [3])])
    run_files.write_selection_log(path, [rec(0, [1])])
    assert run_files.read_selection_log(path) == [rec(0, [1])]
    assert leftovers(tmp_path) == []


def test_a_failing_write_leaves_the_previous_log(tmp_path):
    path = tmp_path / "log.jsonl"
    run_files.write_selection_log(path, [rec(0, [1])])
    before = path.read_bytes()

    def records():
        yield rec(0, [9])
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        run_files.write_selection_log(path, records())
    assert path.read_bytes() == before and leftovers(tmp_path) == []


def test_blank_lines_are_skipped_and_line_numbers_kept(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text('\n{"epoch": 0, "picks": [1]}\n   \n{"epoch": 1, "picks": []}\n\n')
    objs, lines = run_files.read_selection_log_lines(path)
    assert lines == [2, 4] and [o["epoch"] for o in objs] == [0, 1]
    assert [r.picks for r in run_files.read_selection_log(path)] == [[1], []]


@pytest.mark.parametrize(
    ("text", "where", "what"),
    [
        ('{"epoch": 0, "picks": [1]}\n{oops\n', "line 2", "invalid JSON"),
        ('{"epoch": 0, "picks": [1]}\n[1, 2]\n', "record 1 (line 2)", "expected a JSON object"),
        ('\n{"picks": [1]}\n', "line 2", "needs an 'epoch'"),
        ('{"epoch": 0, "picks": ["a"]}\n', "line 1", "must be integers"),
    ],
)
def test_a_bad_line_is_one_error_naming_the_file_and_line(tmp_path, text, where, what):
    path = tmp_path / "bad.jsonl"
    path.write_text(text)
    with pytest.raises(DataError) as info:
        run_files.read_selection_log(path)
    msg = str(info.value)
    assert "\n" not in msg and msg.startswith(f"{path}: {where}: ") and what in msg
    assert info.value.path == str(path)


def test_the_field_of_a_bad_record_is_kept(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"epoch": 3, "picks": "1,2"}\n')
    with pytest.raises(DataError) as info:
        run_files.read_selection_log(path)
    assert info.value.field == "picks" and info.value.line == 1


def test_fractional_picks_are_refused(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text('{"epoch": 0, "picks": [1.5, 2.9]}\n')
    with pytest.raises(DataError, match="line 1"):
        run_files.read_selection_log(path)


def test_the_summary_file_is_indented_json_and_round_trips(tmp_path):
    path = run_files.summary_path(tmp_path)
    run_files.write_summary(path, summary())
    text = path.read_text()
    assert text.endswith("}\n") and text.startswith("{\n  ")
    assert run_files.read_summary(path) == summary()
    run_files.write_summary(path, RunSummary(n_samples=1, budget=1, rescore=None, pool_size=0))
    assert run_files.read_summary(path).epochs == []  # replaced, not merged
    assert leftovers(tmp_path) == []


def test_a_summary_that_is_not_one_names_the_file(tmp_path):
    path = tmp_path / "summary.json"
    path.write_text('{"budget": 3}')
    with pytest.raises(DataError) as info:
        run_files.read_summary(path)
    assert str(info.value).startswith(f"{path}: not a run summary") and info.value.path == str(path)
    path.write_text("[1, 2]")
    with pytest.raises(DataError, match="not a run summary"):
        run_files.read_summary(path)


def test_a_summary_that_is_not_json_names_the_file_once(tmp_path):
    path = tmp_path / "s.json"
    path.write_text("{oops")
    with pytest.raises(DataError) as info:
        run_files.read_summary(path)
    assert str(info.value).count(str(path)) == 1
    assert str(info.value).startswith(f"{path}: line 1: not a JSON file")


def test_the_train_config_round_trips_with_paths_as_strings(tmp_path):
    path = run_files.train_config_path(tmp_path)
    config = {"model": "m", "data": Path("/d/train.jsonl"), "epochs": 3, "fields": None}
    run_files.write_train_config(path, config)
    got = run_files.read_train_config(path)
    assert got == {"model": "m", "data": "/d/train.jsonl", "epochs": 3, "fields": None}
    assert list(got) == list(config)  # key order kept


def test_a_train_config_that_is_not_json_names_the_file_and_line(tmp_path):
    path = tmp_path / "cfg.json"
    path.write_text('{\n  "a": 1,\n  oops\n}')
    with pytest.raises(DataError) as info:
        run_files.read_train_config(path)
    assert str(info.value).startswith(f"{path}: line 3: not a JSON file")
    assert info.value.line == 3


def test_a_missing_file_is_an_os_error(tmp_path):
    # The command line prints an OSError as one line; nothing is created by reading.
    for read in (run_files.read_selection_log, run_files.read_summary, run_files.read_train_config):
        with pytest.raises(FileNotFoundError):
            read(tmp_path / "missing")
    assert list(tmp_path.iterdir()) == []


def test_a_summary_that_is_not_utf8_is_a_data_error_naming_the_file(tmp_path):
    path = tmp_path / "summary.json"
    path.write_bytes(b'\xff{"n_samples": 1}')
    with pytest.raises(DataError, match=r"summary\.json"):
        run_files.read_summary(path)
