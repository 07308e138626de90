"""A sample's content key: one definition, covering every text field."""

from __future__ import annotations

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
    assert len(content_key(base)) == 32 and int(content_key(base), 16) >= 0
    assert content_keys(variants) == [content_key(s) for s in variants]
