"""A sample's content key, in one place: the hash that ties a score to the sample it scored.

Score files and the score cache both store it, so a score is never applied to different data.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

from iterit.data.sample import Sample

__all__ = ["content_key", "content_keys"]


def content_key(sample: Sample) -> str:
    """SHA-256 (first 32 hex digits) of every text field of ``sample``: instruction, input,
    response and the prompt turns, as canonical JSON."""
    payload = json.dumps(
        [sample.instruction, sample.input, sample.response, [list(m) for m in sample.messages]],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]


def content_keys(samples: Sequence[Sample]) -> list[str]:
    return [content_key(s) for s in samples]
