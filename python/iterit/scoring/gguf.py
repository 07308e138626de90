"""A model loaded from a ``.gguf`` file trains as the float model it is.

transformers loads a GGUF checkpoint through its ``gguf`` quantizer.  Unless the weights stay
packed in GGUF blocks (``GgufLinear`` layers, with the optional ``kernels`` package), they are
de-quantized to plain float tensors while loading, yet the model keeps the quantizer's marks:
``model.hf_quantizer``, ``model.is_quantized``, ``model.quantization_method`` and
``config.quantization_config`` (plus ``config._is_quantized``).  ``Trainer`` then refuses to
fine-tune it (``validate_quantization_for_training``: "purely quantized models"), and
``save_pretrained`` refuses to save it ("not serializable").  :func:`as_float_model` clears
those marks in one place, the way transformers' own ``remove_quantization_config`` does when a
quantizer de-quantizes, and only when no weight is still packed.
"""

from __future__ import annotations

from typing import Any

__all__ = ["as_float_model", "is_dequantized_gguf"]


def _quant_method(model: Any) -> str | None:
    method = getattr(model, "quantization_method", None)
    if method is None:
        qc = getattr(getattr(model, "config", None), "quantization_config", None)
        method = getattr(qc, "quant_method", None)
        if method is None and isinstance(qc, dict):
            method = qc.get("quant_method")
    if method is None:
        return None
    return str(getattr(method, "value", method)).lower()


def is_dequantized_gguf(model: Any) -> bool:
    """Whether ``model`` was loaded from GGUF with every weight de-quantized to float."""
    if _quant_method(model) != "gguf":
        return False
    modules = model.modules() if hasattr(model, "modules") else ()
    if any(type(m).__name__.lower().startswith("gguf") for m in modules):
        return False  # weights left packed in GGUF blocks: really quantized
    params = model.parameters() if hasattr(model, "parameters") else ()
    return all(p.is_floating_point() for p in params)


def as_float_model(model: Any) -> Any:
    """Clear transformers' quantization marks from a model de-quantized from GGUF (see the
    module docstring); any other model is returned unchanged.  Returns the model."""
    if not is_dequantized_gguf(model):
        return model
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None and hasattr(quantizer, "remove_quantization_config"):
        quantizer.remove_quantization_config(model)
    else:
        for name in ("hf_quantizer", "quantization_method"):
            if name in vars(model):
                delattr(model, name)
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.is_quantized = False
    for module in model.modules():
        config = getattr(module, "config", None)
        if config is not None and "_is_quantized" in vars(config):
            del config._is_quantized
    return model
