"""What made a reusable artefact of a run: its settings and the identity of its inputs, and the
check that an artefact is reused only with the same ones (docs/compare.md, "Resuming").

A key is an ordered JSON object (setting -> value); two keys are compared in the order of the
current one, so the error names the first setting that differs.  The inputs enter by content:
:func:`file_key` for a model file or folder (without loading it), :func:`samples_key` for data.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from iterit.data.keys import content_keys
from iterit.data.sample import Sample
from iterit.errors import ConfigError
from iterit.utils.atomic import OVERWRITE_HINT, atomic_open

__all__ = [
    "StaleRunError",
    "check_key",
    "file_key",
    "read_key",
    "samples_key",
    "write_key",
]

#: Bytes read at the start, middle and end of each file of a model (the whole of smaller files).
_CHUNK = 1 << 16


def _file_digest(h: Any, path: Path) -> None:
    size = path.stat().st_size
    h.update(f"{path.name}:{size};".encode())
    with path.open("rb") as f:
        if size <= 3 * _CHUNK:
            h.update(f.read())
            return
        for offset in (0, size // 2, size - _CHUNK):
            f.seek(offset)
            h.update(f.read(_CHUNK))


def file_key(name: str | os.PathLike[str] | None) -> str | None:
    """A content fingerprint of a local model file (a GGUF) or folder (its top-level files:
    name, size and the bytes at the start, middle and end of each), the same however the path
    is spelled; a name that is not a local path (a Hub id) is its own key."""
    if name is None:
        return None
    path = Path(name)
    if not path.exists():
        return str(name)
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.iterdir() if p.is_file())
    for p in files:
        if not p.name.startswith("."):
            _file_digest(h, p)
    return h.hexdigest()[:32]


def samples_key(samples: Sequence[Sample]) -> str:
    """The identity of ``samples`` in their order: a hash of their content keys."""
    return hashlib.sha256("\n".join(content_keys(samples)).encode()).hexdigest()[:32]


class StaleRunError(ConfigError):
    """An artefact of an earlier run was made with other settings than this run's."""

    def __init__(self, what: str, path: Path, setting: str, old: Any, new: Any) -> None:
        self.setting = setting
        super().__init__(
            f"{what} in {path} was made with {setting} = {_show(old)}, this run has "
            f"{setting} = {_show(new)}: write to a new output folder, or start this one "
            f"again {OVERWRITE_HINT}"
        )


def _show(value: Any) -> str:
    return "(not recorded)" if value is _MISSING else json.dumps(value, default=str)


_MISSING = object()


def check_key(what: str, path: Path, saved: Mapping[str, Any] | None, key: Mapping[str, Any]):
    """Raise :class:`StaleRunError` naming the first setting of ``key`` whose value differs in
    ``saved`` (the key ``path`` holds; ``None``: an artefact with no key, made by an earlier
    version)."""
    saved = {} if saved is None else saved
    current = json.loads(json.dumps(key, default=str))  # as it reads back from JSON
    for name, value in current.items():
        old = saved.get(name, _MISSING)
        if old != value:
            raise StaleRunError(what, path, name, old, value)


def write_key(path: Path, key: Mapping[str, Any]) -> Path:
    with atomic_open(path, "w", overwrite=True) as f:
        json.dump(dict(key), f, indent=1, default=str)
        f.write("\n")
    return Path(path)


def read_key(path: Path) -> dict[str, Any] | None:
    """The key ``path`` holds, or ``None`` when there is none (or it cannot be read)."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None
