"""iterit: iterative, selective instruction-tuning data selection (IterIT).

The selector (:func:`select`, :func:`tfidf`) needs only numpy. Model-side code lives in
submodules that import torch and transformers themselves: :mod:`iterit.scoring.ifd` (IFD scoring),
:mod:`iterit.training.hf` and :mod:`iterit.training.run` (per-epoch re-selection during training).
"""

from iterit._iterit import __version__
from iterit.data.sample import Sample, as_sample
from iterit.errors import (
    CapacityError,
    InternalError,
    InvalidInputError,
    IteritError,
    ShortfallWarning,
)
from iterit.selection import reference
from iterit.selection.selector import Selection, TfidfMatrix, resolve_budget, select, tfidf

__all__ = [
    "CapacityError",
    "InternalError",
    "InvalidInputError",
    "IteritError",
    "Sample",
    "Selection",
    "ShortfallWarning",
    "TfidfMatrix",
    "__version__",
    "as_sample",
    "reference",
    "resolve_budget",
    "select",
    "tfidf",
]
