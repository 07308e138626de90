"""The exceptions iterit raises, in one place. Every one is an :class:`IteritError`; bad
arguments and bad inputs are also :class:`ValueError` (or :class:`TypeError` for wrong types,
:class:`FileExistsError` for an existing output, ...), so existing ``except ValueError`` code
keeps working. Messages name the argument, file, record or field, never a command-line flag:
the command line adds its own words where it catches them (``iterit.cli``)."""

from __future__ import annotations

import os

__all__ = [
    "CapacityError",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "InternalError",
    "InvalidInputError",
    "InvalidTypeError",
    "IteritError",
    "MissingDependencyError",
    "ModelError",
    "OutputExistsError",
    "OutputFolderError",
    "ScoresFileError",
    "ShortfallWarning",
]


class IteritError(Exception):
    """Base class of every error raised by iterit."""


class InvalidInputError(IteritError, ValueError):
    """An argument or input iterit cannot use: wrong length, out of range, malformed."""


class InvalidTypeError(IteritError, TypeError):
    """An argument of the wrong type; the message names its position (``texts[3] is bytes``)."""


class ConfigError(InvalidInputError):
    """A setting out of range or not among its choices; the message names the setting."""


class DataError(InvalidInputError):
    """A problem with an input file or record; the message names the file, record and field.

    ``path``, ``record``, ``line`` and ``field`` say where, when known."""

    def __init__(
        self,
        message: str,
        *,
        path: str | os.PathLike[str] | None = None,
        record: int | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        where = []
        if path is not None:
            where.append(str(path))
        if record is not None:
            where.append(f"record {record}" + (f" (line {line})" if line is not None else ""))
        elif line is not None:
            where.append(f"line {line}")
        super().__init__(": ".join([*where, message]))
        self.path = None if path is None else str(path)
        self.record = record
        self.line = line
        self.field = field


class ScoresFileError(DataError):
    """A scores file that cannot be used: unreadable, missing a column, or for other data."""


class CheckpointError(IteritError, RuntimeError):
    """A training checkpoint that cannot be resumed: damaged, or made with other settings."""


class ModelError(IteritError, RuntimeError):
    """The model or tokenizer cannot be loaded or run for scoring."""


class MissingDependencyError(IteritError, ImportError):
    """An optional dependency is not installed; the message gives the ``pip install`` line."""


class OutputExistsError(IteritError, FileExistsError):
    """The output exists and ``overwrite`` was not given."""


class OutputFolderError(IteritError, FileNotFoundError):
    """The folder that should hold the output cannot be used."""


class CapacityError(IteritError, RuntimeError):
    """The input exceeds a size limit of the implementation (e.g. more than 2**31 columns)."""


class InternalError(IteritError, RuntimeError):
    """A bug in iterit; please report it together with the input that caused it."""


class ShortfallWarning(UserWarning):
    """Fewer valid candidates than the budget: every candidate was picked, none padded."""
