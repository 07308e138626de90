"""A sample's content key: one definition, covering every text field."""

from __future__ import annotations

import hashlib
import json

from iterit.data.keys import content_key, content_keys
from iterit.data.sample import Sample


def test_every_text_field_changes_the_key():
    base = Sample("a", "b")
    variants = [
        base,
        Sample("a", "b", input="c"),
        Sample("a", "bb"),
        Sample("ab", ""),
        Sample("a", "b", messages=(("user", "a"),)),
    ]
    assert len({content_key(s) for s in variants}) == len(variants)
    assert content_key(base) == content_key(Sample("a", "b"))
    assert content_keys(variants) == [content_key(s) for s in variants]


def test_the_key_is_32_lowercase_hex_digits_of_the_content_sha256():
    key = content_key(Sample("Say hi.", "Hi!", input="politely"))
    assert len(key) == 32 and set(key) <= set("0123456789abcdef")
    # Pinned: a key stored in a score file or the cache must match the same sample next run
    # (another Python, another machine), so neither hash salting nor key order may move it.
    payload = json.dumps(["Say hi.", "politely", "Hi!", []], separators=(",", ":"))
    assert key == hashlib.sha256(payload.encode("utf-8")).hexdigest()[:32]


def test_a_field_boundary_is_part_of_the_content():
    # Concatenating fields would give these the same key, and a score would move to the other.
    assert content_key(Sample("ab", "c")) != content_key(Sample("a", "bc"))
    assert content_key(Sample("a", "b", input="c")) != content_key(Sample("a", "cb"))
    assert content_key(Sample("a", "b", messages=(("user", "x"),))) != content_key(
        Sample("a", "b", messages=(("assistant", "x"),))
    )


def test_non_ascii_text_keys_by_its_characters():
    assert content_key(Sample("café", "ok")) != content_key(Sample("cafe", "ok"))
    assert content_key(Sample("café", "ok")) == content_key(Sample("caf\u00e9", "ok"))
