"""iterit.artifacts.names: every output file name in one place, the sidecars of a selection and
its run file, and the names' consistency (no two outputs of one folder share a name)."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from iterit.artifacts import names

RUN_FOLDER = (names.SELECTION_LOG, names.SELECTION_SUMMARY, names.TRAIN_CONFIG)
REPORT_FOLDER = (names.REPORT_HTML, names.REPORT_SUMMARY, *names.REPORT_PLOTS.values())
COMPARE_FOLDER = (
    names.COMPARE_CSV,
    names.COMPARE_JSON,
    names.COMPARE_SCORES,
    names.COMPARE_SCORES_INFO,
    names.COMPARE_EVAL_ROWS,
    names.COMPARE_BASE_EVAL_ROWS,
    names.COMPARE_ARM_SUMMARY,
    names.COMPARE_ARMS_DIR,
    names.COMPARE_HTML,
)


def test_all_lists_exactly_the_public_names():
    public = {n for n in vars(names) if not n.startswith("_") and n not in {"Path", "annotations"}}
    assert set(names.__all__) == public
    assert sorted(names.__all__) == list(names.__all__)


@pytest.mark.parametrize(
    "name", [*RUN_FOLDER, *REPORT_FOLDER, *COMPARE_FOLDER, names.MERGED_MODEL_DIR]
)
def test_every_name_is_one_plain_file_name(name):
    assert name and name == name.strip()
    assert PurePosixPath(name).name == name  # no folder part, no separator
    assert "\\" not in name and not name.startswith(".")


@pytest.mark.parametrize(
    "folder", [RUN_FOLDER + (names.MERGED_MODEL_DIR,), REPORT_FOLDER, COMPARE_FOLDER]
)
def test_no_two_outputs_of_one_folder_share_a_name(folder):
    assert len(set(folder)) == len(folder)


def test_an_arm_folder_holds_a_run_and_its_compare_files_without_clashes():
    # Each arm of `iterit compare` is a training run folder plus its evaluation rows and summary.
    arm = (*RUN_FOLDER, names.COMPARE_EVAL_ROWS, names.COMPARE_ARM_SUMMARY)
    assert len(set(arm)) == len(arm)


def test_the_run_log_is_looked_for_under_its_own_name_first():
    assert names.RUN_LOG_NAMES[0] == names.SELECTION_LOG
    assert len(set(names.RUN_LOG_NAMES)) == len(names.RUN_LOG_NAMES)
    assert all(n.endswith(".jsonl") for n in names.RUN_LOG_NAMES)  # found by a *.jsonl scan too


def test_report_plots_are_pngs_by_plot():
    assert set(names.REPORT_PLOTS) == {"ifd", "lengths", "overlap", "ngrams"}
    assert all(v.endswith(".png") for v in names.REPORT_PLOTS.values())
    assert len(set(names.REPORT_PLOTS.values())) == len(names.REPORT_PLOTS)


def test_the_base_eval_rows_are_the_eval_rows_prefixed():
    assert names.COMPARE_BASE_EVAL_ROWS == "base_" + names.COMPARE_EVAL_ROWS


@pytest.mark.parametrize(
    "out", [Path("sel.jsonl"), Path("dir/sel.parquet"), Path("/abs/a.b.json"), Path("folder")]
)
def test_selection_sidecars_sit_beside_the_output(out):
    scores, meta = names.selection_sidecars(out)
    assert scores.parent == meta.parent == out.parent
    assert scores.name == out.name + ".scores.jsonl"
    assert meta.name == out.name + ".meta.json"
    assert (scores.name[len(out.name) :], meta.name[len(out.name) :]) == (
        names.SELECTION_SIDECAR_SUFFIXES
    )


def test_the_run_file_is_beside_the_output_and_no_sidecar():
    out = Path("x/sel.jsonl")
    run = names.selection_run_file(out)
    assert run == Path("x/sel.jsonl.run.json")
    assert run not in names.selection_sidecars(out)


def test_a_run_log_is_never_mistaken_for_a_selection_sidecar():
    # build_report tells a selection's .scores.jsonl from a run log by these suffixes.
    for log in names.RUN_LOG_NAMES:
        assert not log.endswith(names.SELECTION_SIDECAR_SUFFIXES)
    assert not names.SELECTION_SUMMARY.endswith(names.SELECTION_SIDECAR_SUFFIXES)
