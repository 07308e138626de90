"""Output file names, in one place."""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "REPORT_HTML",
    "RUN_LOG_NAMES",
    "SELECTION_LOG",
    "SELECTION_SUMMARY",
    "TRAINER_STATE_KEY",
    "TRAIN_CONFIG",
    "selection_sidecars",
]

#: Training run folder: one JSON line per epoch's selection.
SELECTION_LOG = "iterit_selection.jsonl"
#: Training run folder: counts and settings of the whole run.
SELECTION_SUMMARY = "iterit_summary.json"
#: Training run folder: the resolved training configuration.
TRAIN_CONFIG = "iterit_train_config.json"
#: Key of iterit's state inside a checkpoint's trainer_state.json.
TRAINER_STATE_KEY = "iterit"
#: Names a run log is looked for under (the first is the one iterit writes).
RUN_LOG_NAMES = (SELECTION_LOG, "selection.jsonl", "selection_log.jsonl")
#: Report folder: the HTML page.
REPORT_HTML = "report.html"


def selection_sidecars(out: Path) -> tuple[Path, Path]:
    """The files written beside a selection ``OUT``: ``OUT.scores.jsonl`` (one row per record)
    and ``OUT.meta.json`` (settings and counts)."""
    return out.with_name(out.name + ".scores.jsonl"), out.with_name(out.name + ".meta.json")
