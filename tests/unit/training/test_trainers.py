"""iterit.training.trainers: IterITTrainer, IterITSFTTrainer and attach()."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import transformers

from iterit.config import SelectionConfig
from iterit.errors import InvalidInputError
from iterit.training.callback import IterITCallback
from iterit.training.datasets import ResponseOnlyCollator, TokenizedSamples
from iterit.training.trainers import IterITTrainer, attach
from tests.helpers.sft import attached_sft_trainer, make_sft_trainer, sft_args
from tests.helpers.tiny_llama import tiny_model
from tests.helpers.training import MAX_LEN, make_trainer, read_log, training_args


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


def test_sft_trainer_integration(tmp_path, data):
    trl = pytest.importorskip("trl")
    samples, tok = data
    trainer, cb = attached_sft_trainer(
        tmp_path, samples, tok, SelectionConfig(budget=8), num_train_epochs=2
    )
    assert isinstance(cb, IterITCallback)
    out = trainer.train()
    assert out.global_step == 2 * math.ceil(8 / 4)
    recs = read_log(tmp_path)
    assert [len(r["picks"]) for r in recs] == [8, 8]
    # Labels survived TRL's preparation: prompt tokens are masked.
    row = trainer.train_dataset[0]
    assert row["labels"][0] == -100 and row["labels"][-1] == tok.eos_token_id

    packed = trl.SFTConfig(output_dir=str(tmp_path), packing=True, use_cpu=True, report_to="none")
    trainer.args = packed
    with pytest.raises(ValueError, match="packing"):
        attach(trainer, samples, SelectionConfig(budget=8))


def test_iterit_trainer_is_a_trainer_subclass_with_its_extension_points(tmp_path, data):
    samples, tok = data
    cfg = SelectionConfig(budget=6, rescore="in-loop")
    trainer, cb = make_trainer(tmp_path, samples[:20], tok, cfg, num_train_epochs=2)
    assert isinstance(trainer, IterITTrainer) and isinstance(trainer, transformers.Trainer)
    assert trainer.iterit is cb and cb in trainer.callback_handler.callbacks
    # Overridden on the class, never replaced on the instance.
    for name in ("_get_train_sampler", "get_train_dataloader", "compute_loss"):
        assert name not in vars(trainer)
    assert trainer._get_train_sampler() is trainer.iterit_sampler
    assert trainer._get_train_sampler(trainer.train_dataset) is trainer.iterit_sampler
    trainer.train()
    assert [len(r["picks"]) for r in read_log(tmp_path)] == [6, 6]
    assert sorted(cb.losses.ema)  # the in-loop losses were recorded through compute_loss


def test_iterit_trainer_needs_samples(tmp_path, data):
    from iterit.errors import ConfigError

    _samples, tok = data
    with pytest.raises(ConfigError, match="samples"):
        IterITTrainer(model=tiny_model(tok), args=training_args(tmp_path))


def test_attach_turns_a_built_trainer_into_an_iterit_trainer(tmp_path, data):
    samples, tok = data
    trainer = transformers.Trainer(
        model=tiny_model(tok),
        args=training_args(tmp_path, num_train_epochs=1),
        train_dataset=TokenizedSamples(samples[:20], tok, max_length=MAX_LEN),
        data_collator=ResponseOnlyCollator(tok.pad_token_id),
        processing_class=tok,
    )
    cb = attach(
        trainer, samples[:20], SelectionConfig(budget=4), max_length=MAX_LEN, progress=False
    )
    assert type(trainer) is IterITTrainer and trainer.iterit is cb
    trainer.train()
    assert len(read_log(tmp_path)[0]["picks"]) == 4

    class MyTrainer(transformers.Trainer):
        pass

    from iterit.training.trainers import IterITTrainerMixin, iterit_trainer_class

    cls = iterit_trainer_class(MyTrainer)
    assert issubclass(cls, IterITTrainerMixin) and issubclass(cls, MyTrainer)
    assert iterit_trainer_class(MyTrainer) is cls  # made once


def test_iterit_sft_trainer_class(tmp_path, data):
    trl = pytest.importorskip("trl")
    from iterit.training.trainers import IterITSFTTrainer, iterit_trainer_class

    samples, tok = data
    assert issubclass(IterITSFTTrainer, trl.SFTTrainer)
    assert iterit_trainer_class(trl.SFTTrainer) is IterITSFTTrainer
    trainer = make_sft_trainer(samples[:20], tok, 4, args=sft_args(tmp_path, num_train_epochs=1))
    trainer.train()
    assert len(read_log(tmp_path)[0]["picks"]) == 4


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
