"""IterITTrainer, IterITSFTTrainer and attach() driving real training runs (tiny model, CPU)."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import transformers

from iterit.config import SelectionConfig
from iterit.training.callback import IterITCallback
from iterit.training.datasets import ResponseOnlyCollator, TokenizedSamples
from iterit.training.trainers import IterITTrainer, attach
from tests.helpers.sft import attached_sft_trainer, make_sft_trainer, sft_args
from tests.helpers.tiny_llama import tiny_model
from tests.helpers.training import MAX_LEN, make_trainer, read_log, training_args

pytestmark = pytest.mark.slow


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
