"""Selection and training-run reports: the report model, plots, HTML and terminal tables."""

from iterit.report.report import *  # noqa: F403
from iterit.report.report import __all__  # noqa: F401
