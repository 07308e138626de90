"""LoRA adapters trained with IterIT's re-selection (tiny model): the trainers' peft_config,
rescoring with the adapter, in-loop losses, checkpoints that resume with the adapter, the merged
output."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("peft")

import peft
import torch

from iterit.artifacts import TRAINER_STATE_KEY
from iterit.config import SelectionConfig
from iterit.training.lora import lora_config, merge_and_save
from tests.helpers.training import MAX_LEN, make_trainer, read_log


def _lora(**kw):
    return lora_config(r=4, alpha=8, dropout=0.0, **kw)


def _lora_trainer(out, samples, tok, config, **kw):
    """A tiny IterITTrainer (:func:`make_trainer`) training a LoRA adapter (:func:`_lora`)."""
    return make_trainer(out, samples, tok, config, peft_config=_lora(), **kw)


pytestmark = pytest.mark.slow


def test_iterit_trainer_wraps_the_model_and_rescores_with_the_adapter(tmp_path, data):
    samples, tok = data
    trainer, cb = _lora_trainer(
        tmp_path, samples[:24], tok, SelectionConfig(budget=6), num_train_epochs=2
    )
    model = trainer.model
    assert isinstance(model, peft.PeftModel)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    base = {n: p.detach().clone() for n, p in model.named_parameters() if not p.requires_grad}
    lora_before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    seen = []
    score_fn = cb.score_fn

    def scoring(m, items):  # what the callback scores with: the adapted model
        seen.append(m)
        return score_fn(m, items)

    cb.score_fn = scoring
    trainer.train()
    recs = read_log(tmp_path)
    assert [len(r["picks"]) for r in recs] == [6, 6] and recs[1]["rescored"] is True
    assert seen and all(isinstance(m, peft.PeftModel) for m in seen)
    after = dict(model.named_parameters())
    assert all(torch.equal(after[n], p) for n, p in base.items())  # the base is frozen
    assert any(not torch.equal(after[n], p) for n, p in lora_before.items())


def test_in_loop_losses_with_an_adapter(tmp_path, data):
    samples, tok = data
    cfg = SelectionConfig(budget=6, rescore="in-loop")
    trainer, cb = _lora_trainer(tmp_path, samples[:20], tok, cfg, num_train_epochs=2)
    trainer.train()
    assert sorted(cb.losses.ema)  # recorded through compute_loss of the PeftModel
    assert read_log(tmp_path)[1]["complexity_source"] == "loss-ema"


def test_checkpoint_resumes_with_the_adapter_state(tmp_path, data):
    samples, tok = data
    cfg = SelectionConfig(budget=8)
    kw = {"num_train_epochs": 3, "save_strategy": "epoch"}
    full, _ = _lora_trainer(tmp_path / "full", samples[:30], tok, cfg, **kw)
    full.train()
    ckpt = tmp_path / "full" / "checkpoint-4"
    assert (ckpt / "adapter_model.safetensors").is_file()
    state = json.loads((ckpt / "trainer_state.json").read_text())
    assert [r["epoch"] for r in state["stateful_callbacks"][TRAINER_STATE_KEY]["records"]] == [0, 1]

    resumed, cb = _lora_trainer(tmp_path / "resumed", samples[:30], tok, cfg, model_seed=1, **kw)
    resumed.train(resume_from_checkpoint=str(ckpt))
    assert [r["picks"] for r in read_log(tmp_path / "resumed")] == [
        r["picks"] for r in read_log(tmp_path / "full")
    ]
    pool = state["stateful_callbacks"][TRAINER_STATE_KEY]["pool"]
    assert cb.n_scored == len(pool)  # restored epochs 0-1; only epoch 2's pool was scored
    a = {n: p for n, p in full.model.named_parameters() if "lora_" in n}
    b = {n: p for n, p in resumed.model.named_parameters() if "lora_" in n}
    assert all(torch.allclose(a[n], b[n], atol=1e-5) for n in a)


def test_merge_and_save_writes_a_plain_model(tmp_path, data):
    from transformers import AutoModelForCausalLM

    samples, tok = data
    trainer, _ = _lora_trainer(
        tmp_path, samples[:12], tok, SelectionConfig(budget=4), num_train_epochs=1
    )
    trainer.train()
    for p in trainer.model.parameters():  # make the adapter's effect visible
        if "lora_B" in str(p.shape) or p.requires_grad:
            torch.nn.init.normal_(p, std=0.02)
    out = merge_and_save(trainer.model, tok, tmp_path / "merged")
    merged = AutoModelForCausalLM.from_pretrained(str(out))
    assert not any("lora_" in n for n, _ in merged.named_parameters())
    ids = torch.tensor([[tok.bos_token_id, 5, 6, 7]])
    trainer.model.eval()
    with torch.no_grad():
        want = trainer.model(input_ids=ids).logits
        got = merged(input_ids=ids).logits
    assert torch.allclose(want, got, atol=1e-4)
    assert isinstance(trainer.model, peft.PeftModel)  # the trained model stays adapted


def test_sft_trainer_takes_peft_config_and_cpu_defaults(tmp_path, data, monkeypatch):
    """TRL's own defaults (no args: SFTConfig with bf16 on) work on a CPU, and peft_config goes
    to SFTTrainer, which wraps the model itself."""
    pytest.importorskip("trl")
    from tests.helpers.sft import make_sft_trainer

    if torch.cuda.is_available():
        pytest.skip("checks the CPU defaults")
    monkeypatch.chdir(tmp_path)
    samples, tok = data
    trainer = make_sft_trainer(samples[:16], tok, 4, peft_config=_lora())
    assert trainer.args.bf16 is False and trainer.args.max_length == MAX_LEN
    assert isinstance(trainer.model, peft.PeftModel)
    trainer.args.num_train_epochs = 1
    trainer.args.report_to = []
    trainer.train()
    assert len(trainer.iterit.records[0].picks) == 4


@pytest.mark.cuda
def test_qlora_on_a_4bit_model(tmp_path, data):
    """QLoRA: a 4-bit (bitsandbytes) base with LoRA adapters trains with re-selection."""
    if not torch.cuda.is_available():
        pytest.skip("QLoRA needs a CUDA GPU")
    pytest.importorskip("bitsandbytes")
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    from tests.helpers.tiny_llama import tiny_model

    samples, tok = data
    tiny_model(tok, 1).save_pretrained(str(tmp_path / "base"))
    model = AutoModelForCausalLM.from_pretrained(
        str(tmp_path / "base"),
        quantization_config=BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.float32
        ),
    )
    from iterit.training.datasets import ResponseOnlyCollator, TokenizedSamples
    from iterit.training.trainers import IterITTrainer
    from tests.helpers.training import training_args

    trainer = IterITTrainer(
        model=model,
        args=training_args(tmp_path / "run", num_train_epochs=2, use_cpu=False),
        train_dataset=TokenizedSamples(samples[:24], tok, max_length=MAX_LEN),
        data_collator=ResponseOnlyCollator(tok.pad_token_id),
        processing_class=tok,
        samples=samples[:24],
        selection_config=SelectionConfig(budget=6),
        max_length=MAX_LEN,
        progress=False,
        peft_config=_lora(),
    )
    assert isinstance(trainer.model, peft.PeftModel)
    trainer.train()
    assert [len(r["picks"]) for r in read_log(tmp_path / "run")] == [6, 6]
