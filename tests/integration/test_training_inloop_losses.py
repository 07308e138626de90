"""In-loop losses taken from real training forward passes (tiny model) equal a separate forward
pass and the IFD scorer."""

from __future__ import annotations

import copy

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import torch
import transformers

from iterit.config import SelectionConfig
from iterit.training.datasets import INDEX_KEY
from tests.helpers.sft import attached_sft_trainer
from tests.helpers.training import MAX_LEN, make_trainer, read_log


def reference_losses(model, input_ids, attention_mask, labels) -> np.ndarray:
    """Per-row mean response NLL of a separate forward pass, written out plainly."""
    with torch.no_grad():
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits.float()
    out = []
    for row in range(input_ids.shape[0]):
        lab = labels[row, 1:]
        keep = lab != -100
        logp = torch.log_softmax(logits[row, :-1][keep], dim=-1)
        out.append(float(-logp.gather(1, lab[keep][:, None]).mean()))
    return np.array(out)


pytestmark = pytest.mark.slow


def test_in_loop_losses_equal_a_separate_forward_pass_with_the_same_weights(tmp_path, data):
    """Every micro-batch's recorded losses equal a separate forward pass of a copy of the
    weights taken at the start of that optimizer step (lr > 0: the weights move)."""
    samples, tok = data
    trainer, cb = make_trainer(
        tmp_path,
        samples,
        tok,
        SelectionConfig(budget=8, rescore="in-loop"),
        num_train_epochs=2,
    )
    snapshots: dict[int, torch.nn.Module] = {}
    batches: list[tuple[int, dict]] = []

    class Snapshot(transformers.TrainerCallback):
        def on_step_begin(self, args, state, control, model=None, **kw):
            snapshots[state.global_step] = copy.deepcopy(model).eval()

    trainer.add_callback(Snapshot())
    inner = trainer.compute_loss

    def recording(model, inputs, *a, **kw):
        batches.append((trainer.state.global_step, {k: v.clone() for k, v in inputs.items()}))
        return inner(model, inputs, *a, **kw)

    trainer.compute_loss = recording
    trainer.train()
    assert len(batches) == 2 * 4  # 2 epochs x 8 samples / micro batch 2
    epoch_of = {step: step // 2 for step in range(4)}  # 2 optimizer steps per epoch
    for step, b in batches:
        ref = reference_losses(snapshots[step], b["input_ids"], b["attention_mask"], b["labels"])
        got = [cb.losses.epochs[epoch_of[step]][int(i)] for i in b[INDEX_KEY]]
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)
    # Each epoch recorded exactly its picks; the log carries them in pick order.
    recs = read_log(tmp_path)
    for r in recs:
        assert r["n_loss_recorded"] == 8 and None not in r["train_loss"]
        assert r["train_loss"] == [cb.losses.epochs[r["epoch"]][i] for i in r["picks"]]
    assert cb.losses._handle is None  # removed at the end of training


def test_trl_fused_head_losses_equal_the_ifd_scorer(tmp_path, data):
    """TRL's SFTTrainer (fused LM head: per-token log-probabilities, no logits): with a zero
    learning rate the recorded losses are the IFD scorer's nll_cond of the same model."""
    pytest.importorskip("trl")
    from iterit.scoring import IFDScorer

    samples, tok = data
    config = SelectionConfig(budget=8, rescore="in-loop")
    trainer, cb = attached_sft_trainer(
        tmp_path, samples, tok, config, num_train_epochs=1, learning_rate=0.0
    )
    trainer.train()
    (rec,) = read_log(tmp_path)
    ref = IFDScorer(trainer.model, tok, max_length=MAX_LEN, progress=False).score(samples)
    got = cb.losses.epochs[0]
    assert sorted(got) == sorted(rec["picks"])
    np.testing.assert_allclose([got[i] for i in rec["picks"]], ref.nll_cond[rec["picks"]], 1e-5)
