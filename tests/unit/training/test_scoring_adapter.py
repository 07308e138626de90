"""iterit.training.scoring_adapter: scoring the model being trained computes as its training
steps do, under the Trainer's mixed precision, and a separate scorer or low-precision weights
are left alone."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import torch

from iterit.config import SelectionConfig
from iterit.scoring.precision import args_autocast
from iterit.training.scoring_adapter import IFDScoreFn, score_pass
from tests.helpers.training import make_trainer


class MatmulDtype:
    """A score function that records the dtype a float32 matmul gives inside the scoring."""

    def __init__(self, uses_training_model: bool = True):
        self.uses_training_model = uses_training_model
        self.seen: list[torch.dtype] = []

    def __call__(self, model, samples):
        self.seen.append((torch.ones(2, 2) @ torch.ones(2, 2)).dtype)
        return np.linspace(0.2, 0.9, len(samples))


@pytest.mark.parametrize(
    ("bf16", "fp16", "expected"),
    [(True, False, "bfloat16"), (False, True, "float16"), (False, False, None)],
)
def test_the_trainers_mixed_precision_dtype(bf16, fp16, expected):
    got = args_autocast(SimpleNamespace(bf16=bf16, fp16=fp16))
    assert got == (None if expected is None else getattr(torch, expected))


def test_scores_the_training_model_under_autocast(data):
    samples, _tok = data
    model = torch.nn.Linear(2, 2)
    fn = MatmulDtype()
    score_pass(fn, model, samples[:3], autocast=torch.bfloat16)
    score_pass(fn, model, samples[:3])
    assert fn.seen == [torch.bfloat16, torch.float32]
    assert model.training  # back in train mode


def test_leaves_a_separate_scorer_and_low_precision_weights_alone(data):
    samples, _tok = data
    separate = MatmulDtype(uses_training_model=False)
    score_pass(separate, torch.nn.Linear(2, 2), samples[:3], autocast=torch.bfloat16)
    already_low = MatmulDtype()
    score_pass(already_low, torch.nn.Linear(2, 2).bfloat16(), samples[:3], autocast=torch.bfloat16)
    assert separate.seen == already_low.seen == [torch.float32]


@pytest.mark.slow
@pytest.mark.parametrize("bf16", [True, False])
def test_the_callback_scores_under_the_trainers_precision(tmp_path, data, bf16):
    samples, tok = data
    fn = MatmulDtype()
    config = SelectionConfig(budget=6)
    trainer, _cb = make_trainer(
        tmp_path, samples, tok, config, score_fn=fn, num_train_epochs=2, bf16=bf16
    )
    trainer.train()
    assert fn.seen == [torch.bfloat16 if bf16 else torch.float32] * 2


def test_ifd_score_fn_returns_the_scores_with_their_statistics(data, tmp_path):
    """IFDScoreFn scores as its ScoringConfig says and returns the IFDScores (nll_prior and
    the forward passes reach the planner through score_pass); only the first call uses the
    cache."""
    from iterit.config import ScoringConfig
    from iterit.scoring import IFDScorer
    from tests.helpers.tiny_llama import tiny_model

    samples, tok = data
    model = tiny_model(tok)
    cfg = ScoringConfig(max_length=48, batch_tokens=128, progress=False, cache=tmp_path / "c")
    fn = IFDScoreFn(tok, scoring=cfg)
    first = fn(model, samples[:6])
    expected = IFDScorer(model, tok, max_length=48, progress=False).score(samples[:6])
    np.testing.assert_allclose(first.ifd, expected.ifd, rtol=1e-6, equal_nan=True)
    assert fn.forward_tokens == first.stats.forward_tokens > 0
    second = score_pass(fn, model, samples[:6])
    assert second.forward["forward_calls"] > 0  # scored again: the cache is for epoch 0 only
    np.testing.assert_allclose(second.nll_prior, expected.nll_prior, rtol=1e-6, equal_nan=True)
    assert fn.calls == 2 and fn.forward_tokens == 2 * first.stats.forward_tokens
