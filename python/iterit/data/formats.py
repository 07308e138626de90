"""Record formats: which fields of a record make a :class:`~iterit.data.sample.Sample`.

Formats, detected from the first record or chosen with ``format=``:

``alpaca``
    ``instruction``, optional ``input`` (``null`` reads as empty), ``output``.  When detecting,
    Dolly's ``context``/``response`` are accepted in place of ``input``/``output``.
``sharegpt``
    ``conversations``: a list of turns ``{"from": "human"|"gpt"|"system", "value": ...}``,
    optionally a top-level ``system`` string.
``messages``
    ``messages``: a list of turns ``{"role": "user"|"assistant"|"system", "content": ...}``
    (content may also be a list of ``{"type": "text", "text": ...}`` parts).
``prompt-completion``
    ``prompt`` and ``completion``, each a string or a list of message turns (TRL's
    conversational prompt-completion format).

For conversations the last assistant turn is the response and every turn before it the prompt
(docs/design.md, "IFD"): such a sample carries those turns in ``Sample.messages`` and, as plain
text, in ``Sample.instruction``.  Turns after the last assistant turn are ignored; a
conversation without an assistant turn has an empty response.

Field names are overridable with ``fields={"output": "answer", "role": "speaker", ...}``;
the keys are ``instruction``, ``input``, ``output`` (alias ``response``), ``conversations``
(alias ``messages``), ``role``, ``content``, ``system``, ``prompt`` and ``completion``.

Every problem is a :class:`~iterit.errors.DataError` (a ``ValueError``) whose message names the
file, the record (0-based, the same index the selection reports), the line where known, and the
field.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from iterit.data.sample import Sample
from iterit.errors import ConfigError, DataError

__all__ = [
    "FIELD_KEYS",
    "FORMATS",
    "detect_format",
    "json_type",
    "parse_fields",
    "samples_from_records",
]

FORMATS = ("alpaca", "sharegpt", "messages", "prompt-completion")

_DEFAULTS: dict[str, dict[str, str]] = {
    "alpaca": {"instruction": "instruction", "input": "input", "output": "output"},
    "sharegpt": {
        "conversations": "conversations",
        "role": "from",
        "content": "value",
        "system": "system",
    },
    "messages": {"conversations": "messages", "role": "role", "content": "content"},
    "prompt-completion": {
        "prompt": "prompt",
        "completion": "completion",
        "role": "role",
        "content": "content",
    },
}
_ALIASES = {"response": "output", "messages": "conversations"}
FIELD_KEYS = (
    "instruction",
    "input",
    "output",
    "conversations",
    "role",
    "content",
    "system",
    "prompt",
    "completion",
)

_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "bard": "assistant",
    "model": "assistant",
    "bot": "assistant",
    "system": "system",
}


# --------------------------------------------------------------------------------------------
# field names and formats


def parse_fields(spec: Mapping[str, str] | Iterable[str] | None) -> dict[str, str]:
    """Normalise field overrides: a mapping, or ``"key=name"`` strings as the CLI takes them."""
    if spec is None:
        return {}
    items: list[tuple[str, str]] = []
    if isinstance(spec, Mapping):
        items = [(str(k), v) for k, v in spec.items()]
    else:
        for item in spec:
            key, sep, name = str(item).partition("=")
            if not sep or not key.strip() or not name.strip():
                raise ConfigError(
                    f"field override {item!r} must look like KEY=NAME, e.g. output=answer"
                )
            items.append((key.strip(), name.strip()))
    out: dict[str, str] = {}
    for key, name in items:
        canon = _ALIASES.get(key.lower(), key.lower())
        if canon not in FIELD_KEYS:
            raise ConfigError(
                f"unknown field key {key!r} (expected one of: {', '.join(FIELD_KEYS)}, "
                "or the aliases response, messages)"
            )
        if not isinstance(name, str) or not name:
            raise ConfigError(f"field override for {key!r} must be a non-empty string")
        out[canon] = name
    return out


def _fields_for(fmt: str, overrides: Mapping[str, str]) -> dict[str, str]:
    fields = dict(_DEFAULTS[fmt])
    for key, name in overrides.items():
        if key in fields:
            fields[key] = name
    return fields


def detect_format(
    record: Mapping[str, Any], fields: Mapping[str, str] | None = None
) -> tuple[str, dict[str, str]]:
    """Guess the record format from one record's fields; returns ``(format, field names)``.

    Raises :class:`DataError` (without a file name) when nothing fits."""
    over = parse_fields(fields)
    if not isinstance(record, Mapping):
        raise DataError(f"expected a JSON object (a record), got {json_type(record)}", record=0)
    keys = set(record)
    # conversations / messages
    conv_names = (
        [over["conversations"]] if "conversations" in over else ["conversations", "messages"]
    )
    for name in conv_names:
        turns = record.get(name)
        if isinstance(turns, list):
            first = next((t for t in turns if isinstance(t, Mapping)), {})
            role_key = over.get("role")
            if role_key is None:
                role_key = "from" if "from" in first else "role"
            fmt = "sharegpt" if role_key == "from" or name == "conversations" else "messages"
            f = _fields_for(fmt, over)
            f["conversations"] = name
            if "role" not in over:
                f["role"] = role_key
            if "content" not in over:
                f["content"] = "value" if "value" in first else "content"
            f.setdefault("system", over.get("system", "system"))
            return fmt, f
    pc = _fields_for("prompt-completion", over)
    if pc["prompt"] in keys and pc["completion"] in keys:
        return "prompt-completion", pc
    al = _fields_for("alpaca", over)
    if "output" not in over and al["output"] not in keys and "response" in keys:
        al["output"] = "response"  # Dolly's original field names
    if "input" not in over and al["input"] not in keys and "context" in keys:
        al["input"] = "context"
    if al["instruction"] in keys and al["output"] in keys:
        return "alpaca", al
    shown = ", ".join(repr(k) for k in sorted(keys)[:12]) or "none"
    raise DataError(
        f"cannot detect the data format from the fields ({shown}); expected alpaca "
        "(instruction, input, output), sharegpt (conversations of from/value), messages "
        "(messages of role/content) or prompt-completion (prompt, completion); choose the "
        "format and name the fields (KEY=NAME, e.g. output=answer)",
        record=0,
    )


def json_type(value: Any) -> str:
    """The JSON name of a value's type, for messages (``object``, ``array``, ``null``...)."""
    if value is None:
        return "null"
    return {dict: "object", list: "array", str: "string", bool: "boolean"}.get(
        type(value), type(value).__name__
    )


# --------------------------------------------------------------------------------------------
# records -> samples


class _Ctx:
    __slots__ = ("lines", "path")

    def __init__(self, path: Any, lines: Sequence[int] | None) -> None:
        self.path = path
        self.lines = lines

    def err(self, i: int, msg: str, fld: str | None = None) -> DataError:
        line = self.lines[i] if self.lines is not None and i < len(self.lines) else None
        return DataError(msg, path=self.path, record=i, line=line, field=fld)


def _str_field(
    ctx: _Ctx, i: int, rec: Mapping[str, Any], name: str, *, required: bool, null_ok: bool
) -> str:
    if name not in rec:
        if required:
            raise ctx.err(i, f"missing field {name!r}", name)
        return ""
    value = rec[name]
    if value is None and null_ok:
        return ""
    if not isinstance(value, str):
        raise ctx.err(i, f"field {name!r} must be a string, got {json_type(value)}", name)
    return value


def _content(ctx: _Ctx, i: int, t: int, turn: Mapping[str, Any], key: str, where: str) -> str:
    if key not in turn:
        raise ctx.err(i, f"{where} turn {t}: missing field {key!r}", key)
    value = turn[key]
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, list):  # content parts: [{"type": "text", "text": ...}, ...]
        parts = []
        for part in value:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, Mapping) and isinstance(part.get("text"), str):
                parts.append(part["text"])
            else:
                raise ctx.err(
                    i,
                    f"{where} turn {t}: field {key!r} holds a non-text part ({json_type(part)})",
                    key,
                )
        return "".join(parts)
    raise ctx.err(
        i, f"{where} turn {t}: field {key!r} must be a string, got {json_type(value)}", key
    )


def _turns(ctx: _Ctx, i: int, value: Any, fld: str, f: Mapping[str, str]) -> list[tuple[str, str]]:
    if not isinstance(value, list):
        raise ctx.err(i, f"field {fld!r} must be a list of turns, got {json_type(value)}", fld)
    role_key, content_key = f["role"], f["content"]
    out: list[tuple[str, str]] = []
    for t, turn in enumerate(value):
        if not isinstance(turn, Mapping):
            raise ctx.err(
                i, f"field {fld!r} turn {t}: expected an object, got {json_type(turn)}", fld
            )
        rk, ck = role_key, content_key
        # Tolerate the other common spelling of the turn keys when the default one is absent.
        if rk not in turn and ck not in turn:
            if "role" in turn and "content" in turn:
                rk, ck = "role", "content"
            elif "from" in turn and "value" in turn:
                rk, ck = "from", "value"
        if rk not in turn:
            raise ctx.err(i, f"field {fld!r} turn {t}: missing field {rk!r}", rk)
        raw_role = turn[rk]
        if not isinstance(raw_role, str):
            raise ctx.err(
                i,
                f"field {fld!r} turn {t}: field {rk!r} must be a string, got {json_type(raw_role)}",
                rk,
            )
        role = _ROLES.get(raw_role.strip().lower())
        if role is None:
            raise ctx.err(
                i,
                f"field {fld!r} turn {t}: unknown role {raw_role!r} in field {rk!r} (expected "
                "human/user, gpt/assistant or system)",
                rk,
            )
        out.append((role, _content(ctx, i, t, turn, ck, f"field {fld!r}")))
    return out


_LABELS = {"system": "System", "user": "User", "assistant": "Assistant"}


def _conversation_sample(prompt_turns: list[tuple[str, str]], response: str) -> Sample:
    if len(prompt_turns) == 1 and prompt_turns[0][0] == "user":
        return Sample(instruction=prompt_turns[0][1], response=response)
    text = "\n\n".join(f"{_LABELS[r]}: {c}" for r, c in prompt_turns)
    return Sample(instruction=text, response=response, messages=tuple(prompt_turns))


def _split_turns(turns: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], str]:
    last = max((k for k, (r, _) in enumerate(turns) if r == "assistant"), default=None)
    if last is None:
        return turns, ""
    return turns[:last], turns[last][1]


def _to_sample(ctx: _Ctx, i: int, rec: Any, fmt: str, f: Mapping[str, str]) -> Sample:
    if not isinstance(rec, Mapping):
        raise ctx.err(i, f"expected an object (a record), got {json_type(rec)}")
    if fmt == "alpaca":
        return Sample(
            instruction=_str_field(ctx, i, rec, f["instruction"], required=True, null_ok=False),
            input=_str_field(ctx, i, rec, f["input"], required=False, null_ok=True),
            response=_str_field(ctx, i, rec, f["output"], required=True, null_ok=False),
        )
    if fmt in ("sharegpt", "messages"):
        name = f["conversations"]
        if name not in rec:
            raise ctx.err(i, f"missing field {name!r}", name)
        turns = _turns(ctx, i, rec[name], name, f)
        system = rec.get(f.get("system", "system"))
        if isinstance(system, str) and system.strip() and not any(r == "system" for r, _ in turns):
            turns.insert(0, ("system", system))
        prompt, response = _split_turns(turns)
        return _conversation_sample(prompt, response)
    if fmt == "prompt-completion":
        pname, cname = f["prompt"], f["completion"]
        for name in (pname, cname):
            if name not in rec:
                raise ctx.err(i, f"missing field {name!r}", name)
        p, c = rec[pname], rec[cname]
        if isinstance(p, str) and isinstance(c, str):
            return Sample(instruction=p, response=c)
        for name, value in ((pname, p), (cname, c)):
            if not isinstance(value, (str, list)):
                raise ctx.err(
                    i,
                    f"field {name!r} must be a string or a list of turns, got {json_type(value)}",
                    name,
                )
        prompt = [("user", p)] if isinstance(p, str) else _turns(ctx, i, p, pname, f)
        comp = [("assistant", c)] if isinstance(c, str) else _turns(ctx, i, c, cname, f)
        before, response = _split_turns(comp)
        return _conversation_sample(prompt + before, response)
    raise ConfigError(f"unknown data format {fmt!r} (expected one of: {', '.join(FORMATS)})")


def samples_from_records(
    records: Sequence[Mapping[str, Any]],
    *,
    format: str = "auto",
    fields: Mapping[str, str] | Iterable[str] | None = None,
    source: str | os.PathLike[str] | None = None,
    lines: Sequence[int] | None = None,
) -> tuple[list[Sample], str, dict[str, str]]:
    """Normalise in-memory records; returns ``(samples, format, field names)``.

    ``source`` and ``lines`` (1-based line of each record) only improve error messages."""
    over = parse_fields(fields)
    if not records:
        raise DataError("no records (the data is empty)", path=source)
    fmt = format.lower() if isinstance(format, str) else format
    if fmt in (None, "auto"):
        try:
            fmt, f = detect_format(records[0], over)
        except DataError as e:
            line = lines[0] if lines else None
            raise DataError(str(e).split(": ", 1)[1], path=source, record=0, line=line) from None
    elif fmt in FORMATS:
        f = _fields_for(fmt, over)
        first = records[0] if isinstance(records[0], Mapping) else {}
        if fmt == "alpaca":  # Dolly's names when the Alpaca ones are absent (as when detecting)
            if "output" not in over and f["output"] not in first and "response" in first:
                f["output"] = "response"
            if "input" not in over and f["input"] not in first and "context" in first:
                f["input"] = "context"
        if (
            fmt in ("sharegpt", "messages")
            and "conversations" not in over
            and f["conversations"] not in first
        ):
            other = "messages" if f["conversations"] == "conversations" else "conversations"
            if other in first:
                f["conversations"] = other
    else:
        raise ConfigError(
            f"unknown data format {format!r} (expected auto or one of: {', '.join(FORMATS)})"
        )
    ctx = _Ctx(source, lines)
    samples = [_to_sample(ctx, i, rec, fmt, f) for i, rec in enumerate(records)]
    return samples, fmt, f
