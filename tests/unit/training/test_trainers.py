"""iterit.training.trainers: IterITTrainer, IterITSFTTrainer and attach(), without training (the
training runs are in tests/integration/test_training_trainers.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")


from iterit.config import SelectionConfig
from iterit.errors import InvalidInputError
from iterit.training.datasets import ResponseOnlyCollator, TokenizedSamples
from iterit.training.trainers import IterITTrainer, attach
from tests.helpers.tiny_llama import tiny_model
from tests.helpers.training import MAX_LEN, make_trainer, training_args


def test_attach_checks(tmp_path, data):
    samples, tok = data
    from transformers import Trainer

    trainer = Trainer(
        model=tiny_model(tok),
        args=training_args(tmp_path),
        train_dataset=TokenizedSamples(samples[:10], tok, max_length=MAX_LEN),
        data_collator=ResponseOnlyCollator(tok.pad_token_id),
        processing_class=tok,
    )
    with pytest.raises(ValueError, match="rows for"):
        attach(trainer, samples, SelectionConfig(budget=3))
    with pytest.raises(ValueError, match="diversity"):
        SelectionConfig(diversity="words")
    with pytest.raises(ValueError, match="decay"):
        SelectionConfig(decay=1.0)
    assert SelectionConfig(strategy="ifd").diversity == "none"


def test_iterit_trainer_needs_samples(tmp_path, data):
    from iterit.errors import ConfigError

    _samples, tok = data
    with pytest.raises(ConfigError, match="samples"):
        IterITTrainer(model=tiny_model(tok), args=training_args(tmp_path))


def test_trainers_module_imports_without_trl():
    code = (
        "import sys; sys.modules['trl'] = None\n"
        "import iterit.training.trainers as t\n"
        "assert t.IterITTrainer\n"
        "try:\n    t.IterITSFTTrainer\nexcept ImportError as e:\n    print(type(e).__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "MissingDependencyError"


@pytest.mark.parametrize("rescore", ["in-loop", "ifd"])
def test_loaders_do_not_swap_the_collator(tmp_path, data, rescore):
    """Building a loader leaves the trainer as it was; with in-loop losses the training
    batches carry their sample indices and evaluation batches (no index) collate as before."""
    import torch

    from iterit.training.datasets import INDEX_KEY

    samples, tok = data
    config = SelectionConfig(budget=4, rescore=rescore)
    trainer, cb = make_trainer(tmp_path, samples[:12], tok, config)
    collator = trainer.data_collator
    cb.sampler.set_selection([3, 1, 7, 5], 0)
    batches = list(trainer.get_train_dataloader())
    evals = list(
        trainer.get_eval_dataloader(TokenizedSamples(samples[:3], tok, max_length=MAX_LEN))
    )
    assert trainer.data_collator is collator
    assert all(INDEX_KEY not in b and "labels" in b for b in evals)
    if rescore == "ifd":
        assert all(INDEX_KEY not in b for b in batches)
        return
    assert sorted(i for b in batches for i in b[INDEX_KEY].tolist()) == [1, 3, 5, 7]
    # A training batch without indices cannot record its losses: it says so.
    trainer.model.train()
    with pytest.raises(InvalidInputError, match="iterit_index"):
        trainer.compute_loss(trainer.model, {k: v for k, v in batches[0].items() if k != INDEX_KEY})
    trainer.model.eval()  # an evaluation batch with indices records nothing
    with torch.no_grad():
        trainer.compute_loss(trainer.model, dict(batches[0]))
    assert cb.losses.end_epoch(0) == {}
