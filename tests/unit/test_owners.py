"""One owner per rule (docs/design.md, "Architecture"): an output file name is spelled only in
iterit.artifacts.names and a ``pip install`` line only in iterit.utils.optional.  The scan
reads every string literal of the package's sources except docstrings (which document the
names) and fails naming the file and line of each literal that spells one elsewhere."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import iterit
from iterit.artifacts import names

PACKAGE = Path(iterit.__file__).parent
NAMES_OWNER = "artifacts/names.py"
HINT_OWNER = "utils/optional.py"
PIP = re.compile(r"\bpip install\b")


def file_names() -> set[str]:
    """Every output file name and suffix in iterit.artifacts.names (those with a dot: bare
    words such as the checkpoint key or a folder name are too common to police)."""
    found: set[str] = set()
    for name in names.__all__:
        value = getattr(names, name)
        if isinstance(value, str):
            value = (value,)
        elif isinstance(value, dict):
            value = tuple(value.values())
        if isinstance(value, tuple):
            found.update(v for v in value if "." in v)
    return found


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def literals(path: Path) -> Iterator[tuple[int, str]]:
    """``(line, text)`` of every string literal of ``path`` but its docstrings (the constant
    parts of f-strings included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    docs = _docstrings(tree)
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            yield node.lineno, node.value


def violations(root: Path, spelled: set[str]) -> list[str]:
    """``file:line: what`` for each literal under ``root`` that spells an output file name
    (outside NAMES_OWNER) or a pip install line (outside HINT_OWNER)."""
    pattern = re.compile(
        "|".join(rf"(?<![\w.-]){re.escape(n)}(?!\w)" for n in sorted(spelled, key=len)[::-1])
    )
    out = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root).as_posix()
        for line, text in literals(path):
            if rel != NAMES_OWNER and (m := pattern.search(text)):
                out.append(f"{rel}:{line}: output file name {m.group()!r}")
            if rel != HINT_OWNER and PIP.search(text):
                out.append(f"{rel}:{line}: pip install hint {text!r}")
    return out


def test_every_output_name_and_install_hint_has_one_owner():
    assert violations(PACKAGE, file_names()) == []


def test_the_scan_finds_a_planted_name_and_hint(tmp_path):
    (tmp_path / "artifacts").mkdir()
    (tmp_path / "utils").mkdir()
    (tmp_path / "artifacts" / "names.py").write_text('SUMMARY = "iterit_summary.json"\n')
    (tmp_path / "utils" / "optional.py").write_text("HINT = \"pip install 'iterit[cli]'\"\n")
    (tmp_path / "ok.py").write_text(
        '"""Writes iterit_summary.json; pip install nothing."""\n'
        "from names import SUMMARY\n"
        'PATH = "runs/" + SUMMARY\n'
        'OTHER = "my_summary.json"\n'
    )
    assert violations(tmp_path, {"iterit_summary.json", ".meta.json"}) == []
    (tmp_path / "bad.py").write_text(
        "def f(out):\n"
        '    """Docstrings may name iterit_summary.json."""\n'
        '    path = out / "iterit_summary.json"\n'
        '    side = f"{out}.meta.json"\n'
        '    raise ImportError("needs pyarrow (pip install pyarrow)")\n'
    )
    assert violations(tmp_path, {"iterit_summary.json", ".meta.json"}) == [
        "bad.py:3: output file name 'iterit_summary.json'",
        "bad.py:4: output file name '.meta.json'",
        "bad.py:5: pip install hint 'needs pyarrow (pip install pyarrow)'",
    ]


def test_the_names_scanned_include_every_kind_of_output():
    spelled = file_names()
    assert names.SELECTION_LOG in spelled and names.REPORT_SUMMARY in spelled
    assert set(names.REPORT_PLOTS.values()) <= spelled
    assert set(names.SELECTION_SIDECAR_SUFFIXES) <= spelled
