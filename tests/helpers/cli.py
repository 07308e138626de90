"""Running the command line in tests, and reading what it wrote."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from click.testing import CliRunner

from iterit.cli import main
from tests.helpers.shared import ROOT

EXAMPLE = ROOT / "examples" / "alpaca_mini.jsonl"
CHAT = ROOT / "examples" / "sharegpt_mini.json"


def run(*args: str, ok: bool = True):
    result = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


def fail(*args: str, code: int | None = None) -> str:
    """Run a command that must fail: non-zero exit, a one-line message, no traceback."""
    result = CliRunner().invoke(main, [str(a) for a in args])
    assert result.exit_code != 0, result.output
    if code is not None:
        assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), repr(result.exception)
    errors = [ln for ln in result.output.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1, result.output
    return errors[0]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(".iterit-tmp-"))


def fake_scores(tmp_path: Path, n: int, seed: int = 0) -> tuple[Path, np.ndarray]:
    rng = np.random.default_rng(seed)
    ifd = rng.uniform(0.2, 1.2, size=n)
    path = tmp_path / "scores.jsonl"
    path.write_text(
        "".join(json.dumps({"index": i, "ifd": float(v)}) + "\n" for i, v in enumerate(ifd))
    )
    return path, ifd


def sidecar(out: Path) -> tuple[list[dict], dict]:
    rows = [
        json.loads(x) for x in out.with_name(out.name + ".scores.jsonl").read_text().splitlines()
    ]
    meta = json.loads(out.with_name(out.name + ".meta.json").read_text())
    return rows, meta


# --------------------------------------------------------------------------------------------
# help and entry points
