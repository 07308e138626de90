"""Optional dependencies: a missing one becomes a :class:`~iterit.errors.MissingDependencyError`
(an ``ImportError``) that says which extra to install, instead of a bare
``ModuleNotFoundError``. The extras are those of pyproject.toml: ``torch`` (torch, transformers,
accelerate, ...), ``cli``, ``train`` (the ``torch`` and ``cli`` extras with trl and datasets).

A module that needs an extra imports it inside :func:`requires_extra`::

    with requires_extra("torch"):
        import torch

and code that needs one module on the spot calls :func:`require`.  A package that no extra
installs (scipy, lm-eval, deepspeed) is named by :func:`package_hint`.  Every ``pip install``
line iterit prints is written here.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

from iterit.errors import MissingDependencyError

__all__ = [
    "install_hint",
    "missing_package",
    "package_hint",
    "require",
    "require_package",
    "requires_extra",
]

_WHO = "this part of iterit"


def install_hint(extra: str) -> str:
    """The pip command line that installs ``extra``."""
    return f"pip install 'iterit[{extra}]'"


def package_hint(package: str) -> str:
    """The pip command line that installs ``package``, which no extra of iterit installs."""
    return f"pip install {package}"


def missing_package(module: str, hint: str, purpose: str = _WHO) -> MissingDependencyError:
    """The error for ``module`` missing: ``purpose`` (what needs it) and the ``hint`` line
    (:func:`install_hint` or :func:`package_hint`)."""
    return MissingDependencyError(
        f"{purpose} needs {module}, which is not installed; install it with {hint}"
    )


def _missing(error: ModuleNotFoundError, extra: str, purpose: str) -> MissingDependencyError:
    name = error.name or str(error)
    return missing_package(name.split(".")[0], install_hint(extra), purpose)


def _is_own(error: ModuleNotFoundError) -> bool:
    # A missing iterit module is a broken installation, not a missing extra: left as it is.
    return (error.name or "").split(".")[0] == "iterit"


@contextmanager
def requires_extra(extra: str, purpose: str = _WHO) -> Iterator[None]:
    """Imports inside the block that find a module missing raise MissingDependencyError naming
    ``extra`` (and ``purpose``, what needs it); any other import error passes through
    unchanged."""
    try:
        yield
    except ModuleNotFoundError as e:
        if _is_own(e):
            raise
        raise _missing(e, extra, purpose) from e


def require(module: str, extra: str, purpose: str = _WHO) -> ModuleType:
    """Import ``module`` and return it; if it (or something it needs) is not installed, raise
    MissingDependencyError naming ``extra``."""
    with requires_extra(extra, purpose):
        return importlib.import_module(module)


def require_package(module: str, package: str, purpose: str = _WHO) -> ModuleType:
    """Import ``module`` (installed by ``package``, outside iterit's extras) and return it, or
    raise MissingDependencyError with the line that installs ``package``."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as e:
        if _is_own(e):
            raise
        raise missing_package(module.split(".")[0], package_hint(package), purpose) from e
