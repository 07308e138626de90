"""Evaluation after every epoch (docs/compare.md, "Evaluation"): the mean per-token NLL of each
evaluation set's reference responses with the model being trained, judge-free.

The rows are kept in memory and, when ``path`` is given, rewritten whole after every epoch as
JSON Lines, so a resumed run keeps the rows of the epochs it already evaluated.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from iterit.data.sample import Sample
from iterit.utils.atomic import atomic_open

__all__ = ["EvalCallback"]


class EvalCallback(TrainerCallback):
    """Evaluates ``eval_sets`` (name -> samples) at the end of every epoch; ``rows`` holds one
    dict per epoch and set: ``epoch`` (1-based: epochs trained), ``eval``, ``nll``,
    ``n_tokens``, ``n_samples``, ``seconds``, ``forward_tokens``, and per sample its NLL and
    response tokens (``record_nll``, ``record_tokens``).  A conversation is evaluated on the
    assistant turns the run trains (``turns``: ``all`` or ``last``, docs/design.md "IFD")."""

    def __init__(
        self,
        eval_sets: Mapping[str, Sequence[Sample]],
        tokenizer: Any,
        *,
        template: Any = "alpaca",
        max_length: int = 1024,
        batch_tokens: int | None = None,
        turns: str = "all",
        path: str | Path | None = None,
    ) -> None:
        self.eval_sets = {name: list(s) for name, s in eval_sets.items()}
        self.tokenizer = tokenizer
        self.settings = {
            "template": template,
            "max_length": max_length,
            "batch_tokens": batch_tokens,
            "turns": turns,
        }
        self.path = Path(path) if path is not None else None
        self.rows: list[dict[str, Any]] = self._read()
        self.seconds = 0.0

    def _read(self) -> list[dict[str, Any]]:
        if self.path is None or not self.path.is_file():
            return []
        with self.path.open(encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    def evaluate(self, model: Any, epoch: int) -> list[dict[str, Any]]:
        """Evaluate ``model`` on every set and record the rows as epoch ``epoch``."""
        from iterit.scoring.evaluate import eval_nll

        t0 = time.perf_counter()
        new = []
        for name, samples in self.eval_sets.items():
            res = eval_nll(model, self.tokenizer, samples, **self.settings)
            new.append(
                {
                    "epoch": int(epoch),
                    "eval": name,
                    "nll": res.nll,
                    "n_tokens": res.n_tokens,
                    "n_samples": res.n_samples,
                    "seconds": round(res.seconds, 4),
                    "forward_tokens": res.forward_tokens,
                    "record_nll": list(res.record_nll),
                    "record_tokens": list(res.record_tokens),
                }
            )
        self.seconds += time.perf_counter() - t0
        self.rows = [r for r in self.rows if r["epoch"] != epoch] + new
        self._write()
        return new

    def _write(self) -> None:
        from iterit.utils.distributed import is_main_process

        if self.path is None or not is_main_process():
            return
        with atomic_open(self.path, "w", overwrite=True) as f:
            for row in sorted(self.rows, key=lambda r: (r["epoch"], r["eval"])):
                f.write(json.dumps(row) + "\n")

    def on_epoch_end(self, args, state, control, model=None, **kwargs):
        if model is None:  # every rank evaluates: the scorer shards the work over them
            return
        was_training = model.training
        try:
            self.evaluate(model, round(state.epoch))
        finally:
            model.train(was_training)
