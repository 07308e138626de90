"""The scoring model: loading, unwrapping, its decoder and output head, eval mode, identity.

Imports torch; :mod:`iterit.scoring` loads this module only when one of its names is used.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iterit.errors import InvalidTypeError, ModelError
from iterit.scoring.precision import Precision, scoring_precision
from iterit.utils.optional import requires_extra

with requires_extra("torch"):
    import torch

__all__ = [
    "OOM_ERRORS",
    "EvalMode",
    "LoadedModel",
    "causal_parts",
    "input_device",
    "kv_cache_copy",
    "kv_cache_kwargs",
    "kv_cache_of",
    "load_model",
    "load_scoring_model",
    "model_fingerprint",
    "unwrap_model",
    "weights_fingerprint",
]

#: What a forward pass raises when the device runs out of memory.
OOM_ERRORS: tuple[type[BaseException], ...] = tuple(
    {getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError), torch.cuda.OutOfMemoryError}
)


def unwrap_model(model: Any) -> Any:
    """The Hugging Face model inside DDP / FSDP1 / DeepSpeed / PEFT wrappers."""
    inner = model
    for _ in range(4):
        if isinstance(inner, torch.nn.parallel.DistributedDataParallel) or (
            type(inner).__name__ in ("FullyShardedDataParallel", "DeepSpeedEngine")
            and isinstance(getattr(inner, "module", None), torch.nn.Module)
        ):
            inner = inner.module
        elif hasattr(inner, "get_base_model") and callable(inner.get_base_model):
            inner = inner.get_base_model()
        else:
            break
    return inner


def _is_causal_lm(model: Any) -> bool:
    """A transformers causal LM class, or a subclass of one."""
    try:
        from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

        known = set(MODEL_FOR_CAUSAL_LM_MAPPING_NAMES.values())
    except ImportError:  # pragma: no cover
        known = set()
    return any(
        c.__name__.endswith(("ForCausalLM", "LMHeadModel")) or c.__name__ in known
        for c in type(model).__mro__
    )


def causal_parts(model: Any) -> tuple[Any, Any, Any]:
    """(hf_model, decoder, output projection) of a causal LM, or a clear ``TypeError``."""
    inner = unwrap_model(model)
    what = type(inner).__name__
    if not isinstance(inner, torch.nn.Module):
        raise InvalidTypeError(f"IFDScorer needs a torch causal language model, got {what}")
    config = getattr(inner, "config", None)
    head = inner.get_output_embeddings() if hasattr(inner, "get_output_embeddings") else None
    if (
        config is None
        or getattr(config, "is_encoder_decoder", False)
        or head is None
        or not _is_causal_lm(inner)
        or not hasattr(inner, "get_decoder")
    ):
        raise InvalidTypeError(
            f"IFDScorer needs a causal language model with an output head (a transformers "
            f"...ForCausalLM, e.g. AutoModelForCausalLM.from_pretrained(...)); got {what}, "
            "which is not one"
        )
    decoder = inner.get_decoder()
    if decoder is inner:
        raise InvalidTypeError(
            f"cannot find the decoder (body) of {what} to run it without its head"
        )
    return inner, decoder, head


def input_device(hf_model: Any) -> torch.device:
    """Where the model's input embeddings live (the device its inputs go to)."""
    emb = hf_model.get_input_embeddings() if hasattr(hf_model, "get_input_embeddings") else None
    if emb is not None and getattr(emb, "weight", None) is not None:
        return emb.weight.device
    return next(hf_model.parameters()).device


class EvalMode:
    """Put every submodule in eval mode and restore each one's previous mode afterwards."""

    def __init__(self, model: torch.nn.Module):
        self.model = model

    def __enter__(self) -> None:
        self.modes = [(m, m.training) for m in self.model.modules()]
        self.model.eval()

    def __exit__(self, *exc: object) -> None:
        for m, mode in self.modes:
            m.training = mode


def weights_fingerprint(model: Any, dtype: str | None = None) -> str:
    """Which weights a model holds, as they would be loaded in ``dtype`` (default: as they
    are), the identity a scores file records: the class, the config without its dtype, and
    for every parameter its name, shape, a float64 sum and up to 64 evenly strided values,
    each parameter cast to ``dtype`` first.  A model loaded in float32 and cast to bfloat16
    gives the fingerprint of the same model loaded in bfloat16 (both round the same way), so
    training in float32 recognises scores computed in bfloat16 (docs/faults.md)."""
    inner = unwrap_model(model)
    target = None if dtype in (None, "", "auto") else getattr(torch, str(dtype), None)
    h = hashlib.sha256()
    config = getattr(inner, "config", None)
    cfg = config.to_diff_dict() if hasattr(config, "to_diff_dict") else {}
    for key in ("torch_dtype", "dtype", "_name_or_path", "transformers_version"):
        cfg.pop(key, None)
    h.update(type(inner).__name__.encode())
    h.update(json.dumps(cfg, sort_keys=True, default=str).encode())
    parts = []
    with torch.no_grad():
        for name, p in inner.named_parameters():
            flat = p.detach()
            if hasattr(flat, "to_local"):  # an FSDP2 DTensor: this rank's shard
                flat = flat.to_local()
            flat = flat.reshape(-1)
            if target is not None and flat.is_floating_point():
                flat = flat.to(target)
            h.update(f"{name}:{tuple(p.shape)};".encode())
            step = max(1, flat.numel() // 64)
            parts.append(flat[::step][:64].to(torch.float64).cpu())
            parts.append(flat.sum(dtype=torch.float64).reshape(1).cpu())
    if parts:
        h.update(torch.cat(parts).numpy().tobytes())
    return h.hexdigest()[:32]


def model_fingerprint(model: Any) -> str:
    """A cheap identity of a model's current weights (for cache keys).

    Covers the class, the config, the dtype and, for every parameter, its name, shape, a
    float64 sum and up to 64 evenly strided values, so that any training step changes it.
    """
    inner = unwrap_model(model)
    h = hashlib.sha256()
    config = getattr(inner, "config", None)
    cfg = config.to_diff_dict() if hasattr(config, "to_diff_dict") else {}
    h.update(type(inner).__name__.encode())
    h.update(json.dumps(cfg, sort_keys=True, default=str).encode())
    sums, samples = [], []
    with torch.no_grad():
        for name, p in model.named_parameters():
            h.update(f"{name}:{tuple(p.shape)}:{p.dtype};".encode())
            flat = p.detach()
            if hasattr(flat, "to_local"):  # an FSDP2 DTensor: this rank's shard
                flat = flat.to_local()
            flat = flat.reshape(-1)
            step = max(1, flat.numel() // 64)
            samples.append(flat[::step][:64].to(torch.float64))
            sums.append(flat.sum(dtype=torch.float64))
    if sums:
        dev = sums[0].device
        h.update(torch.stack([s.to(dev) for s in sums]).cpu().numpy().tobytes())
        h.update(torch.cat([s.to(dev) for s in samples]).cpu().numpy().tobytes())
    return h.hexdigest()[:32]


def kv_cache_copy(cache: Any, rows: int) -> Any:
    """A fresh copy of a batch-1 key/value cache, repeated to ``rows`` rows."""
    import copy

    out = copy.deepcopy(cache)
    if rows > 1:
        out.batch_repeat_interleave(rows)
    return out


def kv_cache_kwargs(model: Any, cache: Any) -> dict[str, Any]:
    """The forward keyword that passes a key/value cache to ``model``: ``cache`` since
    transformers 5.2x renamed it (the old ``past_key_values`` still works there, with a
    deprecation line on every call), ``past_key_values`` before."""
    from iterit.scoring.synced import forward_accepts

    name = "cache" if forward_accepts(model, "cache") else "past_key_values"
    return {name: cache}


def kv_cache_of(output: Any) -> Any:
    """The key/value cache a forward returned: ``output.cache`` where transformers names it so
    (reading ``past_key_values`` there logs a deprecation line), else ``past_key_values``."""
    if "cache" in (output.keys() if hasattr(output, "keys") else ()):
        return output["cache"]
    return output.past_key_values


@dataclass(frozen=True)
class LoadedModel:
    """A model loaded by :func:`load_model`: the model (in eval mode), its tokenizer and the
    precision it was loaded in (what was asked for and why)."""

    model: Any
    tokenizer: Any
    precision: Precision

    @property
    def dtype(self) -> str:
        """The weights' dtype by name."""
        return self.precision.name

    @property
    def why(self) -> str:
        """The dtype and why it was chosen, e.g. ``bfloat16 (auto: CUDA)``."""
        return self.precision.describe()


def load_model(
    name_or_path: str | os.PathLike[str],
    *,
    gguf_file: str | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype | str | None = None,
    trust_remote_code: bool = False,
    model_cache: bool | str | os.PathLike[str] = True,
    **kwargs: Any,
) -> LoadedModel:
    """Load a model and its tokenizer from a hub id, a local folder or a ``.gguf`` file.

    A path ending in ``.gguf`` is split into its folder and ``gguf_file``.  Default device:
    CUDA when available, else CPU.  ``dtype``: a ``torch.dtype``, one of
    :data:`iterit.config.DTYPES`, or ``None`` / ``"auto"``: bfloat16 on CUDA (float16 where
    bf16 is unsupported), bfloat16 on a CPU with native bfloat16, float32 elsewhere
    (:func:`iterit.scoring.precision.scoring_precision`; the choice is the returned
    :class:`LoadedModel`'s ``precision``).  ``trust_remote_code`` stays off unless asked.  Extra
    keyword arguments go to ``AutoModelForCausalLM.from_pretrained``.  The model is returned in
    eval mode.

    A ``.gguf`` file is de-quantised once into the model cache and loaded from there afterwards
    (:mod:`iterit.scoring.model_cache`; ``model_cache``: ``True`` for the default folder, a
    folder, or ``False`` to de-quantise on every load).  GGUF weights are always de-quantised in
    float32 (their exact values), then cast to the chosen dtype.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = str(name_or_path)
    if gguf_file is None and path.endswith(".gguf"):
        p = Path(path)
        path, gguf_file = str(p.parent), p.name
    dev = (
        torch.device(device)
        if device is not None
        else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    )
    choice = scoring_precision(dtype, dev)
    extra: dict[str, Any] = {"trust_remote_code": trust_remote_code}
    load_dtype = choice.weights
    if gguf_file is not None:
        # float32: the exact de-quantised values (and transformers' GGUF loader warns about any
        # other dtype); the cast to the chosen dtype follows below.
        load_dtype = torch.float32
        if model_cache is not False:
            from iterit.scoring.model_cache import cached_gguf

            folder = None if model_cache is True else model_cache
            path = str(cached_gguf(Path(path) / gguf_file, folder))
        else:
            extra["gguf_file"] = gguf_file
    tokenizer = AutoTokenizer.from_pretrained(path, **extra)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=load_dtype, **extra, **kwargs)
    if gguf_file is not None:
        from iterit.scoring.gguf import as_float_model

        as_float_model(model)
    if "device_map" not in kwargs:
        model.to(dev)
    if next(model.parameters()).dtype != choice.weights:  # a loader that ignored the dtype
        model.to(choice.weights)
    model.eval()
    return LoadedModel(model, tokenizer, choice)


def looks_like_local_path(name: str) -> bool:
    """Whether a model name is a local path rather than a hub id (``org/name``): it exists, or
    it is written as a path on any platform (``/m``, ``./m``, ``~/m``, ``C:\\m``, ``.\\m``,
    ``models\\m``: a hub id never holds a backslash or a drive), or it names a ``.gguf`` file."""
    if Path(name).expanduser().exists():
        return True
    if name.startswith(("/", "./", "../", "~")) or name.endswith(".gguf"):
        return True
    drive = len(name) >= 2 and name[1] == ":" and name[0].isalpha()
    return drive or "\\" in name


def load_scoring_model(name: str, **kwargs: Any) -> LoadedModel:
    """:func:`load_model` for a model named by a user: a local path (``~`` expanded) that does
    not exist, or any failure to load, is a :class:`~iterit.errors.ModelError` in one line."""
    looks_local = looks_like_local_path(name)
    if looks_local and not Path(name).expanduser().exists():
        raise ModelError(f"{name}: no such model file or folder")
    try:
        return load_model(str(Path(name).expanduser()) if looks_local else name, **kwargs)
    except (OSError, ValueError, RuntimeError, ImportError) as e:
        text = " ".join(str(e).split())  # one line: library messages often span several
        if len(text) > 400:
            text = text[:400] + " ..."
        raise ModelError(f"cannot load or run the scoring model: {text}") from None
