"""iterit: iterative, selective instruction-tuning data selection (IterIT).

The selector (:func:`select`, :func:`tfidf`) needs only numpy. Model-side code lives in
subpackages that import torch and transformers themselves: :mod:`iterit.scoring` (IFD scoring)
and :mod:`iterit.training` (per-epoch re-selection during training). Every error iterit raises
is an :class:`IteritError` (the classes are in :mod:`iterit.errors`); the semantics are in
docs/design.md.
"""

from iterit import errors
from iterit._iterit import __version__
from iterit.data.sample import Sample, as_sample
from iterit.errors import *  # noqa: F403  (every error class, listed once in iterit.errors)
from iterit.selection import reference
from iterit.selection.selector import Selection, TfidfMatrix, resolve_budget, select, tfidf

__all__ = [
    "Sample",
    "Selection",
    "TfidfMatrix",
    "__version__",
    "as_sample",
    "reference",
    "resolve_budget",
    "select",
    "tfidf",
]
__all__ += errors.__all__
