"""iterit.report.plots: PNG bytes, or None when there is nothing to draw."""

from __future__ import annotations

import numpy as np
import pytest

from iterit.report import plot_ifd, plot_lengths, plot_ngrams, plot_overlap
from iterit.report.model import Report
from tests.helpers.report import PNG

pytest.importorskip("matplotlib")


def test_nothing_to_draw():
    rep = Report(title="t", source="s")
    assert plot_ifd(rep) is None and plot_lengths(rep) is None
    assert plot_overlap(rep) is None and plot_ngrams(rep) is None


def test_every_plot_is_a_png():
    rep = Report(
        title="t",
        source="s",
        ifd_all=np.array([0.2, 0.5, np.nan, 1.3]),
        ifd_sets={"selected": np.array([0.5])},
        lengths={"all": np.array([3, 10, 20]), "selected": np.array([10])},
        overlap_labels=["a", "b"],
        overlap=np.array([[1.0, 0.5], [0.5, 1.0]]),
        ngrams={1: [("cat", 2, 3)], 2: [("the cat", 1, 2)]},
    )
    for plot in (plot_ifd, plot_lengths, plot_overlap, plot_ngrams):
        assert plot(rep).startswith(PNG)
