"""Every public function, class, method and property of a module the API reference documents
(``::: name`` in docs/api/*.md) has a docstring of its own, so the reference has no empty entry.

Public: the names in the module's ``__all__``, else those it defines without a leading
underscore; in a class, the functions and properties it defines without a leading underscore.
A directive naming a class checks that class; ``members: [...]`` in its options limits the
check to those names, as it limits the page.
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
API_PAGES = sorted((ROOT / "docs" / "api").glob("*.md"))
_DIRECTIVE = re.compile(r"^:::\s*([\w.]+)\s*$")
_MEMBERS = re.compile(r"^\s+members:\s*\[(.*)\]\s*$")

if not API_PAGES:  # the suite copied out of the source tree (.ci/wheel) has no docs/
    pytest.skip("docs/api is not beside the tests", allow_module_level=True)


def directives() -> list[tuple[str, tuple[str, ...] | None]]:
    """Each ``::: name`` of the API pages, with the names of its ``members:`` option."""
    found: list[tuple[str, tuple[str, ...] | None]] = []
    for page in API_PAGES:
        for line in page.read_text(encoding="utf-8").splitlines():
            m = _DIRECTIVE.match(line)
            if m:
                found.append((m.group(1), None))
                continue
            members = _MEMBERS.match(line)
            if members and found:
                names = tuple(n.strip() for n in members.group(1).split(",") if n.strip())
                found[-1] = (found[-1][0], names)
    return found


def resolve(dotted: str) -> Any:
    """The module, or the attribute of the longest importable module prefix, named ``dotted``."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError as e:
            if e.name and not dotted.startswith(e.name):
                pytest.skip(f"{dotted} needs {e.name}, not installed")
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj
    raise AssertionError(f"{dotted}: nothing to import")


def own_doc(obj: Any) -> str:
    """``obj``'s own docstring (not a base class's, nor the one ``dataclass`` makes up)."""
    if inspect.isclass(obj):
        doc = obj.__dict__.get("__doc__") or ""
        if doc.startswith(f"{obj.__name__}("):  # dataclass' made-up signature
            return ""
        return doc.strip()
    if isinstance(obj, property):
        obj = obj.fget
    return (getattr(obj, "__doc__", None) or "").strip()


def module_names(module: ModuleType) -> list[str]:
    """The public names of ``module``: ``__all__``, else what it defines without ``_``."""
    names = getattr(module, "__all__", None)
    if names is not None:
        return list(names)
    return [
        n
        for n, v in vars(module).items()
        if not n.startswith("_") and getattr(v, "__module__", None) == module.__name__
    ]


def missing_in_class(cls: type, where: str) -> list[str]:
    """``where.Name.method`` for each public method or property of ``cls`` without a docstring."""
    missing = []
    for name, member in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(member, (staticmethod, classmethod)):
            member = member.__func__
        if (inspect.isfunction(member) or isinstance(member, property)) and not own_doc(member):
            missing.append(f"{where}.{name}")
    return missing


def missing_docstrings(obj: Any, where: str, members: tuple[str, ...] | None) -> list[str]:
    """What :func:`own_doc` finds empty in ``obj`` (a module or a class) and its public names."""
    if inspect.isclass(obj):
        return ([] if own_doc(obj) else [where]) + missing_in_class(obj, where)
    missing = [] if own_doc(obj) else [where]
    for name in members or module_names(obj):
        value = getattr(obj, name)
        if inspect.isclass(value):
            missing += missing_docstrings(value, f"{where}.{name}", None)
        elif inspect.isfunction(value) and not own_doc(value):
            missing.append(f"{where}.{name}")
    return missing


@pytest.mark.parametrize(("dotted", "members"), directives(), ids=[d for d, _ in directives()])
def test_documented_names_have_docstrings(dotted: str, members: tuple[str, ...] | None) -> None:
    missing = missing_docstrings(resolve(dotted), dotted, members)
    assert not missing, "public names without a docstring:\n" + "\n".join(missing)


def test_the_check_finds_a_missing_docstring() -> None:
    """The walk itself: an undocumented function, method, property and dataclass are found."""
    import dataclasses

    mod = ModuleType("fake")
    mod.__doc__ = "A module."

    @dataclasses.dataclass
    class Record:
        x: int

        def method(self) -> int:
            return self.x

        @property
        def twice(self) -> int:
            return 2 * self.x

    def helper() -> None:
        pass

    for v in (Record, helper):
        v.__module__ = "fake"
    mod.Record, mod.helper = Record, helper
    found = missing_docstrings(mod, "fake", None)
    assert found == ["fake.Record", "fake.Record.method", "fake.Record.twice", "fake.helper"]
    assert directives(), "no ::: directive found in docs/api"
