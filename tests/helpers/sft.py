"""Builders for the TRL tests: SFTConfig settings for a CPU run and a tiny IterITSFTTrainer."""

from __future__ import annotations

from iterit.config import SelectionConfig
from iterit.training.datasets import sft_dataset
from tests.helpers.tiny_llama import tiny_model
from tests.helpers.training import MAX_LEN


def sft_args(out, **kw):
    """A ``trl.SFTConfig`` writing to ``out`` for a CPU test: the batches, learning rate and seed
    of :func:`tests.helpers.training.training_args`, no checkpoints, reports or progress bars,
    unpacked samples of at most :data:`MAX_LEN` tokens; ``kw`` adds or overrides."""
    import trl

    from iterit.training.compat import checkpointing_kwargs

    base = {
        "output_dir": str(out),
        "per_device_train_batch_size": 2,
        "gradient_accumulation_steps": 2,
        "learning_rate": 1e-2,
        "logging_steps": 100,
        "seed": 0,
        "save_strategy": "no",
        "report_to": "none",
        "use_cpu": True,
        "disable_tqdm": True,
        "max_length": MAX_LEN,
        "packing": False,
        # TRL defaults to bf16 mixed precision and activation checkpointing: neither helps a
        # CPU test (the checkpointing switch has another name before transformers 5.x's).
        "bf16": False,
        **checkpointing_kwargs(trl.SFTConfig, False),
    }
    return trl.SFTConfig(**{**base, **kw})


def attached_sft_trainer(out, samples, tok, config, **kw):
    """A plain ``trl.SFTTrainer`` of a tiny model with IterIT attached (:func:`attach`), selecting
    by ``config``; ``kw`` goes to :func:`sft_args`.  Returns the trainer and its callback."""
    import trl

    from iterit.training.trainers import attach

    trainer = trl.SFTTrainer(
        model=tiny_model(tok, seed=1),
        args=sft_args(out, **kw),
        train_dataset=sft_dataset(samples, tok, max_length=MAX_LEN),
        processing_class=tok,
    )
    return trainer, attach(trainer, samples, config, max_length=MAX_LEN, progress=False)


def make_sft_trainer(samples, tok, budget, *, args=None, peft_config=None):
    """A tiny :class:`IterITSFTTrainer` selecting ``budget`` of ``samples`` each epoch; with
    ``args=None`` it takes its own CPU defaults."""
    from iterit.training.trainers import IterITSFTTrainer

    return IterITSFTTrainer(
        model=tiny_model(tok, seed=1),
        args=args,
        train_dataset=sft_dataset(samples, tok, max_length=MAX_LEN),
        processing_class=tok,
        samples=samples,
        selection_config=SelectionConfig(budget=budget),
        max_length=MAX_LEN,
        progress=False,
        peft_config=peft_config,
    )
