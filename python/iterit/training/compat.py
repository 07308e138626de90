"""Every difference between transformers / TRL releases that IterIT depends on, in one place.

The IterIT trainers override ``transformers.Trainer``'s extension points
(``_get_train_sampler``, ``get_train_dataloader``, ``compute_loss``,
``_set_signature_columns_if_needed``); what those look like, and a few argument and attribute
names, changed between releases.  Each helper here says which releases it bridges.
"""

from __future__ import annotations

import dataclasses
import inspect
import sys
from typing import Any

from iterit.utils.optional import requires_extra

__all__ = [
    "TRAIN_SAMPLER_ARGS",
    "checkpointing_kwargs",
    "cpu_kwargs",
    "forward_hook_module",
    "is_sft_trainer",
    "lm_output_parts",
    "mixed_precision_kwargs",
    "sampling_strategy",
    "set_signature_columns",
    "sft_classes",
    "signature_columns",
    "stateful_callbacks",
    "takes_peft_config",
    "trainer_tokenizer",
    "trl_classes",
    "uses_packing",
    "warmup_kwargs",
]


def _field_names(args_class: type) -> set[str]:
    return {f.name for f in dataclasses.fields(args_class)}


#: ``Trainer._get_train_sampler``'s arguments: ``(train_dataset=None)`` since transformers
#: 4.53 (the dataset after unused columns were removed), none before.  The IterIT trainers
#: accept both (``*args, **kwargs``) and always answer with their own sampler.
TRAIN_SAMPLER_ARGS = ("train_dataset",)


def signature_columns(trainer: Any) -> list[str] | None:
    """The columns the trainer keeps when it removes unused ones (None: keeps all)."""
    return getattr(trainer, "_signature_columns", None)


def set_signature_columns(trainer: Any, columns: list[str]) -> None:
    trainer._signature_columns = columns


def checkpointing_kwargs(args_class: type, enabled: bool) -> dict[str, bool]:
    """transformers 5 renamed ``gradient_checkpointing`` to ``activation_checkpointing``."""
    if "activation_checkpointing" in _field_names(args_class):
        return {"activation_checkpointing": enabled}
    return {"gradient_checkpointing": enabled}


def warmup_kwargs(args_class: type, ratio: float) -> dict[str, float]:
    """transformers 5 takes a warm-up ratio as a float ``warmup_steps`` in [0, 1) (and
    deprecates ``warmup_ratio``); older releases need ``warmup_ratio``."""
    fields = {f.name: f for f in dataclasses.fields(args_class)}
    steps = fields.get("warmup_steps")
    if steps is not None and "float" in str(steps.type):
        return {"warmup_steps": ratio}
    return {"warmup_ratio": ratio}


def cpu_kwargs(args_class: type) -> dict[str, bool]:
    """``use_cpu`` (transformers >= 4.34) replaced ``no_cuda``."""
    if "use_cpu" in _field_names(args_class):
        return {"use_cpu": True}
    return {"no_cuda": True}


def trainer_tokenizer(trainer: Any) -> Any:
    """The trainer's tokenizer: ``processing_class`` (transformers >= 4.46) or ``tokenizer``."""
    tok = getattr(trainer, "processing_class", None)
    return tok if tok is not None else getattr(trainer, "tokenizer", None)


def sampling_strategy(args: Any) -> str:
    """``train_sampling_strategy`` of the training arguments (transformers 5; ``random``
    before it existed)."""
    return getattr(args, "train_sampling_strategy", "random")


def uses_packing(args: Any) -> bool:
    """TRL's ``SFTConfig.packing`` (plain ``TrainingArguments`` never pack)."""
    return bool(getattr(args, "packing", False))


def stateful_callbacks(state: Any) -> dict[str, Any] | None:
    """``TrainerState.stateful_callbacks`` (transformers >= 4.41; None before), where a
    checkpoint keeps callback state."""
    return getattr(state, "stateful_callbacks", None)


def lm_output_parts(output: Any) -> tuple[Any, Any, Any]:
    """``(logits, log_probs, label_mask)`` of a causal LM's forward output: plain models return
    logits (an output object, or a tuple with or without the loss first); TRL's fused LM head
    returns per-token ``log_probs`` and their ``label_mask`` instead."""
    log_probs = getattr(output, "log_probs", None)
    mask = getattr(output, "label_mask", None)
    if log_probs is not None and mask is not None:
        return None, log_probs, mask
    logits = getattr(output, "logits", None)
    if logits is None and isinstance(output, (tuple, list)) and len(output) > 1:
        logits = output[1] if output[0].dim() == 0 else output[0]
    return logits, None, None


def forward_hook_module(model: Any) -> Any:
    """The module whose forward hook sees every forward pass of the causal LM inside ``model``,
    with that LM's output: the LM itself (:func:`iterit.scoring.unwrap_model`), except under a
    peft adapter, whose tuner (``LoraModel``) called the LM's ``forward`` directly before peft
    0.21, which skips the LM's hooks: the tuner is hooked there (its output is the LM's)."""
    from iterit.scoring import unwrap_model

    inner = unwrap_model(model)
    node = model
    for _ in range(4):  # through DDP / FSDP / DeepSpeed wrappers to the peft model
        tuner = getattr(node, "base_model", None)
        is_peft = callable(getattr(node, "get_base_model", None))
        if is_peft and getattr(tuner, "model", None) is inner:
            return tuner
        node = getattr(node, "module", None)
        if node is None:
            break
    return inner


def sft_classes() -> tuple[type, type]:
    """``(trl.SFTTrainer, trl.SFTConfig)``; a clear error when TRL is not installed."""
    with requires_extra("train"):
        from trl import SFTConfig, SFTTrainer
    return SFTTrainer, SFTConfig


def trl_classes(module: str, **factories: Any) -> Any:
    """A module ``__getattr__`` that builds each named class on first use (``factories``: name
    -> function of no arguments), so that ``module`` imports without TRL: the classes that
    subclass TRL's exist only once TRL is imported."""

    def __getattr__(name: str) -> Any:
        factory = factories.get(name)
        if factory is None:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        return factory()

    return __getattr__


def is_sft_trainer(trainer_class: type) -> bool:
    """Whether ``trainer_class`` is ``trl.SFTTrainer`` or a subclass (False without TRL loaded:
    an SFTTrainer class exists only once trl is imported)."""
    trl = sys.modules.get("trl")
    sft = getattr(trl, "SFTTrainer", None) if trl is not None else None
    return isinstance(sft, type) and issubclass(trainer_class, sft)


def takes_peft_config(trainer_class: type) -> bool:
    """Whether the trainer class IterIT extends wraps the model with peft itself (its
    ``__init__`` takes ``peft_config``: ``trl.SFTTrainer``; ``transformers.Trainer`` does not).
    The IterIT mixin's own ``__init__`` is skipped."""
    for klass in trainer_class.__mro__:
        init = vars(klass).get("__init__")
        if init is None or klass.__module__ == "iterit.training.trainers":
            continue
        try:
            return "peft_config" in inspect.signature(init).parameters
        except (TypeError, ValueError):  # pragma: no cover - a builtin __init__
            return False
    return False


def mixed_precision_kwargs() -> dict[str, bool]:
    """Mixed precision for float32 weights on this device: bf16 where CUDA supports it, else
    none (:func:`iterit.scoring.precision.training_precision`).  TRL's ``SFTConfig`` turns bf16
    on by default, and ``TrainingArguments`` then fails on a CPU ("Your setup doesn't support
    bf16/gpu"); pass these to choose it for the device instead."""
    from iterit.scoring.precision import training_precision

    return {"bf16": training_precision("float32").bf16}
