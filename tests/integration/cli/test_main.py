"""The ``iterit`` command line as a whole: help, entry points, install hints, and the one
place where errors become a single ``Error: ...`` line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers.cli import EXAMPLE, fail, run


def test_help():
    out = run("--help").output
    for cmd in ("score", "select", "report"):
        assert cmd in out
        assert "Usage:" in run(cmd, "--help").output
    assert "--pool-factor" in run("select", "--help").output


def test_without_click_main_says_how_to_install():
    code = "import sys; sys.modules['click'] = None\nfrom iterit.cli import main\nmain()"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "pip install 'iterit[cli]'" in proc.stderr and "Traceback" not in proc.stderr


def test_help_imports_no_torch():
    code = (
        "import sys\nfrom iterit.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_python_dash_m_is_the_same_command():
    proc = subprocess.run(
        [sys.executable, "-m", "iterit.cli", "--help"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0 and "select" in proc.stdout


@pytest.mark.parametrize(
    "error",
    [
        "InvalidInputError",
        "ConfigError",
        "InvalidTypeError",
        "ScoresFileError",
        "ModelError",
        "OutputExistsError",
    ],
)
def test_every_library_error_is_one_line(tmp_path, monkeypatch, error):
    import iterit.errors
    import iterit.workflows.select

    cls = getattr(iterit.errors, error)

    def boom(*args, **kwargs):
        if issubclass(cls, OSError):
            raise cls(17, "the output\nexists (pass overwrite=True to replace it)")
        if cls is iterit.errors.ScoresFileError:
            raise cls("no 'ifd' column", path="s.jsonl")
        raise cls("something is wrong\nwith this")

    monkeypatch.setattr(iterit.workflows.select, "select_dataset", boom)
    msg = fail(
        "select", EXAMPLE, "--complexity", "none", "--budget", "2", "--out", tmp_path / "o.jsonl"
    )
    assert msg.startswith("Error: ") and "\n" not in msg
    if issubclass(cls, OSError):
        assert "(pass --overwrite to replace it)" in msg  # the command line names its flag


def test_an_unreadable_file_is_one_line(tmp_path, monkeypatch):
    import iterit.workflows.select

    def boom(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(tmp_path / "o.jsonl"))

    monkeypatch.setattr(iterit.workflows.select, "select_dataset", boom)
    msg = fail(
        "select", EXAMPLE, "--complexity", "none", "--budget", "2", "--out", tmp_path / "o.jsonl"
    )
    assert "Permission denied" in msg and "o.jsonl" in msg
