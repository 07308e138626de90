"""iterit.training.compat: the bridges between transformers / TRL releases, each checked on
both shapes it bridges (the older and the newer argument classes, outputs and trainers).  The
mixed-precision choice is tested with the precision policy."""

from __future__ import annotations

import dataclasses
import sys
from types import SimpleNamespace

import pytest

pytest.importorskip("torch")

import torch

from iterit.training import compat


@dataclasses.dataclass
class OldArgs:  # transformers 4.x: gradient_checkpointing, warmup_ratio, no_cuda
    gradient_checkpointing: bool = False
    warmup_ratio: float = 0.0
    warmup_steps: int = 0
    no_cuda: bool = False


@dataclasses.dataclass
class NewArgs:  # transformers 5: activation_checkpointing, float warmup_steps, use_cpu
    activation_checkpointing: bool = False
    warmup_steps: float = 0
    use_cpu: bool = False


def test_argument_names_follow_the_release():
    assert compat.checkpointing_kwargs(OldArgs, True) == {"gradient_checkpointing": True}
    assert compat.checkpointing_kwargs(NewArgs, False) == {"activation_checkpointing": False}
    assert compat.warmup_kwargs(OldArgs, 0.1) == {"warmup_ratio": 0.1}
    assert compat.warmup_kwargs(NewArgs, 0.1) == {"warmup_steps": 0.1}
    assert compat.cpu_kwargs(OldArgs) == {"no_cuda": True}
    assert compat.cpu_kwargs(NewArgs) == {"use_cpu": True}


def test_the_installed_training_arguments_accept_what_compat_gives(tmp_path):
    transformers = pytest.importorskip("transformers")
    cls = transformers.TrainingArguments
    kwargs = {
        **compat.checkpointing_kwargs(cls, False),
        **compat.warmup_kwargs(cls, 0.1),
        **compat.cpu_kwargs(cls),
    }
    args = cls(str(tmp_path), report_to="none", **kwargs)
    assert args.get_warmup_steps(100) == 10


def test_trainer_attributes_of_either_release():
    tok = object()
    assert compat.trainer_tokenizer(SimpleNamespace(processing_class=tok)) is tok
    assert compat.trainer_tokenizer(SimpleNamespace(processing_class=None, tokenizer=tok)) is tok
    assert compat.trainer_tokenizer(SimpleNamespace()) is None
    assert compat.sampling_strategy(SimpleNamespace()) == "random"
    assert compat.sampling_strategy(SimpleNamespace(train_sampling_strategy="group_by_length")) == (
        "group_by_length"
    )
    assert compat.uses_packing(SimpleNamespace(packing=True))
    assert not compat.uses_packing(SimpleNamespace())
    assert compat.stateful_callbacks(SimpleNamespace()) is None
    assert compat.stateful_callbacks(SimpleNamespace(stateful_callbacks={"a": 1})) == {"a": 1}


def test_signature_columns_round_trip():
    trainer = SimpleNamespace()
    assert compat.signature_columns(trainer) is None
    compat.set_signature_columns(trainer, ["input_ids", "labels"])
    assert compat.signature_columns(trainer) == ["input_ids", "labels"]


def test_lm_output_parts_of_every_output_shape():
    logits = torch.zeros(2, 3, 5)
    loss = torch.tensor(1.0)
    assert compat.lm_output_parts(SimpleNamespace(logits=logits))[0] is logits
    assert compat.lm_output_parts((loss, logits))[0] is logits  # loss first
    assert compat.lm_output_parts((logits, None))[0] is logits  # no loss
    lp, mask = torch.zeros(2, 3), torch.ones(2, 3, dtype=torch.bool)
    fused = SimpleNamespace(log_probs=lp, label_mask=mask, logits=None)
    assert compat.lm_output_parts(fused) == (None, lp, mask)


def test_is_sft_trainer_without_and_with_trl(monkeypatch):
    class Plain:
        pass

    monkeypatch.delitem(sys.modules, "trl", raising=False)
    assert not compat.is_sft_trainer(Plain)  # trl not loaded: nothing can be an SFTTrainer
    fake_trl = SimpleNamespace(SFTTrainer=type("SFTTrainer", (), {}))
    monkeypatch.setitem(sys.modules, "trl", fake_trl)
    sub = type("Mine", (fake_trl.SFTTrainer,), {})
    assert compat.is_sft_trainer(sub) and not compat.is_sft_trainer(Plain)


def test_missing_trl_is_a_missing_dependency(monkeypatch):
    from iterit.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "trl", None)
    with pytest.raises(MissingDependencyError, match=r"trl.*pip install .iterit\[train\]"):
        compat.sft_classes()


def test_takes_peft_config_reads_the_extended_classes_init():
    class WrapsPeft:
        def __init__(self, model=None, peft_config=None):
            pass

    class Plain:
        def __init__(self, model=None):
            pass

    assert compat.takes_peft_config(type("T", (WrapsPeft,), {}))
    assert not compat.takes_peft_config(type("T", (Plain,), {}))


def test_forward_hook_module_is_the_lm_or_the_peft_tuner():
    from iterit.data import load
    from tests.helpers.cli import EXAMPLE
    from tests.helpers.tiny_llama import tiny_model, tiny_tokenizer

    model = tiny_model(tiny_tokenizer(load(EXAMPLE).samples, vocab_size=400))
    assert compat.forward_hook_module(model) is model
    peft = pytest.importorskip("peft")
    wrapped = peft.get_peft_model(model, peft.LoraConfig(r=2, target_modules=["q_proj"]))
    hooked = compat.forward_hook_module(wrapped)
    assert hooked is wrapped.base_model  # the LoraModel tuner, whose output is the LM's
