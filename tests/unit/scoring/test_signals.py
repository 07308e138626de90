"""iterit.scoring.signals: the learning-percentage formula, its complexity mapping and the
IFD-scale complexity of an in-loop loss.  Torch-free."""

from __future__ import annotations

import math

import numpy as np
import pytest

from iterit.scoring.signals import ifd_equivalent, learning_percentage, lp_complexity


def test_formula_zero_denominator_and_nan():
    ppl = np.array(
        [
            [10.0, 10.0, 8.0, np.nan, 5.0],  # P0
            [6.0, 10.0, 9.0, 3.0, 4.0],  # P1
            [5.0, 12.0, 9.5, 2.0, 4.5],  # P2
            [2.0, 10.0, 10.0, 1.0, 4.0],  # P3
        ]
    )
    lp, proxy = learning_percentage(ppl)
    np.testing.assert_allclose(lp[[0, 2, 4]], [4 / 8, -1 / -2, 1 / 1])
    assert lp[1] == 0.0  # P0 == Pn: 0, not a division by zero
    assert math.isnan(lp[3]) and math.isnan(proxy[3])
    np.testing.assert_allclose(proxy[[0, 1, 2, 4]], [0.4, 0.0, -1 / 8, 0.2])
    with pytest.raises(ValueError, match="before and after"):
        learning_percentage(ppl[:1])


def test_complexity_is_decreasing_in_lp_and_always_a_candidate():
    import iterit
    from iterit.data.sample import Sample
    from iterit.selection.strategies import select_samples

    lp = np.array([-1e6, -3.0, 0.0, 0.5, 1.0, 2.0, 1e6, np.nan])
    c = lp_complexity(lp)
    assert c[2] == 0.5 and abs(c[4] - 1 / (1 + math.e)) < 1e-15
    assert np.all(np.diff(c[:7]) <= 0) and np.all(np.diff(c[1:6]) < 0)
    assert np.all((c[:7] > 0) & (c[:7] < 1))  # valid for max_complexity = 1, even at extremes
    assert math.isnan(c[7])
    # IFD-only selection by this complexity is "lowest LP (hardest) first".
    samples = [Sample(instruction=f"q{i}", response=f"answer {i}") for i in range(7)]
    picks = select_samples(samples, 4, strategy="ifd", complexity=c[:7]).indices.tolist()
    assert picks == [0, 1, 2, 3]
    sel = iterit.select([s.response for s in samples], c[:7], 7, decay=0.0)
    assert sel.n_candidates == 7


def test_ifd_equivalent_is_exp_of_loss_minus_prior():
    np.testing.assert_allclose(ifd_equivalent([1.0, 2.0], [2.0, 1.0]), [np.exp(-1), np.exp(1)])
    assert math.isnan(ifd_equivalent([np.nan], [1.0])[0])
    assert ifd_equivalent([1e6], [0.0])[0] == np.inf  # overflow is inf, not a warning
