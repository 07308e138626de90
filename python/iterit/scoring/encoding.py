"""Token sequences of IFD's two passes (docs/design.md, "IFD").

For a sample with prompt side ``x`` and response ``y``::

    r = tok(y) + [eos]            s = [bos] (or [eos] without a BOS token)
    p = s + tok(T(x))             k = min(len(r), max_length - len(p))   (no score if k <= 0)
    conditional sequence: p + r[:k]          prior sequence: s + r[:k]

The ``superfiltering`` variant counts tokens as Superfiltering's reference script does: no
start token, no end token, ``p = tok(T(x))``, ``r = tok(y)``; the conditional sequence is
``p + r[:k]`` (all k response tokens scored) and the prior sequence ``r[:k + 1]`` whose first
token is never scored (docs/ifd.md, "Variants").  ``iterit`` and ``loss-ratio`` share the
encoding above.

Training builds its sequences from :func:`encode_for_scoring` too (default variant), so it trains
on exactly what is scored.  Needs a tokenizer object but neither torch nor transformers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from iterit.config import IFD_VARIANTS
from iterit.data.sample import Sample
from iterit.data.templates import Template, render_prompt
from iterit.errors import ConfigError, InvalidInputError

__all__ = [
    "EMPTY_RESPONSE",
    "OK",
    "PROMPT_TOO_LONG",
    "RESPONSE_TOO_SHORT",
    "EncodedSamples",
    "check_ifd_variant",
    "encode_for_scoring",
    "eos_token",
    "start_token",
]

#: Why a sample has (or has no) score: ``EncodedSamples.reason`` values.
OK, EMPTY_RESPONSE, PROMPT_TOO_LONG = 0, 1, 2
#: A prior pass with no scored token (``superfiltering``: a one-token response).
RESPONSE_TOO_SHORT = 3


def check_ifd_variant(ifd_variant: str) -> str:
    """``ifd_variant`` if it is one of :data:`iterit.config.IFD_VARIANTS`, else a
    ConfigError."""
    if ifd_variant not in IFD_VARIANTS:
        raise ConfigError(
            f"unknown IFD variant {ifd_variant!r} (expected one of: {', '.join(IFD_VARIANTS)})"
        )
    return ifd_variant


@dataclass
class EncodedSamples:
    """Token ids of both passes for every sample (lists of ints), plus validity."""

    cond: list[list[int]]  # p + r[:k]
    cond_offset: list[int]  # len(p): index of the first scored token in ``cond``
    prior: list[list[int]]  # s + r[:k]
    reason: np.ndarray  # OK, EMPTY_RESPONSE, PROMPT_TOO_LONG, RESPONSE_TOO_SHORT
    truncated: np.ndarray  # k < len(r)
    #: k: the response tokens of the conditional sequence (the sample's ``n_tokens``).
    n_tokens: list[int] = field(default_factory=list)
    #: Tokens scored by the prior pass: ``prior[1:]`` (k, or k' - 1 for ``superfiltering``).
    n_prior: list[int] = field(default_factory=list)


def start_token(tokenizer: Any) -> int:
    """The token that starts both passes: BOS when the tokenizer has one, else EOS."""
    bos = getattr(tokenizer, "bos_token_id", None)
    if bos is not None:
        return int(bos)
    return eos_token(tokenizer)


def eos_token(tokenizer: Any) -> int:
    """The token that ends every response (IFD scores it as part of the response)."""
    eos = getattr(tokenizer, "eos_token_id", None)
    if eos is None:
        raise InvalidInputError(
            "IFD scoring needs a tokenizer with an EOS token (tokenizer.eos_token_id)"
        )
    return int(eos)


def _token_lists(tokenizer: Any, texts: list[str]) -> list[list[int]]:
    if not texts:
        return []
    ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    return [list(x) for x in ids]


def encode_for_scoring(
    tokenizer: Any,
    samples: Sequence[Sample],
    template: Template,
    max_length: int,
    ifd_variant: str = "iterit",
) -> EncodedSamples:
    """Both token sequences of every sample: conditional ``p + r[:k]`` and prior ``s + r[:k]``,
    with ``k`` truncated to ``max_length``; empty responses and prompts that leave no room get
    empty sequences and a reason.  ``ifd_variant="superfiltering"`` counts as the module docstring
    says."""
    superfiltering = check_ifd_variant(ifd_variant) == "superfiltering"
    start, eos = start_token(tokenizer), eos_token(tokenizer)
    prompts = _token_lists(tokenizer, [render_prompt(template, s, tokenizer) for s in samples])
    responses = _token_lists(tokenizer, [s.response for s in samples])
    n = len(samples)
    enc = EncodedSamples([], [], [], np.zeros(n, dtype=np.int8), np.zeros(n, dtype=bool))
    for i, (sample, p_ids, r_ids) in enumerate(zip(samples, prompts, responses, strict=True)):
        if superfiltering:
            p, r = p_ids, r_ids
        else:
            # A template that renders the start token itself supplies it (counted once).
            p = p_ids if p_ids and p_ids[0] == start else [start, *p_ids]
            r = [*r_ids, eos]
        k = min(len(r), max_length - len(p))
        # Superfiltering's prior pass reads one token more than the conditional pass scores
        # (its first token is context only); iterit's reads the start token first.
        prior = r[: k + 1] if superfiltering else [start, *r[:k]]
        if not sample.response.strip():
            enc.reason[i], k = EMPTY_RESPONSE, 0
        elif k <= 0 or not p:
            enc.reason[i], k = PROMPT_TOO_LONG, 0
        elif len(prior) < 2:
            enc.reason[i], k = RESPONSE_TOO_SHORT, 0
        elif k < len(r):
            enc.truncated[i] = True
        enc.cond.append([*p, *r[:k]] if k else [])
        enc.cond_offset.append(len(p))
        enc.prior.append(prior if k else [])
        enc.n_tokens.append(k)
        enc.n_prior.append(len(prior) - 1 if k else 0)
    return enc
