"""Atomic output files: a reader sees either the old file, no file, or the whole new file.

Every writer in iterit goes through this module.  The new content is written to a temporary
file in the destination folder (so the final rename never crosses a file system), flushed and
fsynced, then moved into place with :func:`os.replace` (or, when clobbering is not allowed, with
a hard link that fails if the destination appeared meanwhile).  When anything goes wrong before
that, including ``KeyboardInterrupt`` and ``SystemExit``, the temporary file is removed, so an
interrupted run never leaves a partial output file behind.

Existing outputs are refused unless ``overwrite=True`` (:class:`OutputExistsError`); a missing
destination folder is created (parents included).  Files get the normal mode under the umask
(``mkstemp`` alone would give 0600).

A set of files that belong together (a selection and its sidecars) is written with
:func:`atomic_set`: every new file is written and synced first, then all are moved into place;
the previous files are kept aside until the last rename, so on any failure or signal the
previous set is restored whole.  :func:`output_lock` makes a second writer to the same output
fail clearly instead of mixing two sets.  See docs/faults.md.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any, TypeVar

from iterit.errors import InvalidInputError, OutputExistsError, OutputFolderError

__all__ = [
    "OVERWRITE_HINT",
    "OutputExistsError",
    "OutputFolderError",
    "atomic_dir",
    "atomic_open",
    "atomic_path",
    "atomic_set",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_output",
    "output_lock",
    "refuse_same_file",
    "run_folder_lock",
    "with_run_folder_lock",
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
    _make_folder(parent)
    if path.is_dir() and not path.is_symlink():
        raise OutputExistsError(errno.EISDIR, f"{str(path)!r} is a folder, not a file")
    if (path.exists() or path.is_symlink()) and not overwrite:
        raise OutputExistsError(errno.EEXIST, _already_exists(path))
    return path


def _make_folder(folder: Path) -> None:
    """Create ``folder`` (parents included) when missing; a file in the way is an error."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise OutputFolderError(errno.ENOTDIR, f"{str(folder)!r} is not a folder") from None
    except NotADirectoryError:
        raise OutputFolderError(
            errno.ENOTDIR, f"cannot create the output folder {str(folder)!r}: a file is in the way"
        ) from None
    if not folder.is_dir():
        raise OutputFolderError(errno.ENOTDIR, f"{str(folder)!r} is not a folder")


def _umask_mode() -> int:
    # The mode a plain open() would give a new file; reading the umask means setting it.
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


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
        with contextlib.suppress(OSError):
            os.chmod(tmp, _umask_mode())
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
    _make_folder(parent)
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


def refuse_same_file(
    output: str | os.PathLike[str], inputs: Sequence[str | os.PathLike[str] | None]
) -> None:
    """Refuse an ``output`` that is one of the ``inputs`` (the same file, however spelled):
    replacing it would destroy the data being read, whatever ``overwrite`` says."""
    out = Path(output)
    for given in inputs:
        if given is None:
            continue
        src = Path(given)
        same = out.resolve() == src.resolve()
        if not same and out.exists() and src.exists():
            with contextlib.suppress(OSError):
                same = os.path.samefile(out, src)
        if same:
            raise InvalidInputError(
                f"the output {str(out)!r} is the input file {str(src)!r}: write to another file"
            )


def _lock_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.iterit-lock")


@contextlib.contextmanager
def output_lock(path: str | os.PathLike[str]) -> Iterator[None]:
    """Hold an exclusive lock on the output ``path`` (a hidden ``.NAME.iterit-lock`` beside it,
    removed on release) for as long as the block runs; a second writer fails at once with
    :class:`OutputExistsError` instead of mixing its files with ours."""
    try:
        import fcntl
    except ImportError:  # no advisory locks on this platform: no lock
        yield
        return
    lock = _lock_name(Path(path))
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputExistsError(
                errno.EBUSY, f"another run is writing {str(path)!r} right now (try again later)"
            ) from None
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False  # the previous holder removed it between our open and our lock
        if same:
            break
        os.close(fd)
    try:
        yield
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock)  # while still locked, so nobody else locks a removed file
        os.close(fd)


@contextlib.contextmanager
def run_folder_lock(folder: str | os.PathLike[str]) -> Iterator[Path]:
    """Hold :func:`output_lock` on a run's output ``folder`` (created, parents included) for
    the whole run, so that a second run into it fails at once instead of replacing the first
    one's checkpoints.  Under a launcher the main process (``RANK`` 0) holds it for all of
    them.  The lock is an advisory ``flock``: the lock file of a killed run stays behind but
    locks nothing, since the kernel drops a dead process's locks (docs/faults.md)."""
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    if os.environ.get("RANK", "0") != "0":
        yield path
        return
    with output_lock(path):
        yield path


_F = TypeVar("_F", bound=Callable[..., Any])


def with_run_folder_lock(folder_of: Callable[..., Any]) -> Callable[[_F], _F]:
    """Decorate a run's entry point so that it holds :func:`run_folder_lock` on
    ``folder_of(*args, **kwargs)`` (its output folder) while it runs."""

    def decorate(fn: _F) -> _F:
        @functools.wraps(fn)
        def locked(*args: Any, **kwargs: Any) -> Any:
            with run_folder_lock(folder_of(*args, **kwargs)):
                return fn(*args, **kwargs)

        return locked  # type: ignore[return-value]

    return decorate


@contextlib.contextmanager
def _signals_deferred() -> Iterator[None]:
    # Ctrl-C and SIGTERM wait until the renames are done (or undone): the set is never mixed.
    import signal

    blocked = {signal.SIGINT, signal.SIGTERM}
    try:
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, blocked)
    except (AttributeError, OSError, ValueError):
        yield
        return
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


def _publish_set(tmps: list[Path], dests: list[Path], overwrite: bool) -> None:
    """Move every ``tmps[i]`` to ``dests[i]``; on any failure put the previous files back."""
    backups: list[Path | None] = []
    done: list[int] = []
    try:
        for dest in dests:
            if dest.exists() or dest.is_symlink():
                if not overwrite:
                    raise OutputExistsError(errno.EEXIST, _already_exists(dest))
                fd, name = tempfile.mkstemp(
                    prefix=_TMP_PREFIX + dest.name + ".old.", dir=dest.parent
                )
                os.close(fd)
                if not _try_link(dest, Path(name)):
                    os.replace(dest, name)
                backups.append(Path(name))
            else:
                backups.append(None)
        for i, (tmp, dest) in enumerate(zip(tmps, dests, strict=True)):
            os.replace(tmp, dest)
            done.append(i)
    except BaseException:
        for i, (dest, backup) in enumerate(zip(dests, backups, strict=False)):
            with contextlib.suppress(OSError):
                if backup is not None:
                    os.replace(backup, dest)
                elif i in done:
                    dest.unlink()
        raise
    finally:
        for backup in backups:
            if backup is not None:
                with contextlib.suppress(FileNotFoundError):
                    backup.unlink()


def _try_link(src: Path, backup: Path) -> bool:
    """Make ``backup`` a second name of ``src`` (``src`` stays in place); False when the file
    system has no hard links (the caller then renames ``src`` aside)."""
    try:
        backup.unlink()
        os.link(src, backup)
    except OSError:
        return False
    return True


@contextlib.contextmanager
def atomic_set(
    paths: Sequence[str | os.PathLike[str]], *, overwrite: bool = False
) -> Iterator[list[Path]]:
    """Yield one temporary path per output in ``paths`` (same suffixes) to write; on normal
    exit all are synced and moved into place together, the previous files kept aside until the
    last rename succeeded.  On any exception or signal (SIGINT/SIGTERM) the temporary files
    are removed and the previous set is left (or put back) whole.  The first path is locked
    for the whole block (:func:`output_lock`)."""
    dests = [check_output(p, overwrite=overwrite) for p in paths]
    with output_lock(dests[0]):
        tmps: list[Path] = []
        try:
            mode = _umask_mode()
            for dest in dests:
                fd, name = tempfile.mkstemp(
                    prefix=_TMP_PREFIX + dest.name + ".", suffix=dest.suffix, dir=dest.parent
                )
                os.close(fd)
                tmps.append(Path(name))
                with contextlib.suppress(OSError):
                    os.chmod(name, mode)
            yield list(tmps)
            for tmp in tmps:
                with open(tmp, "rb+") as f:
                    os.fsync(f.fileno())
            with _signals_deferred():
                _publish_set(tmps, dests, overwrite)
            for folder in {d.parent for d in dests}:
                _fsync_dir(folder)
        finally:
            for tmp in tmps:
                with contextlib.suppress(FileNotFoundError):
                    tmp.unlink()
