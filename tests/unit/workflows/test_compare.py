"""iterit.workflows.compare without training (the arm runs are in
tests/integration/test_workflows_compare.py): the held-out split and the arm list."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from iterit.errors import ConfigError
from iterit.workflows.compare import held_out_split, parse_arms
from tests.helpers.training import real_samples


def test_held_out_split_is_deterministic_and_order_free():
    samples = real_samples(30, offset=300)
    train, held = held_out_split(samples, 0.2)
    assert held and len(train) + len(held) == len(samples)
    assert {s.response for s in train}.isdisjoint({s.response for s in held})
    _train2, held2 = held_out_split(samples[::-1], 0.2)
    assert {s.response for s in held} == {s.response for s in held2}


def test_parse_arms():
    assert parse_arms("random, iterit,random") == ["random", "iterit"]
    with pytest.raises(ConfigError, match="unknown arm"):
        parse_arms("random,best")
