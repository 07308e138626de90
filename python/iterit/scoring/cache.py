"""A resumable on-disk cache of IFD scores, so an interrupted scoring run resumes.

Layout: ``<root>/<namespace>/`` where the namespace is a hash of what the scores depend on
besides the sample (model identity, template, ``max_length``, tokenizer, scoring version); it
holds ``key.json`` (that identity, readable) and ``part-*.jsonl`` files, one JSON object per
line: ``{"h": sample hash, "c": nll_cond, "p": nll_prior, "k": n_tokens}``.

Every part is written to a temporary file in the same folder and then moved into place with
``os.replace``, so a reader never sees a half-written part and an interrupted run loses at most
the part it was writing.  Each flush adds a part (appending never rewrites what is there);
:meth:`ScoreCache.compact` merges the parts into one.  No pickle anywhere.

This module imports neither torch nor transformers.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from iterit.data.keys import content_key

__all__ = ["CACHE_VERSION", "ScoreCache", "sample_hash"]

#: Bumped whenever the scoring semantics change, so old caches are never reused.
CACHE_VERSION = 1

Entry = tuple[float, float, int]


#: The per-sample half of the cache key: the sample's content key (one definition for the
#: cache and the scores files).
sample_hash = content_key


def _num(x: float) -> float | str:
    return x if math.isfinite(x) else repr(float(x))  # 'nan', 'inf': valid JSON strings


class ScoreCache:
    """Scores stored under ``root`` for one identity ``key`` (a JSON-serialisable mapping)."""

    def __init__(self, root: str | os.PathLike[str], key: Mapping[str, Any]):
        self.root = Path(root)
        self.key = dict(key)
        blob = json.dumps({"version": CACHE_VERSION, **self.key}, sort_keys=True, default=str)
        self.namespace = hashlib.sha256(blob.encode("utf-8")).hexdigest()[:20]
        self.folder = self.root / self.namespace
        self._counter = 0

    def _ensure_folder(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        key_file = self.folder / "key.json"
        if not key_file.exists():
            self._atomic_write(
                key_file,
                json.dumps({"version": CACHE_VERSION, **self.key}, indent=1, default=str) + "\n",
            )

    def _atomic_write(self, path: Path, text: str) -> None:
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{time.time_ns()}")
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()

    def parts(self) -> list[Path]:
        if not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.glob("part-*.jsonl"))

    def load(self) -> dict[str, Entry]:
        """Every stored entry: sample hash -> (nll_cond, nll_prior, n_tokens)."""
        out: dict[str, Entry] = {}
        for part in self.parts():
            try:
                text = part.read_text(encoding="utf-8")
            except FileNotFoundError:  # compacted away meanwhile: its entries are elsewhere
                continue
            for line in text.splitlines():
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                    out[rec["h"]] = (float(rec["c"]), float(rec["p"]), int(rec["k"]))
                except (ValueError, KeyError, TypeError):
                    continue  # a foreign or damaged line is ignored, never fatal
        return out

    def write(
        self, entries: Iterable[tuple[str, float, float, int]], *, tag: str = "0"
    ) -> Path | None:
        """Store ``(hash, nll_cond, nll_prior, n_tokens)`` entries as one new part."""
        lines = [
            json.dumps({"h": h, "c": _num(float(c)), "p": _num(float(p)), "k": int(k)})
            for h, c, p, k in entries
        ]
        if not lines:
            return None
        self._ensure_folder()
        self._counter += 1
        path = self.folder / f"part-{tag}-{time.time_ns()}-{os.getpid()}-{self._counter}.jsonl"
        self._atomic_write(path, "\n".join(lines) + "\n")
        return path

    def compact(self) -> None:
        """Merge all parts into one (atomically written before the old parts are removed)."""
        parts = self.parts()
        if len(parts) <= 1:
            return
        entries = self.load()
        self.write(((h, c, p, k) for h, (c, p, k) in sorted(entries.items())), tag="all")
        for part in parts:
            with contextlib.suppress(FileNotFoundError):
                part.unlink()

    def __repr__(self) -> str:
        return f"ScoreCache({str(self.folder)!r})"
