"""In-loop losses: each trained sample's response loss, taken from the training forward pass
itself, smoothed across epochs, as the complexity of the next re-selection (docs/design.md,
"Signals"; docs/signals.md).

:class:`InLoopLosses` records them when ``SelectionConfig(rescore="in-loop")``; the IterIT
trainers (:mod:`iterit.training.trainers`) wire it in:

* every training row carries its sample index (``iterit_index``:
  :class:`iterit.training.datasets.TokenizedSamples` adds it,
  :func:`iterit.training.datasets.sft_dataset` has the column); the trainer's
  ``get_train_dataloader`` wraps the data collator to turn it into a tensor of the batch, and
  its ``compute_loss`` takes it out of the model inputs again and hands it to the recorder;
* a forward hook on the model sees the training forward pass (train mode, gradients on, inside
  ``compute_loss``) and computes, under ``no_grad`` from its outputs, each row's mean negative
  log-likelihood over its labelled (response) tokens, in float32 from the logits, or from the
  per-token log-probabilities of TRL's fused LM head.  No extra forward pass, no full-vocabulary
  float32 tensor (the labelled positions are projected a few rows at a time);
* at the end of the epoch the ``(sample index, loss)`` pairs of every rank are gathered
  (``all_gather_object``; each loss travels with its index, so the order across ranks cannot
  mix them up), a sample trained several times in the epoch gets the mean of its losses, and
  the exponential moving average is updated once per epoch::

      ema[i] = loss[i]                              the first epoch i is trained
      ema[i] = beta * ema[i] + (1 - beta) * loss[i] every later epoch i is trained

The planner turns the EMA into an IFD-scale complexity, ``exp(ema[i] - nll_prior[i])``
(:func:`iterit.scoring.signals.ifd_equivalent`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from iterit.errors import ConfigError, ModelError
from iterit.scoring.signals import ifd_equivalent
from iterit.training.compat import forward_hook_module, lm_output_parts
from iterit.training.datasets import INDEX_KEY, IndexingCollator
from iterit.utils.distributed import dist
from iterit.utils.optional import requires_extra

with requires_extra("train"):
    import torch

__all__ = [
    "INDEX_KEY",
    "InLoopLosses",
    "IndexingCollator",
    "ifd_equivalent",
    "per_sample_nll",
]

# Float32 logits held at once when re-projecting labelled positions (rows x vocab <= 2^26).
_LOGIT_ELEMENTS = 1 << 26


def per_sample_nll(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean ``-log p(label)`` per row over the positions whose (shifted) label is not -100,
    in float32 (NaN for a row without labels).  ``logits``: (batch, length, vocab) as a causal
    LM returns them; ``labels``: (batch, length), unshifted, as given to the model."""
    with torch.no_grad():
        pred = logits[:, :-1]
        tgt = labels[:, 1:].to(pred.device)
        rows, cols = (tgt != -100).nonzero(as_tuple=True)
        b, vocab = logits.shape[0], logits.shape[-1]
        sums = torch.zeros(b, dtype=torch.float32, device=pred.device)
        step = max(1, _LOGIT_ELEMENTS // max(1, vocab))
        for a in range(0, rows.shape[0], step):
            r, c = rows[a : a + step], cols[a : a + step]
            x = pred[r, c].float()
            nll = torch.logsumexp(x, dim=-1) - x.gather(1, tgt[r, c][:, None])[:, 0]
            sums.index_add_(0, r, nll)
        counts = torch.bincount(rows, minlength=b).to(torch.float32)
        return sums / counts


def _per_sample_from_log_probs(log_probs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """TRL's fused LM head: per-token log-probabilities, zero on ignored positions."""
    with torch.no_grad():
        m = mask.to(torch.float32)
        return -(log_probs.float() * m).sum(-1) / m.sum(-1)


class InLoopLosses:
    """Records per-sample training losses and keeps their exponential moving average.

    ``beta``: the weight the history keeps at each update (``0``: the last epoch's loss only).
    After :meth:`end_epoch`, ``ema`` maps sample index to its smoothed loss and ``epochs``
    holds, per epoch, the mean loss of every sample trained in it.
    """

    def __init__(self, beta: float = 0.5) -> None:
        if not 0.0 <= beta < 1.0:
            raise ConfigError(f"the loss EMA coefficient must be in [0, 1), got {beta}")
        self.beta = float(beta)
        self._handle: Any = None
        self.reset()

    def reset(self) -> None:
        """Forget every loss (a new training run); the model hook stays as it is."""
        self.ema: dict[int, float] = {}
        self.n_updates: dict[int, int] = {}
        self.epochs: dict[int, dict[int, float]] = {}
        self.partial: list[tuple[int, float]] = []  # restored from a mid-epoch checkpoint
        self._local: list[tuple[torch.Tensor, torch.Tensor]] = []
        self._current: torch.Tensor | None = None
        self._labels: torch.Tensor | None = None
        self.n_batches = 0

    # -- recording -------------------------------------------------------------------------------

    def set_batch(self, index: torch.Tensor | None, labels: torch.Tensor | None) -> None:
        """The sample indices (and labels) of the batch ``compute_loss`` is about to run; the
        forward hook records the next training forward pass under them.  None clears it."""
        self._current = index
        self._labels = labels if index is not None else None

    def attach_model(self, model: Any) -> None:
        self.detach_model()
        module = forward_hook_module(model)
        self._handle = module.register_forward_hook(self._hook, with_kwargs=True)

    def detach_model(self) -> None:
        if self._handle is not None:
            self._handle.remove()
            self._handle = None

    def _hook(self, module: Any, args: Any, kwargs: dict[str, Any], output: Any) -> None:
        index = self._current
        if index is None or not module.training or not torch.is_grad_enabled():
            return
        self._current = None  # one record per compute_loss call (the training forward)
        logits, log_probs, mask = lm_output_parts(output)
        if log_probs is not None:
            losses = _per_sample_from_log_probs(log_probs, mask)
        else:
            labels = kwargs.get("labels", self._labels)
            if logits is None or labels is None or logits.dim() != 3:
                raise ModelError(
                    "in-loop re-scoring reads each sample's loss from the training forward pass, "
                    f"but {type(module).__name__} returned neither logits nor per-token "
                    "log-probabilities (a fused loss kernel?); use rescore='ifd'"
                )
            losses = per_sample_nll(logits, labels)
        self._local.append((index.detach().to("cpu"), losses.detach().to("cpu")))
        self.n_batches += 1

    # -- epochs --------------------------------------------------------------------------------

    def begin_epoch(self) -> None:
        self._local = []

    def gather(self) -> list[tuple[int, float]]:
        """This epoch's ``(sample index, loss)`` pairs of every rank (restored ones first)."""
        if self._local:
            idx = torch.cat([i for i, _ in self._local]).tolist()
            loss = torch.cat([v for _, v in self._local]).tolist()
        else:
            idx, loss = [], []
        mine = list(zip(idx, loss, strict=True))
        d = dist()
        if d is None:
            pairs = mine
        else:
            box: list[Any] = [None] * d.get_world_size()
            d.all_gather_object(box, mine)
            pairs = [p for part in box for p in part]
        return [*self.partial, *pairs]

    def end_epoch(self, epoch: int) -> dict[int, float]:
        """Gather the epoch's losses, average repeats, update the EMA; returns index -> loss."""
        sums: dict[int, list[float]] = {}
        for i, v in self.gather():
            if math.isfinite(v):
                sums.setdefault(int(i), []).append(float(v))
        losses = {i: float(np.mean(v)) for i, v in sums.items()}
        b = self.beta
        for i, v in losses.items():
            if i in self.ema:
                self.ema[i] = b * self.ema[i] + (1.0 - b) * v
            else:
                self.ema[i] = v
            self.n_updates[i] = self.n_updates.get(i, 0) + 1
        self.epochs[int(epoch)] = losses
        self._local = []
        self.partial = []
        return losses

    def ema_array(self, indices: np.ndarray) -> np.ndarray:
        """The EMA of each index (NaN where the sample has not been trained yet)."""
        return np.array([self.ema.get(int(i), np.nan) for i in indices], dtype=np.float64)

    # -- checkpoints -----------------------------------------------------------------------------

    def export_state(self, *, with_partial: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "beta": self.beta,
            "ema": [[i, v] for i, v in sorted(self.ema.items())],
            "n_updates": [[i, v] for i, v in sorted(self.n_updates.items())],
        }
        if with_partial:
            out["partial"] = [[int(i), float(v)] for i, v in self.gather()]
        return out

    def load_state(self, saved: dict[str, Any]) -> None:
        self.ema = {int(i): float(v) for i, v in saved.get("ema", [])}
        self.n_updates = {int(i): int(v) for i, v in saved.get("n_updates", [])}
        self.partial = [(int(i), float(v)) for i, v in saved.get("partial", [])]
        self._local = []
