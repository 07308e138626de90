"""iterit.errors: every error iterit raises is an IteritError, and also the builtin it refines."""

from __future__ import annotations

import pytest

import iterit
import iterit.errors


def test_every_error_class_is_exported_and_an_iterit_error():
    for name in iterit.errors.__all__:
        cls = getattr(iterit.errors, name)
        assert getattr(iterit, name) is cls
        if name != "ShortfallWarning":
            assert issubclass(cls, iterit.IteritError), name


@pytest.mark.parametrize(
    ("name", "builtin"),
    [
        ("InvalidInputError", ValueError),
        ("InvalidTypeError", TypeError),
        ("ConfigError", ValueError),
        ("DataError", ValueError),
        ("ScoresFileError", ValueError),
        ("MissingDependencyError", ImportError),
        ("OutputExistsError", FileExistsError),
        ("OutputFolderError", FileNotFoundError),
        ("CheckpointError", RuntimeError),
        ("ModelError", RuntimeError),
    ],
)
def test_errors_refine_the_builtins(name, builtin):
    assert issubclass(getattr(iterit.errors, name), builtin)


def test_a_wrong_type_is_caught_both_ways():
    with pytest.raises(iterit.IteritError):
        iterit.select([1, 2], None, 1)
    with pytest.raises(TypeError, match=r"texts\[0\] is int") as info:
        iterit.select([1, 2], None, 1)
    assert isinstance(info.value, iterit.InvalidTypeError)


def test_data_error_says_where():
    e = iterit.DataError("bad", path="d.jsonl", record=3, line=4, field="output")
    assert str(e) == "d.jsonl: record 3 (line 4): bad" and e.field == "output"
