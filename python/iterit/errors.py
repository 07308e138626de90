"""The exceptions iterit raises. Every one is an :class:`IteritError`; bad arguments and bad
inputs are also :class:`ValueError` (or :class:`TypeError` for wrong types), so existing
``except ValueError`` code keeps working."""

from __future__ import annotations

__all__ = [
    "CapacityError",
    "InternalError",
    "InvalidInputError",
    "IteritError",
    "ShortfallWarning",
]


class IteritError(Exception):
    """Base class of every error raised by iterit."""


class InvalidInputError(IteritError, ValueError):
    """An argument or input iterit cannot use: wrong length, out of range, malformed."""


class CapacityError(IteritError, RuntimeError):
    """The input exceeds a size limit of the implementation (e.g. more than 2**31 columns)."""


class InternalError(IteritError, RuntimeError):
    """A bug in iterit; please report it together with the input that caused it."""


class ShortfallWarning(UserWarning):
    """Fewer valid candidates than the budget: every candidate was picked, none padded."""
