"""What ``iterit train`` and ``iterit compare`` share: the options that name a training run's
model, data and output folder, and the :class:`~iterit.config.TrainConfig` built from them."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import click

from iterit.cli import options
from iterit.cli.model_options import model_options
from iterit.config import TrainConfig
from iterit.errors import MissingDependencyError
from iterit.utils.optional import install_hint

__all__ = ["SHARED_SETTINGS", "missing_training", "run_inputs_options", "train_config"]

F = TypeVar("F", bound=Callable[..., Any])

#: Options both commands pass to TrainConfig under their own names, as given.
SHARED_SETTINGS = (
    "split",
    "budget",
    "pool_factor",
    "decay",
    "template",
    "max_length",
    "batch_tokens",
    "epochs",
    "learning_rate",
    "warmup_ratio",
    "batch_size",
    "micro_batch_size",
    "seed",
    "device",
    "progress",
)
#: Choices both commands pass lower-cased (click matched them case-insensitively).
_SHARED_CHOICES = ("diversity", "lr_scheduler", "ifd_variant", "turns", "dtype")


def run_inputs_options(output_help: str) -> Callable[[F], F]:
    """``--model`` and the scoring settings, ``--data`` and its format options, and
    ``--output-dir`` (whose help, ``output_help``, says what the run writes there)."""

    def decorate(func: F) -> F:
        func = click.option(
            "--output-dir",
            required=True,
            type=click.Path(file_okay=False, path_type=Path),
            help=output_help,
        )(func)
        func = options.data_options(func)
        func = options.data_argument_option(func)
        return model_options(func)

    return decorate


def train_config(
    params: dict[str, Any],
    model: str,
    data_format: str,
    *,
    names: Iterable[str] = (),
    choices: Iterable[str] = (),
    **fields: Any,
) -> TrainConfig:
    """The TrainConfig of a training command's parsed ``params``: the inputs, the output folder
    and the score cache, :data:`SHARED_SETTINGS` and ``names`` under their own names, the
    choices lower-cased, and ``fields`` as given."""
    p = params
    cache = options.score_cache(p["cache"], p["no_cache"])
    return TrainConfig(
        model=model,
        data=str(p["data"]),
        output_dir=str(p["output_dir"]),
        data_format=data_format,
        fields=p["fields"] or None,
        # Epoch 0 scores the model as loaded: the score cache applies (resumable, reusable).
        score_cache=None if cache is None else str(cache),
        model_cache=not p["no_model_cache"],
        **{name: p[name] for name in (*SHARED_SETTINGS, *names)},
        **{name: p[name].lower() for name in (*_SHARED_CHOICES, *choices)},
        **fields,
    )


def missing_training(command: str, error: ImportError) -> MissingDependencyError:
    """The error for a training command run without the training extra."""
    return MissingDependencyError(
        f"{command} needs torch, transformers and accelerate ({error}); install them with "
        f"{install_hint('train')}"
    )
