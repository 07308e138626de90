"""Atomic output files: a reader sees either the old file, no file, or the whole new file.

Every writer in iterit goes through this module.  The new content is written to a temporary
file in the destination folder (so the final rename never crosses a file system), flushed and
fsynced, then moved into place with :func:`os.replace` (or, when clobbering is not allowed, with
a hard link that fails if the destination appeared meanwhile).  When anything goes wrong before
that, including ``KeyboardInterrupt`` and ``SystemExit``, the temporary file is removed, so an
interrupted run never leaves a partial output file behind.

Existing outputs are refused unless ``overwrite=True`` (:class:`OutputExistsError`), and a
missing destination folder is an error (:class:`OutputFolderError`), never created silently.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from iterit.errors import InvalidInputError, OutputExistsError, OutputFolderError

__all__ = [
    "OVERWRITE_HINT",
    "OutputExistsError",
    "OutputFolderError",
    "atomic_dir",
    "atomic_open",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_output",
]

_TMP_PREFIX = ".iterit-tmp-"
#: How an "already exists" message ends; a caller with its own way to allow overwriting (a
#: command-line flag) replaces this text with its own.
OVERWRITE_HINT = "(pass overwrite=True to replace it)"


def _already_exists(path: Path) -> str:
    return f"{str(path)!r} already exists {OVERWRITE_HINT}"


def check_output(path: str | os.PathLike[str], *, overwrite: bool = False) -> Path:
    """Check, before doing any work, that ``path`` can be written: its folder exists and it does
    not exist yet (or ``overwrite`` is true).  Returns ``path`` as a :class:`~pathlib.Path`."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.exists():
        raise OutputFolderError(
            errno.ENOENT, f"output folder {str(parent)!r} does not exist (create it first)"
        )
    if not parent.is_dir():
        raise OutputFolderError(errno.ENOTDIR, f"{str(parent)!r} is not a folder")
    if path.is_dir() and not path.is_symlink():
        raise OutputExistsError(errno.EISDIR, f"{str(path)!r} is a folder, not a file")
    if (path.exists() or path.is_symlink()) and not overwrite:
        raise OutputExistsError(errno.EEXIST, _already_exists(path))
    return path


def _fsync_dir(folder: Path) -> None:
    # Make the rename itself durable; not every platform can open a folder.
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _publish(tmp: Path, path: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        # A hard link fails when the destination exists: no clobbering, even in a race.
        os.link(tmp, path)
    except FileExistsError:
        raise OutputExistsError(errno.EEXIST, _already_exists(path)) from None
    except OSError:
        # File systems without hard links: check, then rename.
        if path.exists():
            raise OutputExistsError(errno.EEXIST, _already_exists(path)) from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


@contextlib.contextmanager
def atomic_path(
    path: str | os.PathLike[str], *, overwrite: bool = False, suffix: str | None = None
) -> Iterator[Path]:
    """Yield a temporary path next to ``path`` for a writer that wants a file name (pyarrow,
    matplotlib); on normal exit it is fsynced and moved to ``path``, on any exception removed.

    The temporary name keeps ``path``'s suffix (or ``suffix``) so that writers choosing a format
    by extension still work."""
    path = check_output(path, overwrite=overwrite)
    fd, name = tempfile.mkstemp(
        prefix=_TMP_PREFIX + path.name + ".",
        suffix=path.suffix if suffix is None else suffix,
        dir=path.parent,
    )
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        _publish(tmp, path, overwrite)
        _fsync_dir(path.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


@contextlib.contextmanager
def atomic_open(
    path: str | os.PathLike[str],
    mode: str = "w",
    *,
    overwrite: bool = False,
    encoding: str | None = "utf-8",
    newline: str | None = None,
) -> Iterator[IO[Any]]:
    """Open a temporary file next to ``path`` for writing (``"w"`` or ``"wb"``); on normal exit
    it is flushed, fsynced and moved to ``path``; on any exception it is removed."""
    if mode not in ("w", "wb", "wt"):
        raise InvalidInputError(f"atomic_open supports modes 'w' and 'wb', not {mode!r}")
    binary = "b" in mode
    with atomic_path(path, overwrite=overwrite) as tmp:
        kwargs: dict[str, Any] = {} if binary else {"encoding": encoding, "newline": newline}
        with open(tmp, mode, **kwargs) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())


def atomic_write_text(
    path: str | os.PathLike[str], text: str, *, overwrite: bool = False, encoding: str = "utf-8"
) -> Path:
    """Write ``text`` to ``path`` atomically; returns ``path``."""
    with atomic_open(path, "w", overwrite=overwrite, encoding=encoding) as f:
        f.write(text)
    return Path(path)


def atomic_write_bytes(
    path: str | os.PathLike[str], data: bytes, *, overwrite: bool = False
) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path``."""
    with atomic_open(path, "wb", overwrite=overwrite) as f:
        f.write(data)
    return Path(path)


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike[str], *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder next to ``path`` to fill; on normal exit it becomes ``path``.

    A folder cannot be swapped in one system call, so with ``overwrite`` the old folder is first
    renamed aside, the new one renamed into place, then the old one deleted: at every moment
    ``path`` is either the complete old folder, absent for an instant, or the complete new one.
    On any exception the temporary folder is removed and the old one is left untouched."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise OutputFolderError(
            errno.ENOENT, f"output folder {str(parent)!r} does not exist (create it first)"
        )
    if (path.exists() or path.is_symlink()) and not overwrite:
        raise OutputExistsError(errno.EEXIST, _already_exists(path))
    tmp = Path(tempfile.mkdtemp(prefix=_TMP_PREFIX + path.name + ".", dir=parent))
    old: Path | None = None
    try:
        yield tmp
        for root, _dirs, files in os.walk(tmp):
            for name in files:
                with open(os.path.join(root, name), "rb") as f:
                    os.fsync(f.fileno())
        if path.exists() or path.is_symlink():
            if not overwrite:
                raise OutputExistsError(
                    errno.EEXIST,
                    _already_exists(path),
                )
            old = Path(tempfile.mkdtemp(prefix=_TMP_PREFIX + path.name + ".old.", dir=parent))
            old.rmdir()
            os.replace(path, old)
        try:
            os.replace(tmp, path)
        except BaseException:
            if old is not None:
                os.replace(old, path)
                old = None
            raise
        _fsync_dir(parent)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            if old.is_dir() and not old.is_symlink():
                shutil.rmtree(old, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    old.unlink()
