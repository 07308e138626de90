"""The scoring model: causal-LM checks, eval mode, weight fingerprints, loading errors."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import torch

from iterit.errors import InvalidTypeError, IteritError, ModelError
from iterit.scoring import IFDScorer, load_scoring_model, model_fingerprint
from iterit.scoring.model import EvalMode, causal_parts, unwrap_model
from tests.helpers.word_llama import make_model


def test_not_a_causal_lm_is_a_clear_error(tok):
    from transformers import LlamaForSequenceClassification, LlamaModel

    base = make_model(len(tok))
    for bad in (LlamaModel(base.config), LlamaForSequenceClassification(base.config)):
        with pytest.raises(TypeError, match="causal language model"):
            IFDScorer(bad, tok)
    with pytest.raises(TypeError, match="causal language model"):
        IFDScorer(torch.nn.Linear(2, 2), tok)


def test_not_a_causal_lm_is_an_iterit_error(tok):
    with pytest.raises(InvalidTypeError) as caught:
        causal_parts(torch.nn.Linear(2, 2))
    assert isinstance(caught.value, IteritError) and isinstance(caught.value, TypeError)


def test_causal_parts_and_unwrap(model):
    hf, decoder, head = causal_parts(model)
    assert hf is model and decoder is model.model and head is model.lm_head
    assert unwrap_model(model) is model


def test_eval_mode_restores_each_submodule(tok):
    m = make_model(len(tok), seed=2)
    m.train()
    m.model.layers[0].eval()
    with EvalMode(m):
        assert not any(x.training for x in m.modules())
    assert m.training and m.model.layers[1].training and not m.model.layers[0].training


def test_fingerprint_changes_with_the_weights(tok):
    a, b = make_model(len(tok), seed=1), make_model(len(tok), seed=1)
    assert model_fingerprint(a) == model_fingerprint(b)
    with torch.no_grad():
        b.lm_head.weight[3, 1] += 1e-3
    assert model_fingerprint(a) != model_fingerprint(b)


def test_missing_local_model_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="no such model file or folder"):
        load_scoring_model(str(tmp_path / "nothing-here"))
    with pytest.raises(ModelError, match="cannot load or run the scoring model"):
        load_scoring_model(str(tmp_path))  # a folder without a model


@pytest.mark.parametrize(
    "name",
    ["/m", "./m", "../m", "~/m", "m.gguf", "C:\\models\\m", "c:/models/m", ".\\m", "models\\m"],
)
def test_paths_of_any_platform_are_local(name):
    from iterit.scoring.model import looks_like_local_path

    assert looks_like_local_path(name)
    # Missing, it is a ModelError, not a request to the hub.
    with pytest.raises(ModelError, match="no such model file or folder"):
        load_scoring_model(name + "-iterit-missing" if not name.endswith(".gguf") else "x/" + name)


def test_hub_ids_are_not_local(tmp_path, monkeypatch):
    from iterit.scoring.model import looks_like_local_path

    monkeypatch.chdir(tmp_path)
    assert not looks_like_local_path("HuggingFaceTB/SmolLM2-135M-Instruct")
    assert not looks_like_local_path("gpt2")
    (tmp_path / "org" / "model").mkdir(parents=True)
    assert looks_like_local_path("org/model")  # a folder that exists is local
