"""iterit.scoring.gguf: a model de-quantized from GGUF trains as the float model it is."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")


from iterit.scoring.gguf import as_float_model, is_dequantized_gguf
from tests.helpers.tiny_llama import marked_as_gguf, tiny_model


def test_as_float_model_clears_the_quantization_marks(data):
    _samples, tok = data
    model = marked_as_gguf(tiny_model(tok))
    assert is_dequantized_gguf(model)
    assert as_float_model(model) is model
    assert not model.is_quantized and getattr(model, "hf_quantizer", None) is None
    assert getattr(model, "quantization_method", None) is None
    assert not hasattr(model.config, "quantization_config")
    assert not getattr(model.config, "_is_quantized", False)
    plain = tiny_model(tok)
    assert not is_dequantized_gguf(plain) and as_float_model(plain) is plain
