"""The unit every part of iterit works on: one instruction-tuning sample."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from iterit.errors import InvalidInputError, InvalidTypeError

__all__ = ["Sample", "as_sample"]


@dataclass(frozen=True)
class Sample:
    """One instruction-tuning sample.

    ``instruction`` and ``input`` are the prompt side in Alpaca terms; ``response`` is the answer
    the model is trained on (for a conversation, the last assistant turn).  For a multi-turn
    conversation ``messages`` holds every turn before the last assistant turn as
    ``(role, content)`` pairs with roles ``"system"``, ``"user"`` or ``"assistant"``; the chat
    template renders those, and ``instruction`` holds the same turns as plain text so that
    text-only consumers (diversity on the instruction, the plain template) see the whole prompt.
    """

    instruction: str
    response: str
    input: str = ""
    messages: tuple[tuple[str, str], ...] = field(default=())

    @property
    def prompt_text(self) -> str:
        """The whole prompt side as one text: instruction, then the input on its own line."""
        return f"{self.instruction}\n{self.input}" if self.input else self.instruction

    @property
    def n_turns(self) -> int:
        """Assistant turns: the response and every assistant turn of ``messages``."""
        return 1 + sum(1 for role, _ in self.messages if role == "assistant")

    @property
    def assistant_text(self) -> str:
        """Every assistant turn's text, in order, one per line (the diversity text of a
        conversation, docs/design.md "IFD"); the response alone for a one-turn sample."""
        turns = [content for role, content in self.messages if role == "assistant"]
        return "\n".join([*turns, self.response])

    def conversation(self) -> list[dict[str, str]]:
        """The whole conversation as chat messages: the prompt side, then the response."""
        return [*self.prompt_messages(), {"role": "assistant", "content": self.response}]

    def prompt_messages(self) -> list[dict[str, str]]:
        """The prompt side as chat messages (for ``tokenizer.apply_chat_template``)."""
        if self.messages:
            return [{"role": role, "content": content} for role, content in self.messages]
        content = f"{self.instruction}\n\n{self.input}" if self.input else self.instruction
        return [{"role": "user", "content": content}]


def as_sample(obj: Sample | Mapping[str, Any], index: int | None = None) -> Sample:
    """Accept a :class:`Sample` or an Alpaca-style dict (``instruction``, optional ``input``,
    ``output``); anything else is a ``TypeError``/``ValueError`` naming the record and field."""
    if isinstance(obj, Sample):
        return obj
    where = f"record {index}" if index is not None else "record"
    if not isinstance(obj, Mapping):
        raise InvalidTypeError(
            f"{where}: expected an iterit.Sample or a dict, got {type(obj).__name__}"
        )
    values: dict[str, str] = {}
    for name, required in (("instruction", True), ("input", False), ("output", True)):
        value = obj.get(name)
        if value is None:
            if required:
                raise InvalidInputError(f"{where}: missing field {name!r}")
            value = ""
        if not isinstance(value, str):
            raise InvalidTypeError(
                f"{where}: field {name!r} must be a string, got {type(value).__name__}"
            )
        values[name] = value
    return Sample(
        instruction=values["instruction"], response=values["output"], input=values["input"]
    )
