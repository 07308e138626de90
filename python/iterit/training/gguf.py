"""A model loaded from a ``.gguf`` file trains as the float model it is.

The rule lives in :mod:`iterit.scoring.gguf` (the scoring model cache uses it too); this
module keeps its training-side name.
"""

from __future__ import annotations

from iterit.scoring.gguf import as_float_model, is_dequantized_gguf

__all__ = ["as_float_model", "is_dequantized_gguf"]
