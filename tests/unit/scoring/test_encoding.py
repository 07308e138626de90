"""encode_for_scoring: the token sequences of IFD's two passes (docs/design.md, "IFD")."""

from __future__ import annotations

import pytest

pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

from iterit import Sample
from iterit.errors import InvalidInputError
from iterit.scoring.encoding import (
    EMPTY_RESPONSE,
    OK,
    PROMPT_TOO_LONG,
    encode_for_scoring,
    eos_token,
    start_token,
)
from tests.helpers.word_llama import make_tokenizer


def test_both_passes_share_the_response_and_its_eos(tok):
    s = Sample("write a poem", "the sea at night")
    enc = encode_for_scoring(tok, [s], "plain", 64)
    p = [tok.bos_token_id, *tok("write a poem\n", add_special_tokens=False).input_ids]
    r = [*tok("the sea at night", add_special_tokens=False).input_ids, tok.eos_token_id]
    assert enc.cond[0] == p + r and enc.cond_offset[0] == len(p)
    assert enc.prior[0] == [tok.bos_token_id, *r]
    assert enc.reason[0] == OK and not enc.truncated[0]


def test_truncation_empty_and_too_long(tok):
    items = [
        Sample("write", " ".join(["the sea"] * 40)),
        Sample("a", " "),
        Sample("the " * 50, "red"),
    ]
    enc = encode_for_scoring(tok, items, "plain", 20)
    assert len(enc.cond[0]) == 20 and enc.truncated[0]
    assert len(enc.prior[0]) == 1 + 20 - enc.cond_offset[0]
    assert list(enc.reason) == [OK, EMPTY_RESPONSE, PROMPT_TOO_LONG]
    assert enc.cond[1] == enc.prior[1] == enc.cond[2] == []


def test_start_token_is_bos_else_eos():
    with_bos, without = make_tokenizer(), make_tokenizer(bos=False)
    assert start_token(with_bos) == with_bos.bos_token_id
    assert start_token(without) == eos_token(without) == without.eos_token_id
    enc = encode_for_scoring(without, [Sample("a", "red")], "alpaca", 64)
    assert enc.prior[0][0] == without.eos_token_id


def test_tokenizer_without_eos_is_an_input_error():
    class NoEos:
        bos_token_id = None
        eos_token_id = None

    with pytest.raises(InvalidInputError, match="EOS token"):
        start_token(NoEos())
