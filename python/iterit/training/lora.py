"""LoRA through peft: the adapter configuration ``iterit train --lora`` builds, wrapping a model
for ``transformers.Trainer``, and merging the adapter into the base weights on request.

``peft`` is optional (the ``train`` extra); every entry point here raises
:class:`iterit.errors.MissingDependencyError` with the install hint when it is missing.

Scoring needs nothing special: :func:`iterit.scoring.model.unwrap_model` takes a ``PeftModel``'s
base model, whose layers carry the LoRA layers injected in place, so IFD re-scoring each epoch,
in-loop losses and learning percentage all see the adapted model.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from iterit.errors import ConfigError
from iterit.utils.optional import require

__all__ = [
    "LLAMA_TARGETS",
    "adaptable_modules",
    "apply_lora",
    "is_peft_model",
    "lora_config",
    "merge_and_save",
    "require_peft",
]

#: The linear layers LoRA adapts by default: every attention and MLP projection of a
#: Llama-style decoder (Llama, Mistral, Qwen, SmolLM, ...).
LLAMA_TARGETS: tuple[str, ...] = (
    "q_proj",
    "k_proj",
    "v_proj",
    "o_proj",
    "gate_proj",
    "up_proj",
    "down_proj",
)


def require_peft() -> Any:
    """The ``peft`` module, or :class:`MissingDependencyError` with the install hint."""
    return require("peft", "train")


def lora_config(
    r: int = 16,
    alpha: int | float = 32,
    dropout: float = 0.05,
    targets: Sequence[str] | str | None = None,
) -> Any:
    """A ``peft.LoraConfig`` for causal-LM fine-tuning; ``targets`` defaults to
    :data:`LLAMA_TARGETS` (``"all-linear"`` adapts every linear layer but the output head)."""
    peft = require_peft()
    if r < 1:
        raise ConfigError(f"lora_r must be at least 1, got {r}")
    if not 0.0 <= dropout < 1.0:
        raise ConfigError(f"lora_dropout must be in [0, 1), got {dropout}")
    if targets is None or (not isinstance(targets, str) and not list(targets)):
        targets = list(LLAMA_TARGETS)
    elif not isinstance(targets, str):
        targets = list(targets)
    try:
        return peft.LoraConfig(
            r=int(r),
            lora_alpha=alpha,
            lora_dropout=float(dropout),
            target_modules=targets,
            bias="none",
            task_type="CAUSAL_LM",
        )
    except (ValueError, TypeError) as e:  # peft's own checks of the adapter settings
        raise ConfigError(f"the LoRA settings are refused by peft: {e}") from None


def is_peft_model(model: Any) -> bool:
    """Whether ``model`` is wrapped by peft (without importing peft when it is not loaded)."""
    import sys

    peft = sys.modules.get("peft")
    return peft is not None and isinstance(model, peft.PeftModel)


def apply_lora(model: Any, peft_config: Any) -> Any:
    """``model`` wrapped with ``peft_config`` (``peft.get_peft_model``); a model that is already
    a ``PeftModel`` is returned as it is."""
    peft = require_peft()
    if isinstance(model, peft.PeftModel):
        return model
    if getattr(model, "is_loaded_in_4bit", False) or getattr(model, "is_loaded_in_8bit", False):
        # QLoRA: casts norms to float32 and makes the inputs require gradients, as peft asks.
        model = peft.prepare_model_for_kbit_training(model)
    try:
        return peft.get_peft_model(model, peft_config)
    except ValueError as e:  # peft's errors are ValueErrors (NoMatchingPeftModuleError, ...)
        targets = getattr(peft_config, "target_modules", None)
        if not targets or "not found" not in str(e):
            raise ConfigError(f"the LoRA settings are refused by peft: {e}") from None
        wanted = targets if isinstance(targets, str) else ", ".join(sorted(targets))
        raise ConfigError(
            f"lora_targets: {wanted} matches no layer of the model; its layers LoRA can adapt "
            f"are: {', '.join(adaptable_modules(model))}"
        ) from None


def adaptable_modules(model: Any) -> list[str]:
    """The distinct names (last part) of ``model``'s layers LoRA can adapt: its linear,
    embedding and convolution layers, the output head excepted (as peft's "all-linear")."""
    import torch

    kinds = (torch.nn.Linear, torch.nn.Embedding, torch.nn.Conv1d, torch.nn.Conv2d)
    output = getattr(model, "get_output_embeddings", lambda: None)()
    names = {
        name.rsplit(".", 1)[-1]
        for name, module in model.named_modules()
        if name and isinstance(module, kinds) and module is not output
    }
    return sorted(names)


def merge_and_save(model: Any, tokenizer: Any, path: str | os.PathLike[str]) -> Path:
    """Merge a ``PeftModel``'s adapter into a copy of its base weights and save the result (a
    plain transformers model) with the tokenizer to ``path``; the trained model is unchanged."""
    import copy

    if not is_peft_model(model):
        raise ConfigError("merging LoRA weights needs a peft model")
    out = Path(path)
    merged = copy.deepcopy(model).merge_and_unload()
    merged.save_pretrained(str(out))
    if tokenizer is not None:
        tokenizer.save_pretrained(str(out))
    return out
