"""Load instruction-tuning data from files and normalise it to :class:`iterit.Sample`.

One module used by the command line, the scorer and the trainer (DESIGN 2, 3.1).

File types (by extension, else by content): JSON arrays (``.json``), JSON Lines (``.jsonl``,
``.ndjson``; a ``.json`` file holding JSON Lines is read as such), either optionally gzipped
(``.gz``), parquet (``.parquet``, ``.pq``) and Hugging Face datasets saved to disk with
``Dataset.save_to_disk`` (a folder; ``split`` picks one split of a ``DatasetDict``).

Record formats, detected from the first record or chosen with ``format=``:

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
(DESIGN 3.1): such a sample carries those turns in ``Sample.messages`` and, as plain text, in
``Sample.instruction``.  Turns after the last assistant turn are ignored; a conversation without
an assistant turn has an empty response.

Field names are overridable with ``fields={"output": "answer", "role": "speaker", ...}``;
the keys are ``instruction``, ``input``, ``output`` (alias ``response``), ``conversations``
(alias ``messages``), ``role``, ``content``, ``system``, ``prompt`` and ``completion``.

Every problem is a :class:`DataError` (a ``ValueError``) whose message names the file, the
record (0-based, the same index the selection reports), the line where known, and the field.
Empty responses are not an error: they are loaded, flagged in :attr:`LoadedData.empty` and kept
out of selection by the callers.
"""

from __future__ import annotations

import gzip
import io
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from iterit.data.sample import Sample
from iterit.errors import DataError
from iterit.utils.atomic import atomic_dir, atomic_open, atomic_path, check_output

__all__ = [
    "FIELD_KEYS",
    "FILE_TYPES",
    "FORMATS",
    "DataError",
    "LoadedData",
    "detect_file_type",
    "detect_format",
    "load",
    "load_samples",
    "output_file_type",
    "parse_fields",
    "samples_from_records",
]

FORMATS = ("alpaca", "sharegpt", "messages", "prompt-completion")
FILE_TYPES = ("json", "jsonl", "parquet", "hf")

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
_SUFFIXES = {
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".pq": "parquet",
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
                raise ValueError(
                    f"field override {item!r} must look like KEY=NAME, e.g. output=answer"
                )
            items.append((key.strip(), name.strip()))
    out: dict[str, str] = {}
    for key, name in items:
        canon = _ALIASES.get(key.lower(), key.lower())
        if canon not in FIELD_KEYS:
            raise ValueError(
                f"unknown field key {key!r} (expected one of: {', '.join(FIELD_KEYS)}, "
                "or the aliases response, messages)"
            )
        if not isinstance(name, str) or not name:
            raise ValueError(f"field override for {key!r} must be a non-empty string")
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
        raise DataError(f"expected a JSON object (a record), got {_type(record)}", record=0)
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
        "(messages of role/content) or prompt-completion (prompt, completion); choose one "
        "with --format and name the fields with --field KEY=NAME",
        record=0,
    )


def _type(value: Any) -> str:
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
        raise ctx.err(i, f"field {name!r} must be a string, got {_type(value)}", name)
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
                    i, f"{where} turn {t}: field {key!r} holds a non-text part ({_type(part)})", key
                )
        return "".join(parts)
    raise ctx.err(i, f"{where} turn {t}: field {key!r} must be a string, got {_type(value)}", key)


def _turns(ctx: _Ctx, i: int, value: Any, fld: str, f: Mapping[str, str]) -> list[tuple[str, str]]:
    if not isinstance(value, list):
        raise ctx.err(i, f"field {fld!r} must be a list of turns, got {_type(value)}", fld)
    role_key, content_key = f["role"], f["content"]
    out: list[tuple[str, str]] = []
    for t, turn in enumerate(value):
        if not isinstance(turn, Mapping):
            raise ctx.err(i, f"field {fld!r} turn {t}: expected an object, got {_type(turn)}", fld)
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
                f"field {fld!r} turn {t}: field {rk!r} must be a string, got {_type(raw_role)}",
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
        raise ctx.err(i, f"expected an object (a record), got {_type(rec)}")
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
                    f"field {name!r} must be a string or a list of turns, got {_type(value)}",
                    name,
                )
        prompt = [("user", p)] if isinstance(p, str) else _turns(ctx, i, p, pname, f)
        comp = [("assistant", c)] if isinstance(c, str) else _turns(ctx, i, c, cname, f)
        before, response = _split_turns(comp)
        return _conversation_sample(prompt + before, response)
    raise ValueError(f"unknown data format {fmt!r} (expected one of: {', '.join(FORMATS)})")


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
        raise ValueError(
            f"unknown data format {format!r} (expected auto or one of: {', '.join(FORMATS)})"
        )
    ctx = _Ctx(source, lines)
    samples = [_to_sample(ctx, i, rec, fmt, f) for i, rec in enumerate(records)]
    return samples, fmt, f


# --------------------------------------------------------------------------------------------
# files


def _strip_gz(path: Path) -> tuple[Path, bool]:
    if path.suffix.lower() == ".gz":
        return path.with_suffix(""), True
    return path, False


def detect_file_type(path: str | os.PathLike[str]) -> str:
    """``json``, ``jsonl``, ``parquet`` or ``hf`` (a dataset folder), from the name or content."""
    path = Path(path)
    if path.is_dir():
        return "hf"
    base, _gz = _strip_gz(path)
    kind = _SUFFIXES.get(base.suffix.lower())
    if kind is not None:
        return kind
    # Sniff the content.
    try:
        with _open_bytes(path) as fh:
            head = fh.read(4096)
    except OSError as e:
        raise DataError(f"cannot read the file: {e.strerror or e}", path=path) from None
    if head[:4] == b"PAR1":
        return "parquet"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n")
    if text[:1] == b"[":
        return "json"
    if text[:1] == b"{":
        return "jsonl"
    if not text:
        raise DataError("the file is empty (no records)", path=path)
    raise DataError(
        "cannot tell the file type; expected .json (array), .jsonl, .parquet or a folder "
        "saved with datasets' save_to_disk",
        path=path,
    )


def _open_bytes(path: Path) -> io.BufferedIOBase:
    if path.suffix.lower() == ".gz":
        return gzip.open(path, "rb")  # type: ignore[return-value]
    return open(path, "rb")


def _read_text(path: Path) -> str:
    try:
        with _open_bytes(path) as fh:
            raw = fh.read()
    except FileNotFoundError:
        raise DataError("no such file", path=path) from None
    except (OSError, EOFError) as e:
        raise DataError(f"cannot read the file: {e}", path=path) from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise DataError(
            f"not valid UTF-8 text (byte offset {e.start})", path=path, line=line
        ) from None


def _read_jsonl(path: Path, text: str) -> tuple[list[Any], list[int]]:
    records: list[Any] = []
    lines: list[int] = []
    # Split on "\n" only: str.splitlines would also split inside strings holding U+0085 or
    # U+2028, which JSON writes unescaped.
    for lineno, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataError(
                f"invalid JSON: {e.msg} (column {e.colno})", path=path, line=lineno
            ) from None
        if not isinstance(rec, dict):
            raise DataError(
                f"expected a JSON object per line, got {_type(rec)}",
                path=path,
                record=len(records),
                line=lineno,
            )
        records.append(rec)
        lines.append(lineno)
    return records, lines


def _read_json(path: Path, text: str) -> tuple[list[Any], list[int] | None, str]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        if e.msg == "Extra data" and text.lstrip().startswith("{"):
            records, lines = _read_jsonl(path, text)  # JSON Lines in a .json file
            return records, lines, "jsonl"
        raise DataError(
            f"invalid JSON: {e.msg} (column {e.colno})", path=path, line=e.lineno
        ) from None
    if isinstance(value, dict):
        return [value], None, "jsonl"  # a single record: a one-line JSON Lines file
    if not isinstance(value, list):
        raise DataError(f"expected a JSON array of records, got {_type(value)}", path=path)
    for i, rec in enumerate(value):
        if not isinstance(rec, dict):
            raise DataError(f"expected a JSON object, got {_type(rec)}", path=path, record=i)
    return value, None, "json"


@dataclass
class LoadedData:
    """Records read from one file, normalised to samples, able to write a subset back in the
    file's own format.  ``samples[i]`` is record ``i``; indices are 0-based."""

    samples: list[Sample]
    format: str
    fields: dict[str, str]
    file_type: str
    path: Path | None = None
    lines: list[int] | None = None
    _records: list[dict[str, Any]] | None = field(default=None, repr=False)
    _table: Any = field(default=None, repr=False)  # pyarrow.Table (parquet)
    _hf: Any = field(default=None, repr=False)  # datasets.Dataset (saved to disk)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> Sample:
        return self.samples[i]

    @property
    def empty(self) -> np.ndarray:
        """Boolean mask of records whose response is empty or whitespace (never selected)."""
        return np.fromiter((not s.response.strip() for s in self.samples), bool, len(self.samples))

    @property
    def n_empty(self) -> int:
        return int(self.empty.sum())

    def records(self, indices: Sequence[int] | np.ndarray | None = None) -> list[dict[str, Any]]:
        """The original records (all, or the given indices in that order)."""
        if self._records is None:
            if self._table is not None:
                self._records = self._table.to_pylist()
            elif self._hf is not None:
                self._records = self._hf.to_list()
            else:
                self._records = [_sample_record(s) for s in self.samples]
        if indices is None:
            return list(self._records)
        return [self._records[int(i)] for i in indices]

    def write(
        self,
        indices: Sequence[int] | np.ndarray,
        out: str | os.PathLike[str],
        *,
        overwrite: bool = False,
        file_type: str | None = None,
    ) -> Path:
        """Write the records at ``indices`` (in that order) to ``out``, atomically, in the
        input's file type unless ``out``'s extension (or ``file_type``) names another."""
        out = Path(out)
        kind = file_type or output_file_type(out, self.file_type)
        idx = np.asarray(indices, dtype=np.int64)
        if kind == "hf":
            return self._write_hf(idx, out, overwrite)
        check_output(out, overwrite=overwrite)
        gz = out.suffix.lower() == ".gz"
        if kind == "parquet":
            pa, pq = _pyarrow(out)

            if self._table is not None:
                table = self._table.take(pa.array(idx, type=pa.int64()))
            elif self._hf is not None:
                table = self._hf.select(idx.tolist()).flatten_indices().data.table
            else:
                try:
                    table = pa.Table.from_pylist(self.records(idx))
                except (pa.ArrowException, TypeError, ValueError) as e:
                    raise DataError(f"cannot write these records as parquet: {e}", path=out) from e
            with atomic_path(out, overwrite=overwrite) as tmp:
                pq.write_table(table, tmp)
            return out
        records = self.records(idx)
        with atomic_open(out, "wb", overwrite=overwrite) as raw:
            fh: Any = gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) if gz else raw
            text = io.TextIOWrapper(fh, encoding="utf-8", newline="\n")
            if kind == "jsonl":
                for rec in records:
                    text.write(json.dumps(rec, ensure_ascii=False, default=_json_default))
                    text.write("\n")
            else:
                json.dump(records, text, ensure_ascii=False, indent=2, default=_json_default)
                text.write("\n")
            text.flush()
            text.detach()
            if gz:
                fh.close()
        return out

    def _write_hf(self, idx: np.ndarray, out: Path, overwrite: bool) -> Path:
        try:
            import datasets
        except ImportError:
            raise DataError(
                "writing a saved dataset needs the 'datasets' package (pip install datasets)",
                path=out,
            ) from None

        ds = self._hf.select(idx.tolist()) if self._hf is not None else None
        if ds is None:
            ds = datasets.Dataset.from_list(self.records(idx))
        with atomic_dir(out, overwrite=overwrite) as tmp:
            ds.save_to_disk(str(tmp))
        return out


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, bytes):
        import base64

        return base64.b64encode(value).decode("ascii")
    return str(value)


def _sample_record(s: Sample) -> dict[str, Any]:
    return {"instruction": s.instruction, "input": s.input, "output": s.response}


def output_file_type(out: str | os.PathLike[str], input_type: str) -> str:
    """The file type to write ``out`` in: its extension's, else the input's."""
    base, _gz = _strip_gz(Path(out))
    return _SUFFIXES.get(base.suffix.lower(), input_type)


def load(
    path: str | os.PathLike[str],
    *,
    format: str = "auto",
    fields: Mapping[str, str] | Iterable[str] | None = None,
    file_type: str | None = None,
    split: str | None = None,
) -> LoadedData:
    """Read ``path`` and normalise every record (see the module docstring)."""
    path = Path(path)
    if not path.exists():
        raise DataError("no such file or folder", path=path)
    kind = file_type or detect_file_type(path)
    if kind not in FILE_TYPES:
        raise ValueError(f"unknown file type {kind!r} (expected one of: {', '.join(FILE_TYPES)})")
    table = hf = None
    lines: list[int] | None = None
    if kind in ("json", "jsonl"):
        text = _read_text(path)
        if not text.strip():
            raise DataError("the file is empty (no records)", path=path)
        if kind == "jsonl":
            records, lines = _read_jsonl(path, text)
        else:
            records, lines, kind = _read_json(path, text)
    elif kind == "parquet":
        pa, pq = _pyarrow(path)

        try:
            table = pq.read_table(path)
        except (pa.ArrowException, OSError) as e:
            raise DataError(f"cannot read as parquet: {e}", path=path) from None
        records = table.to_pylist()
    else:
        hf = _load_hf(path, split)
        records = hf.to_list()
    if not records:
        raise DataError("the file is empty (no records)", path=path)
    samples, fmt, f = samples_from_records(
        records, format=format, fields=fields, source=path, lines=lines
    )
    data = LoadedData(samples, fmt, f, kind, path, lines, _table=table, _hf=hf)
    if kind in ("json", "jsonl"):
        data._records = records
    return data


def _pyarrow(path: Path) -> tuple[Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(
            "parquet files need the 'pyarrow' package (pip install 'iterit[cli]')", path=path
        ) from None
    return pa, pq


def _load_hf(path: Path, split: str | None) -> Any:
    try:
        import datasets
    except ImportError:
        raise DataError(
            "is a folder; datasets saved to disk need the 'datasets' package "
            "(pip install datasets)",
            path=path,
        ) from None
    if not (path / "dataset_info.json").exists() and not (path / "dataset_dict.json").exists():
        raise DataError(
            "is a folder but not a dataset saved with save_to_disk (no dataset_info.json or "
            "dataset_dict.json)",
            path=path,
        )
    try:
        ds = datasets.load_from_disk(str(path))
    except Exception as e:
        raise DataError(f"cannot load the saved dataset: {e}", path=path) from None
    if isinstance(ds, datasets.DatasetDict):
        names = list(ds)
        if split is None:
            if "train" in ds:
                split = "train"
            elif len(names) == 1:
                split = names[0]
            else:
                raise DataError(
                    f"holds several splits ({', '.join(names)}); choose one with --split", path=path
                )
        if split not in ds:
            raise DataError(f"has no split {split!r} (splits: {', '.join(names)})", path=path)
        ds = ds[split]
    return ds


def load_samples(path: str | os.PathLike[str], **kwargs: Any) -> list[Sample]:
    """Shortcut: ``load(path, **kwargs).samples``."""
    return load(path, **kwargs).samples
