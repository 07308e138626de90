"""IFDScores and the candidate rule it applies (docs/design.md, "Candidates")."""

from __future__ import annotations

import numpy as np

from iterit.data.candidates import candidate_mask
from iterit.scoring.encoding import EMPTY_RESPONSE, OK, PROMPT_TOO_LONG
from iterit.scoring.results import IFDScores, ScoringStats, scores_from_nll


def test_ifd_is_exp_of_the_difference_and_invalid_are_counted():
    c = np.array([1.0, np.nan, np.nan, 2.0, 0.5])
    p = np.array([2.0, np.nan, np.nan, 1.0, np.inf])
    reasons = np.array([OK, EMPTY_RESPONSE, PROMPT_TOO_LONG, OK, OK], dtype=np.int8)
    stats = ScoringStats(seconds=1.0)
    out = scores_from_nll(c, p, np.array([3, 0, 0, 4, 5]), reasons, n_truncated=2, stats=stats)
    np.testing.assert_allclose(out.ifd[[0, 3]], [np.exp(-1.0), np.exp(1.0)])
    assert out.ifd[4] == 0.0  # exp(-inf): finite, but not a candidate
    assert (out.n_invalid, out.n_empty_response, out.n_prompt_too_long) == (2, 1, 1)
    assert out.n_truncated == 2 and out.stats is stats


def test_candidate_mask_is_the_one_rule():
    ifd = np.array([0.5, 0.0, -0.1, 1.0, 1.5, np.nan, np.inf, 0.999])
    out = scores_from_nll(np.log(np.abs(ifd) + 1), np.zeros(8), np.ones(8), np.zeros(8))
    object.__setattr__(out, "ifd", ifd)
    np.testing.assert_array_equal(out.candidate_mask, candidate_mask(ifd))
    assert out.candidate_mask.tolist() == [True, False, False, False, False, False, False, True]


def test_scoring_stats_round_trip_through_json_with_the_derived_values():
    import json

    stats = ScoringStats(samples=5, real_tokens=30, padded_tokens=40, prefix_tokens_computed=7)
    text = json.dumps(stats.to_json())
    data = json.loads(text)
    assert data["forward_tokens"] == 37 and data["padding_efficiency"] == 0.75
    assert ScoringStats.from_json(data) == stats
    assert ScoringStats().padding_efficiency == 1.0  # no batches: nothing padded


def test_scoring_stats_refuse_unknown_entries():
    import pytest

    from iterit.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="unknown scoring statistics: speed"):
        ScoringStats.from_json({"speed": 1})


def test_summed_counters_are_replaced_by_the_totals():
    stats = ScoringStats(forward_calls=2, scored=3, cached=1)
    part = stats.summed()
    assert part["forward_calls"] == 2 and part["scored"] == 3 and "cached" not in part
    stats.set_summed({k: 10 * v for k, v in part.items()})
    assert (stats.forward_calls, stats.scored, stats.cached) == (20, 3, 1)


def test_empty_scores_have_no_candidates():
    out = IFDScores.empty(3, "m", "loss-ratio")
    assert len(out) == 3 and out.n_invalid == 3 and not out.candidate_mask.any()
    assert (out.model, out.ifd_variant, out.n_cached) == ("m", "loss-ratio", 0)
