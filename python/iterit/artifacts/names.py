"""Output file names, in one place."""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "COMPARE_ARMS_DIR",
    "COMPARE_ARM_SUMMARY",
    "COMPARE_BASE_EVAL_ROWS",
    "COMPARE_CSV",
    "COMPARE_EVAL_ROWS",
    "COMPARE_HTML",
    "COMPARE_JSON",
    "COMPARE_SCORES",
    "COMPARE_SCORES_INFO",
    "COMPARE_SETTINGS",
    "MERGED_MODEL_DIR",
    "REPORT_HTML",
    "REPORT_PLOTS",
    "REPORT_SUMMARY",
    "RUN_LOG_NAMES",
    "SELECTION_LOG",
    "SELECTION_SIDECAR_SUFFIXES",
    "SELECTION_SUMMARY",
    "TRAINER_STATE_KEY",
    "TRAIN_CONFIG",
    "selection_run_file",
    "selection_sidecars",
]

#: Training run folder: one JSON line per epoch's selection.
SELECTION_LOG = "iterit_selection.jsonl"
#: Training run folder: counts and settings of the whole run.
SELECTION_SUMMARY = "iterit_summary.json"
#: Training run folder: the resolved training configuration.
TRAIN_CONFIG = "iterit_train_config.json"
#: Training run folder: the subfolder of the LoRA-merged model (``merge_lora``).
MERGED_MODEL_DIR = "merged"
#: Key of iterit's state inside a checkpoint's trainer_state.json.
TRAINER_STATE_KEY = "iterit"
#: Names a run log is looked for under (the first is the one iterit writes).
RUN_LOG_NAMES = (SELECTION_LOG, "selection.jsonl", "selection_log.jsonl")
#: Report folder: the HTML page.
REPORT_HTML = "report.html"
#: Report folder: what the page shows, as JSON.
REPORT_SUMMARY = "summary.json"
#: Report folder: the PNG of each plot, by plot.
REPORT_PLOTS = {
    "ifd": "ifd.png",
    "lengths": "lengths.png",
    "overlap": "overlap.png",
    "ngrams": "ngrams.png",
}

#: The suffixes of a selection ``OUT``'s sidecars: the rows, then the settings and counts.
SELECTION_SIDECAR_SUFFIXES = (".scores.jsonl", ".meta.json")


def selection_sidecars(out: Path) -> tuple[Path, Path]:
    """The files written beside a selection ``OUT``: ``OUT.scores.jsonl`` (one row per record)
    and ``OUT.meta.json`` (settings and counts)."""
    scores, meta = SELECTION_SIDECAR_SUFFIXES
    return out.with_name(out.name + scores), out.with_name(out.name + meta)


#: Comparison folder (``iterit compare``): the per-arm, per-epoch, per-eval table as CSV and JSON,
#: the shared epoch-0 scores, each arm's evaluation rows and summary, the arms' folder, the HTML.
COMPARE_CSV = "compare.csv"
COMPARE_JSON = "compare.json"
COMPARE_SCORES = "scores.jsonl"
#: The time and forward tokens the shared epoch-0 scoring took.
COMPARE_SCORES_INFO = "scores.json"
COMPARE_EVAL_ROWS = "compare_eval.jsonl"
#: The initial model's evaluation rows (epoch 0, arm ``base``), computed once for every arm.
COMPARE_BASE_EVAL_ROWS = "base_" + COMPARE_EVAL_ROWS
COMPARE_ARM_SUMMARY = "compare_arm.json"
COMPARE_ARMS_DIR = "arms"
COMPARE_HTML = "compare.html"
#: The settings and inputs that made a comparison's reusable work (iterit.artifacts.run_keys):
#: in the comparison folder, the epoch-0 evaluation's; in each arm's seed folder, the arm's.
COMPARE_SETTINGS = "compare_settings.json"


def selection_run_file(out: Path) -> Path:
    """``OUT.run.json``: what depends on the run, not on the inputs (the command line, the
    timings), kept out of the reproducible files of the selection ``OUT``."""
    return out.with_name(out.name + ".run.json")
