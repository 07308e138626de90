"""De-quantised copies of GGUF models, made once and loaded in about a second afterwards.

Loading a ``.gguf`` file through transformers de-quantises every weight on every load (20-40 s
for the 135M embedded model on two CPU cores).  :func:`cached_gguf` does it once per file: the
float32 model and its tokenizer are saved as safetensors plus tokenizer files in a folder of
the model cache, named after the file's content fingerprint, and later loads read that folder.

Where: ``$ITERIT_MODEL_CACHE_DIR``, else ``models/`` under the score cache's default folder
(:func:`iterit.scoring.embedded_model.default_cache_dir`: ``$ITERIT_CACHE_DIR``, else
``$XDG_CACHE_HOME/iterit``, else ``~/.cache/iterit``).  Each entry is written whole into a
temporary folder and moved into place (:func:`iterit.utils.atomic.atomic_dir`); a lock file per
entry makes a second process wait for the first one's copy instead of writing its own.  The
float32 weights are the exact de-quantised values, so a cached load scores as a direct one.

Imports torch and transformers only inside :func:`cached_gguf`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path

from iterit.errors import ModelError
from iterit.scoring.embedded_model import default_cache_dir
from iterit.utils.atomic import atomic_dir

__all__ = [
    "MODEL_CACHE_ENV",
    "cached_gguf",
    "file_fingerprint",
    "model_cache_dir",
]

#: The environment variable naming the model cache folder.
MODEL_CACHE_ENV = "ITERIT_MODEL_CACHE_DIR"
#: The file that marks a complete cache entry (written last, inside the moved folder).
_MARKER = "iterit-model.json"
#: Bumped when the layout of an entry changes, so that old entries are not read.
_LAYOUT = 1


def model_cache_dir() -> Path:
    """``$ITERIT_MODEL_CACHE_DIR``, else ``models/`` under the default cache folder."""
    env = os.environ.get(MODEL_CACHE_ENV)
    return Path(env).expanduser() if env else default_cache_dir() / "models"


def file_fingerprint(path: str | os.PathLike[str]) -> str:
    """SHA-256 of the file's content (hex, 32 characters): the cache key of a model file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:32]


@contextlib.contextmanager
def _waiting_lock(lock: Path) -> Iterator[None]:
    """An exclusive lock on ``lock`` that waits for its holder (another process converting the
    same file).  The lock file stays: removing it would let a third process lock a file that
    no longer has a name."""
    try:
        import fcntl
    except ImportError:  # no advisory locks on this platform: the atomic rename still holds
        yield
        return
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _complete(entry: Path) -> bool:
    try:
        info = json.loads((entry / _MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(info, dict) and info.get("layout") == _LAYOUT


def _convert(gguf: Path, dest: Path) -> None:
    """De-quantise ``gguf`` in float32 and save the float model and its tokenizer in ``dest``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from iterit.scoring.gguf import as_float_model

    where, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(where, gguf_file=name)
    model = AutoModelForCausalLM.from_pretrained(where, gguf_file=name, dtype=torch.float32)
    as_float_model(model)  # a plain float model: save_pretrained refuses a quantized one
    model.save_pretrained(dest, safe_serialization=True)
    tokenizer.save_pretrained(dest)


def cached_gguf(gguf: str | os.PathLike[str], folder: str | os.PathLike[str] | None = None) -> Path:
    """The folder holding the de-quantised copy of the model file ``gguf`` (made now when
    missing) in the model cache ``folder`` (default: :func:`model_cache_dir`).  Load it with
    ``from_pretrained(folder)``.  A file that cannot be converted, or a cache folder that cannot
    be written, is a :class:`~iterit.errors.ModelError`."""
    gguf = Path(gguf)
    root = Path(folder) if folder is not None else model_cache_dir()
    key = file_fingerprint(gguf)
    entry = root / f"{gguf.stem}-{key}"
    if _complete(entry):
        return entry
    try:
        root.mkdir(parents=True, exist_ok=True)
        with _waiting_lock(root / f".{entry.name}.lock"):
            if _complete(entry):  # another process made it while we waited
                return entry
            with atomic_dir(entry, overwrite=True) as tmp:
                _convert(gguf, tmp)
                info = {"layout": _LAYOUT, "source": str(gguf), "sha256": key}
                (tmp / _MARKER).write_text(json.dumps(info, indent=1), encoding="utf-8")
    except OSError as e:
        raise ModelError(f"cannot write the model cache in {str(root)!r}: {e}") from None
    return entry
