"""Learning percentage: how much of a sample's total perplexity drop over a short fine-tuning
happens in the first epoch (docs/design.md, "Signals"; docs/signals.md).  A (small) model
trains on the full data for n epochs; each sample's response perplexity is measured before
training (P0) and after every epoch (P1..Pn), and :mod:`iterit.scoring.signals` turns them
into LP, LP_proxy and the complexity the selector takes::

    LP       = (P0 - P1) / (P0 - Pn)      (0 when P0 == Pn)
    LP_proxy = (P0 - P1) / P0             (the one-epoch proxy)
    complexity = 1 / (1 + exp(LP))        (LP_proxy with a single epoch, where LP is always 1)

A sample learnt mostly in the first epoch (LP near 1, or above) is easy; a low LP is hard.  The
complexity is strictly decreasing in LP (hardest first), in ``(0, 1)`` for every finite LP, 0.5
at LP = 0, 0.27 at LP = 1, so selecting by it picks the hardest samples first, on a scale
comparable to IFD's.  NaN (no perplexity: empty response, or no room for a response token
within ``max_length``) stays NaN and is never a candidate.

The perplexity is ``exp(nll_cond)`` of :class:`iterit.scoring.IFDScorer` (the response's
mean NLL given the prompt, the training sequence of :mod:`iterit.training.datasets`), measured
by a training callback (:class:`PerplexityCallback`) inside the project's training loop
(:func:`iterit.training.run.build_trainer` with the full data every epoch), so it is batched,
and sharded and gathered under torch.distributed like IFD.
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from iterit.config import LPTraining, ScoringConfig, TrainConfig
from iterit.data.candidates import candidate_mask
from iterit.data.sample import Sample, as_sample
from iterit.errors import ConfigError, InvalidInputError
from iterit.scoring import signals
from iterit.utils.optional import requires_extra

with requires_extra("train"):
    from transformers import TrainerCallback

__all__ = [
    "LPScores",
    "LPTraining",
    "PerplexityCallback",
    "lp_columns",
    "score_learning_percentage",
]


@dataclass(frozen=True)
class LPScores:
    """The outcome of :func:`score_learning_percentage`, aligned with the input samples.

    ``ppl``: ``(epochs + 1, N)`` response perplexities (P0..Pn); ``lp``, ``lp_proxy``,
    ``complexity`` (what the selector takes, see the module docstring), ``n_tokens`` (the
    response tokens scored), ``signal`` (``"lp"`` or ``"proxy"``: which one the complexity
    is made of) and ``passes``: the scorer's statistics of each perplexity pass (forward calls,
    sequences, seconds)."""

    ppl: np.ndarray
    lp: np.ndarray
    lp_proxy: np.ndarray
    complexity: np.ndarray
    n_tokens: np.ndarray
    signal: str
    passes: list[dict[str, Any]] = field(default_factory=list, compare=False, repr=False)
    train_seconds: float = field(default=0.0, compare=False)

    @property
    def epochs(self) -> int:
        return int(self.ppl.shape[0]) - 1


class PerplexityCallback(TrainerCallback):
    """Scores ``samples`` with :class:`iterit.scoring.IFDScorer` and the model being
    trained before training (``on_train_begin``: P0) and at the end of every epoch (P1..Pn).

    After training, ``nll_cond`` holds one float64 array per pass (the response's mean NLL
    given the prompt; perplexity = ``exp(nll_cond)``), ``n_tokens`` the scored response tokens
    and ``passes`` the scorer's statistics of each pass.  Under torch.distributed every rank
    scores a shard and gets the gathered result.

    ``scoring``: the template, max length, batch budget and progress of the passes; they
    score the model where the trainer placed it and never through a score cache (the model
    changes between passes)."""

    def __init__(
        self,
        samples: Sequence[Sample | dict],
        tokenizer: Any,
        scoring: ScoringConfig | None = None,
    ) -> None:
        self.samples = [as_sample(s, i) for i, s in enumerate(samples)]
        self.tokenizer = tokenizer
        self.scoring = dataclasses.replace(scoring or ScoringConfig(), cache=None, device=None)
        self.nll_cond: list[np.ndarray] = []
        self.n_tokens: np.ndarray | None = None
        self.passes: list[dict[str, Any]] = []

    def _pass(self, model: Any, state: Any) -> None:
        from iterit.scoring import IFDScorer

        scorer = IFDScorer.from_config(model, self.tokenizer, self.scoring)  # bars: rank 0
        scores = scorer.score(self.samples)
        self.nll_cond.append(np.asarray(scores.nll_cond, dtype=np.float64))
        if self.n_tokens is None:
            self.n_tokens = np.asarray(scores.n_tokens, dtype=np.int64)
        stats = scores.stats.to_json()
        self.passes.append(
            {
                "epoch": len(self.nll_cond) - 1,
                "global_step": int(state.global_step),
                **{k: stats.get(k) for k in ("forward_calls", "sequences", "seconds")},
            }
        )

    def on_train_begin(self, args, state, control, model=None, **kwargs):
        if state.global_step > 0:
            raise ConfigError(
                "learning percentage needs P0 before training: do not resume from a checkpoint"
            )
        self.nll_cond, self.passes, self.n_tokens = [], [], None
        self._pass(model, state)

    def on_epoch_end(self, args, state, control, model=None, **kwargs):
        self._pass(model, state)

    def perplexities(self) -> np.ndarray:
        """``(passes, N)``: exp(nll_cond) of every pass so far."""
        with np.errstate(over="ignore"):
            return np.exp(np.stack(self.nll_cond)) if self.nll_cond else np.zeros((0, 0))


def _check_signal(epochs: int, signal: str | None) -> str:
    if int(epochs) < 1:
        raise ConfigError(f"epochs must be at least 1, got {epochs}")
    signal = signal or ("lp" if epochs >= 2 else "proxy")
    if signal not in ("lp", "proxy"):
        raise ConfigError(f"signal must be 'lp' or 'proxy', got {signal!r}")
    if signal == "lp" and epochs < 2:
        raise ConfigError("with a single epoch LP is 1 for every sample: use signal='proxy'")
    return signal


def score_learning_percentage(
    samples: Sequence[Sample | dict],
    model: Any,
    tokenizer: Any,
    *,
    scoring: ScoringConfig | None = None,
    training: LPTraining | None = None,
    signal: str | None = None,
    output_dir: str | Path | None = None,
    trainer: str = "transformers",
    training_args: dict[str, Any] | None = None,
    callbacks: Sequence[Any] = (),
) -> LPScores:
    """Train ``model`` (usually small) on every scorable sample for ``epochs`` epochs with the
    project's training loop, measuring each sample's response perplexity before training and
    after every epoch, and return the learning percentages (see the module docstring).

    ``model`` is trained in place.  ``scoring``: the template, max length, batch budget and
    progress of training and of the perplexity passes (its cache and dtype do not apply: the
    weights are trained as given).  ``training``: epochs, learning rate, batch sizes and seed
    (:class:`LPTraining`).  ``signal``: ``"lp"`` (default with >= 2 epochs) or ``"proxy"``
    (default with 1 epoch): which one the complexity is made of.  ``training_args`` adds
    further ``TrainingArguments`` fields; ``callbacks`` more trainer callbacks (they run after the
    perplexity pass).  Checkpoints are not saved and a run cannot be resumed (P0 must be
    measured before the first step).
    """
    from iterit.training.run import build_trainer

    scoring = scoring or ScoringConfig()
    training = training or LPTraining()
    signal = _check_signal(training.epochs, signal)
    items = [as_sample(s, i) for i, s in enumerate(samples)]
    keep = _trainable(items, tokenizer, scoring)
    sub = [items[int(i)] for i in keep]
    folder = (
        tempfile.TemporaryDirectory(prefix="iterit-lp-")
        if output_dir is None
        else contextlib.nullcontext(str(output_dir))
    )
    with folder as out:
        cfg = TrainConfig.from_scoring(
            scoring,
            output_dir=out,
            strategy="random",  # every scorable sample, reshuffled each epoch: the full data
            budget=len(sub),
            **dataclasses.asdict(training),
            score_cache=None,
            dtype=None,  # the weights train as given; training_args may mix precision
            save_strategy="no",
            trainer=trainer,
            training_args=dict(training_args or {}),
        )
        callback = PerplexityCallback(sub, tokenizer, scoring)
        hf_trainer, _ = build_trainer(cfg, sub, model, tokenizer, callbacks=[callback, *callbacks])
        t0 = time.perf_counter()
        hf_trainer.train()
        train_s = time.perf_counter() - t0
    return _lp_scores(callback, keep, len(items), signal, train_s)


def _trainable(items: list[Sample], tokenizer: Any, scoring: ScoringConfig) -> np.ndarray:
    """Indices of the samples with at least one response token to train on (and to score)."""
    from iterit.training.datasets import encode_samples

    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    rows = encode_samples(items, tokenizer, scoring)
    keep = np.array([i for i, r in enumerate(rows) if any(x != -100 for x in r["labels"])])
    if keep.size == 0:
        raise InvalidInputError("no sample has a response token to train on")
    return keep


def _lp_scores(
    callback: PerplexityCallback, keep: np.ndarray, n: int, signal: str, train_s: float
) -> LPScores:
    """The scores of all ``n`` samples from the passes over the scorable ones (``keep``)."""
    ppl_sub = callback.perplexities()
    ppl = np.full((ppl_sub.shape[0], n), np.nan)
    ppl[:, keep] = ppl_sub
    lp, proxy = signals.learning_percentage(ppl)
    n_tokens = np.zeros(n, dtype=np.int64)
    if callback.n_tokens is not None:
        n_tokens[keep] = callback.n_tokens
    return LPScores(
        ppl=ppl,
        lp=lp,
        lp_proxy=proxy,
        complexity=signals.lp_complexity(lp if signal == "lp" else proxy),
        n_tokens=n_tokens,
        signal=signal,
        passes=callback.passes,
        train_seconds=train_s,
    )


def lp_columns(scores: LPScores, keys: Sequence[str] | None = None) -> dict[str, Any]:
    """The columns of a learning-percentage scores file, in order: ``index``, ``complexity``
    (what ``iterit select --scores`` / ``iterit train --scores`` select by), ``lp``,
    ``lp_proxy``, ``ppl_0`` .. ``ppl_<epochs>``, ``n_tokens``, ``valid`` (a candidate: finite
    complexity in (0, 1)) and, given, ``key`` (the samples' content hashes)."""
    n = scores.complexity.shape[0]
    c = scores.complexity
    valid = candidate_mask(c)
    cols: dict[str, Any] = {
        "index": np.arange(n, dtype=np.int64),
        "complexity": c,
        "lp": scores.lp,
        "lp_proxy": scores.lp_proxy,
    }
    for e in range(scores.ppl.shape[0]):
        cols[f"ppl_{e}"] = scores.ppl[e]
    cols["n_tokens"] = scores.n_tokens
    cols["valid"] = valid
    if keys is not None:
        cols["key"] = list(keys)
    return cols
