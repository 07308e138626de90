"""Builders shared by the training tests: real samples, TrainingArguments, a tiny
IterITTrainer, the selection log."""

from __future__ import annotations

from pathlib import Path

from iterit.artifacts import SELECTION_LOG
from iterit.artifacts.run_files import read_selection_log_lines
from iterit.config import ScoringConfig
from iterit.training.datasets import ResponseOnlyCollator, TokenizedSamples
from tests.helpers.shared import shared_file
from tests.helpers.tiny_llama import tiny_model

ALPACA = "general/alpaca_union_dedup.jsonl"


def real_samples(n: int, offset: int = 0) -> list:
    """``n`` records of the real Alpaca union (non-empty responses), as Samples."""
    from iterit.data import load_samples

    path = shared_file(ALPACA)
    out = [s for s in load_samples(path)[offset : offset + 2 * n] if s.response.strip()]
    return out[:n]


def training_args(out, **kw):
    from transformers import TrainingArguments

    from iterit.training.compat import warmup_kwargs

    base = {
        "output_dir": str(out),
        "per_device_train_batch_size": 2,
        "gradient_accumulation_steps": 2,
        "num_train_epochs": 3,
        "learning_rate": 1e-2,
        "lr_scheduler_type": "cosine",
        **warmup_kwargs(TrainingArguments, 0.03),
        "save_strategy": "no",
        "report_to": "none",
        "use_cpu": True,
        "logging_steps": 100,
        "disable_tqdm": True,
        "seed": 0,
    }
    base.update(kw)
    return TrainingArguments(**base)


MAX_LEN = 96
#: How the helpers' trainers score and tokenise: one config for the dataset and the trainer.
SCORING = ScoringConfig(max_length=MAX_LEN, progress=False)


def make_trainer(out, samples, tok, config, *, model_seed=1, score_fn=None, peft_config=None, **kw):
    """A tiny :class:`IterITTrainer` (with LoRA when ``peft_config`` is given) and its IterIT
    callback."""
    from iterit.training.trainers import IterITTrainer

    trainer = IterITTrainer(
        model=tiny_model(tok, model_seed),
        args=training_args(out, **kw),
        train_dataset=TokenizedSamples(samples, tok, SCORING),
        data_collator=ResponseOnlyCollator(tok.pad_token_id),
        processing_class=tok,
        samples=samples,
        selection_config=config,
        scoring_config=SCORING,
        score_fn=score_fn,
        peft_config=peft_config,
    )
    return trainer, trainer.iterit


def read_log(out) -> list[dict]:
    """The selection log's lines as written on disk (JSON objects)."""
    return read_selection_log_lines(Path(out) / SELECTION_LOG)[0]
