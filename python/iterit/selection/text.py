"""Text handling shared by the selector and its reference: Python defines the tokens.

scikit-learn's default analyzer lowercases with ``str.lower`` and takes ``(?u)\\b\\w\\w+\\b``
matches. Both depend on the Unicode tables of the running interpreter, which differ from
Rust's, so the Rust core never decides what a word character is: it receives this process's
``\\w`` as code-point ranges, and texts that Python has already lowercased.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

import numpy as np

from iterit.errors import InvalidTypeError

__all__ = ["TOKEN_PATTERN", "lowercase_texts", "word_char_ranges"]

#: scikit-learn's default ``token_pattern``.
TOKEN_PATTERN = r"(?u)\b\w\w+\b"


@functools.lru_cache(maxsize=1)
def word_char_ranges() -> np.ndarray:
    """Python's ``\\w`` as flat half-open code-point ranges ``[s0, e0, s1, e1, ...]`` (uint32)."""
    code_points = np.arange(0x110000, dtype="<u4")
    # Surrogates cannot be decoded; they are not word characters, so a space keeps positions.
    code_points[0xD800:0xE000] = ord(" ")
    every_code_point = code_points.tobytes().decode("utf-32-le")
    spans = [m.span() for m in re.finditer(r"\w+", every_code_point)]
    ranges = np.array(spans, dtype=np.uint32).reshape(-1)
    ranges.flags.writeable = False
    return ranges


def lowercase_texts(texts: Iterable[str], what: str = "texts") -> list[str]:
    """``str.lower`` of every text; a non-string is an
    :class:`~iterit.errors.InvalidTypeError` naming its position."""
    if isinstance(texts, (str, bytes)):
        raise InvalidTypeError(
            f"{what} must be a sequence of strings, not a single {type(texts).__name__}"
        )
    if not isinstance(texts, (list, tuple)):
        try:
            texts = list(texts)
        except TypeError as exc:
            raise InvalidTypeError(f"{what} must be an iterable of strings") from exc
    try:
        # str.lower as a plain function rejects every non-str (bytes have .lower() too).
        return [str.lower(t) for t in texts]
    except TypeError:
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise InvalidTypeError(f"{what}[{i}] is {type(t).__name__}, expected str") from None
        raise
