"""Fixtures of the scoring tests: the word-level tokenizer, a tiny Llama, samples and their
reference scores (builders in :mod:`tests.helpers.word_llama`)."""

from __future__ import annotations

import pytest

from tests.helpers.word_llama import MAX_LEN, make_model, make_samples, make_tokenizer


@pytest.fixture(scope="module")
def tok():
    pytest.importorskip("transformers")
    pytest.importorskip("tokenizers")
    return make_tokenizer()


@pytest.fixture(scope="module")
def model(tok):
    return make_model(len(tok))


@pytest.fixture(scope="module")
def samples():
    return make_samples()


@pytest.fixture(scope="module")
def ref(model, tok, samples):
    from iterit.scoring import reference_ifd

    return reference_ifd(model, tok, samples, max_length=MAX_LEN)
