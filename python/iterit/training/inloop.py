"""In-loop loss (LEAD, paper 003): each trained sample's response loss, taken from the training
forward pass itself, smoothed across epochs, as the complexity of the next re-selection.

:class:`InLoopLosses` is installed on a ``transformers.Trainer`` (or ``trl.SFTTrainer``) by
:func:`iterit.training.hf.attach` when ``SelectionConfig(rescore="in-loop")``:

* every training row carries its sample index (``iterit_index``: :class:`iterit.training.hf.TokenizedSamples`
  adds it, :func:`iterit.training.hf.sft_dataset` has the column); a wrapper around the trainer's data
  collator turns it into a tensor of the batch, and a wrapper around ``compute_loss`` takes it
  out of the model inputs again;
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

The callback (:class:`iterit.training.hf.IterITCallback`) turns the EMA into an IFD-scale complexity,
``exp(ema[i] - nll_prior[i])`` (see :func:`ifd_equivalent` and ``docs/signals.md``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

__all__ = [
    "INDEX_KEY",
    "InLoopLosses",
    "IndexingCollator",
    "ifd_equivalent",
    "per_sample_nll",
]

INDEX_KEY = "iterit_index"
# Float32 logits held at once when re-projecting labelled positions (rows x vocab <= 2^26).
_LOGIT_ELEMENTS = 1 << 26


def ifd_equivalent(loss_ema: np.ndarray, nll_prior: np.ndarray) -> np.ndarray:
    """``exp(loss_ema - nll_prior)``: the IFD a sample would have if its conditional NLL were
    the smoothed training loss (IFD = exp(nll_cond - nll_prior), DESIGN 3.2)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return np.exp(np.asarray(loss_ema, np.float64) - np.asarray(nll_prior, np.float64))


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


class IndexingCollator:
    """Wraps a data collator: takes ``iterit_index`` out of every feature, collates the rest
    with the wrapped collator, and adds the indices to the batch as an int64 tensor."""

    def __init__(self, inner: Callable[[Sequence[dict[str, Any]]], Any]) -> None:
        self.inner = inner

    def __call__(self, features: Sequence[dict[str, Any]]) -> Any:
        index = []
        rest = []
        for f in features:
            if INDEX_KEY not in f:
                raise ValueError(
                    "in-loop re-scoring needs each training row's sample index ('iterit_index'): "
                    "train on iterit.training.hf.TokenizedSamples or iterit.training.hf.sft_dataset"
                )
            f = dict(f)
            index.append(int(f.pop(INDEX_KEY)))
            rest.append(f)
        batch = self.inner(rest)
        batch[INDEX_KEY] = torch.tensor(index, dtype=torch.long)
        return batch


def _unwrap(model: Any) -> Any:
    from iterit.scoring.ifd import unwrap_model as unwrap

    return unwrap(model)


def _dist() -> Any:
    d = torch.distributed
    if d.is_available() and d.is_initialized() and d.get_world_size() > 1:
        return d
    return None


class InLoopLosses:
    """Records per-sample training losses and keeps their exponential moving average.

    ``beta``: the weight the history keeps at each update (``0``: the last epoch's loss only).
    After :meth:`end_epoch`, ``ema`` maps sample index to its smoothed loss and ``epochs``
    holds, per epoch, the mean loss of every sample trained in it.
    """

    def __init__(self, beta: float = 0.5) -> None:
        if not 0.0 <= beta < 1.0:
            raise ValueError(f"the loss EMA coefficient must be in [0, 1), got {beta}")
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

    # -- wiring into a trainer ----------------------------------------------------------------

    def install(self, trainer: Any) -> None:
        """Make the sample indices reach ``compute_loss`` and record from the forward pass."""
        sig = getattr(trainer, "_set_signature_columns_if_needed", None)
        if callable(sig):
            sig()  # keep 'iterit_index' when the trainer removes unused columns
            cols = trainer._signature_columns
            if cols is not None and INDEX_KEY not in cols:
                trainer._signature_columns = [*cols, INDEX_KEY]
        get_loader = trainer.get_train_dataloader
        compute_loss = trainer.compute_loss
        recorder = self

        def get_train_dataloader(*args: Any, **kwargs: Any) -> Any:
            inner = trainer.data_collator
            if isinstance(inner, IndexingCollator):
                return get_loader(*args, **kwargs)
            trainer.data_collator = IndexingCollator(inner)
            try:
                return get_loader(*args, **kwargs)
            finally:
                trainer.data_collator = inner

        def compute_loss_with_index(model: Any, inputs: Any, *args: Any, **kwargs: Any) -> Any:
            index = inputs.pop(INDEX_KEY, None) if hasattr(inputs, "pop") else None
            recorder._current = index
            recorder._labels = inputs.get("labels") if index is not None else None
            try:
                return compute_loss(model, inputs, *args, **kwargs)
            finally:
                recorder._current = None
                recorder._labels = None

        trainer.get_train_dataloader = get_train_dataloader
        trainer.compute_loss = compute_loss_with_index

    def attach_model(self, model: Any) -> None:
        self.detach_model()
        module = _unwrap(model)
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
        log_probs = getattr(output, "log_probs", None)
        mask = getattr(output, "label_mask", None)
        if log_probs is not None and mask is not None:
            losses = _per_sample_from_log_probs(log_probs, mask)
        else:
            logits = getattr(output, "logits", None)
            if logits is None and isinstance(output, (tuple, list)) and len(output) > 1:
                logits = output[1] if output[0].dim() == 0 else output[0]
            labels = kwargs.get("labels", self._labels)
            if logits is None or labels is None or logits.dim() != 3:
                raise RuntimeError(
                    "in-loop re-scoring reads each sample's loss from the training forward pass, "
                    f"but {type(module).__name__} returned neither logits nor per-token "
                    "log-probabilities (a fused loss kernel?); use --rescore ifd"
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
        d = _dist()
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
