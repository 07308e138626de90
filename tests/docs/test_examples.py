"""Every fenced Python and shell example of README.md, CONTRIBUTING.md and docs/*.md runs as
written, so that no example can rot.

A block is marked by an HTML comment on the line before its fence:
``<!-- docs-test: skip (reason) -->`` never runs (install lines, the whole test suite),
``<!-- docs-test: fast -->`` runs in the default suite.  Any other block may load the real model
or train, so it runs under ``-m slow``.  Each block runs in a fresh folder holding a link to the
repository's ``examples/``, in a new process with this interpreter and environment.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").glob("*.md"))]
if not (ROOT / "README.md").exists():  # the suite copied out of the source tree (.ci/wheel)
    pytest.skip("README.md and docs/ are not beside the tests", allow_module_level=True)
LANGUAGES = {"python": "python", "py": "python", "bash": "shell", "sh": "shell", "shell": "shell"}
_FENCE = re.compile(r"^(```+)\s*([\w+-]*)\s*$")
_MARK = re.compile(r"^<!--\s*docs-test:\s*(skip|fast|slow)\b\s*(?:\((.*)\))?\s*-->\s*$")


@dataclass(frozen=True)
class Example:
    path: Path
    line: int
    kind: str  # "python" or "shell"
    code: str
    mark: str  # "skip", "fast" or "slow"
    reason: str

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def examples(path: Path) -> list[Example]:
    """The Python and shell blocks of one Markdown file, with their marks."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Example] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, lang = m.group(1), m.group(2).lower()
        end = i + 1
        while end < len(lines) and lines[end].strip() != fence:
            end += 1
        if lang in LANGUAGES:
            before = next((x for x in reversed(lines[:i]) if x.strip()), "")
            mark = _MARK.match(before.strip())
            kind, reason = ("slow", "") if mark is None else (mark.group(1), mark.group(2) or "")
            code = "\n".join(lines[i + 1 : end]) + "\n"
            found.append(Example(path, i + 1, LANGUAGES[lang], code, kind, reason))
        i = end + 1
    return found


ALL = [e for path in DOCS if path.exists() for e in examples(path)]


def _params() -> list:
    out = []
    for e in ALL:
        marks = [pytest.mark.slow] if e.mark == "slow" else []
        if e.mark == "skip":
            marks.append(pytest.mark.skip(reason=e.reason or "marked docs-test: skip"))
        out.append(pytest.param(e, id=e.id, marks=marks))
    return out


@pytest.mark.parametrize("example", _params())
def test_example_runs(example: Example, tmp_path: Path) -> None:
    (tmp_path / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
    if example.kind == "python":
        cmd = [sys.executable, "-c", example.code]
    else:
        cmd = ["bash", "-euo", "pipefail", "-c", example.code]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    run = subprocess.run(
        cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=1800, check=False
    )
    assert run.returncode == 0, f"{example.id} failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"


def test_the_readme_selector_prints_what_the_readme_shows(tmp_path: Path) -> None:
    """The README's first example and the output it shows under it agree."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    code = next(e for e in examples(ROOT / "README.md") if "iterit.select(" in e.code)
    shown = re.search(r"prints\n\n```text\n(.*?)```", readme, re.S)
    assert shown is not None
    run = subprocess.run(
        [sys.executable, "-c", code.code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert run.stdout == shown.group(1)


def test_marks_are_read():
    """The parser finds the blocks, their languages and marks (a check of the test itself)."""
    readme = examples(ROOT / "README.md")
    assert any(e.mark == "skip" and "pip install" in e.code for e in readme)
    assert any(e.mark == "fast" and e.kind == "python" for e in readme)
    assert all(e.kind in ("python", "shell") for e in ALL)
