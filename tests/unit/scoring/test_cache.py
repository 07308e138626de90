"""The resumable on-disk IFD score cache; its per-sample key is the content key."""

from __future__ import annotations

import json
import math

import pytest

from iterit import Sample
from iterit.scoring.cache import ScoreCache, sample_hash


def test_sample_hash_covers_every_text_field():
    base = Sample("a", "b")
    hashes = {
        sample_hash(s)
        for s in (
            base,
            Sample("a", "b", input="c"),
            Sample("a", "bb"),
            Sample("ab", ""),
            Sample("a", "b", messages=(("user", "a"),)),
        )
    }
    assert len(hashes) == 5
    assert sample_hash(base) == sample_hash(Sample("a", "b"))


def test_write_load_roundtrip_and_atomic_parts(tmp_path):
    cache = ScoreCache(tmp_path, {"model": "m", "template": "alpaca", "max_length": 16})
    assert cache.load() == {}
    cache.write([("h1", 1.25, 2.5, 3), ("h2", float("nan"), float("inf"), 1)], tag="r0")
    cache.write([("h3", 0.1 + 0.2, 1e-300, 7)], tag="r1")
    got = cache.load()
    assert got["h1"] == (1.25, 2.5, 3, ())
    assert math.isnan(got["h2"][0]) and got["h2"][1] == math.inf
    assert got["h3"] == (0.1 + 0.2, 1e-300, 7, ())  # floats round-trip exactly
    files = sorted(p.name for p in cache.folder.iterdir())
    assert "key.json" in files and sum(f.startswith("part-") for f in files) == 2
    assert not [f for f in files if "tmp" in f]
    key = json.loads((cache.folder / "key.json").read_text())
    assert key["model"] == "m" and key["max_length"] == 16
    for part in cache.parts():  # JSON Lines, no pickle
        for line in part.read_text().splitlines():
            json.loads(line)


def test_namespaces_are_separate_and_damage_is_ignored(tmp_path):
    a = ScoreCache(tmp_path, {"model": "m", "max_length": 16})
    b = ScoreCache(tmp_path, {"model": "m", "max_length": 17})
    a.write([("h", 1.0, 2.0, 3)])
    assert b.load() == {} and a.folder != b.folder
    with open(a.parts()[0], "a") as fh:
        fh.write('{"h": "x", "c": 1.0\n')  # an interrupted foreign write
    assert a.load() == {"h": (1.0, 2.0, 3, ())}


def test_compact_merges_parts(tmp_path):
    cache = ScoreCache(tmp_path, {"model": "m"})
    for i in range(5):
        cache.write([(f"h{i}", float(i), 1.0, i + 1)])
    before = cache.load()
    cache.compact()
    assert len(cache.parts()) == 1 and cache.load() == before


def test_sample_hash_is_the_content_key():
    from iterit.data.keys import content_key

    s = Sample("a", "b", input="c")
    assert sample_hash(s) == content_key(s) and len(sample_hash(s)) == 32


def test_per_turn_values_round_trip_and_are_checksummed(tmp_path):
    cache = ScoreCache(tmp_path, {"model": "m"})
    turns = ((0.5, 1.5), (0.25, float("nan")))
    cache.write([("h", 1.0, 2.0, 5, turns), ("g", 1.0, 2.0, 5)])
    got = cache.load()
    assert got["g"] == (1.0, 2.0, 5, ())
    assert got["h"][:3] == (1.0, 2.0, 5) and got["h"][3][0] == (0.5, 1.5)
    part = cache.parts()[0]
    part.write_text(part.read_text().replace("0.25", "0.26"))
    with pytest.warns(UserWarning, match="1 damaged"):
        assert "h" not in cache.load()
