"""iterit.report.turns: assistant turns per sample (all / selected / each epoch) in the
summaries of ``iterit select``, of a selection's report and of a run's report, shown only when
the data holds conversations with several assistant turns."""

from __future__ import annotations

import json

import numpy as np

from iterit.config import SelectionConfig
from iterit.data import load
from iterit.report import build_report, selection_summary, terminal_summary
from iterit.report.turns import assistant_turns, turn_row, turns_cell
from iterit.workflows.select import select_dataset
from tests.helpers.cli import EXAMPLE, ROOT

SHAREGPT = ROOT / "examples" / "sharegpt_mini.json"
LABEL = "assistant turns per sample"


def test_turn_row_gives_mean_and_max_of_all_and_each_set():
    turns = np.array([1, 3, 2, 1, 4])
    assert turns_cell(turns) == "mean 2.20, max 4" and turns_cell(turns[:0]) == "-"
    row = turn_row(turns, {"selected": np.array([1, 4]), "epoch 1": np.array([0, 3])})
    cells = "mean 2.20, max 4 / mean 3.50, max 4 / mean 1.00, max 1"
    assert row == [(f"{LABEL}: all / selected / epoch 1", cells)]
    assert turn_row(np.ones(5, dtype=np.int64), {"selected": np.array([0])}) == []
    assert turn_row(None, {}) == []


def _select(tmp_path, data, budget):
    loaded = load(data)
    out = tmp_path / "sel.jsonl"
    done = select_dataset(loaded, out, SelectionConfig(budget=budget, strategy="longest"))
    return loaded, out, done


def test_selection_summary_and_report_show_turns_of_conversations(tmp_path):
    loaded, out, done = _select(tmp_path, SHAREGPT, 3)
    turns = assistant_turns(loaded.samples)
    assert turns.max() > 1
    picks = done.selection.indices
    want = f"{turns_cell(turns)} / {turns_cell(turns[picks])}"
    meta = json.loads((tmp_path / "sel.jsonl.meta.json").read_text())
    text = selection_summary(meta, loaded, done.selection, None)
    assert f"{LABEL}: all / selected" in text and want in text
    rep = build_report(out)
    assert dict(rep.summary)[f"{LABEL}: all / selected"] == want
    assert want in terminal_summary(rep)  # what `iterit report` prints


def test_one_turn_data_has_no_turns_row(tmp_path):
    loaded, out, done = _select(tmp_path, EXAMPLE, 5)
    assert not any(k.startswith(LABEL) for k, _ in build_report(out).summary)
    meta = json.loads((tmp_path / "sel.jsonl.meta.json").read_text())
    assert LABEL not in selection_summary(meta, loaded, done.selection, None)


def test_run_report_shows_turns_per_epoch(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    picks = [[0, 2, 5], [1, 3, 4]]
    recs = [
        {"epoch": e, "strategy": "iterit", "n_samples": 8, "budget": 3, "picks": p}
        for e, p in enumerate(picks)
    ]
    (run / "iterit_selection.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    config = {"data": str(SHAREGPT), "data_format": "auto", "fields": None, "epochs": 2}
    (run / "iterit_train_config.json").write_text(json.dumps(config))
    turns = assistant_turns(load(SHAREGPT).samples)
    rep = build_report(run)
    cells = [turns_cell(turns), *(turns_cell(turns[p]) for p in picks)]
    assert dict(rep.summary)[f"{LABEL}: all / epoch 0 / epoch 1"] == " / ".join(cells)
