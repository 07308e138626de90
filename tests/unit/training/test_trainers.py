"""iterit.training.trainers: IterITTrainer, IterITSFTTrainer and attach(), without training (the
training runs are in tests/integration/test_training_trainers.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")


from iterit.config import SelectionConfig
from iterit.training.datasets import ResponseOnlyCollator, TokenizedSamples
from iterit.training.trainers import IterITTrainer, attach
from tests.helpers.tiny_llama import tiny_model
from tests.helpers.training import MAX_LEN, training_args


def test_attach_checks(tmp_path, data):
    samples, tok = data
    from transformers import Trainer

    trainer = Trainer(
        model=tiny_model(tok),
        args=training_args(tmp_path),
        train_dataset=TokenizedSamples(samples[:10], tok, max_length=MAX_LEN),
        data_collator=ResponseOnlyCollator(tok.pad_token_id),
        processing_class=tok,
    )
    with pytest.raises(ValueError, match="rows for"):
        attach(trainer, samples, SelectionConfig(budget=3))
    with pytest.raises(ValueError, match="diversity"):
        SelectionConfig(diversity="words")
    with pytest.raises(ValueError, match="decay"):
        SelectionConfig(decay=1.0)
    assert SelectionConfig(strategy="ifd").diversity == "none"


def test_iterit_trainer_needs_samples(tmp_path, data):
    from iterit.errors import ConfigError

    _samples, tok = data
    with pytest.raises(ConfigError, match="samples"):
        IterITTrainer(model=tiny_model(tok), args=training_args(tmp_path))


def test_trainers_module_imports_without_trl():
    code = (
        "import sys; sys.modules['trl'] = None\n"
        "import iterit.training.trainers as t\n"
        "assert t.IterITTrainer\n"
        "try:\n    t.IterITSFTTrainer\nexcept ImportError as e:\n    print(type(e).__name__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "MissingDependencyError"
