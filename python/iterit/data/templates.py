"""Prompt templates for IFD scoring (docs/design.md, "IFD").

A template turns the prompt side of a :class:`~iterit.data.sample.Sample` into the text that
precedes the response.  The response is never part of the rendered text: the scorer tokenizes
it on its own and appends it right after the prompt's tokens.

Built-in templates:

- ``"alpaca"``: the Stanford Alpaca prompt, with or without the input, ending in
  ``### Response:`` (the response follows immediately, as in Alpaca's training code).
- ``"plain"``: ``{instruction}\\n`` or ``{instruction}\\n{input}\\n``.
- ``"chat"``: the tokenizer's own chat template with ``add_generation_prompt=True``.
- ``"completion"``: the prompt as it is, the response right after it, tokenised together as
  ``trl.SFTTrainer`` does for prompt-completion strings (docs/training.md).
- any callable ``f(sample) -> str``.

This module imports neither torch nor transformers.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable
from typing import Any

from iterit.data.sample import Sample
from iterit.errors import ConfigError, InvalidInputError, InvalidTypeError

__all__ = [
    "ALPACA_PROMPT_INPUT",
    "ALPACA_PROMPT_NO_INPUT",
    "TEMPLATES",
    "Template",
    "check_template",
    "render_conversation",
    "render_prompt",
    "template_identity",
]

Template = str | Callable[[Sample], str]

#: The Stanford Alpaca prompts (tatsu-lab/stanford_alpaca, ``train.py``), verbatim.
ALPACA_PROMPT_INPUT = (
    "Below is an instruction that describes a task, paired with an input that provides further "
    "context. Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:"
)
ALPACA_PROMPT_NO_INPUT = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request.\n\n"
    "### Instruction:\n{instruction}\n\n### Response:"
)

TEMPLATES = ("alpaca", "plain", "chat", "completion")


def check_template(template: Template, tokenizer: Any = None) -> None:
    """Raise ``ValueError``/``TypeError`` early for a template that cannot be rendered."""
    if callable(template):
        return
    if not isinstance(template, str):
        raise InvalidTypeError(
            f"template must be one of {TEMPLATES} or a callable, got {template!r}"
        )
    if template not in TEMPLATES:
        raise ConfigError(
            f"unknown template {template!r}; expected one of {TEMPLATES} or a callable"
        )
    if (
        template == "chat"
        and tokenizer is not None
        and not getattr(tokenizer, "chat_template", None)
    ):
        raise ConfigError(
            "template='chat' needs a tokenizer with a chat template (tokenizer.chat_template is "
            "empty); use template='alpaca', 'plain' or a callable instead"
        )


def render_prompt(template: Template, sample: Sample, tokenizer: Any = None) -> str:
    """The prompt text of ``sample`` under ``template`` (without the response)."""
    if callable(template):
        text = template(sample)
        if not isinstance(text, str):
            raise InvalidTypeError(
                f"template callable must return a str, got {type(text).__name__}"
            )
        return text
    if template == "alpaca":
        if sample.input:
            return ALPACA_PROMPT_INPUT.format(instruction=sample.instruction, input=sample.input)
        return ALPACA_PROMPT_NO_INPUT.format(instruction=sample.instruction)
    if template == "completion":
        return f"{sample.instruction}\n{sample.input}" if sample.input else sample.instruction
    if template == "plain":
        if sample.input:
            return f"{sample.instruction}\n{sample.input}\n"
        return f"{sample.instruction}\n"
    if template == "chat":
        if tokenizer is None:
            raise ConfigError("template='chat' needs the tokenizer")
        check_template(template, tokenizer)
        text = tokenizer.apply_chat_template(
            sample.prompt_messages(), add_generation_prompt=True, tokenize=False
        )
        if not isinstance(text, str):  # some versions return a list for batched input
            text = text[0]
        return text
    check_template(template, tokenizer)
    raise AssertionError("unreachable")


def _chat(tokenizer: Any, messages: list[dict[str, str]], generation: bool) -> str:
    if not messages:
        return ""
    text = tokenizer.apply_chat_template(messages, add_generation_prompt=generation, tokenize=False)
    return text if isinstance(text, str) else text[0]


def render_conversation(sample: Sample, tokenizer: Any) -> tuple[str, list[tuple[int, int]]]:
    """The whole conversation under the tokenizer's chat template, and the character span of
    every assistant turn in it (docs/design.md, "IFD", conversations).

    Turn ``i`` (the message at position ``m``) is what ``C(messages[:m + 1])`` adds to
    ``C(messages[:m], add_generation_prompt=True)``: found by rendering the conversation
    incrementally, so any template works, with or without generation marks.  A template whose
    renderings are not prefixes of one another (one that rewrites earlier turns) is refused."""
    check_template("chat", tokenizer)
    messages = sample.conversation()
    text = _chat(tokenizer, messages, False)
    spans = []
    for m, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        before = _chat(tokenizer, messages[:m], True)
        upto = _chat(tokenizer, messages[: m + 1], False)
        if not upto.startswith(before) or not text.startswith(upto):
            raise InvalidInputError(
                f"the chat template does not render this conversation turn by turn (assistant "
                f"turn {len(spans) + 1} changes what came before it); score the last turn "
                "only (turns='last')"
            )
        spans.append((len(before), len(upto)))
    return text, spans


def template_identity(template: Template, tokenizer: Any = None) -> str:
    """A stable string naming what the template renders, for cache keys.

    For ``"chat"`` it covers the tokenizer's chat template text; for a callable, its qualified
    name and (when available) a hash of its source code.
    """
    if callable(template):
        name = f"{getattr(template, '__module__', '?')}.{getattr(template, '__qualname__', '?')}"
        try:
            source = inspect.getsource(template)
        except (OSError, TypeError):
            source = repr(template)
        return f"callable:{name}:{hashlib.sha256(source.encode()).hexdigest()[:16]}"
    if template == "chat":
        chat = getattr(tokenizer, "chat_template", None) or ""
        if not isinstance(chat, str):
            chat = repr(chat)
        return f"chat:{hashlib.sha256(chat.encode()).hexdigest()[:16]}"
    return str(template)
