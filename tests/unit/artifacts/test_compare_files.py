"""iterit.artifacts.compare_files: each arm's summary and the comparison JSON."""

from __future__ import annotations

import json

import pytest

from iterit.artifacts.compare_files import (
    ArmSummary,
    read_arm_summary,
    read_compare_json,
    write_arm_summary,
    write_compare_json,
)
from iterit.errors import DataError


def arm() -> ArmSummary:
    return ArmSummary(
        arm="iterit",
        settings={"strategy": "iterit"},
        scoring_seconds=2.0,
        training_seconds=5.0,
        scoring_forward_tokens=100,
        rows=[{"arm": "iterit", "epoch": 1, "eval": "held-out", "nll": 2.5, "n_tokens": 9}],
    )


def test_the_arm_summary_round_trips_with_its_rows(tmp_path):
    path = write_arm_summary(tmp_path / "compare_arm.json", arm())
    assert json.loads(path.read_text())["rows"][0]["nll"] == 2.5
    assert read_arm_summary(path) == arm()
    path.write_text('{"arm": "x", "colour": 1}')
    with pytest.raises(DataError, match="not an arm summary"):
        read_arm_summary(path)


def test_compute_is_every_figure_but_the_names_and_rows():
    compute = arm().compute()
    assert compute["scoring_forward_tokens"] == 100 and compute["training_seconds"] == 5.0
    assert not {"arm", "settings", "rows"} & set(compute)


def test_the_comparison_lists_the_arms_without_their_rows(tmp_path):
    rows = arm().rows
    write_compare_json(tmp_path / "c.json", rows, {"iterit": arm()}, {"seed": 1})
    doc = read_compare_json(tmp_path / "c.json")
    assert doc["rows"] == rows and "rows" not in doc["arms"]["iterit"]
    assert doc["arms"]["iterit"]["scoring_seconds"] == 2.0
