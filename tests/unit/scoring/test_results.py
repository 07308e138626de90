"""IFDScores and the candidate rule it applies (docs/design.md, "Candidates")."""

from __future__ import annotations

import numpy as np

from iterit.data.candidates import candidate_mask
from iterit.scoring.encoding import EMPTY_RESPONSE, OK, PROMPT_TOO_LONG
from iterit.scoring.results import scores_from_nll


def test_ifd_is_exp_of_the_difference_and_invalid_are_counted():
    c = np.array([1.0, np.nan, np.nan, 2.0, 0.5])
    p = np.array([2.0, np.nan, np.nan, 1.0, np.inf])
    reasons = np.array([OK, EMPTY_RESPONSE, PROMPT_TOO_LONG, OK, OK], dtype=np.int8)
    out = scores_from_nll(c, p, np.array([3, 0, 0, 4, 5]), reasons, n_truncated=2, seconds=1.0)
    np.testing.assert_allclose(out.ifd[[0, 3]], [np.exp(-1.0), np.exp(1.0)])
    assert out.ifd[4] == 0.0  # exp(-inf): finite, but not a candidate
    assert (out.n_invalid, out.n_empty_response, out.n_prompt_too_long) == (2, 1, 1)
    assert out.n_truncated == 2 and out.stats == {"seconds": 1.0}


def test_candidate_mask_is_the_one_rule():
    ifd = np.array([0.5, 0.0, -0.1, 1.0, 1.5, np.nan, np.inf, 0.999])
    out = scores_from_nll(np.log(np.abs(ifd) + 1), np.zeros(8), np.ones(8), np.zeros(8))
    object.__setattr__(out, "ifd", ifd)
    np.testing.assert_array_equal(out.candidate_mask, candidate_mask(ifd))
    assert out.candidate_mask.tolist() == [True, False, False, False, False, False, False, True]
