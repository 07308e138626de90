"""score_samples: a dataset's IFD in one call, with errors that are IteritErrors."""

from __future__ import annotations

import numpy as np
import pytest

from iterit import Sample
from iterit.config import ScoringConfig
from iterit.errors import ModelError
from iterit.scoring.api import score_samples
from iterit.scoring.results import IFDScores


def test_nothing_to_score_loads_no_model():
    res = score_samples([Sample("a", ""), Sample("b", " ")], model="/no/such/model")
    assert isinstance(res, IFDScores) and len(res) == 2
    assert np.isnan(res.ifd).all() and not res.candidate_mask.any()
    assert (res.n_invalid, res.n_empty_response, res.dtype) == (2, 2, "")
    empty = score_samples([], model="x")
    assert set(empty.as_dict()) == {"ifd", "nll_cond", "nll_prior", "n_tokens"}


def test_missing_model_is_a_model_error(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    messages = []
    with pytest.raises(ModelError, match="no such model file or folder"):
        score_samples([Sample("a", "b")], model=str(tmp_path / "none"), log=messages.append)
    assert messages and messages[0].startswith("loading")


def test_scores_a_saved_model_with_the_cache(tmp_path, tok, model, samples):
    folder = tmp_path / "m"
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    cfg = ScoringConfig(max_length=64, progress=False, cache=tmp_path / "c", dtype="float32")
    picked = [*samples[:10], Sample("empty", "")]
    first = score_samples(picked, model=str(folder), scoring=cfg)
    again = score_samples(picked, model=str(folder), scoring=cfg)
    np.testing.assert_array_equal(first.ifd, again.ifd)
    assert again.n_cached == again.stats.cached == int(np.isfinite(first.ifd).sum()) > 0
    np.testing.assert_array_equal(first.candidate_mask, (first.ifd > 0) & (first.ifd < 1))
    assert (first.model, first.dtype) == (str(folder), "float32")
    assert first.n_empty_response == 1 + sum(not s.response.strip() for s in samples[:10])
    # the same scores as the scorer on the model itself (the empty response is NaN)
    from iterit.scoring import IFDScorer

    direct = IFDScorer(model, tok, max_length=64, progress=False).score(samples[:10])
    np.testing.assert_allclose(first.ifd[:10], direct.ifd, rtol=1e-6, equal_nan=True)
    assert np.isnan(first.ifd[10]) and first.n_tokens[10] == 0
