"""reference_ifd, the one-sequence-per-pass oracle, against IFD spelled out with the model's own
loss (docs/design.md, "IFD")."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import torch

from iterit import Sample
from iterit.scoring import reference_ifd
from tests.helpers.word_llama import MAX_LEN


def test_reference_matches_hand_computation(model, tok):
    """The oracle itself, against the definition (docs/design.md, "IFD") written out
    with the model's loss."""
    s = Sample("write a poem", "the sea at night")
    out = reference_ifd(model, tok, [s], template="plain", max_length=MAX_LEN)
    start, eos = tok.bos_token_id, tok.eos_token_id
    p = [start, *tok("write a poem\n", add_special_tokens=False).input_ids]
    r = [*tok("the sea at night", add_special_tokens=False).input_ids, eos]

    def loss(ids: list[int], first: int) -> float:
        x = torch.tensor([ids])
        labels = x.clone()
        labels[0, :first] = -100
        with torch.no_grad():
            return float(model(input_ids=x, labels=labels).loss)

    c, q = loss(p + r, len(p)), loss([start, *r], 1)
    assert out.n_tokens[0] == len(r)
    np.testing.assert_allclose(out.nll_cond[0], c, rtol=1e-5)
    np.testing.assert_allclose(out.nll_prior[0], q, rtol=1e-5)
    np.testing.assert_allclose(out.ifd[0], np.exp(c - q), rtol=1e-5)


def test_invalid_samples_have_no_score(model, tok):
    out = reference_ifd(
        model, tok, [Sample("a", ""), Sample(" ".join(["the"] * 100), "red")], max_length=MAX_LEN
    )
    assert np.isnan(out.ifd).all() and list(out.n_tokens) == [0, 0]
    assert (out.n_empty_response, out.n_prompt_too_long) == (1, 1)
