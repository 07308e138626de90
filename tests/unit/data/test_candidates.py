"""The candidate rule: finite, > 0 and < the maximum (docs/design.md, "Candidates")."""

from __future__ import annotations

import math

import numpy as np

from iterit.data.candidates import IFD_MAX, candidate_mask, is_candidate

VALUES = [0.5, 0.0, -0.2, 1.0, 1.3, math.nan, math.inf, 0.999, 1e-12]


def test_mask_and_scalar_rule_agree():
    mask = candidate_mask(VALUES)
    assert mask.tolist() == [True, False, False, False, False, False, False, True, True]
    assert mask.tolist() == [is_candidate(v) for v in VALUES]
    assert IFD_MAX == 1.0


def test_no_upper_bound():
    mask = candidate_mask(VALUES, None)
    assert mask.tolist() == [True, False, False, True, True, False, False, True, True]
    assert mask.tolist() == [is_candidate(v, None) for v in VALUES]
    assert candidate_mask(np.array([], dtype=float)).shape == (0,)
