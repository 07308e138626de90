"""Text handling shared by the selector and its reference: Python defines the tokens.

scikit-learn's default analyzer lowercases with ``str.lower`` and takes ``(?u)\\b\\w\\w+\\b``
matches. Both depend on the Unicode tables of the running interpreter, which differ from
Rust's, so the Rust core never decides what a word character is or how a character
lowercases: it receives this process's ``\\w`` as code-point ranges and this process's
``str.lower`` as tables (every code point's full mapping, and the two character sets of the
Final_Sigma rule), built once per process (docs/design.md, "TF-IDF").
"""

from __future__ import annotations

import functools
import re
from typing import Any

import numpy as np

from iterit import _iterit
from iterit.errors import InvalidTypeError

__all__ = ["TOKEN_PATTERN", "analyzer", "as_texts", "lower_mappings", "word_char_ranges"]

#: scikit-learn's default ``token_pattern``.
TOKEN_PATTERN = r"(?u)\b\w\w+\b"

_N_CODE_POINTS = 0x110000
_SURROGATES = range(0xD800, 0xE000)
_SIGMA = "\u03a3"
_FINAL_SIGMA = "\u03c2"


def _every_code_point() -> np.ndarray:
    code_points = np.arange(_N_CODE_POINTS, dtype="<u4")
    # Surrogates cannot be decoded (nor appear in UTF-8 text); a space keeps positions.
    code_points[_SURROGATES.start : _SURROGATES.stop] = ord(" ")
    return code_points


def _ranges(mask: np.ndarray) -> np.ndarray:
    """A boolean mask over code points as flat half-open ranges ``[s0, e0, s1, e1, ...]``."""
    edges = np.flatnonzero(np.diff(np.concatenate([[False], mask, [False]]).astype(np.int8)))
    ranges = edges.astype(np.uint32)
    ranges.flags.writeable = False
    return ranges


@functools.lru_cache(maxsize=1)
def word_char_ranges() -> np.ndarray:
    """Python's ``\\w`` as flat half-open code-point ranges ``[s0, e0, s1, e1, ...]`` (uint32)."""
    every_code_point = _every_code_point().tobytes().decode("utf-32-le")
    spans = [m.span() for m in re.finditer(r"\w+", every_code_point)]
    ranges = np.array(spans, dtype=np.uint32).reshape(-1)
    ranges.flags.writeable = False
    return ranges


@functools.lru_cache(maxsize=1)
def lower_mappings() -> np.ndarray:
    """Every code point whose ``str.lower`` is not itself, flat: code point, length, the code
    points it maps to (uint32). Blocks that lowercase to the same length are compared at once;
    the few with a longer mapping go one character at a time."""
    out: list[int] = []
    code_points = _every_code_point()
    block = 4096
    for start in range(0, _N_CODE_POINTS, block):
        chars = code_points[start : start + block]
        text = chars.tobytes().decode("utf-32-le")
        lowered = text.lower()
        if len(lowered) == len(text) and _SIGMA not in text:
            low = np.frombuffer(lowered.encode("utf-32-le"), dtype="<u4")
            for j in np.flatnonzero(low != chars).tolist():
                out += [start + j, 1, int(low[j])]
            continue
        for j, ch in enumerate(text):
            if start + j in _SURROGATES:
                continue
            low_ch = ch.lower()
            if low_ch != ch:
                out += [start + j, len(low_ch), *map(ord, low_ch)]
    mappings = np.array(out, dtype=np.uint32)
    mappings.flags.writeable = False
    return mappings


_SIGMAS = (0x3A3, 0x3C3, 0x3C2)  # capital, small, final small


def _sigma_probe(pattern: tuple[int | None, ...]) -> np.ndarray:
    """For every code point ``c``, whether ``str.lower`` of ``pattern`` (code points, ``None``
    standing for ``c``) turns its capital sigma into a final one.

    All the pieces are lowercased as one string, each followed by a newline (neither cased nor
    case-ignorable, so the rule never looks across it); each piece then holds exactly one
    sigma, found by value. The sigmas themselves (as ``c``) are probed one by one."""
    code_points = _every_code_point()
    code_points[list(_SIGMAS)] = ord(" ")
    pieces = np.empty((_N_CODE_POINTS, len(pattern) + 1), "<u4")
    for i, x in enumerate(pattern):
        pieces[:, i] = code_points if x is None else x
    pieces[:, -1] = ord("\n")
    text = str(memoryview(pieces).cast("B"), "utf-32-le")
    lowered = np.frombuffer(text.lower().encode("utf-32-le"), dtype="<u4")
    sigmas = np.flatnonzero((lowered == _SIGMAS[1]) | (lowered == _SIGMAS[2]))
    if sigmas.shape[0] != _N_CODE_POINTS:  # pragma: no cover - a mapping to sigma appeared
        raise AssertionError("a code point other than sigma lowercases to a sigma")
    final = lowered[sigmas] == _SIGMAS[2]
    # A sigma lowercases to one code point, so the probe's own sigma keeps its index.
    at = pattern.index(_SIGMAS[0])
    for c in _SIGMAS:
        piece = "".join(chr(c if x is None else x) for x in pattern)
        final[c] = piece.lower()[at] == chr(_SIGMAS[2])
    return final


@functools.lru_cache(maxsize=1)
def final_sigma_sets() -> tuple[np.ndarray, np.ndarray]:
    """The two character sets CPython's Final_Sigma rule reads, found by asking ``str.lower``
    itself, as code-point ranges: (cased and not case-ignorable, case-ignorable).

    A capital sigma is final when, skipping case-ignorable characters, a cased character
    precedes it and none follows. So ``c + "Σ"`` ends in a final sigma exactly when ``c`` is
    cased and not case-ignorable, and ``"a" + c + "Σ"`` when ``c`` is case-ignorable (skipped,
    then "a" is cased) or cased: take away the first set and what is left is case-ignorable.
    (A third probe, ``"aΣ" + c``, would say case-ignorable or not cased: nothing new.)"""
    sigma, a = _SIGMAS[0], ord("a")
    cased = _sigma_probe((None, sigma))
    before = _sigma_probe((a, None, sigma))
    return _ranges(cased), _ranges(before & ~cased)


@functools.lru_cache(maxsize=1)
def analyzer() -> _iterit.Analyzer:
    """The core's lowercasing and tokenisation tables of this interpreter (built once)."""
    cased, case_ignorable = final_sigma_sets()
    return _iterit.Analyzer(word_char_ranges(), lower_mappings(), cased, case_ignorable)


def _is_arrow(obj: Any) -> bool:
    return hasattr(obj, "__arrow_c_stream__") or hasattr(obj, "__arrow_c_array__")


def as_texts(texts: Any, what: str = "texts") -> _iterit.Texts:
    """The texts of a call, for the core: a list or tuple of ``str``, any column speaking the
    Arrow PyCapsule interface (pyarrow, polars, ...: strings, large strings or string views,
    chunked or not), or any other iterable of ``str`` (made a list). Read where they lie, not
    copied. A non-string or a null is an error naming its position."""
    if isinstance(texts, (str, bytes)):
        raise InvalidTypeError(
            f"{what} must be a sequence of strings, not a single {type(texts).__name__}"
        )
    if not (isinstance(texts, (list, tuple)) or _is_arrow(texts)):
        try:
            texts = list(texts)
        except TypeError as exc:
            raise InvalidTypeError(f"{what} must be an iterable of strings") from exc
    return _iterit.Texts(texts, what)
