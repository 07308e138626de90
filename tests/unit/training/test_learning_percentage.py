"""iterit.training.learning_percentage: perplexities measured inside the training
loop match a hand computation; unscorable samples."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import transformers

from iterit.config import LPTraining, ScoringConfig
from iterit.scoring.signals import lp_complexity
from iterit.training.learning_percentage import lp_columns, score_learning_percentage
from tests.helpers.tiny_llama import tiny_model, tiny_tokenizer
from tests.helpers.training import real_samples

N = 16


MAX_LEN = 128


#: Float32 throughout (no bfloat16 autocast, whatever the CPU): the hand computation is float32.
TRAIN = {
    "use_cpu": True,
    "bf16": False,
    "report_to": "none",
    "logging_steps": 1000,
    "disable_tqdm": True,
}


def _score(items, tok, callbacks=(), **training):
    """score_learning_percentage of ``items`` with a fresh tiny model on the CPU
    (``training``: the epochs, batch sizes and seed)."""
    return score_learning_percentage(
        items,
        tiny_model(tok, seed=3),
        tok,
        scoring=ScoringConfig(max_length=MAX_LEN, progress=False),
        training=LPTraining(learning_rate=1e-2, **training),
        training_args=TRAIN,
        callbacks=callbacks,
    )


@pytest.fixture(scope="module")
def data():
    samples = real_samples(N, offset=400)
    return samples, tiny_tokenizer(samples)


@pytest.mark.slow
def test_three_epoch_run_matches_a_hand_computation(data):
    """P0..P3 measured by an independent callback (one sequence per forward pass, full logits,
    at the same moments) give the same LP and proxy as the run's batched IFDScorer passes."""
    from iterit.scoring import reference_ifd

    samples, tok = data
    hand: list[np.ndarray] = []

    class Hand(transformers.TrainerCallback):
        def _measure(self, model):
            ref = reference_ifd(model, tok, samples, max_length=MAX_LEN)
            hand.append(np.exp(ref.nll_cond))

        def on_train_begin(self, args, state, control, model=None, **kw):
            self._measure(model)

        def on_epoch_end(self, args, state, control, model=None, **kw):
            self._measure(model)

    res = _score(
        samples, tok, epochs=3, batch_size=8, micro_batch_size=4, seed=0, callbacks=[Hand()]
    )
    assert res.ppl.shape == (4, N) and res.epochs == 3 and res.signal == "lp"
    p = np.stack(hand)
    assert np.isfinite(p).all()  # every sample scorable: the run trained on all of them
    np.testing.assert_allclose(res.ppl, p, rtol=1e-4)
    lp_hand = (p[0] - p[1]) / (p[0] - p[3])
    proxy_hand = (p[0] - p[1]) / p[0]
    np.testing.assert_allclose(res.lp, lp_hand, rtol=1e-3, atol=1e-4)
    np.testing.assert_allclose(res.lp_proxy, proxy_hand, rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(res.complexity, 1 / (1 + np.exp(lp_hand)), rtol=1e-3)
    assert (p[-1] < p[0]).mean() > 0.5  # training lowered the perplexity
    # One batched perplexity pass before training and one after each epoch.
    assert [q["epoch"] for q in res.passes] == [0, 1, 2, 3]
    assert [q["global_step"] for q in res.passes] == [0, 2, 4, 6]  # 16 / 8 = 2 steps per epoch
    assert all(q["forward_calls"] > 0 for q in res.passes)
    cols = lp_columns(res, keys=[str(i) for i in range(N)])
    assert list(cols)[:4] == ["index", "complexity", "lp", "lp_proxy"]
    assert [k for k in cols if k.startswith("ppl_")] == ["ppl_0", "ppl_1", "ppl_2", "ppl_3"]
    assert cols["valid"].all()


@pytest.mark.slow
def test_unscorable_samples_get_nan_and_one_epoch_uses_the_proxy(data):
    from iterit.data.sample import Sample

    samples, tok = data
    items = [*samples[:6], Sample(instruction="x", response="")]
    res = _score(items, tok, epochs=1, batch_size=4, micro_batch_size=2)
    assert res.signal == "proxy" and res.ppl.shape == (2, 7)
    assert np.isnan(res.ppl[:, 6]).all() and np.isnan(res.complexity[6])
    np.testing.assert_allclose(res.complexity[:6], lp_complexity(res.lp_proxy[:6]))
    with pytest.raises(ValueError, match="proxy"):
        score_learning_percentage(
            items, tiny_model(tok), tok, training=LPTraining(epochs=1), signal="lp"
        )
