"""token_nll and OutputHead: -log softmax of the target, a few rows at a time."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")

import torch

from iterit.scoring import logprobs
from iterit.scoring.logprobs import OutputHead, token_nll


def test_token_nll_equals_log_softmax_in_any_chunking(monkeypatch):
    torch.manual_seed(0)
    logits, targets = torch.randn(9, 13), torch.randint(0, 13, (9,))
    expected = -torch.log_softmax(logits, -1)[torch.arange(9), targets].numpy()
    np.testing.assert_allclose(token_nll(logits, targets), expected, rtol=1e-5)
    monkeypatch.setattr(logprobs, "LOGIT_ELEMENTS", 26)  # two rows at a time
    np.testing.assert_allclose(token_nll(logits, targets), expected, rtol=1e-5)
    assert token_nll(logits[:0], targets[:0]).shape == (0,)


def test_output_head_applies_the_known_transforms():
    head = torch.nn.Linear(4, 6, bias=False)
    config = type("C", (), {"logit_scale": 2.0, "final_logit_softcapping": 3.0})()
    out = OutputHead(head, config)
    h = torch.randn(5, 4)
    with torch.no_grad():
        want = torch.tanh(head(h) * 2.0 / 3.0) * 3.0
        np.testing.assert_allclose(out(h).numpy(), want.numpy(), rtol=1e-5)
        t = torch.tensor([0, 1, 2, 3, 4])
        np.testing.assert_allclose(out.nll(h, t), token_nll(want, t), rtol=1e-5)
    assert out.vocab == 6
