"""A GGUF-loaded model (quantization marks cleared) trains with the IterIT trainer and saves (tiny
model, CPU)."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import transformers

from iterit.config import SelectionConfig
from tests.helpers.tiny_llama import marked_as_gguf, tiny_model
from tests.helpers.training import MAX_LEN, read_log, training_args

pytestmark = pytest.mark.slow


def test_a_gguf_marked_model_trains_and_saves(tmp_path, data):
    from transformers import AutoModelForCausalLM

    from iterit.training.datasets import ResponseOnlyCollator, TokenizedSamples
    from iterit.training.trainers import IterITTrainer

    samples, tok = data
    samples = samples[:12]
    with pytest.raises(ValueError, match="purely quantized"):  # what the marks cause
        transformers.Trainer(model=marked_as_gguf(tiny_model(tok)), args=training_args(tmp_path))
    # IterITTrainer clears the marks of a model whose weights are all float (iterit.scoring.gguf)
    trainer = IterITTrainer(
        model=marked_as_gguf(tiny_model(tok)),
        args=training_args(tmp_path, num_train_epochs=1),
        train_dataset=TokenizedSamples(samples, tok, max_length=MAX_LEN),
        data_collator=ResponseOnlyCollator(tok.pad_token_id),
        processing_class=tok,
        samples=samples,
        selection_config=SelectionConfig(budget=4),
        max_length=MAX_LEN,
        progress=False,
    )
    trainer.train()
    record = read_log(tmp_path)[0]
    assert record["budget"] == 4 and len(record["picks"]) == min(4, record["n_candidates"])
    trainer.save_model(str(tmp_path / "out"))
    loaded = AutoModelForCausalLM.from_pretrained(str(tmp_path / "out"))
    assert getattr(loaded, "hf_quantizer", None) is None
