"""Click options shared by the ``iterit`` commands (``score``, ``select``, ``report``, ``train``).

Each ``*_options`` function is a decorator adding a group of options; the matching helpers turn
the parsed values into what the library takes (:func:`scoring_config`: the
:class:`~iterit.config.ScoringConfig` of the scoring options).  Defaults and choices are
:mod:`iterit.config`'s (the dataclass fields and the choice lists), so that the same option
means the same thing everywhere.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from iterit.cli.params import BUDGET, FRACTION, Budget, FiniteFloatRange, choice, config_option
from iterit.config import (
    DATA_FORMATS,
    DIVERSITY,
    LR_SCHEDULERS,
    ScoringConfig,
    SelectionConfig,
    TrainConfig,
)
from iterit.data import LoadedData, load, parse_fields
from iterit.scoring.embedded_model import (
    DEFAULT_HUB_MODEL,
    SMOLLM2_GGUF,
    default_cache_dir,
    default_model,
    describe_model,
    embedded_model,
)
from iterit.utils.atomic import (
    OVERWRITE_HINT,
    OutputExistsError,
    OutputFolderError,
    check_output,
)

__all__ = [
    "BUDGET",
    "DEFAULT_HUB_MODEL",
    "SMOLLM2_GGUF",
    "Budget",
    "check_outputs",
    "data_argument",
    "data_argument_option",
    "data_options",
    "default_cache_dir",
    "default_model",
    "describe_model",
    "diversity_option",
    "embedded_model",
    "info",
    "load_data",
    "lora_options",
    "overwrite_option",
    "score_cache",
    "scores_file_option",
    "scoring_config",
    "seed_option",
    "selection_options",
    "training_options",
    "training_seed_option",
]

F = TypeVar("F", bound=Callable[..., Any])


def _fields_callback(ctx: Any, param: Any, value: tuple[str, ...]) -> dict[str, str]:
    try:
        return parse_fields(value)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None


def apply_options(func: F, decorators: list[Callable[[F], F]]) -> F:
    for deco in reversed(decorators):
        func = deco(func)
    return func


# --------------------------------------------------------------------------------------------
# option groups


def data_argument(func: F) -> F:
    """The positional ``DATA`` argument (a file or a dataset folder)."""
    return click.argument("data", type=click.Path(exists=True, dir_okay=True, path_type=Path))(func)


def data_argument_option(func: F) -> F:
    """``--data FILE``: the data as an option (for ``iterit train``)."""
    return click.option(
        "--data",
        "data",
        required=True,
        type=click.Path(exists=True, dir_okay=True, path_type=Path),
        help="Training data: .json, .jsonl, .parquet or a folder saved with datasets.",
    )(func)


def data_options(func: F) -> F:
    """``--format``, ``--field KEY=NAME`` (repeatable) and ``--split``."""
    return apply_options(
        func,
        [
            click.option(
                "--format",
                "data_format",
                type=choice(["auto", *DATA_FORMATS]),
                default=TrainConfig.data_format,
                show_default=True,
                help="Record format; auto detects it from the first record.",
            ),
            click.option(
                "--field",
                "fields",
                multiple=True,
                metavar="KEY=NAME",
                callback=_fields_callback,
                help="Read KEY from the field NAME (repeatable). Keys: instruction, input, "
                "output (or response), conversations (or messages), role, content, system, "
                "prompt, completion. Example: --field output=answer",
            ),
            click.option(
                "--split",
                default=None,
                help="Split of a saved DatasetDict (default: train, or the only split).",
            ),
        ],
    )


def diversity_option(func: F) -> F:
    return config_option(
        SelectionConfig,
        "diversity",
        choice(DIVERSITY),
        help="Text whose n-grams measure diversity (none: complexity alone).",
    )(func)


def selection_options(func: F) -> F:
    """``--budget``, ``--pool-factor``, ``--decay`` and ``--diversity`` (docs/design.md, "Pool
    and iterations")."""
    return apply_options(
        func,
        [
            config_option(
                SelectionConfig,
                "budget",
                BUDGET,
                help="Samples to select: a fraction of the records (0.05 or 5%) or a count.",
            ),
            config_option(
                SelectionConfig,
                "pool_factor",
                FiniteFloatRange(min=1.0),
                help="Candidate pool = pool factor x budget valid samples with the highest "
                "complexity, before the diversity-aware selection.",
            ),
            config_option(
                SelectionConfig,
                "decay",
                FRACTION,
                help="Weight kept by an n-gram each time a selected sample covers it "
                "(0 for single-domain data such as code).",
            ),
            diversity_option,
        ],
    )


def training_options(prefix: str = "") -> Callable[[F], F]:
    """``--epochs``, ``--learning-rate``, ``--batch-size`` and ``--micro-batch-size`` with the
    paper's defaults, shared by ``iterit train`` and ``iterit score --metric
    learning-percentage``; ``prefix`` starts each help text (e.g. the metric they apply to)."""

    def decorate(func: F) -> F:
        return apply_options(
            func,
            [
                config_option(
                    TrainConfig,
                    "epochs",
                    click.IntRange(min=1),
                    help=f"{prefix}training epochs.",
                ),
                config_option(
                    TrainConfig,
                    "learning_rate",
                    FiniteFloatRange(min=0.0),
                    help=f"{prefix}peak learning rate.",
                ),
                config_option(
                    TrainConfig,
                    "batch_size",
                    click.IntRange(min=1),
                    help=f"{prefix}effective batch: micro batch x gradient accumulation x "
                    "processes.",
                ),
                config_option(
                    TrainConfig,
                    "micro_batch_size",
                    click.IntRange(min=1),
                    help=f"{prefix}samples per device per forward pass; the accumulation "
                    "steps follow.",
                ),
            ],
        )

    return decorate


def lora_options(func: F) -> F:
    """``--lora`` and its settings (``iterit train``; docs/training.md, "LoRA")."""
    return apply_options(
        func,
        [
            click.option(
                "--lora",
                is_flag=True,
                default=False,
                help="Train LoRA adapters (peft) instead of every weight; the output folder "
                "holds the adapter.",
            ),
            config_option(
                TrainConfig,
                "lora_r",
                click.IntRange(min=1),
                help="LoRA rank.",
            ),
            config_option(
                TrainConfig,
                "lora_alpha",
                FiniteFloatRange(min=0.0, min_open=True),
                default=float(TrainConfig.lora_alpha),
                help="LoRA scaling numerator (the scale is alpha / r).",
            ),
            config_option(
                TrainConfig,
                "lora_dropout",
                FRACTION,
                help="Dropout on the LoRA inputs.",
            ),
            click.option(
                "--lora-targets",
                default=None,
                metavar="NAMES",
                help="Comma-separated module names to adapt, or all-linear (default: every "
                "attention and MLP projection of a Llama-style model: q_proj,k_proj,v_proj,"
                "o_proj,gate_proj,up_proj,down_proj).",
            ),
            click.option(
                "--merge-lora",
                is_flag=True,
                default=False,
                help="Also save the adapter merged into the base weights (OUTPUT_DIR/merged).",
            ),
        ],
    )


def overwrite_option(func: F) -> F:
    return click.option(
        "--overwrite", is_flag=True, default=False, help="Replace existing output files."
    )(func)


def seed_option(func: F) -> F:
    return click.option(
        "--seed", type=int, default=0, show_default=True, help="Seed of the random baseline."
    )(func)


def training_seed_option(help: str | None = None) -> Callable[[F], F]:
    """``--seed`` of a training run (``iterit train``, ``compare``, the learning percentage)."""
    return click.option("--seed", type=int, default=TrainConfig.seed, show_default=True, help=help)


def scores_file_option(help: str) -> Callable[[F], F]:
    """``--scores FILE``: scores written by ``iterit score``; ``help`` says what they are for."""
    return click.option(
        "--scores",
        "scores_file",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        default=None,
        help=help,
    )


_QUIET = "iterit.quiet"


def _quiet_callback(ctx: Any, param: Any, value: bool) -> bool:
    ctx.meta[_QUIET] = bool(value)
    return bool(value)


def _progress_callback(ctx: Any, param: Any, value: bool | None) -> bool:
    # Bars by default only on a terminal; never under --quiet.
    if ctx.meta.get(_QUIET):
        return False
    return sys.stderr.isatty() if value is None else bool(value)


def progress_option(func: F) -> F:
    """``--progress/--no-progress`` (default: on a terminal) and ``-q/--quiet``."""
    func = click.option(
        "--progress/--no-progress",
        default=None,
        callback=_progress_callback,
        help="Show progress bars on standard error (default: when it is a terminal).",
    )(func)
    return click.option(
        "-q",
        "--quiet",
        is_flag=True,
        default=False,
        is_eager=True,
        expose_value=False,
        callback=_quiet_callback,
        help="No progress bars and no progress messages (errors, warnings and the summary remain).",
    )(func)


def info(message: str) -> None:
    """Print a progress message on standard error, unless ``--quiet`` was given."""
    ctx = click.get_current_context(silent=True)
    if ctx is None or not ctx.find_root().meta.get(_QUIET):
        click.echo(message, err=True)


# --------------------------------------------------------------------------------------------
# helpers


def load_data(
    path: Path,
    data_format: str = "auto",
    fields: dict[str, str] | None = None,
    split: str | None = None,
) -> LoadedData:
    """Load ``path`` (a :class:`~iterit.data.DataError` reaches the one error handler of
    :mod:`iterit.cli`), with a progress bar for a large file when the command shows them."""
    ctx = click.get_current_context(silent=True)
    progress = bool(ctx is not None and ctx.params.get("progress"))
    return load(path, format=data_format, fields=fields, split=split, progress=progress)


def score_cache(cache: Path | None, no_cache: bool) -> Path | None:
    """The score cache folder of ``--cache`` and ``--no-cache`` (default: the user's cache)."""
    return None if no_cache else (cache or default_cache_dir())


#: The parsed options of :func:`model_options` and :func:`progress_option` that are
#: :class:`~iterit.config.ScoringConfig` fields under their own names.
SCORING_OPTIONS = (
    "template",
    "ifd_variant",
    "turns",
    "max_length",
    "batch_tokens",
    "device",
    "dtype",
)


def scoring_config(params: dict[str, Any], cache: Path | None) -> ScoringConfig:
    """The :class:`~iterit.config.ScoringConfig` of the parsed scoring options, removed from
    ``params`` (``progress`` is kept: other settings use it too); ``cache``: the cache folder
    (:func:`score_cache`)."""
    fields = {name: params.pop(name) for name in SCORING_OPTIONS}
    fields["turns"] = fields["turns"].lower()
    return ScoringConfig(
        **fields,
        cache=cache,
        progress=params.get("progress", True),
        model_cache=not params.pop("no_model_cache", False),
    )


def check_outputs(paths: list[Path], overwrite: bool) -> None:
    """Refuse, before any work, outputs that exist (without ``--overwrite``) or whose folder
    cannot be created (a file in the way); a missing folder is created."""
    for path in paths:
        try:
            check_output(path, overwrite=overwrite)
        except OutputExistsError as e:
            msg = e.strerror or str(e)
            raise click.ClickException(
                msg.replace(OVERWRITE_HINT, "(pass --overwrite to replace it)")
            ) from None
        except OutputFolderError as e:
            raise click.ClickException(e.strerror or str(e)) from None


def schedule_options(func: F) -> F:
    """The learning-rate schedule over all epochs, shared by `train` and `compare`."""
    return apply_options(
        func,
        [
            config_option(
                TrainConfig,
                "lr_scheduler",
                choice(LR_SCHEDULERS),
                help="Learning-rate schedule over all epochs.",
            ),
            config_option(
                TrainConfig,
                "warmup_ratio",
                FRACTION,
                help="Share of all optimizer steps spent warming up.",
            ),
        ],
    )
