"""iterit: iterative, selective instruction-tuning data selection (IterIT).

The selector (:func:`select`, :func:`tfidf`) needs only numpy. Model-side code lives in
subpackages that import torch and transformers themselves: :mod:`iterit.scoring` (IFD scoring)
and :mod:`iterit.training` (per-epoch re-selection during training). Every error iterit raises
is an :class:`IteritError` (the classes are in :mod:`iterit.errors`); the semantics are in
docs/design.md.
"""

from iterit._iterit import __version__
from iterit.data.sample import Sample, as_sample
from iterit.errors import (
    CapacityError,
    CheckpointError,
    ConfigError,
    DataError,
    InternalError,
    InvalidInputError,
    InvalidTypeError,
    IteritError,
    MissingDependencyError,
    ModelError,
    OutputExistsError,
    OutputFolderError,
    ScoresFileError,
    ShortfallWarning,
)
from iterit.selection import reference
from iterit.selection.selector import Selection, TfidfMatrix, resolve_budget, select, tfidf

__all__ = [
    "CapacityError",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "InternalError",
    "InvalidInputError",
    "InvalidTypeError",
    "IteritError",
    "MissingDependencyError",
    "ModelError",
    "OutputExistsError",
    "OutputFolderError",
    "Sample",
    "ScoresFileError",
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
