"""Optional hand-off of a trained model to lm-evaluation-harness (docs/compare.md): only when
the ``lm_eval`` package is installed; iterit never requires it."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from iterit.errors import MissingDependencyError
from iterit.utils.optional import missing_package, package_hint

__all__ = ["require_lm_eval", "run_lm_eval"]


def require_lm_eval() -> None:
    """A MissingDependencyError unless lm-evaluation-harness is importable."""
    if importlib.util.find_spec("lm_eval") is None:
        hand_off = "the lm-evaluation-harness hand-off"
        error = missing_package("lm_eval", package_hint("lm-eval"), hand_off)
        raise MissingDependencyError(f"{error}; iterit compare runs without it")


def run_lm_eval(model_dir: Path, tasks: str, *, device: str | None = None) -> dict[str, Any]:
    """``lm_eval.simple_evaluate`` on the Hugging Face model saved in ``model_dir``; returns
    its ``results`` (task -> metrics)."""
    require_lm_eval()
    import lm_eval

    # A mapping, never "pretrained=PATH": a comma in the path would start another argument.
    out = lm_eval.simple_evaluate(
        model="hf",
        model_args={"pretrained": str(Path(model_dir))},
        tasks=[t.strip() for t in tasks.split(",") if t.strip()],
        device=device,
    )
    return dict(out.get("results", {})) if out else {}
