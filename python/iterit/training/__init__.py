"""Training with per-epoch re-selection inside ``transformers.Trainer`` / ``trl.SFTTrainer``.

Modules: ``datasets`` (tokenised samples, collators), ``sampler`` (IterITSampler), ``planner``
(the torch-free per-epoch selection policy), ``state`` (checkpoint state), ``callback``
(IterITCallback, the event glue), ``scoring_adapter`` (IFDScoreFn), ``inloop`` (in-loop
losses), ``trainers`` (IterITTrainer, IterITSFTTrainer, attach), ``compat`` (transformers / TRL
release differences), ``lora`` (peft adapters), ``gguf`` (models de-quantized from GGUF),
``run`` (build_trainer, train), ``learning_percentage``.

The names below are importable from here; they load on first use, so ``import
iterit.training`` (and the torch-free ``iterit.training.planner``) needs no torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "IFDScoreFn": "iterit.training.scoring_adapter",
    "IndexingCollator": "iterit.training.datasets",
    "InLoopLosses": "iterit.training.inloop",
    "IterITCallback": "iterit.training.callback",
    "IterITSFTConfig": "iterit.training.sft_config",
    "IterITSFTTrainer": "iterit.training.trainers",
    "IterITSampler": "iterit.training.sampler",
    "IterITTrainer": "iterit.training.trainers",
    "IterITTrainerMixin": "iterit.training.trainers",
    "ResponseOnlyCollator": "iterit.training.datasets",
    "SelectionConfig": "iterit.config",
    "SelectionPlanner": "iterit.training.planner",
    "TokenizedSamples": "iterit.training.datasets",
    "TrainResult": "iterit.training.run",
    "attach": "iterit.training.trainers",
    "build_trainer": "iterit.training.run",
    "encode_samples": "iterit.training.datasets",
    "lora_config": "iterit.training.lora",
    "mixed_precision_kwargs": "iterit.training.compat",
    "sft_dataset": "iterit.training.datasets",
    "train": "iterit.training.run",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
