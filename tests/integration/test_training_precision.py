"""bfloat16 mixed precision on the CPU (the Trainer's ``bf16`` with ``use_cpu``: CPU autocast)
against float32, on the real SmolLM2-135M: the same few steps give the same losses within a
measured tolerance."""

from __future__ import annotations

import copy

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from iterit.scoring import load_model
from iterit.training.datasets import ResponseOnlyCollator, TokenizedSamples
from tests.helpers.training import real_samples, training_args

#: Over 3 steps of 4 real Alpaca records (max_length 64, learning rate 1e-4) the bfloat16
#: autocast losses stay within LOSS_ATOL of float32's.  Partly measured on the machine this was
#: written on (no native bfloat16, emulated, so very slow): float32 gave 2.567, 2.398, 0.968;
#: bfloat16 autocast's first step gave 2.573 (difference 0.006) before time ran out.  Ten times
#: that leaves room for the later steps, whose weights differ; tighten it from a full run on a
#: CPU with native bfloat16.
LOSS_ATOL = 0.06


def _losses(model, tok, samples, out, bf16: bool) -> list[float]:
    from transformers import Trainer

    # One micro-batch a step, Hugging Face's default schedule (linear, no warm-up).
    args = training_args(
        out,
        per_device_train_batch_size=4,
        gradient_accumulation_steps=1,
        max_steps=3,
        learning_rate=1e-4,
        lr_scheduler_type="linear",
        warmup_steps=0,
        logging_steps=1,
        bf16=bf16,
    )
    trainer = Trainer(
        model=copy.deepcopy(model),
        args=args,
        train_dataset=TokenizedSamples(samples, tok, max_length=64),
        data_collator=ResponseOnlyCollator(tok.pad_token_id),
    )
    trainer.train()
    return [h["loss"] for h in trainer.state.log_history if "loss" in h]


@pytest.mark.slow
@pytest.mark.shared_data
def test_cpu_bf16_mixed_precision_loss_matches_float32(smollm2_path, tmp_path):
    from iterit.scoring.device import cpu_bf16

    if not cpu_bf16().native:
        pytest.skip(
            "this CPU has no native bfloat16: auto never mixes precision here, and emulated "
            "bfloat16 training is several times slower than float32"
        )
    from iterit.scoring.gguf import as_float_model

    loaded = load_model(smollm2_path, device="cpu", dtype="float32")

    model, tok = loaded.model, loaded.tokenizer
    model = as_float_model(model)  # de-quantized from GGUF: a float model the Trainer accepts
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    samples = real_samples(12)
    fp32 = _losses(model, tok, samples, tmp_path / "fp32", bf16=False)
    bf16 = _losses(model, tok, samples, tmp_path / "bf16", bf16=True)
    assert len(fp32) == len(bf16) == 3
    assert np.all(np.isfinite(bf16))
    np.testing.assert_allclose(bf16, fp32, atol=LOSS_ATOL)
