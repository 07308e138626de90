"""Fixtures of the integration tests (builders live in :mod:`tests.helpers`)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    """A tiny random Llama with a tokenizer over examples/alpaca_mini.jsonl, saved as a local
    model folder (safetensors) for ``iterit score --model``."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from iterit.data import load
    from tests.helpers.cli import EXAMPLE
    from tests.helpers.tiny_llama import save_tiny_model, tiny_tokenizer

    fast = tiny_tokenizer(load(EXAMPLE).samples, vocab_size=400)
    return save_tiny_model(tmp_path_factory.mktemp("tiny-llama"), fast, max_positions=1024)
