"""Prompt templates of IFD scoring (iterit.data.templates)."""

from __future__ import annotations

import pytest

from iterit import Sample
from iterit.data.templates import (
    ALPACA_PROMPT_INPUT,
    ALPACA_PROMPT_NO_INPUT,
    check_template,
    render_prompt,
    template_identity,
)


def test_alpaca_is_the_stanford_prompt():
    s = Sample("Name a colour.", "Red.")
    assert render_prompt("alpaca", s) == (
        "Below is an instruction that describes a task. Write a response that appropriately "
        "completes the request.\n\n### Instruction:\nName a colour.\n\n### Response:"
    )
    t = Sample("Translate.", "Bonjour.", input="Hello.")
    assert render_prompt("alpaca", t) == (
        "Below is an instruction that describes a task, paired with an input that provides "
        "further context. Write a response that appropriately completes the request.\n\n"
        "### Instruction:\nTranslate.\n\n### Input:\nHello.\n\n### Response:"
    )
    assert ALPACA_PROMPT_NO_INPUT.endswith("### Response:")
    assert ALPACA_PROMPT_INPUT.endswith("### Response:")


def test_plain():
    assert render_prompt("plain", Sample("Do it", "ok")) == "Do it\n"
    assert render_prompt("plain", Sample("Do it", "ok", input="now")) == "Do it\nnow\n"


class FakeChatTokenizer:
    chat_template = "fake"

    def __init__(self):
        self.calls = []

    def apply_chat_template(self, messages, add_generation_prompt, tokenize):
        self.calls.append((messages, add_generation_prompt, tokenize))
        body = "".join(f"<{m['role']}>{m['content']}" for m in messages)
        return "<s>" + body + ("<assistant>" if add_generation_prompt else "")


def test_chat_uses_the_tokenizer_template_with_generation_prompt():
    tok = FakeChatTokenizer()
    assert render_prompt("chat", Sample("Hi", "Hello", input="there"), tok) == (
        "<s><user>Hi\n\nthere<assistant>"
    )
    assert tok.calls[0][1:] == (True, False)
    multi = Sample("u1\nu2", "a2", messages=(("user", "u1"), ("assistant", "a1"), ("user", "u2")))
    assert render_prompt("chat", multi, tok) == "<s><user>u1<assistant>a1<user>u2<assistant>"


def test_callable_and_errors():
    assert render_prompt(lambda s: f"Q: {s.instruction}\nA:", Sample("x", "y")) == "Q: x\nA:"
    with pytest.raises(TypeError, match="must return a str"):
        render_prompt(lambda s: 3, Sample("x", "y"))
    with pytest.raises(ValueError, match="unknown template"):
        check_template("vicuna")
    with pytest.raises(TypeError):
        check_template(3)

    class NoChat:
        chat_template = None

    with pytest.raises(ValueError, match="chat template"):
        check_template("chat", NoChat())


def test_identity_changes_with_what_is_rendered():
    a, b = FakeChatTokenizer(), FakeChatTokenizer()
    b.chat_template = "other"
    assert template_identity("alpaca") == "alpaca"
    assert template_identity("chat", a) != template_identity("chat", b)

    def f(s):
        return s.instruction

    def g(s):
        return s.instruction + "!"

    assert template_identity(f) != template_identity(g)
    assert template_identity(f) == template_identity(f)
