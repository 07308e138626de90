"""iterit.training.inloop: per-sample losses, their EMA across epochs and the checks of the
trainer wiring (the losses of real training runs are checked in
tests/integration/test_training_inloop_losses.py)."""

from __future__ import annotations

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
from tests.helpers.tiny_llama import tiny_model


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
