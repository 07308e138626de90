"""``IterITSFTConfig``: ``trl.SFTConfig`` with IterIT's settings as fields, and the reading of
an SFT dataset (the way ``trl.SFTTrainer`` takes it) as IterIT samples (docs/training.md).

Every IterIT field is prefixed ``iterit_`` so that none can clash with an ``SFTConfig`` name,
now or in a later TRL release.  The class is created on first use (module ``__getattr__``), so
this module imports without TRL.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from iterit.config import ScoringConfig, SelectionConfig
from iterit.data.formats import samples_from_records
from iterit.data.sample import Sample
from iterit.errors import ConfigError
from iterit.training import compat

__all__ = [
    "ITERIT_FIELDS",
    "IterITSFTConfig",  # noqa: F822 - created on first use (module __getattr__)
    "dataset_samples",
    "iterit_settings",
]

#: The IterIT fields of ``IterITSFTConfig``: (name, default, help).  The selection fields are
#: :class:`iterit.config.SelectionConfig`'s, the scoring ones :class:`ScoringConfig`'s.
ITERIT_FIELDS: tuple[tuple[str, Any, str], ...] = (
    ("iterit_budget", SelectionConfig.budget, "M per epoch: a count, or a fraction of the data"),
    ("iterit_pool_factor", SelectionConfig.pool_factor, "a: the pool is a * M samples"),
    ("iterit_decay", SelectionConfig.decay, "b: diversity decay of picked n-grams"),
    ("iterit_diversity", SelectionConfig.diversity, "response, instruction, both or none"),
    ("iterit_strategy", SelectionConfig.strategy, "iterit, ifd, random or longest"),
    ("iterit_iterate", SelectionConfig.iterate, "re-select every epoch (False: epoch 0's)"),
    ("iterit_rescore", SelectionConfig.rescore, "ifd (re-score the pool) or in-loop"),
    ("iterit_loss_ema", SelectionConfig.loss_ema, "in-loop losses: EMA history weight"),
    ("iterit_ifd_variant", ScoringConfig.ifd_variant, "iterit, superfiltering or loss-ratio"),
    ("iterit_turns", ScoringConfig.turns, "assistant turns scored and trained: all or last"),
    ("iterit_batch_tokens", ScoringConfig.batch_tokens, "scorer token budget per forward"),
    ("iterit_template", None, "prompt template; default: from the data"),
    ("iterit_seed", None, "selection seed; default: the trainer's seed"),
)

_CLASS: dict[type, type] = {}


def _config_class() -> type:
    _, sft_config = compat.sft_classes()
    cls = _CLASS.get(sft_config)
    if cls is not None:
        return cls
    fields = [
        (name, Any, dataclasses.field(default=default, metadata={"help": text}))
        for name, default, text in ITERIT_FIELDS
    ]

    def __post_init__(self: Any) -> None:
        # TRL's SFTConfig turns bf16 on when unset, which a CPU refuses: unset means the
        # device's own mixed precision here (docs/training.md, "Precision").
        if getattr(self, "bf16", None) is None and not getattr(self, "fp16", False):
            self.bf16 = compat.mixed_precision_kwargs()["bf16"]
        sft_config.__post_init__(self)

    cls = dataclasses.make_dataclass(
        "IterITSFTConfig",
        fields,
        bases=(sft_config,),
        namespace={
            "__post_init__": __post_init__,
            "__module__": __name__,
            "__doc__": "``trl.SFTConfig`` with IterIT's settings as ``iterit_*`` fields "
            "(docs/training.md): " + "; ".join(f"``{n}``: {h}" for n, _, h in ITERIT_FIELDS),
        },
    )
    _CLASS[sft_config] = cls
    return cls


__getattr__ = compat.trl_classes(__name__, IterITSFTConfig=_config_class)


#: The ``iterit_*`` fields that are :class:`SelectionConfig` settings (the rest are scoring's).
_SELECTION_FIELDS = frozenset(f.name for f in dataclasses.fields(SelectionConfig))


def iterit_settings(
    args: Any, template: str, max_length: int
) -> tuple[SelectionConfig, ScoringConfig]:
    """The selection and scoring settings of training arguments: an ``IterITSFTConfig``'s
    ``iterit_*`` fields, IterIT's defaults for any other arguments; ``template``: the data's
    (:func:`dataset_samples`), unless ``iterit_template`` names one; ``max_length``: the
    arguments' own (``SFTConfig.max_length``)."""
    given = {
        name.removeprefix("iterit_"): getattr(args, name)
        for name, _, _ in ITERIT_FIELDS
        if hasattr(args, name)
    }
    scoring = {k: v for k, v in given.items() if k not in _SELECTION_FIELDS}
    scoring["template"] = scoring.get("template") or template
    selection = SelectionConfig(**{k: v for k, v in given.items() if k in _SELECTION_FIELDS})
    return selection, ScoringConfig(**scoring, max_length=max_length)


def _is_conversational(value: Any) -> bool:
    return isinstance(value, list) and (not value or isinstance(value[0], dict))


def dataset_samples(dataset: Any) -> tuple[list[Sample], str]:
    """The samples of a dataset as ``trl.SFTTrainer`` takes it, and the template that reads
    them as TRL does: ``messages`` (conversational) and prompt-completion with message lists
    read with the tokenizer's chat template (``"chat"``); prompt-completion strings as TRL
    concatenates them (``"completion"``); Alpaca columns (``instruction``, ``output``) with the
    Alpaca template.  A language-modelling ``text`` dataset is a ConfigError."""
    names = list(getattr(dataset, "column_names", None) or [])
    if "input_ids" in names:
        raise ConfigError(
            "the training dataset is already tokenised: give the samples it was built from "
            "(samples=), or the untokenised dataset"
        )
    if names and not ({"messages", "conversations", "prompt", "instruction"} & set(names)):
        raise ConfigError(
            "IFD needs a prompt and a response: give a conversational ('messages'), "
            "prompt-completion or instruction/output dataset, not a language-modelling "
            f"one (columns: {', '.join(names)})"
        )
    records = [dict(row) for row in dataset]
    samples, fmt, _ = samples_from_records(records, source="train_dataset")
    if fmt in ("messages", "sharegpt"):
        return samples, "chat"
    if fmt == "prompt-completion":
        first = records[0]
        conversational = _is_conversational(first.get("prompt"))
        return samples, "chat" if conversational else "completion"
    return samples, "alpaca"
