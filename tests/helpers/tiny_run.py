"""A tiny training run on the CPU: its settings as a TrainConfig and as command-line options,
and the files it reads (a local model folder and an Alpaca JSON Lines file)."""

from __future__ import annotations

import json
from pathlib import Path

#: Settings of the tiny runs (``budget`` and ``epochs`` are the TrainConfig's defaults here;
#: the command-line tests choose their own).
TINY_RUN = {
    "budget": 4,
    "epochs": 2,
    "batch_size": 4,
    "micro_batch_size": 2,
    "learning_rate": 1e-2,
    "max_length": 96,
    "device": "cpu",
    "progress": False,
    "save_strategy": "no",
    "logging_steps": 100,
    "seed": 0,
}

#: The same batch, length, device and checkpoint settings as command-line options, with no
#: score cache and no progress bars.
TINY_RUN_OPTIONS = (
    "--batch-size",
    "4",
    "--micro-batch-size",
    "2",
    "--max-length",
    "96",
    "--device",
    "cpu",
    "--save-strategy",
    "no",
    "--no-cache",
    "--no-progress",
)


def tiny_train_config(out, **kw):
    """A TrainConfig writing to ``out`` with :data:`TINY_RUN`'s settings; ``kw`` overrides."""
    from iterit.config import TrainConfig

    return TrainConfig(**{"output_dir": str(out), **TINY_RUN, **kw})


def alpaca_record(sample) -> dict:
    return {"instruction": sample.instruction, "input": sample.input, "output": sample.response}


def write_alpaca_jsonl(path: Path, samples) -> Path:
    """``samples`` as Alpaca records, one JSON object a line."""
    Path(path).write_text(
        "".join(json.dumps(alpaca_record(s)) + "\n" for s in samples), encoding="utf-8"
    )
    return path


def write_tiny_run_inputs(folder: Path, samples, tokenizer=None, seed: int = 1) -> Path:
    """``folder/model`` (a tiny Llama and ``tokenizer``, by default one trained on ``samples``)
    and ``folder/data.jsonl`` (``samples``): what ``--model`` and ``--data`` of a tiny run
    read."""
    from tests.helpers.tiny_llama import save_tiny_model, tiny_tokenizer

    tokenizer = tokenizer if tokenizer is not None else tiny_tokenizer(samples)
    save_tiny_model(folder / "model", tokenizer, seed=seed)
    write_alpaca_jsonl(folder / "data.jsonl", samples)
    return folder
