"""Shared fixtures (builders live in :mod:`tests.helpers`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.shared import shared_file, smollm2_gguf_path


@pytest.fixture(scope="session")
def alpaca_union_path() -> Path:
    return shared_file("general/alpaca_union_dedup.jsonl")


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    return smollm2_gguf_path()


@pytest.fixture(scope="session")
def data():
    """60 real Alpaca samples with a word-level tokenizer trained on them (training tests)."""
    from tests.helpers.tiny_llama import tiny_tokenizer
    from tests.helpers.training import real_samples

    samples = real_samples(60)
    return samples, tiny_tokenizer(samples)
