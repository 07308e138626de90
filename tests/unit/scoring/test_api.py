"""score_samples: a dataset's IFD in one call, with errors that are IteritErrors."""

from __future__ import annotations

import numpy as np
import pytest

from iterit import Sample
from iterit.errors import ModelError
from iterit.scoring.api import IFDResult, score_ifd, score_samples


def test_nothing_to_score_loads_no_model():
    res = score_samples([Sample("a", ""), Sample("b", " ")], model="/no/such/model")
    assert isinstance(res, IFDResult) and len(res) == 2
    assert np.isnan(res.ifd).all() and not res.valid.any()
    assert set(score_ifd([], model="x")) == {"ifd", "nll_cond", "nll_prior", "n_tokens"}


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
    kw = {"model": str(folder), "max_length": 64, "progress": False, "cache": tmp_path / "c"}
    first = score_samples(samples[:10], **kw)
    again = score_samples(samples[:10], **kw)
    np.testing.assert_array_equal(first.ifd, again.ifd)
    assert again.n_cached == int(np.isfinite(first.ifd).sum()) > 0
    np.testing.assert_array_equal(first.valid, (first.ifd > 0) & (first.ifd < 1))
