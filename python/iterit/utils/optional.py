"""Optional dependencies: a missing one becomes a :class:`~iterit.errors.MissingDependencyError`
(an ``ImportError``) that says which extra to install, instead of a bare
``ModuleNotFoundError``. The extras are those of pyproject.toml: ``torch`` (torch, transformers,
accelerate, ...), ``cli``, ``train`` (the ``torch`` and ``cli`` extras with trl and datasets).

A module that needs an extra imports it inside :func:`requires_extra`::

    with requires_extra("torch"):
        import torch

and code that needs one module on the spot calls :func:`require`.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

from iterit.errors import MissingDependencyError

__all__ = ["install_hint", "require", "requires_extra"]


def install_hint(extra: str) -> str:
    """The pip command line that installs ``extra``."""
    return f"pip install 'iterit[{extra}]'"


def _missing(error: ModuleNotFoundError, extra: str) -> MissingDependencyError:
    name = error.name or str(error)
    return MissingDependencyError(
        f"this part of iterit needs {name.split('.')[0]}, which is not installed; install it "
        f"with {install_hint(extra)}"
    )


def _is_own(error: ModuleNotFoundError) -> bool:
    # A missing iterit module is a broken installation, not a missing extra: left as it is.
    return (error.name or "").split(".")[0] == "iterit"


@contextmanager
def requires_extra(extra: str) -> Iterator[None]:
    """Imports inside the block that find a module missing raise MissingDependencyError naming
    ``extra``; any other import error passes through unchanged."""
    try:
        yield
    except ModuleNotFoundError as e:
        if _is_own(e):
            raise
        raise _missing(e, extra) from e


def require(module: str, extra: str) -> ModuleType:
    """Import ``module`` and return it; if it (or something it needs) is not installed, raise
    MissingDependencyError naming ``extra``."""
    with requires_extra(extra):
        return importlib.import_module(module)
