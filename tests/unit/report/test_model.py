"""iterit.report.model and .sources: what a report shows, from a selection or a training run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from iterit.config import SelectionConfig
from iterit.data import load
from iterit.errors import DataError
from iterit.report import build_report, read_selection_log, top_ngrams
from iterit.selection.overlap import jaccard
from iterit.selection.reference import ngrams
from iterit.workflows.select import select_dataset
from tests.helpers.cli import EXAMPLE
from tests.helpers.report import run_dir


def test_jaccard():
    assert jaccard([1, 2, 3], [2, 3, 4]) == 0.5 and jaccard([], []) == 1.0
    assert jaccard([1], []) == 0.0


def test_top_ngrams_counts_the_selectors_ngrams():
    texts = ["The cat sat on the mat, the cat!", "Ünïcode wörds and a cat", ""]
    grams = top_ngrams(texts, ngram_range=(1, 2), top=100)
    for n in (1, 2):
        occurrences = sum(g.count for g in [_Count(ngrams(t, (n, n))) for t in texts])
        assert sum(c for _, _, c in grams[n]) == occurrences
        assert {g for g, _, _ in grams[n]} == {g for t in texts for g in ngrams(t, (n, n))}


class _Count:
    def __init__(self, grams: list[str]) -> None:
        self.count = len(grams)


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
    assert [r.epoch for r in recs] == [0, 1] and recs[1].picks == [2, 3, 4]
    assert recs[0].ifd == [0.5, 0.6, 0.7] and recs[1].score == [1, 2, 3]
    log.write_text("{oops\n")
    with pytest.raises(DataError, match="line 1: invalid JSON"):
        read_selection_log(log)
    log.write_text('{"other": 1}\n')
    with pytest.raises(DataError, match="no epoch records"):
        read_selection_log(log)


def test_run_report(tmp_path):
    run = run_dir(tmp_path)
    recs = read_selection_log(run / "iterit_selection.jsonl")
    rep = build_report(run)
    assert rep.overlap is not None and rep.overlap.shape == (3, 3)
    assert rep.overlap[0, 1] == pytest.approx(jaccard(recs[0].picks, recs[1].picks))
    assert set(rep.lengths) == {"all", "epoch 0", "epoch 1", "epoch 2"}  # data found in the run
    assert rep.ngrams and rep.ngram_docs == 10
    assert rep.epoch_headers[0] == "epoch" and len(rep.epochs) == 3
    assert rep.epochs[1][-1] == f"{100 * rep.overlap[0, 1]:.2f}%"
    assert dict(rep.summary)["epochs"] == "3"


def test_selection_report(tmp_path):
    loaded = load(EXAMPLE)
    ifd = np.random.default_rng(2).uniform(0.2, 1.3, len(loaded))
    out = tmp_path / "sel.jsonl"
    done = select_dataset(loaded, out, SelectionConfig(budget=10), scores={"ifd": ifd})
    for source in (out, tmp_path / "sel.jsonl.meta.json", tmp_path / "sel.jsonl.scores.jsonl"):
        rep = build_report(source)
        assert rep.source == str(out)
        want = ifd[done.selection.indices]  # the sidecar keeps 10 decimals
        np.testing.assert_allclose(rep.ifd_sets["selected"], want, rtol=0, atol=1e-10)
        assert any("IFD >= 1" in k for k, _ in rep.summary)
        assert set(rep.lengths) == {"all", "selected", "longest (same budget)"}
        assert rep.ngram_docs == 10


def test_sources_that_are_not_reports_are_data_errors(tmp_path):
    with pytest.raises(DataError, match="not a selection written by `iterit select`"):
        build_report(EXAMPLE)
    (tmp_path / "empty_run").mkdir()
    with pytest.raises(DataError, match="no selection log"):
        build_report(tmp_path / "empty_run")
