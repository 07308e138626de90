"""Batched IFD (instruction-following difficulty) scoring with a causal LM (DESIGN 3.2, issue 3).

For a sample with prompt side ``x`` and response ``y``::

    r = tok(y) + [eos]            s = [bos] (or [eos] without a BOS token)
    p = s + tok(T(x))             k = min(len(r), max_length - len(p))   (NaN if k <= 0)
    nll_cond  = mean over r[:k] of -log p(token | p + preceding response tokens)
    nll_prior = mean over r[:k] of -log p(token | s + preceding response tokens)
    IFD = exp(nll_cond - nll_prior)

:class:`IFDScorer` runs both passes of many samples in one padded forward batch, grouped by
length under a token budget, projects only the hidden states that predict response tokens
(log-softmax in float32), restores the input order, halves the budget on CUDA out-of-memory,
shards the work over torch.distributed ranks and can resume from an on-disk cache.
:func:`reference_ifd` is the one-sequence-per-pass, full-logits oracle used by tests and
benchmarks.

torch and transformers are imported here only, never by ``import iterit``.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from iterit.data.sample import Sample, as_sample
from iterit.data.templates import Template, check_template, render_prompt, template_identity
from iterit.scoring.cache import CACHE_VERSION, ScoreCache, sample_hash

__all__ = [
    "EncodedSamples",
    "IFDScorer",
    "IFDScores",
    "encode_for_scoring",
    "load_model",
    "model_fingerprint",
    "reference_ifd",
    "start_token",
    "unwrap_model",
]

_OOM_ERRORS: tuple[type[BaseException], ...] = tuple(
    {getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError), torch.cuda.OutOfMemoryError}
)
# fp32 logits held at once by the response-only projection (rows x vocab x 4 bytes <= 256 MiB).
_LOGIT_ELEMENTS = 1 << 26
_CHUNK_SAMPLES = 2048


# --------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class IFDScores:
    """IFD scores aligned with the input samples.

    ``ifd``, ``nll_cond``, ``nll_prior`` are float64, NaN for a sample without a valid score
    (empty response, or a prompt that leaves no room for a response token within
    ``max_length``); ``n_tokens`` is the number k of response tokens scored (0 when invalid).
    """

    ifd: np.ndarray
    nll_cond: np.ndarray
    nll_prior: np.ndarray
    n_tokens: np.ndarray
    n_invalid: int = 0
    n_empty_response: int = 0
    n_prompt_too_long: int = 0
    n_truncated: int = 0
    stats: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __len__(self) -> int:
        return len(self.ifd)

    @property
    def candidate_mask(self) -> np.ndarray:
        """Samples usable for selection: IFD finite and ``< 1`` (DESIGN 3.2)."""
        with np.errstate(invalid="ignore"):
            return np.isfinite(self.ifd) & (self.ifd < 1.0)


def _scores_from_nll(
    nll_cond: np.ndarray, nll_prior: np.ndarray, n_tokens: np.ndarray, reasons: np.ndarray, **stats
) -> IFDScores:
    with np.errstate(over="ignore", invalid="ignore"):
        ifd = np.exp(nll_cond - nll_prior)
    return IFDScores(
        ifd=ifd,
        nll_cond=nll_cond,
        nll_prior=nll_prior,
        n_tokens=n_tokens,
        n_invalid=int(
            np.count_nonzero(reasons != _OK)
            + np.count_nonzero((reasons == _OK) & ~np.isfinite(ifd))
        ),
        n_empty_response=int(np.count_nonzero(reasons == _EMPTY)),
        n_prompt_too_long=int(np.count_nonzero(reasons == _TOO_LONG)),
        n_truncated=int(stats.pop("n_truncated", 0)),
        stats=stats,
    )


# ------------------------------------------------------------------------------ tokenization


_OK, _EMPTY, _TOO_LONG = 0, 1, 2


@dataclass
class EncodedSamples:
    """Token ids of both passes for every sample (lists of ints), plus validity. Training
    (iterit.training.hf) builds its sequences from these, so it trains on exactly what is scored."""

    cond: list[list[int]]  # p + r[:k]
    cond_offset: list[int]  # len(p): index of the first scored token in ``cond``
    prior: list[list[int]]  # s + r[:k]
    reason: np.ndarray  # _OK, _EMPTY, _TOO_LONG
    truncated: np.ndarray  # k < len(r)


def start_token(tokenizer: Any) -> int:
    """The token that starts both passes: BOS when the tokenizer has one, else EOS."""
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is not None:
        return int(bos)
    return _eos_token(tokenizer)


def _eos_token(tokenizer: Any) -> int:
    eos = getattr(tokenizer, "eos_token_id", None)
    if eos is None:
        raise ValueError("IFD scoring needs a tokenizer with an EOS token (tokenizer.eos_token_id)")
    return int(eos)


def _token_lists(tokenizer: Any, texts: list[str]) -> list[list[int]]:
    if not texts:
        return []
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    return [list(x) for x in ids]


def encode_for_scoring(
    tokenizer: Any, samples: Sequence[Sample], template: Template, max_length: int
) -> EncodedSamples:
    """Both token sequences of DESIGN 3.2 for every sample: conditional ``p + r[:k]`` and prior
    ``s + r[:k]``, with ``k`` truncated to ``max_length``; empty responses and prompts that
    leave no room get empty sequences and a reason."""
    start, eos = start_token(tokenizer), _eos_token(tokenizer)
    prompts = _token_lists(tokenizer, [render_prompt(template, s, tokenizer) for s in samples])
    responses = _token_lists(tokenizer, [s.response for s in samples])
    n = len(samples)
    enc = EncodedSamples([], [], [], np.zeros(n, dtype=np.int8), np.zeros(n, dtype=bool))
    for i, (sample, p_ids, r_ids) in enumerate(zip(samples, prompts, responses, strict=True)):
        # A template that renders the start token itself supplies it (counted once).
        p = p_ids if p_ids and p_ids[0] == start else [start, *p_ids]
        r = [*r_ids, eos]
        k = min(len(r), max_length - len(p))
        if not sample.response.strip():
            enc.reason[i], k = _EMPTY, 0
        elif k <= 0:
            enc.reason[i], k = _TOO_LONG, 0
        elif k < len(r):
            enc.truncated[i] = True
        enc.cond.append([*p, *r[:k]] if k else [])
        enc.cond_offset.append(len(p))
        enc.prior.append([start, *r[:k]] if k else [])
    return enc


# --------------------------------------------------------------------------- model plumbing


def unwrap_model(model: Any) -> Any:
    """The Hugging Face model inside DDP / PEFT wrappers."""
    inner = model
    for _ in range(4):
        if isinstance(inner, torch.nn.parallel.DistributedDataParallel):
            inner = inner.module
        elif hasattr(inner, "get_base_model") and callable(inner.get_base_model):
            inner = inner.get_base_model()
        else:
            break
    return inner


def _is_causal_lm(model: Any) -> bool:
    """A transformers causal LM class, or a subclass of one."""
    try:
        from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

        known = set(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values())
    except ImportError:  # pragma: no cover
        known = set()
    return any(
        c.__name__.endswith(("ForCausalLM", "LMHeadModel")) or c.__name__ in known
        for c in type(model).__mro__
    )


def _causal_parts(model: Any) -> tuple[Any, Any, Any]:
    """(hf_model, decoder, output projection) of a causal LM, or a clear ``TypeError``."""
    inner = unwrap_model(model)
    what = type(inner).__name__
    if not isinstance(inner, torch.nn.Module):
        raise TypeError(f"IFDScorer needs a torch causal language model, got {what}")
    config = getattr(inner, "config", None)
    head = inner.get_output_embeddings() if hasattr(inner, "get_output_embeddings") else None
    if (
        config is None
        or getattr(config, "is_encoder_decoder", False)
        or head is None
        or not _is_causal_lm(inner)
        or not hasattr(inner, "get_decoder")
    ):
        raise TypeError(
            f"IFDScorer needs a causal language model with an output head (a transformers "
            f"...ForCausalLM, e.g. AutoModelForCausalLM.from_pretrained(...)); got {what}, "
            "which is not one"
        )
    decoder = inner.get_decoder()
    if decoder is inner:
        raise TypeError(f"cannot find the decoder (body) of {what} to run it without its head")
    return inner, decoder, head


def _logit_transform(config: Any) -> tuple[float, float, float | None]:
    """(multiply, divide, softcap) that known architectures apply after the output head."""
    mul = getattr(config, "logit_scale", None)  # Cohere
    div = getattr(config, "logits_scaling", None)  # Granite
    cap = getattr(config, "final_logit_softcapping", None)  # Gemma 2/3
    return (float(mul) if mul else 1.0, float(div) if div else 1.0, float(cap) if cap else None)


def _input_device(hf_model: Any) -> torch.device:
    emb = hf_model.get_input_embeddings() if hasattr(hf_model, "get_input_embeddings") else None
    if emb is not None and getattr(emb, "weight", None) is not None:
        return emb.weight.device
    return next(hf_model.parameters()).device


class _EvalMode:
    """Put every submodule in eval mode and restore each one's previous mode afterwards."""

    def __init__(self, model: torch.nn.Module):
        self.model = model

    def __enter__(self) -> None:
        self.modes = [(m, m.training) for m in self.model.modules()]
        self.model.eval()

    def __exit__(self, *exc: object) -> None:
        for m, mode in self.modes:
            m.training = mode


def model_fingerprint(model: Any) -> str:
    """A cheap identity of a model's current weights (for cache keys).

    Covers the class, the config, the dtype and, for every parameter, its name, shape, a
    float64 sum and up to 64 evenly strided values, so that any training step changes it.
    """
    import hashlib
    import json

    inner = unwrap_model(model)
    h = hashlib.sha256()
    config = getattr(inner, "config", None)
    cfg = config.to_diff_dict() if hasattr(config, "to_diff_dict") else {}
    h.update(type(inner).__name__.encode())
    h.update(json.dumps(cfg, sort_keys=True, default=str).encode())
    sums, samples = [], []
    with torch.no_grad():
        for name, p in model.named_parameters():
            h.update(f"{name}:{tuple(p.shape)}:{p.dtype};".encode())
            flat = p.detach().reshape(-1)
            step = max(1, flat.numel() // 64)
            samples.append(flat[::step][:64].to(torch.float64))
            sums.append(flat.sum(dtype=torch.float64))
    if sums:
        dev = sums[0].device
        h.update(torch.stack([s.to(dev) for s in sums]).cpu().numpy().tobytes())
        h.update(torch.cat([s.to(dev) for s in samples]).cpu().numpy().tobytes())
    return h.hexdigest()[:32]


def _dist_rank_world() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


# ------------------------------------------------------------------------------------- scorer


@dataclass
class _Seq:
    sample: int  # position in the list being scored
    kind: int  # 0 = conditional, 1 = prior
    ids: list[int]
    offset: int  # index of the first scored token
    prefix: int = 0  # leading tokens whose keys/values come from a shared prefix cache
    group: int = -1  # prefix group (-1: none)

    @property
    def n_in(self) -> int:  # the last token is only a target, never an input
        return len(self.ids) - 1

    @property
    def width(self) -> int:  # tokens this sequence adds to its forward batch
        return self.n_in - self.prefix


def _prefix_groups(
    seqs: list[_Seq], *, min_members: int = 8, min_prefix: int = 4, min_gain: int = 8
) -> list[tuple[int, list[_Seq]]]:
    """Partition sequences into groups sharing a leading token run (the template's preamble:
    the Alpaca header, a chat template's system prompt).  Returns ``(prefix length, members)``;
    a prefix never reaches a position whose hidden state is scored (``offset - 1``)."""
    groups: list[tuple[int, list[_Seq]]] = []

    def cap(q: _Seq) -> int:
        return q.offset - 1

    def lcp(members: list[_Seq], start: int) -> int:
        first = members[0].ids
        n = min(cap(q) for q in members)
        for q in members[1:]:
            ids, j = q.ids, start
            while j < n and ids[j] == first[j]:
                j += 1
            n = j
            if n <= start:
                return start
        return n

    def visit(members: list[_Seq], start: int) -> None:
        common = lcp(members, start)
        split: dict[int, list[_Seq]] = {}
        stay: list[_Seq] = []
        for q in members:
            if cap(q) > common:
                split.setdefault(q.ids[common], []).append(q)
            else:
                stay.append(q)
        for sub in split.values():
            if len(sub) >= min_members and lcp(sub, common + 1) - common >= min_gain:
                visit(sub, common + 1)
            else:
                stay.extend(sub)
        if stay:
            groups.append((common if common >= min_prefix else 0, stay))

    if seqs:
        visit(seqs, 0)
    return groups


def _kv_cache_copy(cache: Any, rows: int) -> Any:
    """A fresh copy of a batch-1 prefix cache, repeated to ``rows`` rows."""
    import copy

    out = copy.deepcopy(cache)
    if rows > 1:
        out.batch_repeat_interleave(rows)
    return out


class IFDScorer:
    """Scores samples with a Hugging Face causal LM, exactly as DESIGN 3.2 defines IFD.

    Parameters
    ----------
    model, tokenizer:
        a transformers causal LM (plain, DDP- or PEFT-wrapped) and its tokenizer.
    template:
        ``"alpaca"`` (default), ``"plain"``, ``"chat"`` or a callable ``f(sample) -> str``.
    max_length:
        L of DESIGN 3.2: the conditional sequence never exceeds it.
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
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        template: Template = "alpaca",
        max_length: int = 1024,
        batch_tokens: int | None = None,
        device: str | torch.device | None = None,
        progress: bool = True,
        cache: str | os.PathLike[str] | None = None,
        model_id: str | None = None,
    ):
        self.model = model
        self.hf_model, self.decoder, self.head = _causal_parts(model)
        self.tokenizer = tokenizer
        check_template(template, tokenizer)
        self.template = template
        if int(max_length) < 2:
            raise ValueError(f"max_length must be at least 2, got {max_length}")
        self.max_length = int(max_length)
        if device is not None:
            device = torch.device(device)
            if _input_device(self.hf_model) != device:
                self.model.to(device)
        self.device = _input_device(self.hf_model)
        if batch_tokens is None:
            batch_tokens = 16384 if self.device.type == "cuda" else 512
        if int(batch_tokens) < 1:
            raise ValueError(f"batch_tokens must be positive, got {batch_tokens}")
        self.batch_tokens = int(batch_tokens)
        self._budget = self.batch_tokens  # effective budget, halved on out-of-memory
        self.progress = progress
        self.cache_dir = Path(cache) if cache is not None else None
        self.model_id = model_id
        self.pad_slack = 0.05  # padding allowed in a batch: 5% of its padded tokens
        self.chunk_samples = _CHUNK_SAMPLES
        self._mul, self._div, self._cap = _logit_transform(self.hf_model.config)
        out_features = getattr(self.head, "out_features", None)
        self._vocab = int(out_features or self.head.weight.shape[0])
        self._full_logits: bool | None = None  # decided by a self-check on first use
        #: Compute the keys/values of a preamble shared by many prompts (the template's header)
        #: once per chunk instead of once per sample; checked on first use, off if it fails.
        self.share_prefix = True
        self._prefix_ok: bool | None = None
        self._prefixes: list[tuple[list[int], Any]] = []
        self._warned_oom = False
        self.last_stats: dict[str, Any] = {}

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
        n = len(items)
        rank, world = _dist_rank_world()
        stats = {
            "samples": n,
            "forward_calls": 0,
            "real_tokens": 0,
            "padded_tokens": 0,
            "sequences": 0,
            "oom_retries": 0,
            "cached": 0,
            "scored": 0,
            "prefix_tokens_saved": 0,
            "prefix_tokens_computed": 0,
            "world_size": world,
        }

        # Identical samples are scored once.
        keys = [sample_hash(s) for s in items]
        first: dict[str, int] = {}
        owner = np.array([first.setdefault(k, i) for i, k in enumerate(keys)], dtype=np.int64)
        uniq = np.flatnonzero(owner == np.arange(n))
        unique_items = [items[i] for i in uniq]
        enc = encode_for_scoring(self.tokenizer, unique_items, self.template, self.max_length)

        u = len(uniq)
        nll_c = np.full(u, np.nan)
        nll_p = np.full(u, np.nan)
        ktok = np.zeros(u, dtype=np.int64)
        todo = [j for j in range(u) if enc.reason[j] == _OK]

        cache_dir = Path(cache) if cache is not None else self.cache_dir
        cache = self._open_cache(cache_dir) if cache_dir is not None else None
        if cache is not None and todo:
            stored = cache.load()
            rest = []
            for j in todo:
                hit = stored.get(keys[uniq[j]])
                if hit is not None and hit[2] == len(enc.prior[j]) - 1:
                    nll_c[j], nll_p[j], ktok[j] = hit
                else:
                    rest.append(j)
            stats["cached"] = len(todo) - len(rest)
            todo = rest
            if world > 1:  # every rank has read the cache before any rank adds to it
                import torch.distributed as dist

                dist.barrier()

        # Shard over ranks, balanced by cost (longest first, dealt round-robin).
        if world > 1:
            todo.sort(key=lambda j: (-(len(enc.cond[j]) + len(enc.prior[j])), j))
            mine = todo[rank::world]
        else:
            mine = todo

        with _EvalMode(self.model), torch.inference_mode():
            self._check_projection()
            self._check_prefix()
            stats["prefix_sharing"] = bool(self.share_prefix and self._prefix_ok)
            bar = self._progress_bar(enc, mine, rank)
            try:
                for c0 in range(0, len(mine), self.chunk_samples):
                    chunk = mine[c0 : c0 + self.chunk_samples]
                    sc, sp = self._score_chunk(enc, chunk, stats, bar)
                    for j, a, b in zip(chunk, sc, sp, strict=True):
                        nll_c[j], nll_p[j], ktok[j] = a, b, len(enc.prior[j]) - 1
                    if cache is not None:
                        cache.write(
                            ((keys[uniq[j]], nll_c[j], nll_p[j], ktok[j]) for j in chunk),
                            tag=f"r{rank}",
                        )
            finally:
                if bar is not None:
                    bar.close()
        stats["scored"] = len(mine)

        if world > 1:
            nll_c, nll_p, ktok = self._gather(mine, nll_c, nll_p, ktok, stats)
        if cache is not None and world == 1 and len(cache.parts()) > 32:
            cache.compact()

        # Back to input order (duplicates share their first occurrence's score).
        pos = np.empty(n, dtype=np.int64)
        pos[uniq] = np.arange(u)
        src = pos[owner]
        reasons = enc.reason[src]
        stats["seconds"] = time.perf_counter() - t0
        stats["padding_efficiency"] = (
            stats["real_tokens"] / stats["padded_tokens"] if stats["padded_tokens"] else 1.0
        )
        stats["batch_tokens"] = self._budget
        stats["n_truncated"] = int(np.count_nonzero(enc.truncated[src]))
        self.last_stats = dict(stats)
        return _scores_from_nll(nll_c[src], nll_p[src], ktok[src], reasons, **stats)

    # -- internals --------------------------------------------------------------------------

    def _open_cache(self, folder: Path) -> ScoreCache:
        tok = self.tokenizer
        key = {
            "model": self.model_id or model_fingerprint(self.model),
            "template": template_identity(self.template, tok),
            "max_length": self.max_length,
            "tokenizer": [
                type(tok).__name__,
                getattr(tok, "name_or_path", ""),
                len(tok),
                getattr(tok, "bos_token_id", None),
                getattr(tok, "eos_token_id", None),
            ],
            "scorer": CACHE_VERSION,
        }
        return ScoreCache(folder, key)

    def _progress_bar(self, enc: EncodedSamples, mine: list[int], rank: int) -> Any:
        if not self.progress or rank != 0 or not mine:
            return None
        from tqdm.auto import tqdm

        total = sum(len(enc.cond[j]) + len(enc.prior[j]) - 2 for j in mine)
        return tqdm(total=total, unit="tok", unit_scale=True, desc="IFD", dynamic_ncols=True)

    def _score_chunk(
        self, enc: EncodedSamples, chunk: list[int], stats: dict[str, Any], bar: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        cond = [_Seq(j, 0, enc.cond[j], enc.cond_offset[j]) for j in chunk]
        seqs = [_Seq(j, 1, enc.prior[j], 1) for j in chunk]
        if self.share_prefix and self._prefix_ok:
            for prefix, members in _prefix_groups(cond):
                gid = len(self._prefixes) if prefix else -1
                if prefix:
                    self._prefixes.append((members[0].ids[:prefix], None))
                for q in members:
                    q.prefix, q.group = prefix, gid
        seqs += cond
        # Per prefix group, longest first (an out-of-memory error shows up early), ties by
        # position: a deterministic order whatever the input order.
        seqs.sort(key=lambda q: (q.group, -q.width, q.sample, q.kind))
        where = {j: i for i, j in enumerate(chunk)}
        sums = np.zeros((2, len(chunk)), dtype=np.float64)
        pos = 0
        try:
            while pos < len(seqs):
                batch = self._take_batch(seqs, pos)
                try:
                    nll = self._run_batch(batch)
                except _OOM_ERRORS:
                    if len(batch) == 1:
                        raise
                    oom = True
                else:
                    oom = False
                if oom:  # retried outside the except block, so the failed batch's memory is freed
                    self._on_oom(stats)
                    continue
                for q, v in zip(batch, nll, strict=True):
                    sums[q.kind, where[q.sample]] = v
                stats["forward_calls"] += 1
                stats["sequences"] += len(batch)
                real = sum(q.width for q in batch)
                stats["real_tokens"] += real
                stats["padded_tokens"] += len(batch) * batch[0].width
                stats["prefix_tokens_saved"] += sum(q.prefix for q in batch)
                if bar is not None:
                    bar.update(real + sum(q.prefix for q in batch))
                pos += len(batch)
        finally:
            stats["prefix_tokens_computed"] += sum(
                len(p) for p, c in self._prefixes if c is not None
            )
            self._prefixes.clear()  # prefix caches live for one chunk only
        k = np.array([len(enc.prior[j]) - 1 for j in chunk], dtype=np.float64)
        return sums[0] / k, sums[1] / k

    def _take_batch(self, seqs: list[_Seq], pos: int) -> list[_Seq]:
        head = seqs[pos]
        width = head.width  # sorted descending within a group: the first row is the longest
        budget = self._budget
        if self._full_logits:
            vocab = self._vocab
            budget = max(1, min(budget, _LOGIT_ELEMENTS // max(1, vocab)))
        # Rows join while the batch fits the budget and its padding stays within
        # ``pad_slack`` of its padded size (or a few tokens, for very short rows).
        end, real = pos + 1, width
        while end < len(seqs) and seqs[end].group == head.group:
            rows, real_next = end - pos + 1, real + seqs[end].width
            padded = rows * width
            if padded > budget or padded - real_next > max(self.pad_slack * padded, 16):
                break
            end, real = end + 1, real_next
        return seqs[pos:end]

    def _on_oom(self, stats: dict[str, Any]) -> None:
        stats["oom_retries"] += 1
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

    def _batch_tensors(self, batch: list[_Seq]) -> dict[str, Any]:
        """Padded inputs of the batch's rows (after the shared prefix, if any) and the
        (row, column) of every hidden state that predicts a scored token."""
        rows, width, pre = len(batch), batch[0].width, batch[0].prefix
        left = getattr(self.tokenizer, "padding_side", "right") == "left"
        pad = getattr(self.tokenizer, "pad_token_id", None)
        pad = _eos_token(self.tokenizer) if pad is None else int(pad)
        ids = np.full((rows, width), pad, dtype=np.int64)
        mask = np.zeros((rows, pre + width), dtype=np.int64)
        mask[:, :pre] = 1
        pos = np.zeros((rows, width), dtype=np.int64)
        g_row, g_col, target = [], [], []
        for r, q in enumerate(batch):
            n = q.width
            c0 = width - n if left else 0
            ids[r, c0 : c0 + n] = q.ids[pre : q.n_in]
            mask[r, pre + c0 : pre + c0 + n] = 1
            pos[r, c0 : c0 + n] = np.arange(pre, q.n_in)
            # token t (t >= offset) is predicted by the hidden state of input position t - 1
            g_row.append(np.full(len(q.ids) - q.offset, r))
            g_col.append(np.arange(c0 + q.offset - 1 - pre, c0 + n))
            target.append(q.ids[q.offset :])
        full = pre == 0 and all(q.width == width for q in batch)
        dev = self.device
        rows_np = np.concatenate(g_row)
        return {
            "input_ids": torch.from_numpy(ids).to(dev),
            "attention_mask": None if full else torch.from_numpy(mask).to(dev),
            "position_ids": torch.from_numpy(pos).to(dev),
            "rows": torch.from_numpy(rows_np).to(dev),
            "cols": torch.from_numpy(np.concatenate(g_col)).to(dev),
            "targets": torch.from_numpy(np.concatenate(target).astype(np.int64)).to(dev),
            "seg": rows_np,
        }

    def _prefix_cache(self, group: int) -> Any:
        ids, cache = self._prefixes[group]
        if cache is None:
            x = torch.tensor([ids], device=self.device)
            cache = self.decoder(input_ids=x, use_cache=True).past_key_values
            self._prefixes[group] = (ids, cache)
        return cache

    def _run_batch(self, batch: list[_Seq]) -> np.ndarray:
        """Sum of -log p over each sequence's scored tokens (float64, one per row)."""
        t = self._batch_tensors(batch)
        inputs = {
            "input_ids": t["input_ids"],
            "attention_mask": t["attention_mask"],
            "position_ids": t["position_ids"],
            "use_cache": False,
        }
        if batch[0].prefix:
            cache = _kv_cache_copy(self._prefix_cache(batch[0].group), len(batch))
            inputs.update(past_key_values=cache, use_cache=True)
        if self._full_logits:
            logits = self.model(**inputs).logits
            dev = logits.device  # the last stage's device when the model is split
            hidden = logits[t["rows"].to(dev), t["cols"].to(dev)]
            del logits
            nll = self._nll(hidden, t["targets"].to(dev), project=False)
        else:
            out = self.decoder(**inputs)
            hidden = out[0] if not hasattr(out, "last_hidden_state") else out.last_hidden_state
            dev = hidden.device  # the last stage's device when the model is split
            hidden = hidden[t["rows"].to(dev), t["cols"].to(dev)]
            del out
            nll = self._nll(hidden, t["targets"].to(dev), project=True)
        return np.bincount(t["seg"], weights=nll.astype(np.float64), minlength=len(batch))

    def _project(self, hidden: torch.Tensor) -> torch.Tensor:
        logits = self.head(hidden).float()
        if self._mul != 1.0:
            logits = logits * self._mul
        if self._div != 1.0:
            logits = logits / self._div
        if self._cap is not None:
            logits = torch.tanh(logits / self._cap) * self._cap
        return logits

    def _nll(self, hidden: torch.Tensor, targets: torch.Tensor, *, project: bool) -> np.ndarray:
        """-log softmax(logits)[target] in float32, projecting a few rows at a time."""
        vocab = self._vocab if project else int(hidden.shape[-1])
        step = max(1, _LOGIT_ELEMENTS // max(1, vocab))
        parts = []
        for a in range(0, hidden.shape[0], step):
            x = hidden[a : a + step]
            logits = self._project(x) if project else x.float()
            lse = torch.logsumexp(logits, dim=-1)
            picked = logits.gather(1, targets[a : a + step, None])[:, 0]
            parts.append((lse - picked).cpu())
        return torch.cat(parts).numpy() if parts else np.zeros(0, dtype=np.float32)

    def _check_projection(self) -> None:
        """Check once that decoder + head reproduces the model's own logits; if it does not
        (an architecture with an unknown output transform), fall back to full logits."""
        if self._full_logits is not None:
            return
        vocab = self._vocab
        ids = torch.tensor(
            [[start_token(self.tokenizer), *[(7 * i + 3) % vocab for i in range(7)]]],
            device=self.device,
        )
        ref = self.model(input_ids=ids, use_cache=False).logits[0].float().log_softmax(-1)
        out = self.decoder(input_ids=ids, use_cache=False)
        hidden = out[0] if not hasattr(out, "last_hidden_state") else out.last_hidden_state
        mine = self._project(hidden[0]).log_softmax(-1)
        # 16-bit logits differ by an ulp or so between kernels; the transforms this detects
        # (soft-capping, scaling) move log-probabilities by whole units.
        tol = 1e-3 if hidden.dtype == torch.float32 else 0.5
        diff = float((ref - mine).abs().max())
        self._full_logits = not diff <= tol
        if self._full_logits:
            warnings.warn(
                f"{type(self.hf_model).__name__}: the output head alone does not reproduce the "
                f"model's logits (max log-prob difference {diff:.3g}); IFD falls back to full "
                "logits (slower, more memory)",
                RuntimeWarning,
                stacklevel=3,
            )

    def _check_prefix(self) -> None:
        """Check once that rows run after a shared prefix cache score as rows run whole."""
        if self._prefix_ok is not None or not self.share_prefix:
            return
        vocab = self._vocab
        ids = [start_token(self.tokenizer), *[(7 * i + 3) % vocab for i in range(11)]]
        whole = self._run_batch([_Seq(0, 0, ids, 6), _Seq(1, 0, ids[:9], 6)])
        self._prefixes.append((ids[:4], None))
        try:
            shared = self._run_batch(
                [_Seq(0, 0, ids, 6, prefix=4, group=0), _Seq(1, 0, ids[:9], 6, 4, 0)]
            )
            fp32 = self.hf_model.get_input_embeddings().weight.dtype == torch.float32
            tol = 1e-4 if fp32 else 5e-2
            self._prefix_ok = bool(np.allclose(shared, whole, rtol=tol, atol=tol))
        except Exception:  # a model whose cache cannot be shared this way: score rows whole
            self._prefix_ok = False
        finally:
            self._prefixes.clear()

    def _gather(
        self,
        mine: list[int],
        nll_c: np.ndarray,
        nll_p: np.ndarray,
        ktok: np.ndarray,
        stats: dict[str, Any],
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        import torch.distributed as dist

        idx = np.asarray(mine, dtype=np.int64)
        payload = (
            idx,
            nll_c[idx],
            nll_p[idx],
            ktok[idx],
            {
                k: stats[k]
                for k in (
                    "forward_calls",
                    "real_tokens",
                    "padded_tokens",
                    "sequences",
                    "oom_retries",
                    "scored",
                )
            },
        )
        gathered: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, payload)
        nll_c, nll_p, ktok = nll_c.copy(), nll_p.copy(), ktok.copy()
        for k in ("forward_calls", "real_tokens", "padded_tokens", "sequences", "oom_retries"):
            stats[k] = 0
        for gi, gc, gp, gk, gs in gathered:
            nll_c[gi], nll_p[gi], ktok[gi] = gc, gp, gk
            for k in ("forward_calls", "real_tokens", "padded_tokens", "sequences", "oom_retries"):
                stats[k] += gs[k]
        return nll_c, nll_p, ktok


# ---------------------------------------------------------------------------------- reference


def reference_ifd(
    model: Any,
    tokenizer: Any,
    samples: Iterable[Sample | Mapping[str, Any]],
    *,
    template: Template = "alpaca",
    max_length: int = 1024,
    device: str | torch.device | None = None,
) -> IFDScores:
    """DESIGN 3.2 written for clarity: one sequence per forward pass, full fp32 logits.

    The oracle for tests and the baseline for benchmarks; slow on purpose.
    """
    items = [as_sample(s, i) for i, s in enumerate(samples)]
    start, eos = start_token(tokenizer), _eos_token(tokenizer)
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    n = len(items)
    nll_cond, nll_prior = np.full(n, np.nan), np.full(n, np.nan)
    n_tokens = np.zeros(n, dtype=np.int64)
    reasons = np.zeros(n, dtype=np.int8)
    truncated = 0

    def mean_nll(seq: list[int], first: int) -> float:
        logits = model(torch.tensor([seq], device=dev)).logits[0].float()
        logp = torch.log_softmax(logits, dim=-1)
        # token seq[t] is predicted at position t - 1
        targets = torch.tensor(seq[first:], device=dev)
        picked = logp[first - 1 : len(seq) - 1].gather(1, targets[:, None])[:, 0]
        return float(-picked.double().mean())

    with _EvalMode(model), torch.inference_mode():
        for i, sample in enumerate(items):
            prompt = render_prompt(template, sample, tokenizer)
            p_ids = list(tokenizer(prompt, add_special_tokens=False)["input_ids"])
            p = p_ids if p_ids and p_ids[0] == start else [start, *p_ids]
            r = [*tokenizer(sample.response, add_special_tokens=False)["input_ids"], eos]
            k = min(len(r), max_length - len(p))
            if not sample.response.strip():
                reasons[i] = _EMPTY
                continue
            if k <= 0:
                reasons[i] = _TOO_LONG
                continue
            truncated += k < len(r)
            nll_cond[i] = mean_nll(p + r[:k], len(p))
            nll_prior[i] = mean_nll([start, *r[:k]], 1)
            n_tokens[i] = k
    return _scores_from_nll(nll_cond, nll_prior, n_tokens, reasons, n_truncated=truncated)


# ------------------------------------------------------------------------------------ loading


def load_model(
    name_or_path: str | os.PathLike[str],
    *,
    gguf_file: str | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype | str | None = None,
    trust_remote_code: bool = False,
    **kwargs: Any,
) -> tuple[Any, Any]:
    """Load ``(model, tokenizer)`` from a hub id, a local folder or a ``.gguf`` file.

    A path ending in ``.gguf`` is split into its folder and ``gguf_file``.  Default device:
    CUDA when available (bfloat16, or float16 where bf16 is unsupported), else CPU (float32).
    ``trust_remote_code`` stays off unless asked.  Extra keyword arguments go to
    ``AutoModelForCausalLM.from_pretrained``.  The model is returned in eval mode.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = str(name_or_path)
    if gguf_file is None and path.endswith(".gguf"):
        p = Path(path)
        path, gguf_file = str(p.parent), p.name
    dev = (
        torch.device(device)
        if device is not None
        else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    )
    if dtype is None:
        if dev.type == "cuda":
            dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        else:
            dtype = torch.float32
    elif isinstance(dtype, str):
        dtype = getattr(torch, dtype)
    extra: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    if gguf_file is not None:
        extra["gguf_file"] = gguf_file
    tokenizer = AutoTokenizer.from_pretrained(path, **extra)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, **extra, **kwargs)
    if "device_map" not in kwargs:
        model.to(dev)
    model.eval()
    return model, tokenizer
