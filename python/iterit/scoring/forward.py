"""One padded forward batch of IFD sequences: the sum of -log p over each row's scored tokens.

:class:`BatchForward` turns a batch of :class:`~iterit.scoring.batching.ScoredSequence` into
tensors, runs the decoder (or the whole model when full logits are needed), projects only the
hidden states that predict scored tokens and sums their NLL per row.  It holds the key/value
caches of preambles shared by many prompts (one chunk at a time) and the self-checks that
decide, once per model, whether the fast paths (decoder + head instead of full logits, shared
prefix caches) reproduce the model's own scores.  :class:`iterit.scoring.scorer.IFDScorer`
decides what runs, in what order and under what budget.  Imports torch.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from iterit.scoring.batching import ScoredSequence, batch_arrays
from iterit.scoring.encoding import eos_token, start_token
from iterit.scoring.logprobs import OutputHead, head_logit_error, token_nll
from iterit.scoring.model import kv_cache_copy, kv_cache_kwargs, kv_cache_of
from iterit.scoring.synced import forward_accepts
from iterit.utils.optional import requires_extra

with requires_extra("torch"):
    import torch

__all__ = ["BatchForward"]


class BatchForward:
    """Forward batches of one model; ``model`` is the wrapper the caller holds (DDP, PEFT),
    ``hf_model``, ``decoder`` and ``head`` its parts (:func:`iterit.scoring.model.causal_parts`).

    ``synced``: every call goes through the root forward with full logits and no prefix
    sharing, as a sharded model (FSDP, ZeRO-3) needs."""

    def __init__(
        self,
        model: Any,
        hf_model: Any,
        decoder: Any,
        head: Any,
        tokenizer: Any,
        device: torch.device,
        *,
        synced: bool,
    ):
        self.model = model
        self.hf_model = hf_model
        self.decoder = decoder
        self.output_head = OutputHead(head, hf_model.config)
        self.tokenizer = tokenizer
        self.device = device
        self.synced = synced
        #: Whether rows need the model's full logits; decided by a self-check on first use.
        self.full_logits: bool | None = True if synced else None
        #: Whether a shared prefix cache scores as rows run whole; checked on first use.
        self.prefix_ok: bool | None = False if synced else None
        self._prefixes: list[tuple[list[int], Any]] = []
        self._logits_to_keep: bool | None = None

    # -- shared prefixes --------------------------------------------------------------------

    def add_prefix(self, ids: list[int]) -> int:
        """Register a preamble shared by a group of rows; its cache is computed on first use.
        Returns the group id that :class:`ScoredSequence` ``group`` names."""
        self._prefixes.append((list(ids), None))
        return len(self._prefixes) - 1

    def clear_prefixes(self) -> int:
        """Drop the prefix caches (they live for one chunk); returns the tokens they cost."""
        computed = sum(len(p) for p, c in self._prefixes if c is not None)
        self._prefixes.clear()
        return computed

    def _prefix_cache(self, group: int) -> Any:
        ids, cache = self._prefixes[group]
        if cache is None:
            x = torch.tensor([ids], device=self.device)
            cache = kv_cache_of(self.decoder(input_ids=x, use_cache=True))
            self._prefixes[group] = (ids, cache)
        return cache

    # -- one batch --------------------------------------------------------------------------

    def run(self, batch: list[ScoredSequence]) -> np.ndarray:
        """Sum of -log p over each sequence's scored tokens (float64, one per scored range:
        one per row, except for rows with several ``segments``)."""
        pad = getattr(self.tokenizer, "pad_token_id", None)
        pad = eos_token(self.tokenizer) if pad is None else int(pad)
        left = getattr(self.tokenizer, "padding_side", "right") == "left"
        a = batch_arrays(batch, pad=pad, left=left)

        def tensor(x: np.ndarray) -> torch.Tensor:
            return torch.from_numpy(x).to(self.device)

        inputs: dict[str, Any] = {
            "input_ids": tensor(a.input_ids),
            "attention_mask": None if a.attention_mask is None else tensor(a.attention_mask),
            "position_ids": tensor(a.position_ids),
            "use_cache": False,
        }
        if batch[0].prefix:
            cache = kv_cache_copy(self._prefix_cache(batch[0].group), len(batch))
            inputs.update(kv_cache_kwargs(self.hf_model, cache), use_cache=True)
        cols = a.cols
        if self.full_logits:
            if self.synced and self._keeps_logits():
                # Logits of the last positions only, from the first scored one on.
                first = int(cols.min())
                inputs["logits_to_keep"] = a.input_ids.shape[1] - first
                cols = cols - first
            out = self.model(**inputs).logits
        else:
            out = self.decoder(**inputs)
            out = out[0] if not hasattr(out, "last_hidden_state") else out.last_hidden_state
        dev = out.device  # the last stage's device when the model is split
        rows = out[torch.from_numpy(a.rows).to(dev), torch.from_numpy(cols).to(dev)]
        del out
        targets = torch.from_numpy(a.targets).to(dev)
        nll = token_nll(rows, targets) if self.full_logits else self.output_head.nll(rows, targets)
        # One sum per scored range (per row unless a row has several, a conversation's turns).
        return np.bincount(a.slots, weights=nll.astype(np.float64), minlength=a.n_slots)

    def _keeps_logits(self) -> bool:
        """Whether the model's forward can return the logits of the last positions only."""
        if self._logits_to_keep is None:
            self._logits_to_keep = forward_accepts(self.hf_model, "logits_to_keep")
        return self._logits_to_keep

    # -- self-checks ------------------------------------------------------------------------

    def _probe(self, n: int) -> list[int]:
        vocab = self.output_head.vocab
        return [start_token(self.tokenizer), *[(7 * i + 3) % vocab for i in range(n)]]

    def check_projection(self) -> None:
        """Check once that decoder + head reproduces the model's own logits; if it does not
        (an architecture with an unknown output transform), fall back to full logits."""
        if self.full_logits is not None:
            return
        probe = self._probe(7)
        diff, tol = head_logit_error(self.model, self.decoder, self.output_head, probe, self.device)
        self.full_logits = not diff <= tol
        if self.full_logits:
            warnings.warn(
                f"{type(self.hf_model).__name__}: the output head alone does not reproduce the "
                f"model's logits (max log-prob difference {diff:.3g}); IFD falls back to full "
                "logits (slower, more memory)",
                RuntimeWarning,
                stacklevel=3,
            )

    def check_prefix(self) -> None:
        """Check once that rows run after a shared prefix cache score as rows run whole."""
        if self.prefix_ok is not None:
            return
        ids = self._probe(11)
        whole = self.run([ScoredSequence(0, 0, ids, 6), ScoredSequence(1, 0, ids[:9], 6)])
        group = self.add_prefix(ids[:4])
        try:
            shared = self.run(
                [
                    ScoredSequence(0, 0, ids, 6, prefix=4, group=group),
                    ScoredSequence(1, 0, ids[:9], 6, prefix=4, group=group),
                ]
            )
            fp32 = self.hf_model.get_input_embeddings().weight.dtype == torch.float32
            tol = 1e-4 if fp32 else 5e-2
            self.prefix_ok = bool(np.allclose(shared, whole, rtol=tol, atol=tol))
        except Exception:  # a model whose cache cannot be shared this way: score rows whole
            self.prefix_ok = False
        finally:
            self._prefixes.clear()
