"""Output sets written as one transaction, the output lock, and the same-file refusal
(:mod:`iterit.utils.atomic`, docs/faults.md)."""

from __future__ import annotations

import errno
import os

import pytest

import iterit.utils.atomic as atomic
from iterit.errors import InvalidInputError, OutputExistsError
from iterit.utils.atomic import atomic_set, output_lock, refuse_same_file


def _names(folder):
    return sorted(os.listdir(folder))


def _old_set(tmp_path):
    paths = [tmp_path / "out.jsonl", tmp_path / "out.jsonl.scores.jsonl", tmp_path / "out.jsonl.m"]
    for i, p in enumerate(paths):
        p.write_text(f"old {i}\n")
    return paths


def _fill(tmps, text="new"):
    for i, t in enumerate(tmps):
        t.write_text(f"{text} {i}\n")


def test_a_set_is_written_whole_with_the_umask_mode(tmp_path):
    paths = [tmp_path / "a" / "x.jsonl", tmp_path / "a" / "x.jsonl.meta.json"]
    old = os.umask(0o027)
    try:
        with atomic_set(paths) as tmps:
            assert [t.suffix for t in tmps] == [".jsonl", ".json"]
            _fill(tmps)
    finally:
        os.umask(old)
    assert [p.read_text() for p in paths] == ["new 0\n", "new 1\n"]
    assert all(p.stat().st_mode & 0o777 == 0o640 for p in paths)
    assert _names(tmp_path / "a") == ["x.jsonl", "x.jsonl.meta.json"]


@pytest.mark.parametrize("fault", [OSError(errno.ENOSPC, "full"), KeyboardInterrupt()])
def test_failure_while_writing_keeps_the_previous_set(tmp_path, fault):
    paths = _old_set(tmp_path)
    with pytest.raises(type(fault)), atomic_set(paths, overwrite=True) as tmps:
        _fill(tmps)
        raise fault
    assert [p.read_text() for p in paths] == ["old 0\n", "old 1\n", "old 2\n"]
    assert _names(tmp_path) == sorted(p.name for p in paths)


@pytest.mark.parametrize("fail_at", [0, 1, 2])
def test_failure_while_moving_into_place_puts_the_previous_set_back(tmp_path, monkeypatch, fail_at):
    paths = _old_set(tmp_path)
    real, calls = os.replace, {"n": 0}

    def replace(src, dst):
        if str(src).startswith(str(tmp_path / ".iterit-tmp-")) and ".old." not in str(src):
            if calls["n"] == fail_at:
                raise OSError(errno.ENOSPC, "No space left on device")
            calls["n"] += 1
        return real(src, dst)

    monkeypatch.setattr(atomic.os, "replace", replace)
    with pytest.raises(OSError, match="No space"), atomic_set(paths, overwrite=True) as tmps:
        _fill(tmps)
    assert [p.read_text() for p in paths] == ["old 0\n", "old 1\n", "old 2\n"]
    assert _names(tmp_path) == sorted(p.name for p in paths)


def test_failure_of_a_new_set_leaves_nothing(tmp_path, monkeypatch):
    paths = [tmp_path / "n.json", tmp_path / "n.json.meta.json"]
    real = os.replace

    def replace(src, dst):
        if str(dst) == str(paths[1]):
            raise OSError(errno.EIO, "I/O error")
        return real(src, dst)

    monkeypatch.setattr(atomic.os, "replace", replace)
    with pytest.raises(OSError), atomic_set(paths) as tmps:
        _fill(tmps)
    assert _names(tmp_path) == []


def test_existing_outputs_need_overwrite(tmp_path):
    paths = _old_set(tmp_path)
    with pytest.raises(OutputExistsError), atomic_set(paths) as tmps:
        _fill(tmps)
    with atomic_set(paths, overwrite=True) as tmps:
        _fill(tmps)
    assert [p.read_text() for p in paths] == ["new 0\n", "new 1\n", "new 2\n"]
    assert _names(tmp_path) == sorted(p.name for p in paths)


def test_a_second_writer_fails_instead_of_mixing(tmp_path):
    paths = _old_set(tmp_path)
    with atomic_set(paths, overwrite=True) as tmps:
        _fill(tmps, "first")
        with (
            pytest.raises(OutputExistsError, match="another run is writing"),
            atomic_set(paths, overwrite=True) as other,
        ):
            _fill(other, "second")
    assert [p.read_text() for p in paths] == ["first 0\n", "first 1\n", "first 2\n"]
    assert _names(tmp_path) == sorted(p.name for p in paths)  # the lock file is gone
    with output_lock(paths[0]), pytest.raises(OutputExistsError), output_lock(paths[0]):
        pass
    with output_lock(paths[0]):  # released: can be taken again
        pass


def test_the_output_may_not_be_the_input(tmp_path):
    data = tmp_path / "d.jsonl"
    data.write_text("{}\n")
    (tmp_path / "sub").mkdir()
    os.symlink(data, tmp_path / "link.jsonl")
    for out in (data, tmp_path / "sub" / ".." / "d.jsonl", tmp_path / "link.jsonl"):
        with pytest.raises(InvalidInputError, match="is the input file"):
            refuse_same_file(out, [None, data])
    refuse_same_file(tmp_path / "other.jsonl", [data, None])
    os.link(data, tmp_path / "hard.jsonl")
    with pytest.raises(InvalidInputError):
        refuse_same_file(tmp_path / "hard.jsonl", [data])
