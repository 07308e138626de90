"""The default model and cache folder: torch-free, environment first."""

from __future__ import annotations

from pathlib import Path

# The module, not the function of the same name that iterit.scoring re-exports.
import iterit.scoring.embedded_model as dm
from tests.helpers.processes import run_without


def test_environment_wins(monkeypatch, tmp_path):
    monkeypatch.setenv("ITERIT_MODEL", "org/model")
    assert dm.default_model() == "org/model"
    monkeypatch.setenv("ITERIT_CACHE_DIR", str(tmp_path))
    assert dm.default_cache_dir() == tmp_path
    monkeypatch.delenv("ITERIT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert dm.default_cache_dir() == tmp_path / "xdg" / "iterit"


def test_embedded_model_else_hub(monkeypatch):
    monkeypatch.delenv("ITERIT_MODEL", raising=False)
    emb = dm.embedded_model()
    if emb is None:
        assert dm.default_model() == dm.DEFAULT_HUB_MODEL
    else:
        assert emb.name == dm.SMOLLM2_GGUF and dm.default_model() == str(emb)
        assert "embedded" in dm.describe_model(str(emb))
    monkeypatch.setattr(dm, "embedded_model", lambda: None)
    assert dm.default_model() == dm.DEFAULT_HUB_MODEL
    assert dm.describe_model("x/y") == "x/y"
    assert isinstance(Path(dm.default_cache_dir()), Path)


def test_importing_it_needs_no_torch():
    code = "from iterit.scoring import default_model, describe_model\nprint(default_model())\n"
    proc = run_without(["torch"], code)
    assert proc.returncode == 0, proc.stderr
