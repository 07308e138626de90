"""The key/value cache goes in and out of a forward under the name this transformers release
uses, so scoring with shared prefixes logs no deprecation line, and scores as rows run whole."""

from __future__ import annotations

import logging

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from iterit.data.sample import Sample  # noqa: E402
from iterit.scoring.model import kv_cache_kwargs, kv_cache_of  # noqa: E402
from iterit.scoring.scorer import IFDScorer  # noqa: E402
from tests.helpers.tiny_llama import tiny_model, tiny_tokenizer  # noqa: E402

SAMPLES = [
    Sample(instruction="Say something about cats.", response=f"Cats are animals number {i}.")
    for i in range(6)
]


@pytest.fixture(scope="module")
def tiny():
    tok = tiny_tokenizer(SAMPLES)
    return tiny_model(tok), tok


def test_the_cache_keyword_is_one_the_forward_takes(tiny):
    import inspect

    model, _tok = tiny
    (name,) = kv_cache_kwargs(model, None)
    assert name in inspect.signature(model.forward).parameters


def test_the_returned_cache_is_the_forwards(tiny):
    model, _tok = tiny
    out = model.get_decoder()(input_ids=torch.tensor([[1, 2, 3]]), use_cache=True)
    cache = kv_cache_of(out)
    assert cache is not None and cache.get_seq_length() == 3


def test_shared_prefix_scoring_logs_no_deprecation(tiny, caplog):
    from transformers.utils import logging as hf_logging

    model, tok = tiny
    scorer = IFDScorer(model, tok, max_length=64)
    logging.Logger.warning_once.cache_clear()  # a line logged earlier in this process counts too
    hf_logging.enable_propagation()
    try:
        with caplog.at_level(logging.WARNING):
            res = scorer.score(SAMPLES)
    finally:
        hf_logging.disable_propagation()
    assert not [r for r in caplog.records if "deprecated" in r.getMessage()]
    assert np.isfinite(res.ifd).all()
