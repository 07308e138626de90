"""Settings shared by the library and the command line, in one place: the choice lists, the
defaults (the paper's) and the validated configuration dataclasses. Torch-free, so the command
line can build its options from it without importing a model library."""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
from dataclasses import dataclass, field
from typing import Any

from iterit.errors import ConfigError, InvalidInputError, InvalidTypeError

__all__ = [
    "COMPARE_ARMS",
    "DATA_FORMATS",
    "DIVERSITY",
    "DTYPES",
    "IFD_VARIANTS",
    "LR_SCHEDULERS",
    "RESCORE",
    "SAVE_STRATEGIES",
    "SCORE_METRICS",
    "SCORING_SETTINGS",
    "STRATEGIES",
    "TEMPLATES",
    "TFIDF_VARIANTS",
    "TRAINERS",
    "TURNS",
    "LPTraining",
    "ScoringConfig",
    "SelectionConfig",
    "TrainConfig",
    "resolve_budget",
]

#: ``iterit``: IFD x decayed diversity (the method); ``ifd``: IFD only; ``random`` and
#: ``longest``: the static baselines (no scoring).
STRATEGIES = ("iterit", "ifd", "random", "longest")
#: The text whose n-grams measure diversity, or ``none`` (IFD only).
DIVERSITY = ("response", "instruction", "both", "none")
#: How epochs after the first get their complexity.
RESCORE = ("ifd", "in-loop")
#: How IFD counts tokens and combines the two passes (docs/ifd.md, "Variants"): ``iterit``
#: (start and end tokens, ratio of perplexities), ``superfiltering`` (Superfiltering's token
#: accounting) and ``loss-ratio`` (iterit's tokens, ratio of mean losses).
IFD_VARIANTS = ("iterit", "superfiltering", "loss-ratio")
#: Which assistant turns of a conversation are scored and trained (docs/design.md, "IFD",
#: conversations): ``all`` of them, or only the ``last`` (everything before it is prompt).
TURNS = ("all", "last")
#: The arms ``iterit compare`` can train, each a set of TrainConfig fields over the shared
#: settings (docs/compare.md): the static baselines, IFD only, IterIT, IterIT without iteration
#: (the epoch-0 selection every epoch) and IterIT with in-loop re-scoring.
COMPARE_ARMS: dict[str, dict[str, Any]] = {
    "random": {"strategy": "random"},
    "longest": {"strategy": "longest"},
    "ifd": {"strategy": "ifd"},
    "iterit": {"strategy": "iterit"},
    "iterit-static": {"strategy": "iterit", "iterate": False},
    "iterit-inloop": {"strategy": "iterit", "rescore": "in-loop"},
}
#: Prompt templates by name (a callable is accepted too).
TEMPLATES = ("alpaca", "plain", "chat", "completion")
#: TF-IDF weightings: scikit-learn's, or the paper's Eq. 5.
TFIDF_VARIANTS = ("sklearn", "paper")
#: Record formats of input data.
DATA_FORMATS = ("alpaca", "sharegpt", "messages", "prompt-completion")
#: Trainer classes ``iterit train`` can build.
TRAINERS = ("transformers", "trl")
#: When a training run writes checkpoints (transformers' ``save_strategy``).
SAVE_STRATEGIES = ("epoch", "steps", "no")
#: Floating-point types a model can be loaded in; ``auto``: bfloat16 on CUDA and on CPUs with
#: native bfloat16, float32 elsewhere (:mod:`iterit.scoring.device` decides).
DTYPES = ("auto", "float32", "bfloat16", "float16")
#: What ``iterit score`` can measure: IFD, or the learning percentage of a small model trained
#: on the data (docs/signals.md).
SCORE_METRICS = ("ifd", "learning-percentage")
#: Learning-rate schedules offered by the command line.
LR_SCHEDULERS = (
    "cosine",
    "linear",
    "constant",
    "constant_with_warmup",
    "cosine_with_restarts",
    "polynomial",
)


def resolve_budget(budget: int | float, n: int) -> int:
    """A count ``>= 1`` as is, or a fraction in ``(0, 1)`` of ``n`` samples, rounded half up
    (at least 1)."""
    if isinstance(budget, bool) or not isinstance(budget, (numbers.Integral, numbers.Real)):
        raise InvalidTypeError(
            f"budget must be an int or a float fraction, got {type(budget).__name__}"
        )
    if isinstance(budget, numbers.Integral):
        if budget < 1:
            raise InvalidInputError(f"budget must be at least 1, got {budget}")
        return int(budget)
    fraction = float(budget)
    if not 0.0 < fraction < 1.0:
        raise InvalidInputError(
            f"a float budget is a fraction of the samples and must be in (0, 1), got {budget!r};"
            " pass an int for a count"
        )
    return max(1, math.floor(fraction * n + 0.5))


def _choice(what: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"unknown {what} {value!r} (expected one of: {', '.join(choices)})")


@dataclass
class ScoringConfig:
    """How IFD scores samples (docs/ifd.md), validated when built (:class:`ConfigError` names
    the setting); the defaults are the paper's.

    ``template``: a name of :data:`TEMPLATES` or a callable ``f(sample) -> str`` (shared with
    training's prompt format).  ``max_length``: the longest conditional sequence (prompt +
    scored response tokens), at least 2.  ``ifd_variant``: how IFD counts tokens and combines
    the passes (:data:`IFD_VARIANTS`).  ``turns``: which assistant turns of a conversation
    are scored and trained under the chat template (:data:`TURNS`; one-turn samples score the
    same either way).  ``batch_tokens``: the token budget of one forward batch
    (``None``: the scorer's, by device).  ``dtype``: of :data:`DTYPES` (``auto``: bfloat16 on
    CUDA and on CPUs with native bfloat16, else float32).  ``device``: where the model runs
    (``None``: CUDA when available, else the CPU).  ``cache``: a folder of the resumable score
    cache (``None``: no cache).  ``progress``: progress bars.
    """

    template: Any = "alpaca"
    max_length: int = 1024
    ifd_variant: str = "iterit"
    batch_tokens: int | None = None
    dtype: str = "auto"
    turns: str = "all"
    device: str | None = None
    cache: str | os.PathLike[str] | None = None
    progress: bool = True
    model_cache: bool = True

    def __post_init__(self) -> None:
        if not callable(self.template):
            _choice("template", self.template, TEMPLATES)
        if isinstance(self.max_length, bool) or int(self.max_length) < 2:
            raise ConfigError(f"max_length must be at least 2, got {self.max_length}")
        self.max_length = int(self.max_length)
        _choice("IFD variant", self.ifd_variant, IFD_VARIANTS)
        _choice("turns", self.turns, TURNS)
        if self.batch_tokens is not None:
            if isinstance(self.batch_tokens, bool) or int(self.batch_tokens) < 1:
                raise ConfigError(f"batch_tokens must be positive, got {self.batch_tokens}")
            self.batch_tokens = int(self.batch_tokens)
        self.dtype = "auto" if self.dtype is None else str(self.dtype).lower()
        _choice("dtype", self.dtype, DTYPES)

    @classmethod
    def of(cls, config: ScoringConfig | None = None, **settings: Any) -> ScoringConfig:
        """``config`` (default: the defaults) with ``settings`` replaced by name, validated:
        what a function that takes a ScoringConfig or some of its fields by name (for example
        ``max_length=512``) scores with.  An unknown name is a :class:`ConfigError`."""
        unknown = sorted(set(settings) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ConfigError(f"unknown scoring setting(s): {', '.join(unknown)}")
        return dataclasses.replace(config or cls(), **settings)

    def to_json(self) -> dict[str, Any]:
        """The settings as JSON-able values (the cache folder as a string); a callable template
        has no JSON form (:class:`ConfigError`)."""
        if callable(self.template):
            raise ConfigError("a callable template cannot be written as JSON; name a template")
        out = dataclasses.asdict(self)
        if self.cache is not None:
            out["cache"] = os.fspath(self.cache)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ScoringConfig:
        """The configuration :meth:`to_json` wrote; an unknown setting is a ConfigError."""
        return cls.of(**data)


@dataclass
class SelectionConfig:
    """What to select each epoch (docs/design.md, "Pool and iterations"; defaults are the
    paper's).

    ``budget``: M per epoch, a count or a fraction of all samples.  ``pool_factor``: a, the pool
    kept after epoch 0 is the ``floor(a * M)`` valid samples with the highest IFD.  ``decay``: b.
    ``diversity``: the text whose n-grams measure diversity (``response``, ``instruction``,
    ``both``) or ``none`` (IFD only, Superfiltering-style, still iterated over the pool).
    ``strategy``: ``iterit`` (the default), ``ifd`` (= ``iterit`` with ``diversity="none"``), or
    the static baselines ``random`` and ``longest`` (no scoring at all).  ``iterate=False`` reuses
    the epoch-0 selection every epoch (the "without iteration" ablation).  ``seed`` seeds the
    per-epoch shuffle of the selection (and the ``random`` baseline); ``None`` takes the
    trainer's ``args.seed``.

    ``rescore``: how epochs after the first get their complexity.  ``"ifd"`` (the default, the
    paper's): re-score the pool with IFD using the model being trained.  ``"in-loop"`` (LEAD,
    :mod:`iterit.training.inloop`): no scoring after epoch 0; each pool sample already trained gets
    ``exp(loss_ema - nll_prior)`` (its smoothed training loss on IFD's scale, ``nll_prior`` from
    epoch 0), the others keep their epoch-0 IFD.  ``loss_ema``: the weight the history keeps
    at each epoch's EMA update, ``ema = loss_ema * ema + (1 - loss_ema) * loss``.
    """

    budget: int | float = 0.05
    pool_factor: float = 3.0
    decay: float = 0.1
    diversity: str = "response"
    strategy: str = "iterit"
    iterate: bool = True
    ngram_range: tuple[int, int] = (1, 3)
    variant: str = "sklearn"
    max_complexity: float = 1.0
    seed: int | None = None
    rescore: str = "ifd"
    loss_ema: float = 0.5

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise ConfigError(
                f"unknown strategy {self.strategy!r} (expected one of: {', '.join(STRATEGIES)})"
            )
        if self.strategy == "ifd":
            self.strategy, self.diversity = "iterit", "none"
        if self.diversity not in DIVERSITY:
            raise ConfigError(
                f"unknown diversity {self.diversity!r} (expected one of: {', '.join(DIVERSITY)})"
            )
        resolve_budget(self.budget, 1)  # a count >= 1 or a fraction in (0, 1)
        if not 0.0 <= self.decay < 1.0:
            raise ConfigError(f"decay must be in [0, 1), got {self.decay}")
        if not self.pool_factor >= 1.0:
            raise ConfigError(f"pool factor must be at least 1, got {self.pool_factor}")
        self.ngram_range = (int(self.ngram_range[0]), int(self.ngram_range[1]))
        if self.rescore not in RESCORE:
            raise ConfigError(
                f"unknown rescore {self.rescore!r} (expected one of: {', '.join(RESCORE)})"
            )
        if not 0.0 <= self.loss_ema < 1.0:
            raise ConfigError(f"the loss EMA coefficient must be in [0, 1), got {self.loss_ema}")

    @property
    def needs_scores(self) -> bool:
        return self.strategy == "iterit"

    @property
    def in_loop(self) -> bool:
        """Later epochs take the complexity from the training losses (no re-scoring)."""
        return self.rescore == "in-loop" and self.needs_scores and self.iterate


@dataclass
class TrainConfig:
    """Everything ``iterit train`` takes; the defaults are the paper's.  Validated when built
    (:class:`ConfigError` names the setting); :meth:`selection` is the one place the per-epoch
    :class:`SelectionConfig` is made from it.

    Selection (per epoch, docs/design.md "Pool and iterations"): ``budget`` (M: a count or a
    fraction of the samples), ``pool_factor``, ``decay``, ``diversity`` (``response``,
    ``instruction``, ``both``, ``none`` = IFD only), ``strategy`` (``iterit``, ``ifd``,
    ``random``, ``longest``), ``iterate`` (False: no re-selection), ``scorer_model`` (a separate
    scorer), ``scores`` (epoch-0 complexity from a scores file), ``template`` and
    ``max_length`` (shared by scoring and training), ``ifd_variant`` (how IFD counts tokens,
    :data:`IFD_VARIANTS`), ``turns`` (a conversation's assistant turns scored and trained,
    :data:`TURNS`), ``batch_tokens`` (scoring batch budget),
    ``score_cache`` (a folder: epoch 0's scoring of every sample goes through the resumable
    score cache), ``rescore`` (``ifd``: re-score the pool with IFD before every later epoch, the
    paper's; ``in-loop``: take the later epochs' complexity from the training losses, no
    re-scoring; see ``docs/signals.md``) and ``loss_ema`` (the in-loop loss EMA's history
    weight).

    Training: ``epochs``, ``learning_rate``, ``lr_scheduler``, ``warmup_ratio``, ``batch_size``
    (effective: ``micro_batch_size`` x gradient accumulation x processes), ``micro_batch_size``
    (per device), ``weight_decay``, ``max_grad_norm``, ``dtype`` (of :data:`DTYPES`; ``None``
    or ``auto``: float32 weights for the trained model, ``auto`` for a separate scorer; a name:
    the loaded weights' dtype), ``bf16`` (mixed precision; default: on when CUDA supports it,
    and on a CPU with native bfloat16 under ``auto``),
    ``gradient_checkpointing``, ``seed``, checkpointing (``save_strategy``, ``save_steps``,
    ``save_total_limit``), ``resume_from_checkpoint`` (a path, or True for the last one in
    ``output_dir``), ``trainer`` (``transformers`` or ``trl``), ``deepspeed`` (a config file),
    ``training_args`` (any further ``TrainingArguments`` / ``SFTConfig`` fields).

    LoRA (docs/training.md, "LoRA"): ``lora`` (train peft adapters instead of every weight),
    ``lora_r``, ``lora_alpha``, ``lora_dropout``, ``lora_targets`` and ``merge_lora``.
    """

    model: str | None = None
    data: str | os.PathLike[str] | None = None
    output_dir: str | os.PathLike[str] = "iterit-output"
    # data
    data_format: str = "auto"
    fields: dict[str, str] | None = None
    split: str | None = None
    # selection (defaults: SelectionConfig's)
    budget: int | float = SelectionConfig.budget
    pool_factor: float = SelectionConfig.pool_factor
    decay: float = SelectionConfig.decay
    diversity: str = SelectionConfig.diversity
    strategy: str = SelectionConfig.strategy
    iterate: bool = SelectionConfig.iterate
    scorer_model: str | None = None
    scores: str | os.PathLike[str] | None = None
    allow_other_model_scores: bool = False
    template: str = ScoringConfig.template
    max_length: int = ScoringConfig.max_length
    ifd_variant: str = ScoringConfig.ifd_variant
    turns: str = ScoringConfig.turns
    batch_tokens: int | None = ScoringConfig.batch_tokens
    score_cache: str | os.PathLike[str] | None = None
    ngram_range: tuple[int, int] = SelectionConfig.ngram_range
    rescore: str = SelectionConfig.rescore
    loss_ema: float = SelectionConfig.loss_ema
    # training
    epochs: int = 3
    learning_rate: float = 2e-5
    lr_scheduler: str = "cosine"
    warmup_ratio: float = 0.03
    batch_size: int = 32
    micro_batch_size: int = 4
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    dtype: str | None = None
    bf16: bool | None = None
    gradient_checkpointing: bool = False
    seed: int = 42
    save_strategy: str = "epoch"
    save_steps: int | None = None
    save_total_limit: int | None = None
    logging_steps: int = 10
    resume_from_checkpoint: str | bool | None = None
    trainer: str = "transformers"
    deepspeed: str | None = None
    device: str | None = None
    report_to: str = "none"
    progress: bool = True
    trust_remote_code: bool = False
    model_cache: bool = True
    training_args: dict[str, Any] = field(default_factory=dict)
    # LoRA (peft): adapters on lora_targets (None: every attention and MLP projection of a
    # Llama-style model, iterit.training.lora.LLAMA_TARGETS); merge_lora also saves the merged
    # weights (in the output folder's "merged" subfolder).
    lora: bool = False
    lora_r: int = 16
    lora_alpha: float = 32
    lora_dropout: float = 0.05
    lora_targets: tuple[str, ...] | str | None = None
    merge_lora: bool = False

    def __post_init__(self) -> None:
        if self.dtype is not None and self.dtype not in DTYPES:
            raise ConfigError(
                f"unknown dtype {self.dtype!r} (expected one of: {', '.join(DTYPES)})"
            )
        if self.lora_r < 1:
            raise ConfigError(f"lora_r must be at least 1, got {self.lora_r}")
        if not 0.0 <= self.lora_dropout < 1.0:
            raise ConfigError(f"lora_dropout must be in [0, 1), got {self.lora_dropout}")
        if self.merge_lora and not self.lora:
            raise ConfigError("merge_lora needs lora=True (there is no adapter to merge)")
        if self.trainer not in TRAINERS:
            raise ConfigError(
                f"unknown trainer {self.trainer!r} (expected one of: {', '.join(TRAINERS)})"
            )
        if self.save_strategy not in SAVE_STRATEGIES:
            raise ConfigError(
                f"unknown save_strategy {self.save_strategy!r} "
                f"(expected one of: {', '.join(SAVE_STRATEGIES)})"
            )
        for name in ("epochs", "batch_size", "micro_batch_size", "max_length"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ConfigError(f"warmup_ratio must be in [0, 1), got {self.warmup_ratio}")
        self.scoring  # validates template, max_length, ifd_variant, batch_tokens  # noqa: B018
        self.selection()  # validates budget, decay, pool factor, diversity, strategy, rescore

    @property
    def scoring(self) -> ScoringConfig:
        """How this run scores with IFD (epoch 0 goes through ``score_cache``; ``dtype``:
        ``auto`` for ``None``, the separate scorer's; the trained model's precision is
        :func:`iterit.scoring.precision.training_precision`'s)."""
        values = {name: getattr(self, _IN_TRAIN.get(name, name)) for name in _SCORING_FIELDS}
        values["dtype"] = self.dtype or "auto"
        return ScoringConfig(**values)

    @classmethod
    def from_scoring(cls, scoring: ScoringConfig, **fields: Any) -> TrainConfig:
        """A run that scores as ``scoring`` says (its cache is the run's ``score_cache``), with
        ``fields`` for the rest (they override ``scoring``'s where both name a setting)."""
        values = {_IN_TRAIN.get(name, name): getattr(scoring, name) for name in _SCORING_FIELDS}
        return cls(**{**values, **fields})

    def selection(self) -> SelectionConfig:
        """The per-epoch selection settings of this run."""
        values = {name: getattr(self, name) for name in _SELECTION_FIELDS}
        values["ngram_range"] = tuple(self.ngram_range)
        return SelectionConfig(**values)

    def to_json(self) -> dict[str, Any]:
        """The settings as JSON-able values (paths as strings)."""
        out = dataclasses.asdict(self)
        for k, v in out.items():
            if isinstance(v, os.PathLike):
                out[k] = os.fspath(v)
        return out


@dataclass(frozen=True)
class LPTraining:
    """How the learning percentage trains its small model (the defaults are
    :class:`~iterit.config.TrainConfig`'s; a cosine schedule with its warm-up)."""

    epochs: int = TrainConfig.epochs
    learning_rate: float = TrainConfig.learning_rate
    batch_size: int = TrainConfig.batch_size
    micro_batch_size: int = TrainConfig.micro_batch_size
    seed: int = TrainConfig.seed


#: ScoringConfig's settings that TrainConfig holds under another name.
_IN_TRAIN = {"cache": "score_cache"}
#: The settings of a ScoringConfig, by name (functions that take one take them by name too).
SCORING_SETTINGS = tuple(f.name for f in dataclasses.fields(ScoringConfig))
_SCORING_FIELDS = SCORING_SETTINGS
#: The SelectionConfig settings a TrainConfig holds (under the same names).
_SELECTION_FIELDS = tuple(
    f.name
    for f in dataclasses.fields(SelectionConfig)
    if f.name in TrainConfig.__dataclass_fields__
)
