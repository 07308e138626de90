"""iterit.data.sample: the Sample record, its prompt views, and as_sample's checks that name
the record and field."""

from __future__ import annotations

import dataclasses

import pytest

from iterit.data.sample import Sample, as_sample
from iterit.errors import InvalidInputError, InvalidTypeError


def test_prompt_text_puts_the_input_on_its_own_line():
    assert Sample("Sum these.", "3", input="1 2").prompt_text == "Sum these.\n1 2"
    assert Sample("Say hi.", "Hi").prompt_text == "Say hi."


def test_prompt_messages_of_a_single_turn_is_one_user_message():
    assert Sample("Sum these.", "3", input="1 2").prompt_messages() == [
        {"role": "user", "content": "Sum these.\n\n1 2"}
    ]
    assert Sample("Say hi.", "Hi").prompt_messages() == [{"role": "user", "content": "Say hi."}]


def test_prompt_messages_of_a_conversation_are_its_turns():
    turns = (("system", "Be brief."), ("user", "Hi"), ("assistant", "Hello"), ("user", "Bye"))
    s = Sample("Be brief.\nHi\nHello\nBye", "Goodbye", messages=turns)
    assert s.prompt_messages() == [{"role": r, "content": c} for r, c in turns]


def test_a_sample_is_frozen_and_compares_by_value():
    s = Sample("a", "b")
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.response = "c"  # type: ignore[misc]
    assert s == Sample("a", "b", input="") and hash(s) == hash(Sample("a", "b"))


def test_as_sample_reads_an_alpaca_dict():
    s = as_sample({"instruction": "Add.", "input": "1 2", "output": "3", "extra": 1})
    assert s == Sample("Add.", "3", input="1 2")
    assert as_sample({"instruction": "Add.", "output": "3", "input": None}).input == ""
    assert as_sample(s) is s


@pytest.mark.parametrize(
    ("record", "index", "error", "match"),
    [
        ({"output": "3"}, 4, InvalidInputError, "record 4: missing field 'instruction'"),
        ({"instruction": "a"}, None, InvalidInputError, "record: missing field 'output'"),
        ({"instruction": "a", "output": 3}, 0, InvalidTypeError, "field 'output' must be a str"),
        ({"instruction": "a", "output": "b", "input": ["x"]}, 2, InvalidTypeError, "'input'"),
        (["a", "b"], 1, InvalidTypeError, "record 1: expected an iterit.Sample or a dict"),
    ],
)
def test_as_sample_names_the_record_and_field(record, index, error, match):
    with pytest.raises(error, match=match):
        as_sample(record, index)
