"""iterit.scoring.evaluate: the token-weighted mean NLL of reference responses, against the
one-sequence-at-a-time reference scorer on a tiny Llama (fixtures in conftest.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from iterit.data.sample import Sample
from iterit.scoring.evaluate import EvalNLL, eval_nll
from tests.helpers.word_llama import INVALID, MAX_LEN


def weighted(ref, rows=None) -> tuple[float, int, int]:
    """The reference's token-weighted mean NLL, tokens and scored samples (over ``rows``)."""
    idx = np.arange(len(ref.nll_cond)) if rows is None else np.asarray(rows)
    c, k = ref.nll_cond[idx], ref.n_tokens[idx]
    ok = np.isfinite(c) & (k > 0)
    return float(np.dot(c[ok], k[ok]) / k[ok].sum()), int(k[ok].sum()), int(ok.sum())


@pytest.fixture(scope="module")
def full(model, tok, samples):
    return eval_nll(model, tok, samples, max_length=MAX_LEN)


def test_matches_the_reference_weighted_by_tokens(full, samples, ref):
    nll, n_tokens, n_samples = weighted(ref)
    assert full.nll == pytest.approx(nll, rel=1e-5)
    assert (full.n_tokens, full.n_samples) == (n_tokens, n_samples)
    assert n_samples == len(samples) - len(INVALID)  # invalid samples have no score
    # Weighted by tokens, not by samples: the plain mean of the samples differs here.
    plain = float(np.nanmean(ref.nll_cond))
    assert abs(full.nll - plain) > 1e-3


def test_invalid_samples_do_not_count(model, tok, samples, ref):
    rows = [i for i in range(12) if i not in INVALID]
    with_invalid = eval_nll(model, tok, samples[:12], max_length=MAX_LEN)
    assert with_invalid.n_samples == len(rows)
    assert with_invalid.nll == pytest.approx(weighted(ref, rows)[0], rel=1e-5)


def test_one_sample_is_its_own_conditional_nll(model, tok, samples, ref):
    out = eval_nll(model, tok, [samples[0]], max_length=MAX_LEN)
    assert out.nll == pytest.approx(ref.nll_cond[0], rel=1e-5)
    assert out.n_tokens == ref.n_tokens[0] and out.n_samples == 1


def test_the_batch_budget_does_not_change_the_result(model, tok, samples, ref):
    rows = list(range(18, 30))  # 23: a response truncated at max_length
    out = eval_nll(model, tok, [samples[i] for i in rows], max_length=MAX_LEN, batch_tokens=MAX_LEN)
    nll, n_tokens, n_samples = weighted(ref, rows)
    assert out.nll == pytest.approx(nll, rel=1e-5)
    assert (out.n_tokens, out.n_samples) == (n_tokens, n_samples)


def test_max_length_truncates_what_is_scored(model, tok, samples, ref):
    rows = [23, 24, 25]  # 23: a long response
    short = eval_nll(model, tok, [samples[i] for i in rows], max_length=MAX_LEN - 8)
    assert short.n_samples == 3 and short.n_tokens < weighted(ref, rows)[1]


def test_forward_tokens_count_both_passes(full):
    # The conditional pass alone runs more tokens than it scores (the prompts); the prior pass
    # adds at least one token per scored sample.
    assert full.forward_tokens > full.n_tokens + full.n_samples
    assert full.seconds > 0


def test_nothing_to_score_is_nan_over_no_tokens(model, tok):
    out = eval_nll(model, tok, [Sample("write a poem", ""), Sample("what is two", "  ")])
    assert math.isnan(out.nll) and out.n_tokens == 0 and out.n_samples == 0


def test_the_result_is_frozen(full):
    assert isinstance(full, EvalNLL)
    with pytest.raises(AttributeError):
        full.nll = 0.0  # type: ignore[misc]
    assert type(full.nll) is float and type(full.n_tokens) is int and type(full.n_samples) is int


def test_the_template_is_the_one_given(model, tok, samples):
    few = samples[:4]
    alpaca = eval_nll(model, tok, few, max_length=MAX_LEN)
    plain = eval_nll(model, tok, few, max_length=MAX_LEN, template=lambda s: s.instruction)
    assert plain.n_samples == alpaca.n_samples == 4
    assert plain.forward_tokens < alpaca.forward_tokens  # shorter prompts
    assert plain.nll != pytest.approx(alpaca.nll)


def test_per_record_nlls_match_the_reference_and_weight_to_the_mean(model, tok, samples, ref):
    res = eval_nll(model, tok, samples, template="alpaca", max_length=MAX_LEN)
    assert len(res.record_nll) == len(res.record_tokens) == len(samples)
    ok = [v is not None for v in res.record_nll]
    assert sum(ok) == res.n_samples and sum(res.record_tokens) == res.n_tokens
    values = np.array([v for v in res.record_nll if v is not None])
    tokens = np.array([k for k, good in zip(res.record_tokens, ok, strict=True) if good])
    assert res.nll == pytest.approx(float(values @ tokens / tokens.sum()), rel=1e-12)
    expect = np.asarray(ref.nll_cond)[np.asarray(ok)]
    np.testing.assert_allclose(values, expect, rtol=1e-4, atol=1e-5)
