"""iterit.training.inloop: per-sample losses taken from the training forward pass,
their EMA across epochs, and the trainer wiring that records them."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import torch
import transformers

from iterit.config import SelectionConfig
from iterit.scoring.signals import ifd_equivalent
from iterit.training.callback import IterITCallback
from iterit.training.datasets import INDEX_KEY, IndexingCollator, ResponseOnlyCollator
from iterit.training.inloop import InLoopLosses, per_sample_nll
from iterit.training.sampler import IterITSampler
from tests.helpers.sft import attached_sft_trainer
from tests.helpers.tiny_llama import tiny_model
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


def test_per_sample_nll_matches_cross_entropy_and_skips_unlabelled_rows():
    torch.manual_seed(0)
    logits = torch.randn(3, 6, 11)
    labels = torch.randint(0, 11, (3, 6))
    labels[0, :3] = -100
    labels[2, :] = -100  # no label at all
    got = per_sample_nll(logits, labels)
    for r in range(2):
        lab = labels[r, 1:]
        keep = lab != -100
        ce = torch.nn.functional.cross_entropy(logits[r, :-1][keep], lab[keep])
        assert abs(float(got[r]) - float(ce)) < 1e-5
    assert torch.isnan(got[2])
    np.testing.assert_allclose(ifd_equivalent([1.0, 2.0], [2.0, 1.0]), [np.exp(-1), np.exp(1)])


def test_indexing_collator_and_ema_arithmetic():
    seen = []

    def inner(features):
        seen.append(features)
        return {"input_ids": torch.tensor([f["input_ids"] for f in features])}

    coll = IndexingCollator(inner)
    batch = coll([{"input_ids": [1, 2], INDEX_KEY: 7}, {"input_ids": [3, 4], INDEX_KEY: 2}])
    assert batch[INDEX_KEY].tolist() == [7, 2] and INDEX_KEY not in seen[0][0]
    with pytest.raises(ValueError, match="iterit_index"):
        coll([{"input_ids": [1]}])

    rec = InLoopLosses(beta=0.25)
    rec._local = [(torch.tensor([1, 2, 1]), torch.tensor([2.0, 4.0, 3.0]))]
    assert rec.end_epoch(0) == {1: 2.5, 2: 4.0}  # a sample trained twice: the mean
    rec._local = [(torch.tensor([2, 5]), torch.tensor([1.0, 6.0]))]
    rec.end_epoch(1)
    assert rec.ema == {1: 2.5, 2: 0.25 * 4.0 + 0.75 * 1.0, 5: 6.0}
    assert rec.n_updates == {1: 1, 2: 2, 5: 1}
    np.testing.assert_array_equal(rec.ema_array(np.array([5, 9])), [6.0, np.nan])
    other = InLoopLosses(beta=0.25)
    other.load_state(json.loads(json.dumps(rec.export_state())))
    assert other.ema == rec.ema and other.n_updates == rec.n_updates
    with pytest.raises(ValueError, match="EMA"):
        SelectionConfig(rescore="in-loop", loss_ema=1.0)
    with pytest.raises(ValueError, match="rescore"):
        SelectionConfig(rescore="gradients")


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


def test_in_loop_needs_nll_prior_and_indexed_rows(tmp_path, data):
    from transformers import Trainer

    from iterit.training.trainers import attach

    samples, tok = data
    with pytest.raises(ValueError, match="nll_prior"):
        IterITCallback(
            samples,
            IterITSampler(6),
            SelectionConfig(budget=6, rescore="in-loop"),
            initial_scores=np.full(len(samples), 0.5),
        )

    class Plain(torch.utils.data.Dataset):
        def __len__(self):
            return len(samples)

        def __getitem__(self, i):
            return {"input_ids": [1, 2], "labels": [1, 2]}

    trainer = Trainer(
        model=tiny_model(tok),
        args=transformers.TrainingArguments(str(tmp_path), use_cpu=True, report_to="none"),
        train_dataset=Plain(),
        data_collator=ResponseOnlyCollator(tok.pad_token_id),
    )
    with pytest.raises(ValueError, match="iterit_index"):
        attach(trainer, samples, SelectionConfig(budget=6, rescore="in-loop"), tokenizer=tok)
