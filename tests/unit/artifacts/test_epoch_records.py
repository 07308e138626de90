"""iterit.artifacts.epoch_records and run_files: the typed epoch record and run summary, their
JSON round trip and the selection log that holds the records."""

from __future__ import annotations

import json

import pytest

from iterit.artifacts.epoch_records import EpochRecord, EpochSummary, RunSummary
from iterit.artifacts.run_files import (
    read_selection_log,
    read_summary,
    write_selection_log,
    write_summary,
)
from iterit.errors import DataError


def record(epoch: int = 0, **kw) -> EpochRecord:
    base = {"picks": [4, 1, 3], "ifd": [0.5, None, 0.25], "score": [1.0, 0.5, 0.25]}
    return EpochRecord(epoch=epoch, n_samples=10, pool_size=6, budget=3, **{**base, **kw})


def test_unset_optional_fields_are_left_out_and_others_written_as_null():
    obj = record().to_json()
    assert obj["overlap_prev"] is None and obj["rescore"] is None  # always written
    for name in ("n_from_loss", "loss_ema", "global_step", "n_loss_recorded", "train_loss"):
        assert name not in obj
    obj = record(global_step=7, n_from_loss=2, loss_ema=[0.1, None, 0.2]).to_json()
    assert obj["global_step"] == 7 and list(obj)[-3:] == ["n_from_loss", "loss_ema", "global_step"]


def test_from_json_ignores_unknown_keys_and_needs_epoch_and_picks():
    rec = EpochRecord.from_json({"epoch": "2", "picks": [1, 2], "from_the_future": 1})
    assert rec == EpochRecord(epoch=2, picks=[1, 2])
    with pytest.raises(DataError, match="'epoch'"):
        EpochRecord.from_json({"picks": [1]})
    with pytest.raises(DataError, match="'picks' list"):
        EpochRecord.from_json({"epoch": 0, "picks": "1,2"})
    with pytest.raises(DataError, match="integers"):
        EpochRecord.from_json({"epoch": 0, "picks": ["a"]})


def test_with_losses_records_each_pick_or_none():
    rec = record().with_losses({4: 2.0, 3: 1.5})
    assert rec.n_loss_recorded == 2 and rec.train_loss == [2.0, None, 1.5]
    assert record().train_loss is None  # a new record; the original is unchanged


def test_the_selection_log_round_trips_and_names_a_bad_line(tmp_path):
    path = tmp_path / "log.jsonl"
    recs = [record(0), record(1, overlap_prev=0.5, global_step=3).with_losses({1: 0.5})]
    write_selection_log(path, recs)
    lines = path.read_text().splitlines()
    assert json.loads(lines[1])["train_loss"] == [None, 0.5, None]
    assert read_selection_log(path) == recs
    path.write_text(lines[0] + "\n" + '{"epoch": 1}\n')
    with pytest.raises(DataError, match=r"log\.jsonl: line 2: .*'picks' list"):
        read_selection_log(path)


def test_the_summary_round_trips_through_its_file(tmp_path):
    summary = RunSummary(
        n_samples=10,
        budget=3,
        rescore="ifd",
        pool_size=6,
        epochs=[
            EpochSummary(
                epoch=0,
                n_scored=10,
                n_trained=3,
                pool_size=6,
                overlap_prev=None,
                score_forward_calls=2,
                timings={"score_s": 1.5, "select_s": 0.5, "epoch_s": 4.0, "train_s": 2.0},
            ),
            EpochSummary(
                epoch=1,
                n_scored=0,
                n_trained=3,
                pool_size=6,
                overlap_prev=1.0,
                score_forward_calls=None,
                timings={"score_s": 0.0, "select_s": 0.0},
                restored=True,
            ),
        ],
        n_scored_total=10,
        paper_bound=16,
        n_trained_total=6,
    )
    path = tmp_path / "summary.json"
    write_summary(path, summary)
    doc = json.loads(path.read_text())
    assert doc["paper_bound_n_plus_aM_epochs_minus_1"] == 16
    assert list(doc["epochs"][0])[-2:] == ["train_s", "restored"]
    assert read_summary(path) == summary
    path.write_text('{"budget": 3}')
    with pytest.raises(DataError, match=r"summary\.json: not a run summary"):
        read_summary(path)
