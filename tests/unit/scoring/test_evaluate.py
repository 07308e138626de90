"""iterit.scoring.evaluate: the token-weighted mean NLL and the per-record NLLs a paired
comparison needs, against the per-sample reference."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers.word_llama import MAX_LEN


def test_per_record_nlls_match_the_reference_and_weight_to_the_mean(model, tok, samples, ref):
    from iterit.scoring.evaluate import eval_nll

    res = eval_nll(model, tok, samples, template="alpaca", max_length=MAX_LEN)
    assert len(res.record_nll) == len(res.record_tokens) == len(samples)
    ok = [v is not None for v in res.record_nll]
    assert sum(ok) == res.n_samples and sum(res.record_tokens) == res.n_tokens
    values = np.array([v for v in res.record_nll if v is not None])
    tokens = np.array([k for k, good in zip(res.record_tokens, ok, strict=True) if good])
    assert res.nll == pytest.approx(float(values @ tokens / tokens.sum()), rel=1e-12)
    expect = np.asarray(ref.nll_cond)[np.asarray(ok)]
    np.testing.assert_allclose(values, expect, rtol=1e-4, atol=1e-5)
