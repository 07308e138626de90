"""iterit.training.run: where the initial model is placed for work done outside the Trainer
(the epoch-0 scoring and base evaluation of ``iterit compare``), and the precision it mixes."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import torch

from iterit.config import TrainConfig
from iterit.training import run


@pytest.mark.parametrize(
    ("device", "cuda", "local_rank", "expected"),
    [
        ("cpu", True, None, "cpu"),
        ("cuda:3", False, None, "cuda:3"),
        (None, True, None, "cuda:0"),
        (None, True, "1", "cuda:1"),
        (None, False, "1", "cpu"),
    ],
)
def test_training_device(monkeypatch, device, cuda, local_rank, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    if local_rank is None:
        monkeypatch.delenv("LOCAL_RANK", raising=False)
    else:
        monkeypatch.setenv("LOCAL_RANK", local_rank)
    assert run.training_device(TrainConfig(output_dir="out", device=device)) == expected


def test_placed_moves_the_model_to_the_training_device(monkeypatch):
    moved = []

    class Model:
        def to(self, device):
            moved.append(device)
            return self

    monkeypatch.setattr(
        run, "_load", lambda name, cfg: SimpleNamespace(model=Model(), tokenizer="tok")
    )
    monkeypatch.setattr(run, "training_device", lambda cfg: "cuda:0")
    cfg = TrainConfig(output_dir="out", model="m")
    run.load_training_model(cfg)
    assert moved == []  # the Trainer places the model it trains
    _model, tok = run.load_training_model(cfg, placed=True)
    assert moved == ["cuda:0"] and tok == "tok"


@pytest.mark.parametrize(("bf16", "expected"), [(True, True), (False, False)])
def test_precision_follows_the_switch(bf16, expected):
    assert run.precision(TrainConfig(output_dir="out", device="cpu", bf16=bf16)).bf16 is expected
