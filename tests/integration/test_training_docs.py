"""The training scripts of docs/training.md run as written (CPU included, TRL's defaults
included), on the tiny model and a few real samples in place of the hub model and the data
file: the only substitutions are those names and the sizes."""

from __future__ import annotations

import json
import re

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import torch

from tests.helpers.shared import ROOT
from tests.helpers.tiny_llama import tiny_model
from tests.helpers.training import MAX_LEN, real_samples

pytestmark = pytest.mark.slow

DOC = ROOT / "docs" / "training.md"


def _script(marker: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), flags=re.S)
    found = [b for b in blocks if marker in b]
    assert len(found) == 1, f"expected one python block with {marker!r} in {DOC}"
    return found[0]


@pytest.fixture
def docs_env(tmp_path, monkeypatch, data):
    """The data file and the model the scripts name, made small: 16 real records and the tiny
    model (what iterit.scoring.load_model returns for the hub id)."""
    import iterit.scoring

    _samples, tok = data
    path = tmp_path / "alpaca.jsonl"
    records = [
        {"instruction": s.instruction, "input": s.input, "output": s.response}
        for s in real_samples(16)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")

    def fake_load_model(name, **kwargs):
        from iterit.scoring.model import LoadedModel
        from iterit.scoring.precision import scoring_precision

        assert name == "HuggingFaceTB/SmolLM2-135M"
        return LoadedModel(tiny_model(tok, 1), tok, scoring_precision("float32", "cpu"))

    monkeypatch.setattr(iterit.scoring, "load_model", fake_load_model)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _shrink(code: str) -> str:
    """Sizes for a CPU test: one epoch, micro batch 2, no accumulation, short sequences."""
    code = code.replace("num_train_epochs=3", "num_train_epochs=1")
    code = code.replace("gradient_accumulation_steps=8", "gradient_accumulation_steps=1")
    code = code.replace("per_device_train_batch_size=4", "per_device_train_batch_size=2")
    code = code.replace("budget=0.05", "budget=4")
    return code.replace("max_length=1024", f"max_length={MAX_LEN}")


def _check_selection(trainer) -> None:
    (record,) = trainer.iterit.records.values()  # one epoch
    assert record.budget == 4 and len(record.picks) == min(4, record.n_candidates)


def test_the_transformers_trainer_script_runs_as_written(docs_env):
    code = _shrink(_script("IterITTrainer("))
    namespace: dict = {}
    exec(compile(code, str(DOC), "exec"), namespace)
    _check_selection(namespace["trainer"])
    assert (docs_env / "runs" / "x" / "config.json").is_file()


def test_the_trl_script_runs_as_written_on_cpu(docs_env):
    pytest.importorskip("trl")
    pytest.importorskip("peft")
    from trl import SFTConfig

    if not torch.cuda.is_available():
        # What the script avoids: TRL's default bf16 fails on a CPU.
        with pytest.raises(ValueError, match="bf16"):
            SFTConfig("runs/default")
    code = _shrink(_script("from trl import SFTConfig"))
    namespace: dict = {}
    exec(compile(code, str(DOC), "exec"), namespace)
    trainer = namespace["trainer"]
    _check_selection(trainer)
    assert (docs_env / "runs" / "sft" / "adapter_config.json").is_file()
