"""What was selected and why: the report model, its plots, an HTML page and terminal tables.

:func:`build_report` reads a selection written by ``iterit select`` or a training run folder
into a :class:`Report`; :func:`write_report` renders it as a self-contained HTML page with PNG
plots; :func:`terminal_summary` and :func:`selection_summary` return plain-text tables.  Plots
need matplotlib (imported when drawn).
"""

from iterit.artifacts.names import RUN_LOG_NAMES
from iterit.report.html import render_html, write_report
from iterit.report.model import (
    Report,
    build_report,
    run_report,
    selection_report,
    selection_rows,
    top_ngrams,
)
from iterit.report.plots import plot_ifd, plot_lengths, plot_ngrams, plot_overlap
from iterit.report.sources import find_run_log, read_selection_log
from iterit.report.terminal import format_table, selection_summary, terminal_summary

__all__ = [
    "RUN_LOG_NAMES",
    "Report",
    "build_report",
    "find_run_log",
    "format_table",
    "plot_ifd",
    "plot_lengths",
    "plot_ngrams",
    "plot_overlap",
    "read_selection_log",
    "render_html",
    "run_report",
    "selection_report",
    "selection_rows",
    "selection_summary",
    "terminal_summary",
    "top_ngrams",
    "write_report",
]
