"""Batched IFD scoring with a causal LM (docs/design.md, "IFD").

:class:`IFDScorer` runs both passes of many samples in one padded forward batch, grouped by
length under a token budget, restores the input order, halves the budget on CUDA
out-of-memory, shards the work over torch.distributed ranks and can resume from an on-disk
cache.  One forward batch (only the hidden states that predict response tokens are projected,
log-softmax in float32) is :class:`iterit.scoring.forward.BatchForward`'s.
:func:`iterit.scoring.reference_ifd` is the one-sequence-per-pass oracle it must equal.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from iterit.config import ScoringConfig
from iterit.data.keys import content_keys
from iterit.data.sample import Sample, as_sample
from iterit.data.templates import Template, check_template, template_identity
from iterit.errors import ConfigError
from iterit.scoring.batching import ScoredSequence, plan_batches, prefix_groups, take_batch
from iterit.scoring.cache import CACHE_VERSION, ScoreCache, TimedFlush, tokenizer_fingerprint
from iterit.scoring.device import model_dtype_name
from iterit.scoring.encoding import (
    OK,
    EncodedSamples,
    check_ifd_variant,
    check_turns,
    encode_for_scoring,
    start_token,
)
from iterit.scoring.forward import BatchForward
from iterit.scoring.logprobs import LOGIT_ELEMENTS
from iterit.scoring.model import OOM_ERRORS, EvalMode, causal_parts, input_device, model_fingerprint
from iterit.scoring.results import IFDScores, ScoringStats, scores_from_nll
from iterit.scoring.sharding import (
    Partial,
    first_occurrences,
    gather_shards,
    new_stats,
    shard_for_rank,
)
from iterit.scoring.synced import is_sharded_model, run_synced
from iterit.scoring.turn_sums import TurnSums
from iterit.utils import distributed
from iterit.utils.optional import requires_extra

with requires_extra("torch"):
    import torch

__all__ = ["IFDScorer"]

_CHUNK_SAMPLES = 2048


class IFDScorer:
    """Scores samples with a Hugging Face causal LM, exactly as docs/design.md ("IFD") defines.

    Parameters
    ----------
    model, tokenizer:
        a transformers causal LM (plain, DDP- or PEFT-wrapped) and its tokenizer.
    template:
        ``"alpaca"`` (default), ``"plain"``, ``"chat"`` or a callable ``f(sample) -> str``.
    max_length:
        the longest conditional sequence (prompt + scored response tokens).
    batch_tokens:
        token budget per forward pass (rows x padded length); default 16384 on CUDA, 512 on
        CPU.  Halved automatically on CUDA out-of-memory.
    device:
        where the model runs; ``None`` keeps the model where it is.  A different device
        moves the model there.
    progress:
        show a tqdm progress bar (rank 0 only).
    cache:
        optional folder of a resumable score cache (see :mod:`iterit.scoring.cache`).
    model_id:
        identity of the model for the cache key; default: :func:`model_fingerprint` of the
        current weights (so a model that keeps training never reuses stale scores).
    synced:
        every rank makes the same forward calls (through the model's root forward), as a
        sharded model (FSDP, DeepSpeed ZeRO-3) needs; default ``None``: on exactly when the
        model is sharded (:func:`iterit.scoring.synced.is_sharded_model`).
    ifd_variant:
        how IFD counts tokens and combines the passes, one of
        :data:`iterit.config.IFD_VARIANTS` (default ``"iterit"``; docs/ifd.md, "Variants").
    turns:
        ``"all"`` (default): a conversation's assistant turns are all scored (chat template);
        ``"last"``: the last one only (docs/design.md, "IFD", conversations).

    The defaults are :class:`iterit.config.ScoringConfig`'s; :meth:`from_config` takes one
    whole.  What a call did is the returned :class:`IFDScores`' ``stats``.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        template: Template = ScoringConfig.template,
        max_length: int = ScoringConfig.max_length,
        batch_tokens: int | None = ScoringConfig.batch_tokens,
        device: str | torch.device | None = None,
        progress: bool = True,
        cache: str | os.PathLike[str] | None = None,
        model_id: str | None = None,
        synced: bool | None = None,
        ifd_variant: str = ScoringConfig.ifd_variant,
        turns: str = ScoringConfig.turns,
    ):
        self.ifd_variant = check_ifd_variant(ifd_variant)
        self.turns = check_turns(turns)
        self.model = model
        self.hf_model, self.decoder, head = causal_parts(model)
        self.head = head
        self.tokenizer = tokenizer
        check_template(template, tokenizer)
        self.template = template
        if int(max_length) < 2:
            raise ConfigError(f"max_length must be at least 2, got {max_length}")
        self.max_length = int(max_length)
        if device is not None and input_device(self.hf_model) != torch.device(device):
            self.model.to(torch.device(device))
        self.device = input_device(self.hf_model)
        if batch_tokens is None:
            batch_tokens = 16384 if self.device.type == "cuda" else 512
        if int(batch_tokens) < 1:
            raise ConfigError(f"batch_tokens must be positive, got {batch_tokens}")
        self.batch_tokens = int(batch_tokens)
        self._budget = self.batch_tokens  # effective budget, halved on out-of-memory
        self.progress = progress
        self.cache_dir = Path(cache) if cache is not None else None
        self.model_id = model_id
        self.pad_slack = 0.05  # padding allowed in a batch: 5% of its padded tokens
        self.chunk_samples = _CHUNK_SAMPLES
        #: Finished samples go to the cache at least this often (seconds), not only per chunk.
        self.flush_seconds = 30.0
        #: Compute the keys/values of a preamble shared by many prompts (the template's header)
        #: once per chunk instead of once per sample; checked on first use, off if it fails.
        self.share_prefix = True
        self._warned_oom = False
        self.synced = is_sharded_model(model) if synced is None else bool(synced)
        self._forward = BatchForward(
            model, self.hf_model, self.decoder, head, tokenizer, self.device, synced=self.synced
        )

    @classmethod
    def from_config(
        cls, model: Any, tokenizer: Any, config: ScoringConfig, **kwargs: Any
    ) -> IFDScorer:
        """A scorer with ``config``'s template, max length, IFD variant, batch budget, device,
        cache and progress (``kwargs``: ``model_id``, ``synced``).  The model is used as it
        is: its dtype is the loader's (:func:`iterit.scoring.model.load_model`)."""
        return cls(
            model,
            tokenizer,
            template=config.template,
            max_length=config.max_length,
            batch_tokens=config.batch_tokens,
            device=config.device,
            progress=config.progress,
            cache=config.cache,
            ifd_variant=config.ifd_variant,
            turns=config.turns,
            **kwargs,
        )

    # -- public ---------------------------------------------------------------------------

    def score(
        self,
        samples: Iterable[Sample | Mapping[str, Any]],
        *,
        cache: str | os.PathLike[str] | None = None,
    ) -> IFDScores:
        """Score ``samples`` (``Sample`` objects or Alpaca dicts); results in input order.

        Puts the model in eval mode for the call and restores every submodule's previous mode.
        Under torch.distributed every rank must call it with the same samples; each scores a
        shard and all ranks return the full, gathered result.  ``cache`` (a folder) overrides
        the constructor's cache for this call.
        """
        t0 = time.perf_counter()
        items = [as_sample(s, i) for i, s in enumerate(samples)]
        rank, world = distributed.rank(), distributed.world_size()
        stats = new_stats(len(items), world)
        keys = content_keys(items)
        owner, uniq = first_occurrences(keys)
        unique_keys = [keys[i] for i in uniq]
        enc = encode_for_scoring(
            self.tokenizer,
            [items[i] for i in uniq],
            self.template,
            self.max_length,
            self.ifd_variant,
            self.turns,
        )
        found = Partial.empty(len(uniq))
        todo = [j for j in range(len(uniq)) if enc.reason[j] == OK]
        cache_dir = Path(cache) if cache is not None else self.cache_dir
        store = self._open_cache(cache_dir) if cache_dir is not None else None
        if store is not None and todo:
            todo = self._read_cache(store, todo, unique_keys, enc, found, stats)
        mine = shard_for_rank(todo, enc, rank, world)
        self._score_shard(enc, mine, unique_keys, found, store, stats, rank)
        if world > 1:
            found = gather_shards(mine, found, stats)
        if store is not None and world == 1 and len(store.parts()) > 32:
            store.compact()
        return self._in_input_order(enc, found, owner, uniq, stats, t0)

    # -- the steps of score() ---------------------------------------------------------------

    def _open_cache(self, folder: Path) -> ScoreCache:
        tok = self.tokenizer
        key = {
            "model": self.model_id or self._fingerprint(),
            "template": template_identity(self.template, tok),
            "max_length": self.max_length,
            # By content, never by the path it was loaded from (``../m`` and ``/abs/m`` agree).
            "tokenizer": tokenizer_fingerprint(tok),
            "scorer": CACHE_VERSION,
        }
        if self.ifd_variant != "iterit":  # the default keeps the key (and caches) it always had
            key["variant"] = self.ifd_variant
        # Conversations score differently under each choice: never mixed in one cache.
        key["turns"] = self.turns
        dtype = model_dtype_name(self.hf_model)
        if dtype != "float32":  # float32 keeps the key it always had; 16-bit scores differ
            key["dtype"] = dtype
        return ScoreCache(folder, key)

    def _fingerprint(self) -> str:
        if not self.synced:
            return model_fingerprint(self.model)
        # A sharded model's ranks each hold part of the weights: rank 0's identity for all.
        return distributed.broadcast_object(model_fingerprint(self.model))

    @staticmethod
    def _read_cache(
        store: ScoreCache,
        todo: list[int],
        keys: list[str],
        enc: EncodedSamples,
        found: Partial,
        stats: ScoringStats,
    ) -> list[int]:
        """Fill ``found`` from the cache; returns the samples still to score."""
        stored = store.load()
        rest = []
        for j in todo:
            hit = stored.get(keys[j])
            n_turns = len(enc.segments[j]) if len(enc.segments[j]) > 1 else 0
            if hit is not None and hit[2] == enc.n_tokens[j] and len(hit[3]) == n_turns:
                found.set(j, *hit)
            else:
                rest.append(j)
        stats.cached = len(todo) - len(rest)
        distributed.barrier()  # every rank has read the cache before any rank adds to it
        return rest

    def _score_shard(
        self,
        enc: EncodedSamples,
        mine: list[int],
        keys: list[str],
        found: Partial,
        store: ScoreCache | None,
        stats: ScoringStats,
        rank: int,
    ) -> None:
        """Score ``mine`` chunk by chunk, adding each chunk to the cache as it is done."""
        # Synced mode: no inference tensors in the parameters a sharded model gathers and
        # keeps for training, and no self-checks (extra forwards, or submodule calls that do
        # not gather parameters): full logits through the root forward, no prefix sharing.
        grad_off = torch.no_grad() if self.synced else torch.inference_mode()
        with EvalMode(self.model), grad_off:
            self._forward.check_projection()
            if self.share_prefix:
                self._forward.check_prefix()
            stats.prefix_sharing = self._shares_prefix()
            stats.synced = self.synced
            bar = self._progress_bar(enc, mine, rank)
            n_chunks = -(-len(mine) // self.chunk_samples)
            if self.synced:  # a rank with fewer (or no) chunks joins the others' forwards
                n_chunks = distributed.all_reduce_max(n_chunks)
            flush = (
                None
                if store is None
                else TimedFlush(
                    store,
                    keys,
                    enc.n_tokens,
                    enc.n_prior,
                    tag=f"r{rank}",
                    seconds=self.flush_seconds,
                    n_seqs=[1 + len(p) for p in enc.priors],
                    turns={},
                )
            )
            try:
                for c0 in range(0, n_chunks * self.chunk_samples, self.chunk_samples):
                    chunk = mine[c0 : c0 + self.chunk_samples]
                    if flush is not None:
                        flush.begin(chunk)
                    sc, sp, st = self._score_chunk(enc, chunk, stats, bar, flush)
                    for j, a, b, t in zip(chunk, sc, sp, st, strict=True):
                        found.set(j, a, b, enc.n_tokens[j], t)
                    if flush is not None and chunk:
                        flush.end(
                            chunk, found.nll_cond, found.nll_prior, found.n_tokens, found.turns
                        )
            finally:
                if bar is not None:
                    bar.close()
        stats.scored = len(mine)

    def _in_input_order(
        self,
        enc: EncodedSamples,
        found: Partial,
        owner: np.ndarray,
        uniq: np.ndarray,
        stats: ScoringStats,
        t0: float,
    ) -> IFDScores:
        """Back to input order (duplicates share their first occurrence's score)."""
        pos = np.empty(len(owner), dtype=np.int64)
        pos[uniq] = np.arange(len(uniq))
        src = pos[owner]
        stats.seconds = time.perf_counter() - t0
        stats.batch_tokens = self._budget
        return scores_from_nll(
            found.nll_cond[src],
            found.nll_prior[src],
            found.n_tokens[src],
            enc.reason[src],
            turn_nll=[found.turns[i] for i in src],
            turns=self.turns,
            ifd_variant=self.ifd_variant,
            n_truncated=int(np.count_nonzero(enc.truncated[src])),
            stats=stats,
        )

    def _progress_bar(self, enc: EncodedSamples, mine: list[int], rank: int) -> Any:
        if not self.progress or rank != 0 or not mine:
            return None
        from tqdm.auto import tqdm

        total = sum(enc.cost(j) - 1 - len(enc.priors[j]) for j in mine)
        return tqdm(total=total, unit="tok", unit_scale=True, desc="IFD", dynamic_ncols=True)

    # -- one chunk --------------------------------------------------------------------------

    def _chunk_sequences(self, enc: EncodedSamples, chunk: list[int]) -> list[ScoredSequence]:
        """Both passes of the chunk's samples, conditional ones in prefix groups, in batching
        order: per prefix group, longest first (an out-of-memory error shows up early), ties
        by position (a deterministic order whatever the input order)."""
        cond = [
            ScoredSequence(
                j,
                0,
                enc.cond[j],
                enc.cond_offset[j],
                segments=tuple(enc.segments[j]) if len(enc.segments[j]) > 1 else (),
            )
            for j in chunk
        ]
        seqs = [
            ScoredSequence(j, 1, prior, 1, turn=t)
            for j in chunk
            for t, prior in enumerate(enc.priors[j])
        ]
        if self._shares_prefix():
            for prefix, members in prefix_groups(cond):
                gid = self._forward.add_prefix(members[0].ids[:prefix]) if prefix else -1
                for q in members:
                    q.prefix, q.group = prefix, gid
        seqs += cond
        seqs.sort(key=lambda q: (q.group, -q.width, q.sample, q.kind))
        return seqs

    def _score_chunk(
        self,
        enc: EncodedSamples,
        chunk: list[int],
        stats: ScoringStats,
        bar: Any,
        flush: TimedFlush | None,
    ) -> tuple[np.ndarray, np.ndarray, list[tuple[tuple[float, float], ...]]]:
        """Mean NLL of the conditional and the prior pass of every sample of ``chunk``, and a
        conversation's per-turn means (empty for a one-turn sample)."""
        seqs = self._chunk_sequences(enc, chunk)
        where = {j: i for i, j in enumerate(chunk)}
        sums = np.zeros((2, len(chunk)), dtype=np.float64)
        per_turn = TurnSums(enc, chunk)
        pos = len(seqs) if self.synced else 0
        try:
            if self.synced:
                self._score_synced(seqs, per_turn, stats, bar)
            while pos < len(seqs):
                batch = self._take_batch(seqs, pos)
                try:
                    nll = self._run_batch(batch)
                except OOM_ERRORS:
                    if len(batch) == 1:
                        raise
                    oom = True
                else:
                    oom = False
                if oom:  # retried outside the except block, so the failed batch's memory is freed
                    self._on_oom(stats)
                    continue
                per_turn.add(batch, nll)
                self._count_batch(batch, stats, bar)
                pos += len(batch)
                if flush is not None:  # keep finished samples every ~30 s
                    per_turn.into(sums, where, flush)
                    flush.batch_done(batch, sums)
        finally:
            stats.prefix_tokens_computed += self._forward.clear_prefixes()
        per_turn.into(sums, where, flush)
        n_cond = np.array([enc.n_tokens[j] for j in chunk], dtype=np.float64)
        n_prior = np.array([enc.n_prior[j] for j in chunk], dtype=np.float64)
        return sums[0] / n_cond, sums[1] / n_prior, [per_turn.means(j) for j in chunk]

    def _score_synced(
        self,
        seqs: list[ScoredSequence],
        per_turn: TurnSums,
        stats: ScoringStats,
        bar: Any,
    ) -> None:
        """The chunk's batches with every rank making the same forward calls (no retry on
        out-of-memory: the other ranks would be inside the same collective)."""
        batches = plan_batches(seqs, self.batch_tokens, self.pad_slack)
        start = start_token(self.tokenizer)
        dummy = [ScoredSequence(-1, 1, [start, start], 1)]
        results, idle = run_synced(batches, self._run_batch, dummy)
        for batch, nll in zip(batches, results, strict=True):
            per_turn.add(batch, nll)
            self._count_batch(batch, stats, bar)
        stats.idle_calls += idle

    @staticmethod
    def _count_batch(batch: list[ScoredSequence], stats: ScoringStats, bar: Any) -> None:
        real = sum(q.width for q in batch)
        saved = sum(q.prefix for q in batch)
        stats.forward_calls += 1
        stats.sequences += len(batch)
        stats.real_tokens += real
        stats.padded_tokens += len(batch) * batch[0].width
        stats.prefix_tokens_saved += saved
        if bar is not None:
            bar.update(real + saved)

    def _take_batch(self, seqs: list[ScoredSequence], pos: int) -> list[ScoredSequence]:
        budget = self._budget
        if self._forward.full_logits:  # every position's logits are held: fewer rows per batch
            budget = max(1, min(budget, LOGIT_ELEMENTS // max(1, self._forward.output_head.vocab)))
        return take_batch(seqs, pos, budget, self.pad_slack)

    def _on_oom(self, stats: ScoringStats) -> None:
        stats.oom_retries += 1
        self._budget = max(1, self._budget // 2)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        if not self._warned_oom:
            self._warned_oom = True
            warnings.warn(
                f"IFD scoring ran out of device memory; token budget halved to {self._budget} "
                "(further halvings are not reported)",
                RuntimeWarning,
                stacklevel=3,
            )

    # -- one forward batch ------------------------------------------------------------------

    def _shares_prefix(self) -> bool:
        return bool(self.share_prefix and self._forward.prefix_ok)

    def _run_batch(self, batch: list[ScoredSequence]) -> np.ndarray:
        """Sum of -log p over each sequence's scored tokens (float64, one per row)."""
        return self._forward.run(batch)
