"""IterIT as trainer classes: :class:`IterITTrainer` (``transformers.Trainer``) and
:class:`IterITSFTTrainer` (``trl.SFTTrainer``), one :class:`IterITTrainerMixin` over both.

The mixin overrides the trainer's documented extension points instead of patching an
instance:

* ``_get_train_sampler`` returns the :class:`iterit.training.sampler.IterITSampler` (M samples
  per epoch, its index list replaced before each epoch by the callback);
* with in-loop losses (``rescore="in-loop"``), ``_set_signature_columns_if_needed`` keeps the
  ``iterit_index`` column, ``get_train_dataloader`` wraps the collator so each batch carries
  its sample indices, and ``compute_loss`` hands them to the loss recorder;
* the :class:`iterit.training.callback.IterITCallback` is added to the trainer's callbacks and
  kept as ``trainer.iterit``.

Example::

    trainer = IterITTrainer(model=model, args=args,
                            train_dataset=TokenizedSamples(samples, tok),
                            data_collator=ResponseOnlyCollator(tok.pad_token_id),
                            processing_class=tok,
                            samples=samples, selection_config=SelectionConfig(budget=0.05))
    trainer.train()

:func:`attach` adds IterIT to a trainer that is already built (it switches the instance to the
matching IterIT class).  ``IterITSFTTrainer`` is created on first use, so this module imports
without TRL.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from iterit.config import SCORING_SETTINGS, ScoringConfig, SelectionConfig, resolve_budget
from iterit.data.sample import Sample, as_sample
from iterit.errors import ConfigError, InvalidInputError
from iterit.scoring.gguf import as_float_model
from iterit.training import compat
from iterit.training.callback import IterITCallback
from iterit.training.datasets import (
    INDEX_KEY,
    MISSING_INDEX,
    IndexingCollator,
    TokenizedSamples,
    has_index,
    sample_rows,
    sft_dataset,
)
from iterit.training.lora import apply_lora, require_peft
from iterit.training.planner import InitialScores
from iterit.training.sampler import IterITSampler
from iterit.training.scoring_adapter import IFDScoreFn, ScoreFn
from iterit.utils.optional import requires_extra

with requires_extra("train"):
    import transformers

__all__ = [
    "IterITSFTTrainer",  # noqa: F822 - created on first use (module __getattr__)
    "IterITTrainer",
    "IterITTrainerMixin",
    "attach",
    "dropin",
    "iterit_trainer_class",
]


class IterITTrainerMixin:
    """IterIT for a ``transformers.Trainer`` subclass; put it first among the bases.

    Keyword arguments, besides the trainer's own: ``samples`` (every sample, in the order of
    the ``train_dataset`` rows or of its ``iterit_index`` column), ``selection_config`` (a
    :class:`iterit.config.SelectionConfig`), ``scoring_config`` (a
    :class:`iterit.config.ScoringConfig`: template, max length, turns, IFD variant, batch
    budget, progress; or any of its fields by name, ``max_length=1024``, on top of it) and the
    options of :meth:`setup_iterit`.

    Without ``samples``, a TRL trainer takes ``train_dataset`` as ``trl.SFTTrainer`` does
    (conversational, prompt-completion or Alpaca columns; :func:`dropin`): the samples, the
    template and ``max_length`` come from the data and ``args`` (an ``IterITSFTConfig`` carries
    the selection and scoring settings; any other ``SFTConfig`` gets IterIT's defaults).
    """

    #: The IterIT callback (selection records, summary) once set up.
    iterit: IterITCallback | None = None
    #: The sampler the trainer trains with once set up.
    iterit_sampler: IterITSampler | None = None

    def __init__(
        self,
        *args: Any,
        samples: Sequence[Sample | dict] | None = None,
        selection_config: SelectionConfig | None = None,
        score_fn: ScoreFn | None = None,
        initial_scores: InitialScores | np.ndarray | Sequence[float] | None = None,
        scoring_tokenizer: Any = None,
        scoring_config: ScoringConfig | None = None,
        log_path: str | os.PathLike[str] | None = None,
        peft_config: Any = None,
        **kwargs: Any,
    ) -> None:
        settings = {name: kwargs.pop(name) for name in SCORING_SETTINGS if name in kwargs}
        scoring = ScoringConfig.of(scoring_config, **settings)
        args, kwargs = _prepare_model(type(self), args, kwargs, peft_config)
        if samples is None:
            if not compat.is_sft_trainer(type(self)):
                raise ConfigError("an IterIT trainer needs the samples it selects from (samples=)")
            _default_sft_args(type(self), args, kwargs, scoring.max_length)
            samples, selection_config, scoring = dropin(args, kwargs, settings)
        _default_sft_args(type(self), args, kwargs, scoring.max_length)
        super().__init__(*args, **kwargs)
        self.setup_iterit(
            samples,
            selection_config,
            scoring,
            score_fn=score_fn,
            initial_scores=initial_scores,
            tokenizer=scoring_tokenizer,
            log_path=log_path,
        )

    def setup_iterit(
        self,
        samples: Sequence[Sample | dict],
        config: SelectionConfig | None = None,
        scoring: ScoringConfig | None = None,
        *,
        score_fn: ScoreFn | None = None,
        initial_scores: InitialScores | np.ndarray | Sequence[float] | None = None,
        tokenizer: Any = None,
        log_path: str | os.PathLike[str] | None = None,
        **settings: Any,
    ) -> IterITCallback:
        """Build the sampler and the callback for ``samples`` (see :func:`attach`);
        ``scoring`` and ``settings`` (its fields by name, on top of it) say how IFD scores."""
        config = config or SelectionConfig()
        _check_trainer(self)
        items = [as_sample(s, i) for i, s in enumerate(samples)]
        rows = sample_rows(self.train_dataset, len(items))
        seed = self.args.seed if config.seed is None else config.seed
        sampler = IterITSampler(resolve_budget(config.budget, len(items)), rows=rows, seed=seed)
        if score_fn is None and config.needs_scores:
            # Epoch 0 (unless scores are given) and the later epochs score with the trained model.
            tokenizer = tokenizer if tokenizer is not None else compat.trainer_tokenizer(self)
            if tokenizer is None:
                raise ConfigError(
                    "IFD scoring needs the tokenizer: pass it, or give the trainer a "
                    "processing_class"
                )
            score_fn = IFDScoreFn(tokenizer, scoring=ScoringConfig.of(scoring, **settings))
        if config.in_loop:
            _index_rows(self)
        callback = IterITCallback(
            items,
            sampler,
            config,
            score_fn=score_fn,
            initial_scores=initial_scores,
            log_path=log_path,
        )
        self.iterit_sampler = sampler
        self.iterit = callback
        self.add_callback(callback)
        return callback

    @property
    def _iterit_losses(self) -> Any:
        return None if self.iterit is None else self.iterit.losses

    # -- the trainer's extension points --------------------------------------------------------

    def _get_train_sampler(self, *args: Any, **kwargs: Any) -> Any:
        # The arguments differ between releases (compat.TRAIN_SAMPLER_ARGS); the trainer asks
        # for the training set's sampler only, which is IterIT's.
        if self.iterit_sampler is None:
            return super()._get_train_sampler(*args, **kwargs)
        return self.iterit_sampler

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        if self._iterit_losses is None:
            return
        columns = compat.signature_columns(self)
        if columns is not None and INDEX_KEY not in columns:
            compat.set_signature_columns(self, [*columns, INDEX_KEY])

    def compute_loss(self, model: Any, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        losses = self._iterit_losses
        index = None
        if losses is not None and hasattr(inputs, "pop"):
            index = inputs.pop(INDEX_KEY, None)
            if index is None and model.training:
                raise InvalidInputError(MISSING_INDEX)
        if index is None or not model.training:  # evaluation losses are not training losses
            return super().compute_loss(model, inputs, *args, **kwargs)
        losses.set_batch(index, inputs.get("labels"))
        try:
            return super().compute_loss(model, inputs, *args, **kwargs)
        finally:
            losses.set_batch(None, None)


def _prepare_model(
    cls: type, args: tuple[Any, ...], kwargs: dict[str, Any], peft_config: Any
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """The trainer's model as it trains: a model de-quantized from GGUF loses transformers'
    quantization marks (:mod:`iterit.scoring.gguf`); with ``peft_config`` it is wrapped with
    peft, unless the trainer takes ``peft_config`` itself (``trl.SFTTrainer``)."""
    positional = "model" not in kwargs and len(args) > 0
    model = args[0] if positional else kwargs.get("model")
    if model is not None and not isinstance(model, str):
        model = as_float_model(model)
        if peft_config is not None and not compat.takes_peft_config(cls):
            model = apply_lora(model, peft_config)
        if positional:
            args = (model, *args[1:])
        else:
            kwargs["model"] = model
    if peft_config is not None and compat.takes_peft_config(cls):
        require_peft()
        kwargs["peft_config"] = peft_config
    return args, kwargs


def _default_sft_args(
    cls: type, args: tuple[Any, ...], kwargs: dict[str, Any], max_length: int
) -> None:
    """Without training arguments, TRL builds an ``SFTConfig`` whose bf16 is on by default,
    which fails on a CPU (or a GPU without bf16); build it with the device's mixed precision,
    as ``iterit train`` does, no packing and the IterIT ``max_length``."""
    if len(args) > 1 or kwargs.get("args") is not None or not compat.is_sft_trainer(cls):
        return
    sft_config = compat.sft_classes()[1]
    model = args[0] if args else kwargs.get("model")
    config = getattr(model, "config", None)
    name = model if isinstance(model, str) else getattr(config, "_name_or_path", "")
    output_dir = f"{str(name).rstrip('/').split('/')[-1] or 'model'}-SFT"
    kwargs["args"] = sft_config(
        output_dir, packing=False, max_length=max_length, **compat.mixed_precision_kwargs()
    )


def dropin(
    args: tuple[Any, ...], kwargs: dict[str, Any], settings: dict[str, Any] | None = None
) -> tuple[list[Sample], SelectionConfig, ScoringConfig]:
    """A TRL trainer's ``train_dataset`` (as ``trl.SFTTrainer`` takes it) read as IterIT
    samples; it is replaced in ``kwargs`` by their tokenised rows (:func:`sft_dataset`, every
    assistant turn or the completion trained, exactly as scored).  Returns the samples, the
    selection and scoring settings from the training arguments (``settings``: scoring fields
    given to the trainer by name, on top of them)."""
    from iterit.training.sft_config import dataset_samples, iterit_settings

    train_args = args[1] if len(args) > 1 else kwargs.get("args")
    dataset = kwargs.get("train_dataset")
    tokenizer = kwargs.get("processing_class")
    if dataset is None or tokenizer is None or len(args) > 2:
        raise ConfigError(
            "an IterIT trainer without samples= needs train_dataset= and processing_class= "
            "(the tokenizer), passed by keyword"
        )
    if getattr(train_args, "padding_free", False):
        raise ConfigError(
            "IterIT scores and trains padded rows, one per sample: set padding_free=False"
        )
    samples, template = dataset_samples(dataset)
    max_length = getattr(train_args, "max_length", None) or ScoringConfig.max_length
    selection, scoring = iterit_settings(train_args, template, max_length)
    scoring = ScoringConfig.of(scoring, **(settings or {}))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    kwargs["train_dataset"] = sft_dataset(samples, tokenizer, scoring)
    return samples, selection, scoring


def _check_trainer(trainer: Any) -> None:
    if compat.uses_packing(trainer.args):
        raise ConfigError("IterIT selects samples, not packed blocks: set packing=False")
    strategy = compat.sampling_strategy(trainer.args)
    if strategy not in ("random", "sequential"):
        warnings.warn(
            f"train_sampling_strategy={strategy!r} is ignored: IterIT's sampler decides the order",
            stacklevel=3,
        )
    if trainer.train_dataset is None:
        raise ConfigError("the trainer has no train_dataset")


def _index_rows(trainer: Any) -> None:
    """In-loop losses need each training row's sample index."""
    if not has_index(trainer.train_dataset):
        raise ConfigError(
            "in-loop re-scoring needs each training row's sample index: train on "
            "TokenizedSamples, or a dataset with an 'iterit_index' column (sft_dataset)"
        )
    if isinstance(trainer.train_dataset, TokenizedSamples):
        trainer.train_dataset.with_index = True
    # Set once, with the trainer: training batches carry their indices; evaluation batches,
    # without any, are collated as before (compute_loss records training batches only).
    if not isinstance(trainer.data_collator, IndexingCollator):
        trainer.data_collator = IndexingCollator(trainer.data_collator, required=False)


class IterITTrainer(IterITTrainerMixin, transformers.Trainer):
    """``transformers.Trainer`` with IterIT's per-epoch re-selection."""


_CLASSES: dict[type, type] = {transformers.Trainer: IterITTrainer}


def _sft_trainer_class() -> type:
    sft_trainer, _ = compat.sft_classes()
    cls = _CLASSES.get(sft_trainer)
    if cls is None:
        cls = type(
            "IterITSFTTrainer",
            (IterITTrainerMixin, sft_trainer),
            {
                "__module__": __name__,
                "__qualname__": "IterITSFTTrainer",
                "__doc__": "``trl.SFTTrainer`` with IterIT's per-epoch re-selection.",
            },
        )
        _CLASSES[sft_trainer] = cls
    return cls


__getattr__ = compat.trl_classes(__name__, IterITSFTTrainer=_sft_trainer_class)


def iterit_trainer_class(trainer_class: type) -> type:
    """The IterIT class for a trainer class: :class:`IterITTrainer`, ``IterITSFTTrainer``, or
    a subclass with the mixin made for any other ``transformers.Trainer`` subclass."""
    if issubclass(trainer_class, IterITTrainerMixin):
        return trainer_class
    trl = sys.modules.get("trl")  # an SFTTrainer instance means trl is imported already
    if trl is not None and trainer_class is getattr(trl, "SFTTrainer", None):
        return _sft_trainer_class()
    cls = _CLASSES.get(trainer_class)
    if cls is None:
        name = f"IterIT{trainer_class.__name__}"
        cls = type(name, (IterITTrainerMixin, trainer_class), {"__module__": __name__})
        _CLASSES[trainer_class] = cls
    return cls


def attach(
    trainer: Any,
    samples: Sequence[Sample | dict],
    config: SelectionConfig | None = None,
    **options: Any,
) -> IterITCallback:
    """Add IterIT to an already built ``transformers.Trainer`` (or subclass: ``trl.SFTTrainer``).
    ``options`` are those of :meth:`IterITTrainerMixin.setup_iterit` (``scoring``,
    ``score_fn``, ``initial_scores`` (an :class:`~iterit.training.planner.InitialScores`, or
    one IFD per sample),
    ``tokenizer``, ``log_path``, and any :class:`~iterit.config.ScoringConfig` field by name:
    ``template``, ``max_length``, ...).

    The instance becomes the matching IterIT trainer class (:func:`iterit_trainer_class`) and
    gets an :class:`IterITSampler` of M samples per epoch and an :class:`IterITCallback`,
    returned and also kept as ``trainer.iterit``.  The trainer's ``train_dataset`` must hold
    every sample, tokenised (:class:`TokenizedSamples` or :func:`sft_dataset`).  Without a
    ``score_fn``, IFD is computed by :class:`IFDScoreFn` with the trainer's model and tokenizer,
    the given ``template`` and ``max_length`` (use the ones the dataset was tokenised with).

    With ``config.rescore == "in-loop"`` the trainer also records each trained sample's loss
    from its training forward pass (:mod:`iterit.training.inloop`): the dataset must be
    :class:`TokenizedSamples` or have an ``iterit_index`` column (:func:`sft_dataset`);
    initial scores then need their ``nll_prior`` (:class:`InitialScores`).
    """
    cls = iterit_trainer_class(type(trainer))
    callback = cls.setup_iterit(trainer, samples, config, **options)
    trainer.__class__ = cls  # set up without error: the trainer becomes an IterIT trainer
    return callback
