"""A resumable on-disk cache of IFD scores, so an interrupted scoring run resumes.

Layout: ``<root>/<namespace>/`` where the namespace is a hash of what the scores depend on
besides the sample (model identity, template, ``max_length``, tokenizer, scoring version); it
holds ``key.json`` (that identity, readable) and ``part-*.jsonl`` files, one JSON object per
line: ``{"h": sample hash, "c": nll_cond, "p": nll_prior, "k": n_tokens, "s": checksum}``, and
for a conversation scored turn by turn ``"t"``: each turn's ``[nll_cond, nll_prior]``.
The model and the tokenizer enter the identity by content (:func:`tokenizer_fingerprint`),
never by the path they were loaded from.

Every part is written to a temporary file in the same folder and then moved into place
(:func:`iterit.utils.atomic.atomic_write_text`), so a reader never sees a half-written part
and an interrupted run loses at most the part it was writing.  Each flush adds a part
(appending never rewrites what is there); :meth:`ScoreCache.compact` merges the parts into one.
No pickle anywhere.

Every entry carries a checksum of its own content: an entry whose bytes or digits were changed
(or that cannot be decoded at all) is ignored, counted in one warning, and its sample is scored
again.  A cache folder that cannot be written warns once and scoring goes on without it
(docs/faults.md).

This module imports neither torch nor transformers.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import time
import warnings
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from iterit.data.keys import content_key
from iterit.utils.atomic import atomic_write_text

__all__ = ["CACHE_VERSION", "ScoreCache", "TimedFlush", "sample_hash", "tokenizer_fingerprint"]

#: Bumped whenever the scoring semantics or the entry layout change, so old caches are never
#: reused (2: a checksum per entry; the tokenizer keyed by content).
CACHE_VERSION = 2

#: Per-turn ``(nll_cond, nll_prior)`` of a conversation scored turn by turn (else empty).
Turns = tuple[tuple[float, float], ...]
Entry = tuple[float, float, int, Turns]


#: The per-sample half of the cache key: the sample's content key (one definition for the
#: cache and the scores files).
sample_hash = content_key


def _num(x: float) -> float | str:
    return x if math.isfinite(x) else repr(float(x))  # 'nan', 'inf': valid JSON strings


def _checksum(h: str, c: float, p: float, k: int, turns: Turns = ()) -> str:
    # repr() of a float64 round-trips exactly, so the checksum covers every digit stored.
    text = f"{h}|{float(c)!r}|{float(p)!r}|{int(k)}"
    if turns:  # one-turn entries keep the checksum they always had
        text += "|" + ";".join(f"{float(a)!r},{float(b)!r}" for a, b in turns)
    return format(zlib.crc32(text.encode()), "08x")


def _entry(line: bytes) -> tuple[str, Entry] | None:
    """The entry of one stored line, or None when it is damaged (undecodable, not JSON, a field
    missing, or its checksum does not match its content)."""
    try:
        rec = json.loads(line.decode("utf-8"))
        h, c, p, k = str(rec["h"]), float(rec["c"]), float(rec["p"]), int(rec["k"])
        turns = tuple((float(a), float(b)) for a, b in rec.get("t", ()))
        if rec["s"] != _checksum(h, c, p, k, turns):
            return None
    except (ValueError, KeyError, TypeError):  # UnicodeDecodeError is a ValueError
        return None
    return h, (c, p, k, turns)


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """An identity of a tokenizer's content (class, vocabulary, special tokens and, for a fast
    tokenizer, its whole pipeline), independent of where it was loaded from."""
    h = hashlib.sha256(type(tokenizer).__name__.encode())
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None and hasattr(backend, "to_str"):
        h.update(backend.to_str().encode("utf-8"))
    elif hasattr(tokenizer, "get_vocab"):
        h.update(json.dumps(sorted(tokenizer.get_vocab().items()), default=str).encode())
    for name in ("bos_token_id", "eos_token_id", "pad_token_id", "unk_token_id"):
        h.update(f"{name}={getattr(tokenizer, name, None)};".encode())
    with contextlib.suppress(TypeError):
        h.update(f"len={len(tokenizer)}".encode())
    return h.hexdigest()[:32]


def _line(h: str, c: float, p: float, k: int, turns: Turns = ()) -> str:
    rec: dict[str, Any] = {"h": h, "c": _num(float(c)), "p": _num(float(p)), "k": int(k)}
    if turns:
        rec["t"] = [[_num(float(a)), _num(float(b))] for a, b in turns]
    rec["s"] = _checksum(h, c, p, k, turns)
    return json.dumps(rec)


class ScoreCache:
    """Scores stored under ``root`` for one identity ``key`` (a JSON-serialisable mapping)."""

    def __init__(self, root: str | os.PathLike[str], key: Mapping[str, Any]):
        self.root = Path(root)
        self.key = dict(key)
        blob = json.dumps({"version": CACHE_VERSION, **self.key}, sort_keys=True, default=str)
        self.namespace = hashlib.sha256(blob.encode("utf-8")).hexdigest()[:20]
        self.folder = self.root / self.namespace
        self._counter = 0
        self.n_damaged = 0  # entries ignored by the last load()
        self.writable = True  # False after a write failed (warned once)

    def _ensure_folder(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        key_file = self.folder / "key.json"
        if not key_file.exists():
            atomic_write_text(
                key_file,
                json.dumps({"version": CACHE_VERSION, **self.key}, indent=1, default=str) + "\n",
                overwrite=True,  # another process may have written the same key meanwhile
            )

    def parts(self) -> list[Path]:
        """The cache's part files (``part-*.jsonl``), sorted; none when the folder is missing."""
        if not self.folder.is_dir():
            return []
        return sorted(p for p in self.folder.glob("part-*.jsonl"))

    def load(self) -> dict[str, Entry]:
        """Every intact stored entry: sample hash -> (nll_cond, nll_prior, n_tokens, turns).
        Damaged entries are skipped, counted in :attr:`n_damaged` and in one warning."""
        out: dict[str, Entry] = {}
        damaged = 0
        for part in self.parts():
            try:
                data = part.read_bytes()
            except FileNotFoundError:  # compacted away meanwhile: its entries are elsewhere
                continue
            except OSError:
                damaged += 1
                continue
            for line in data.split(b"\n"):
                if not line.strip():
                    continue
                got = _entry(line)
                if got is None:
                    damaged += 1
                else:
                    out[got[0]] = got[1]
        self.n_damaged = damaged
        if damaged:
            warnings.warn(
                f"score cache {str(self.folder)!r}: {damaged} damaged "
                f"entr{'y' if damaged == 1 else 'ies'} ignored (those samples are scored again)",
                stacklevel=2,
            )
        return out

    def write(self, entries: Iterable[tuple[Any, ...]], *, tag: str = "0") -> Path | None:
        """Store ``(hash, nll_cond, nll_prior, n_tokens[, turns])`` entries as one new part."""
        lines = [_line(*e) for e in entries]
        if not lines or not self.writable:
            return None
        self._counter += 1
        path = self.folder / f"part-{tag}-{time.time_ns()}-{os.getpid()}-{self._counter}.jsonl"
        try:
            self._ensure_folder()
            atomic_write_text(path, "\n".join(lines) + "\n", overwrite=True)
        except OSError as e:
            # A full disk or a read-only folder must not cost the scores computed: go on.
            self.writable = False
            warnings.warn(
                f"score cache {str(self.folder)!r} cannot be written ({e.strerror or e}); "
                "scoring goes on without saving to it",
                stacklevel=2,
            )
            return None
        return path

    def compact(self) -> None:
        """Merge all parts into one (atomically written before the old parts are removed)."""
        parts = self.parts()
        if len(parts) <= 1 or not self.writable:
            return
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # damaged entries were reported when read
            entries = self.load()
        if self.write(((h, *e) for h, e in sorted(entries.items())), tag="all") is None:
            return
        for part in parts:
            with contextlib.suppress(FileNotFoundError):
                part.unlink()

    def __repr__(self) -> str:
        return f"ScoreCache({str(self.folder)!r})"


class TimedFlush:
    """Adds finished samples to a :class:`ScoreCache` while a chunk is being scored, at most
    every ``seconds``, as well as at the end of each chunk: an interruption loses at most that
    much work, not a whole chunk.  ``n_cond`` / ``n_prior``: token counts per unique sample;
    ``n_seqs``: its sequences (2, or one prior pass per turn more); the values written are
    exactly those the chunk returns (same division)."""

    def __init__(
        self,
        store: ScoreCache,
        keys: list[str],
        n_cond: Any,
        n_prior: Any,
        *,
        tag: str,
        seconds: float = 30.0,
        n_seqs: Any = None,
        turns: Any = None,
    ):
        self.n_seqs = n_seqs
        self.turns = turns  # per-turn values by sample, filled in by the scorer
        self.store, self.keys, self.tag, self.seconds = store, keys, tag, float(seconds)
        self.n_cond, self.n_prior = n_cond, n_prior
        self._last = time.monotonic()
        self._where: dict[int, int] = {}
        self._seen: dict[int, int] = {}
        self._ready: list[int] = []
        self._written: set[int] = set()

    def begin(self, chunk: list[int]) -> None:
        """Start a new chunk: ``chunk`` holds its unique-sample indices, in batch order."""
        self._where = {j: i for i, j in enumerate(chunk)}
        self._seen, self._ready, self._written = {}, [], set()

    def batch_done(self, batch: Iterable[Any], sums: Any) -> None:
        """``batch``: sequences with ``.sample`` (a unique-sample index), two per sample;
        ``sums[kind, position in chunk]``: their summed NLL."""
        for q in batch:
            self._seen[q.sample] = self._seen.get(q.sample, 0) + 1
            want = 2 if self.n_seqs is None else self.n_seqs[q.sample]
            if self._seen[q.sample] == want:
                self._ready.append(q.sample)
        if self._ready and time.monotonic() - self._last >= self.seconds:
            entries = []
            for j in self._ready:
                i = self._where[j]
                c = float(sums[0, i] / float(self.n_cond[j]))
                p = float(sums[1, i] / float(self.n_prior[j]))
                t = self.turns.get(j, ()) if self.turns is not None else ()
                entries.append((self.keys[j], c, p, int(self.n_cond[j]), t))
            self.store.write(entries, tag=self.tag)
            self._written.update(self._ready)
            self._ready = []
            self._last = time.monotonic()

    def end(
        self, chunk: list[int], nll_cond: Any, nll_prior: Any, n_tokens: Any, turns: Any = None
    ) -> None:
        """The chunk is done: add what was not added yet (values indexed by sample)."""
        rest = [
            (self.keys[j], nll_cond[j], nll_prior[j], n_tokens[j], turns[j] if turns else ())
            for j in chunk
            if j not in self._written
        ]
        self.store.write(rest, tag=self.tag)
        self._last = time.monotonic()
