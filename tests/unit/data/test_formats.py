"""Record formats: detection, conversations, field overrides (iterit.data.formats)."""

from __future__ import annotations

import pytest

from iterit.data import detect_format, parse_fields, samples_from_records
from iterit.data.sample import Sample
from iterit.errors import ConfigError

# --------------------------------------------------------------------------------------------
# record formats


def test_sharegpt_multi_turn_last_assistant_is_the_response():
    rec = {
        "system": "Be brief.",
        "conversations": [
            {"from": "human", "value": "Hi"},
            {"from": "gpt", "value": "Hello!"},
            {"from": "human", "value": "Capital of France?"},
            {"from": "gpt", "value": "Paris."},
            {"from": "human", "value": "thanks"},  # after the last assistant turn: ignored
        ],
    }
    (s,), fmt, _ = samples_from_records([rec])
    assert fmt == "sharegpt"
    assert s.response == "Paris."
    assert s.messages == (
        ("system", "Be brief."),
        ("user", "Hi"),
        ("assistant", "Hello!"),
        ("user", "Capital of France?"),
    )
    assert "Capital of France?" in s.instruction and "Hello!" in s.instruction


def test_single_turn_conversation_is_a_plain_sample():
    rec = {"conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}]}
    (s,), _, _ = samples_from_records([rec])
    assert s == Sample(instruction="Q", response="A")


def test_conversation_without_assistant_turn_has_empty_response():
    (s,), _, _ = samples_from_records([{"conversations": [{"from": "human", "value": "Q"}]}])
    assert s.response == ""


def test_messages_format_with_content_parts():
    rec = {
        "messages": [
            {"role": "system", "content": "sys"},
            {
                "role": "user",
                "content": [{"type": "text", "text": "Hel"}, {"type": "text", "text": "lo"}],
            },
            {"role": "assistant", "content": "Hi there"},
        ]
    }
    (s,), fmt, f = samples_from_records([rec])
    assert fmt == "messages" and f["role"] == "role"
    assert s.response == "Hi there" and s.messages == (("system", "sys"), ("user", "Hello"))


def test_prompt_completion_plain_and_conversational():
    (s,), fmt, _ = samples_from_records([{"prompt": "P", "completion": "C"}])
    assert fmt == "prompt-completion" and s == Sample(instruction="P", response="C")
    rec = {
        "prompt": [{"role": "user", "content": "P"}],
        "completion": [{"role": "assistant", "content": "C"}],
    }
    (s,), _, _ = samples_from_records([rec])
    assert s == Sample(instruction="P", response="C")


def test_dolly_field_names_are_detected():
    rec = {"instruction": "I", "context": "ctx", "response": "R", "category": "qa"}
    fmt, fields = detect_format(rec)
    assert fmt == "alpaca" and fields["input"] == "context" and fields["output"] == "response"
    (s,), _, _ = samples_from_records([rec], format="alpaca")
    assert s == Sample(instruction="I", input="ctx", response="R")


def test_field_overrides():
    recs = [{"question": "Q", "answer": "A"}]
    (s,), fmt, _ = samples_from_records(
        recs, fields={"instruction": "question", "output": "answer"}
    )
    assert fmt == "alpaca" and s == Sample(instruction="Q", response="A")
    (s,), _, _ = samples_from_records(recs, fields=["instruction=question", "response=answer"])
    assert s.response == "A"
    chats = [{"dialog": [{"speaker": "user", "text": "Q"}, {"speaker": "assistant", "text": "A"}]}]
    (s,), _, _ = samples_from_records(
        chats,
        format="messages",
        fields={"messages": "dialog", "role": "speaker", "content": "text"},
    )
    assert s == Sample(instruction="Q", response="A")
    with pytest.raises(ValueError, match="unknown field key 'answer'"):
        parse_fields(["answer=x"])
    with pytest.raises(ValueError, match="KEY=NAME"):
        parse_fields(["output"])


def test_explicit_format_wins(tmp_path):
    recs = [{"instruction": "I", "output": "O", "prompt": "P", "completion": "C"}]
    assert samples_from_records(recs)[1] == "prompt-completion"
    (s,), fmt, _ = samples_from_records(recs, format="alpaca")
    assert fmt == "alpaca" and s.response == "O"


def test_setting_errors_are_config_errors():
    with pytest.raises(ConfigError, match="unknown data format 'csv'"):
        samples_from_records([{"instruction": "a", "output": "b"}], format="csv")
    with pytest.raises(ConfigError, match="KEY=NAME"):
        parse_fields(["output"])
