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

A conversation with several assistant turns under the ``"chat"`` template (and ``turns="all"``)
is read as one sequence ``C(turns)`` cut at ``max_length``: the conditional pass scores
every assistant turn's tokens in it (the template's own tokens for the turn, up to and including
its end-of-turn token, found by :func:`iterit.data.templates.render_conversation`), the prior
pass reads each turn's tokens after the start token alone (docs/design.md, "IFD").

Training builds its sequences from :func:`encode_for_scoring` too (default variant), so it trains
on exactly what is scored.  Needs a tokenizer object but neither torch nor transformers.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from iterit.config import IFD_VARIANTS, TURNS
from iterit.data.sample import Sample
from iterit.data.templates import Template, render_conversation, render_prompt
from iterit.errors import ConfigError, InvalidInputError

__all__ = [
    "EMPTY_RESPONSE",
    "OK",
    "PROMPT_TOO_LONG",
    "RESPONSE_TOO_SHORT",
    "EncodedSamples",
    "check_ifd_variant",
    "check_turns",
    "conversation_tokens",
    "encode_for_scoring",
    "eos_token",
    "is_multi_turn",
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
    """Token ids of both passes for every sample (lists of ints), plus validity.

    ``segments[j]``: the ``(start, end)`` token ranges of ``cond[j]`` that are scored, one per
    kept assistant turn (one range ``(cond_offset, len(cond))`` for a one-turn sample);
    ``priors[j]``: the prior sequence of each of those turns (its first token is context)."""

    cond: list[list[int]]  # p + r[:k]
    cond_offset: list[int]  # index of the first scored token in ``cond``
    reason: np.ndarray  # OK, EMPTY_RESPONSE, PROMPT_TOO_LONG, RESPONSE_TOO_SHORT
    truncated: np.ndarray  # k < len(r)
    #: k: the response tokens of the conditional sequence (the sample's ``n_tokens``).
    n_tokens: list[int] = field(default_factory=list)
    #: Tokens scored by the prior pass: ``prior[1:]`` (k, or k' - 1 for ``superfiltering``).
    n_prior: list[int] = field(default_factory=list)
    segments: list[list[tuple[int, int]]] = field(default_factory=list)
    priors: list[list[list[int]]] = field(default_factory=list)

    @property
    def prior(self) -> list[list[int]]:
        """The first turn's prior sequence of every sample (the only one of a one-turn
        sample): ``s + r[:k]``; empty without a score."""
        return [p[0] if p else [] for p in self.priors]

    def cost(self, j: int) -> int:
        """Tokens of both passes of sample ``j``."""
        return len(self.cond[j]) + sum(len(p) for p in self.priors[j])

    def add(
        self, cond: list[int], segments: list[tuple[int, int]], priors: list[list[int]]
    ) -> None:
        """Append one sample's sequences (empty lists: no score)."""
        self.cond.append(cond)
        self.cond_offset.append(segments[0][0] if segments else len(cond))
        self.segments.append(segments)
        self.priors.append(priors)
        self.n_tokens.append(sum(b - a for a, b in segments))
        self.n_prior.append(sum(len(p) - 1 for p in priors))


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


def check_turns(turns: str) -> str:
    """``turns`` if it is one of :data:`iterit.config.TURNS`, else a ConfigError."""
    if turns not in TURNS:
        raise ConfigError(f"unknown turns {turns!r} (expected one of: {', '.join(TURNS)})")
    return turns


def is_multi_turn(sample: Sample, template: Template, turns: str) -> bool:
    """Whether ``sample`` is scored turn by turn: several assistant turns, the chat template
    and ``turns="all"`` (otherwise the last turn alone, with the rest as prompt)."""
    return turns == "all" and template == "chat" and sample.n_turns > 1


def encode_for_scoring(
    tokenizer: Any,
    samples: Sequence[Sample],
    template: Template,
    max_length: int,
    ifd_variant: str = "iterit",
    turns: str = "all",
) -> EncodedSamples:
    """Both token sequences of every sample: conditional ``p + r[:k]`` and prior ``s + r[:k]``,
    with ``k`` truncated to ``max_length``; empty responses and prompts that leave no room get
    empty sequences and a reason.  ``ifd_variant="superfiltering"`` counts as the module docstring
    says; conversations (:func:`is_multi_turn`) are read turn by turn."""
    superfiltering = check_ifd_variant(ifd_variant) == "superfiltering"
    check_turns(turns)
    start, eos = start_token(tokenizer), eos_token(tokenizer)
    if template == "completion":
        return _encode_completions(tokenizer, samples, max_length, start, eos)
    multi = [is_multi_turn(s, template, turns) for s in samples]
    single = [s for s, m in zip(samples, multi, strict=True) if not m]
    prompts = iter(_token_lists(tokenizer, [render_prompt(template, s, tokenizer) for s in single]))
    responses = iter(_token_lists(tokenizer, [s.response for s in single]))
    n = len(samples)
    enc = EncodedSamples([], [], np.zeros(n, dtype=np.int8), np.zeros(n, dtype=bool))
    for i, (sample, m) in enumerate(zip(samples, multi, strict=True)):
        if m:
            ids, spans = conversation_tokens(tokenizer, sample)
            _encode_turns(enc, i, sample, ids, spans, max_length, start, superfiltering)
        else:
            _encode_one(
                enc,
                i,
                sample,
                next(prompts),
                next(responses),
                max_length,
                start,
                eos,
                superfiltering,
            )
    return enc


def _encode_completions(
    tokenizer: Any, samples: Sequence[Sample], max_length: int, start: int, eos: int
) -> EncodedSamples:
    """Prompt-completion strings read as ``trl.SFTTrainer`` reads them: ``prompt +
    completion + EOS`` tokenised together (with the tokenizer's special tokens), the response
    starting where that and the prompt alone diverge; the prior pass reads it after ``s``."""
    eos_text = tokenizer.eos_token or ""
    prompts = [render_prompt("completion", s) for s in samples]
    texts = [
        p + s.response + ("" if s.response.endswith(eos_text) else eos_text)
        for p, s in zip(prompts, samples, strict=True)
    ]
    p_all = tokenizer(prompts)["input_ids"] if samples else []
    f_all = tokenizer(texts)["input_ids"] if samples else []
    n = len(samples)
    enc = EncodedSamples([], [], np.zeros(n, dtype=np.int8), np.zeros(n, dtype=bool))
    for i, (sample, p_ids, full) in enumerate(zip(samples, p_all, f_all, strict=True)):
        plen = 0
        while plen < min(len(p_ids), len(full)) and p_ids[plen] == full[plen]:
            plen += 1
        p, r = list(full[:plen]), list(full[plen:])
        k = min(len(r), max_length - plen)
        if not sample.response.strip():
            enc.reason[i], k = EMPTY_RESPONSE, 0
        elif k <= 0 or not p:
            enc.reason[i], k = PROMPT_TOO_LONG, 0
        elif k < len(r):
            enc.truncated[i] = True
        if k:
            enc.add([*p, *r[:k]], [(plen, plen + k)], [[start, *r[:k]]])
        else:
            enc.add([], [], [])
    return enc


def _encode_one(
    enc: EncodedSamples,
    i: int,
    sample: Sample,
    p_ids: list[int],
    r_ids: list[int],
    max_length: int,
    start: int,
    eos: int,
    superfiltering: bool,
) -> None:
    """One sample read as prompt + last response (docs/design.md, "IFD")."""
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
    if k:
        enc.add([*p, *r[:k]], [(len(p), len(p) + k)], [prior])
    else:
        enc.add([], [], [])
        enc.cond_offset[-1] = len(p)


def conversation_tokens(tokenizer: Any, sample: Sample) -> tuple[list[int], list[tuple[int, int]]]:
    """The conversation's token ids, as the chat template renders it (no start token added:
    the template supplies its own), and each assistant turn's token range, up to and including its
    end-of-turn token (the EOS token when the turn has one; separators after it belong to no
    turn).  The text is tokenised whole, as the template renders it; a tokenizer without
    offsets tokenises it piece by piece at the turn boundaries."""
    text, spans = render_conversation(sample, tokenizer)
    cuts = sorted({0, len(text), *(c for span in spans for c in span)})
    if getattr(tokenizer, "is_fast", False):
        out = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        ids = list(out["input_ids"])
        starts = [int(a) for a, _ in out["offset_mapping"]]
    else:
        ids, starts = [], []
        for a, b in itertools.pairwise(cuts):
            piece = _token_lists(tokenizer, [text[a:b]])[0]
            ids += piece
            starts += [a] * len(piece)
    eos = eos_token(tokenizer)
    ranges = []
    for a, b in spans:
        inside = [t for t in range(len(ids)) if a <= starts[t] < b]
        if not inside:
            ranges.append((0, 0))
            continue
        lo, hi = inside[0], inside[-1] + 1
        ends = [t for t in range(lo, hi) if ids[t] == eos]
        ranges.append((lo, ends[-1] + 1 if ends else hi))
    return ids, ranges


def _encode_turns(
    enc: EncodedSamples,
    i: int,
    sample: Sample,
    ids: list[int],
    spans: list[tuple[int, int]],
    max_length: int,
    start: int,
    superfiltering: bool,
) -> None:
    """One conversation: every assistant turn scored in one sequence cut at ``max_length``
    (turns cut from the end; a turn left with no token is dropped)."""
    cond = ids[:max_length]
    segments, priors = [], []
    for a, b in spans:
        b2 = min(b, len(cond))
        if a < 1 or b2 <= a:
            continue
        turn = cond[a:b2]
        prior = turn if superfiltering else [start, *turn]
        if len(prior) < 2:
            continue
        segments.append((a, b2))
        priors.append(prior)
    enc.truncated[i] = len(ids) > max_length and any(b > max_length for _, b in spans)
    if not sample.assistant_text.strip():
        enc.reason[i], segments = EMPTY_RESPONSE, []
    elif not segments:
        enc.reason[i] = PROMPT_TOO_LONG
    if segments:
        enc.add(cond, segments, priors)
    else:
        enc.truncated[i] = False
        enc.add([], [], [])
