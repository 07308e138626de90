"""iterit.report.sources: finding a training run's selection log and data, and reading the log
leniently (older runs, resumed epochs, unknown fields)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from iterit.artifacts.names import RUN_LOG_NAMES, SELECTION_LOG, TRAIN_CONFIG
from iterit.errors import DataError
from iterit.report.sources import find_run_data, find_run_log, read_selection_log


def jsonl(path: Path, *objs) -> Path:
    path.write_text("".join(json.dumps(o) + "\n" for o in objs), encoding="utf-8")
    return path


# ------------------------------------------------------------------------- read_selection_log


def test_records_come_sorted_by_epoch_and_the_last_line_of_an_epoch_wins(tmp_path):
    log = jsonl(
        tmp_path / "log.jsonl",
        {"epoch": 2, "picks": [7]},
        {"epoch": 0, "picks": [1, 2]},
        {"epoch": 2, "picks": [8, 9], "budget": 2},  # a resume rewrote epoch 2
        {"epoch": 1, "picks": []},
    )
    recs = read_selection_log(log)
    assert [r.epoch for r in recs] == [0, 1, 2]
    assert recs[2].picks == [8, 9] and recs[2].budget == 2 and recs[1].picks == []


def test_lines_that_are_not_epoch_records_are_skipped(tmp_path):
    log = jsonl(
        tmp_path / "log.jsonl",
        {"note": "header"},
        {"epoch": 0},  # no picks
        {"epoch": 0, "picks": "1,2"},  # picks not a list
        {"picks": [1]},  # no epoch
        {"epoch": 3, "picks": [4], "from_a_newer_version": {"x": 1}},
    )
    recs = read_selection_log(log)
    assert [(r.epoch, r.picks) for r in recs] == [(3, [4])]


def test_a_log_without_records_is_one_error_naming_the_file(tmp_path):
    for text in ("", "\n\n", '{"epoch": 0}\n{"other": 1}\n'):
        log = tmp_path / "log.jsonl"
        log.write_text(text)
        with pytest.raises(DataError) as info:
            read_selection_log(log)
        assert str(info.value) == f"{log}: no epoch records (lines with 'epoch' and 'picks')"


def test_a_line_that_is_not_json_names_the_file_and_line(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text('{"epoch": 0, "picks": [1]}\n\n{"epoch": 1, "picks": [\n')
    with pytest.raises(DataError, match=r"log\.jsonl: line 3: invalid JSON"):
        read_selection_log(log)


def test_a_record_with_bad_values_names_the_file_and_line(tmp_path):
    log = jsonl(tmp_path / "log.jsonl", {"epoch": 0, "picks": [1]}, {"epoch": "x", "picks": [1]})
    with pytest.raises(DataError, match=r"log\.jsonl: line 2: .*integers"):
        read_selection_log(log)


def test_a_log_that_is_not_utf8_is_a_data_error_naming_the_file(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_bytes(b'{"epoch": 0, "picks": [1]}\n\xff\xfe\n')
    with pytest.raises(DataError, match=r"log\.jsonl"):
        read_selection_log(log)


# ------------------------------------------------------------------------------ find_run_log


def test_no_log_in_an_empty_folder(tmp_path):
    assert find_run_log(tmp_path) is None


def test_the_names_are_tried_in_order(tmp_path):
    for name in reversed(RUN_LOG_NAMES):
        jsonl(tmp_path / name, {"epoch": 0, "picks": [1]})
        assert find_run_log(tmp_path) == tmp_path / name
    assert find_run_log(tmp_path) == tmp_path / SELECTION_LOG


def test_a_known_name_is_taken_without_reading_it(tmp_path):
    (tmp_path / RUN_LOG_NAMES[1]).write_text("not even json")
    jsonl(tmp_path / "a_log.jsonl", {"epoch": 0, "picks": [1]})
    assert find_run_log(tmp_path) == tmp_path / RUN_LOG_NAMES[1]


def test_any_jsonl_whose_first_record_is_an_epoch_record_is_found(tmp_path):
    jsonl(tmp_path / "a_scores.jsonl", {"index": 0, "ifd": 0.5})  # other JSON Lines
    (tmp_path / "b_broken.jsonl").write_text("{oops\n")
    (tmp_path / "c_binary.jsonl").write_bytes(b"\xff\xfe\x00")
    jsonl(tmp_path / "c_list.jsonl", [1, 2])
    (tmp_path / "d_folder.jsonl").mkdir()
    (tmp_path / "e_empty.jsonl").write_text("\n\n")
    assert find_run_log(tmp_path) is None
    (tmp_path / "z_log.jsonl").write_text('\n  \n{"epoch": 0, "picks": [3]}\n')
    jsonl(tmp_path / "y_log.jsonl", {"epoch": 1, "picks": [4]})
    assert find_run_log(tmp_path) == tmp_path / "y_log.jsonl"  # the first by name


def test_a_folder_under_a_known_name_is_not_a_log(tmp_path):
    (tmp_path / SELECTION_LOG).mkdir()
    assert find_run_log(tmp_path) is None


def test_logs_in_subfolders_are_not_found(tmp_path):
    (tmp_path / "checkpoint-1").mkdir()
    jsonl(tmp_path / "checkpoint-1" / SELECTION_LOG, {"epoch": 0, "picks": [1]})
    assert find_run_log(tmp_path) is None


# ----------------------------------------------------------------------------- find_run_data


def test_no_data_without_a_json_that_names_an_existing_file(tmp_path):
    assert find_run_data(tmp_path) is None
    (tmp_path / TRAIN_CONFIG).write_text(json.dumps({"data": str(tmp_path / "gone.jsonl")}))
    (tmp_path / "broken.json").write_text("{oops")
    (tmp_path / "binary.json").write_bytes(b"\xff\xfe")
    (tmp_path / "list.json").write_text(json.dumps([{"data": str(tmp_path)}]))
    (tmp_path / "empty_value.json").write_text(json.dumps({"data": ""}))
    (tmp_path / "not_a_string.json").write_text(json.dumps({"data": 3}))
    assert find_run_data(tmp_path) is None


def test_the_train_config_names_the_data_and_its_options(tmp_path):
    data = jsonl(tmp_path / "train.jsonl", {"instruction": "a", "output": "b"})
    config = {
        "model": "m",
        "data": str(data),
        "data_format": "alpaca",
        "fields": {"output": "answer"},
        "split": "train",
    }
    (tmp_path / TRAIN_CONFIG).write_text(json.dumps(config))
    path, opts = find_run_data(tmp_path)
    assert path == data
    assert opts == {"format": "alpaca", "fields": {"output": "answer"}, "split": "train"}


def test_options_that_are_absent_or_null_are_left_out(tmp_path):
    data = jsonl(tmp_path / "train.jsonl", {"instruction": "a", "output": "b"})
    cfg = {"data": str(data), "data_format": None, "fields": None, "split": None}
    (tmp_path / TRAIN_CONFIG).write_text(json.dumps(cfg))
    assert find_run_data(tmp_path) == (data, {})


@pytest.mark.parametrize("key", ["data", "data_path", "data_file", "train_file", "dataset"])
def test_other_names_for_the_data_and_nested_settings(tmp_path, key):
    data = jsonl(tmp_path / "d.jsonl", {"instruction": "a", "output": "b"})
    nested = {"run": {"args": {key: str(data), "format": "sharegpt"}}, "data": "not/a/file"}
    (tmp_path / "settings.json").write_text(json.dumps(nested))
    assert find_run_data(tmp_path) == (data, {"format": "sharegpt"})


def test_a_dataset_folder_counts_as_data(tmp_path):
    folder = tmp_path / "saved_dataset"
    folder.mkdir()
    (tmp_path / "cfg.json").write_text(json.dumps({"dataset": str(folder)}))
    assert find_run_data(tmp_path) == (folder, {})


def test_json_files_are_read_in_name_order(tmp_path):
    first = jsonl(tmp_path / "first.jsonl", {"instruction": "a", "output": "b"})
    second = jsonl(tmp_path / "second.jsonl", {"instruction": "a", "output": "b"})
    (tmp_path / "b.json").write_text(json.dumps({"data": str(second)}))
    (tmp_path / "a.json").write_text(json.dumps({"data": str(first)}))
    assert find_run_data(tmp_path)[0] == first


def test_the_first_key_that_names_an_existing_file_wins(tmp_path):
    data = jsonl(tmp_path / "d.jsonl", {"instruction": "a", "output": "b"})
    other = jsonl(tmp_path / "o.jsonl", {"instruction": "a", "output": "b"})
    cfg = {"dataset": str(other), "data": str(tmp_path / "missing"), "train_file": str(data)}
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    # Keys are tried data, data_path, data_file, train_file, dataset; missing files are passed.
    assert find_run_data(tmp_path)[0] == data
