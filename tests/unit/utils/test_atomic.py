"""iterit.utils.atomic: outputs appear whole or not at all, never clobbered without asking."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from iterit.utils.atomic import (
    OutputExistsError,
    OutputFolderError,
    atomic_dir,
    atomic_open,
    atomic_path,
    atomic_write_bytes,
    atomic_write_text,
    check_output,
)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".iterit-tmp-"))


def test_write_text_and_bytes(tmp_path):
    p = atomic_write_text(tmp_path / "a.txt", "héllo\n")
    assert p.read_text(encoding="utf-8") == "héllo\n"
    atomic_write_bytes(tmp_path / "b.bin", b"\x00\x01")
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    assert _leftovers(tmp_path) == []


def test_existing_output_is_refused_unless_overwrite(tmp_path):
    p = tmp_path / "out.jsonl"
    p.write_text("old\n")
    with pytest.raises(OutputExistsError, match="already exists"):
        atomic_write_text(p, "new\n")
    assert p.read_text() == "old\n"
    atomic_write_text(p, "new\n", overwrite=True)
    assert p.read_text() == "new\n"
    assert _leftovers(tmp_path) == []


def test_existing_output_is_a_file_exists_error(tmp_path):
    (tmp_path / "x").write_text("")
    with pytest.raises(FileExistsError):
        check_output(tmp_path / "x")


def test_missing_output_folder_is_created(tmp_path):
    atomic_write_text(tmp_path / "nope" / "deeper" / "out.json", "{}")
    assert (tmp_path / "nope" / "deeper" / "out.json").read_text() == "{}"
    (tmp_path / "file").write_text("")
    with pytest.raises(OutputFolderError, match=r"in the way|not a folder"):
        atomic_write_text(tmp_path / "file" / "out.json", "{}")
    assert isinstance(OutputFolderError(), FileNotFoundError)


def test_folder_in_the_way_is_refused_even_with_overwrite(tmp_path):
    (tmp_path / "d").mkdir()
    with pytest.raises(OutputExistsError, match="is a folder"):
        atomic_write_text(tmp_path / "d", "x", overwrite=True)


@pytest.mark.parametrize("exc", [RuntimeError("boom"), KeyboardInterrupt(), SystemExit(143)])
def test_interrupted_write_leaves_nothing(tmp_path, exc):
    target = tmp_path / "out.jsonl"
    with pytest.raises(type(exc)), atomic_open(target, "w") as f:
        f.write("partial line\n" * 1000)
        raise exc
    assert not target.exists()
    assert _leftovers(tmp_path) == []


def test_interrupted_overwrite_keeps_the_old_file(tmp_path):
    target = tmp_path / "out.jsonl"
    target.write_text("complete old content\n")
    with pytest.raises(KeyboardInterrupt), atomic_open(target, "w", overwrite=True) as f:
        f.write("half of the new")
        raise KeyboardInterrupt
    assert target.read_text() == "complete old content\n"
    assert _leftovers(tmp_path) == []


def test_atomic_path_keeps_the_suffix_for_writers_that_need_it(tmp_path):
    target = tmp_path / "t.parquet"
    with atomic_path(target) as tmp:
        assert tmp.suffix == ".parquet" and tmp.parent == tmp_path
        tmp.write_bytes(b"PAR1")
    assert target.read_bytes() == b"PAR1"


def test_output_appearing_meanwhile_is_not_clobbered(tmp_path):
    target = tmp_path / "race.txt"
    with pytest.raises(OutputExistsError), atomic_open(target, "w") as f:
        f.write("mine")
        target.write_text("someone else's")
    assert target.read_text() == "someone else's"
    assert _leftovers(tmp_path) == []


def test_killed_process_never_leaves_a_partial_output(tmp_path):
    # SIGKILL cannot be caught: the temporary file may stay, but the output never exists.
    target = tmp_path / "out.jsonl"
    code = textwrap.dedent(
        f"""
        import os, signal
        from iterit.utils.atomic import atomic_open
        with atomic_open({str(target)!r}, "w") as f:
            f.write("x" * 100000)
            f.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert not target.exists()


def test_sigterm_during_cli_write_cleans_up(tmp_path):
    # The CLI turns SIGTERM into SystemExit, so finally blocks remove the temporary file.
    target = tmp_path / "out.jsonl"
    code = textwrap.dedent(
        f"""
        import os, signal, time
        from iterit.cli import _sigterm
        from iterit.utils.atomic import atomic_open
        signal.signal(signal.SIGTERM, _sigterm)
        with atomic_open({str(target)!r}, "w") as f:
            f.write("x" * 1000)
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, proc.stderr
    assert not target.exists()
    assert _leftovers(tmp_path) == []


def test_atomic_dir(tmp_path):
    out = tmp_path / "report"
    with atomic_dir(out) as tmp:
        (tmp / "a.txt").write_text("1")
    assert (out / "a.txt").read_text() == "1"
    with pytest.raises(OutputExistsError), atomic_dir(out) as tmp:
        pass
    with pytest.raises(KeyboardInterrupt), atomic_dir(out, overwrite=True) as tmp:
        (tmp / "b.txt").write_text("2")
        raise KeyboardInterrupt
    assert sorted(os.listdir(out)) == ["a.txt"]
    with atomic_dir(out, overwrite=True) as tmp:
        (tmp / "b.txt").write_text("2")
    assert sorted(os.listdir(out)) == ["b.txt"]
    assert _leftovers(tmp_path) == []
    with atomic_dir(tmp_path / "no" / "r") as tmp:
        (tmp / "c.txt").write_text("3")
    assert sorted(os.listdir(tmp_path / "no" / "r")) == ["c.txt"]


def test_bad_mode(tmp_path):
    with pytest.raises(ValueError, match="modes"), atomic_open(tmp_path / "x", "a"):
        pass
