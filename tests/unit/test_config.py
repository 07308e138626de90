"""iterit.config: the budget rule, and the validation and defaults of SelectionConfig and
TrainConfig (the paper's values, docs/design.md "Pool and iterations")."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from iterit.config import COMPARE_ARMS, STRATEGIES, SelectionConfig, TrainConfig, resolve_budget
from iterit.errors import ConfigError, InvalidInputError, InvalidTypeError


@pytest.mark.parametrize(
    ("budget", "n", "want"),
    [(7, 100, 7), (7, 3, 7), (0.05, 100, 5), (0.05, 30, 2), (0.05, 10, 1), (0.25, 10, 3)],
)
def test_resolve_budget_counts_and_fractions(budget, n, want):
    # 0.05 * 30 = 1.5 and 0.25 * 10 = 2.5 round half up; a fraction never gives 0 samples.
    assert resolve_budget(budget, n) == want


@pytest.mark.parametrize("bad", [0, -3, 0.0, 1.0, 1.5, -0.1, float("nan")])
def test_resolve_budget_refuses_values_out_of_range(bad):
    with pytest.raises(InvalidInputError, match="budget"):
        resolve_budget(bad, 10)


@pytest.mark.parametrize("bad", [True, "5", None])
def test_resolve_budget_refuses_other_types(bad):
    with pytest.raises(InvalidTypeError, match="budget"):
        resolve_budget(bad, 10)


def test_selection_defaults_are_the_papers():
    cfg = SelectionConfig()
    assert (cfg.budget, cfg.pool_factor, cfg.decay) == (0.05, 3.0, 0.1)
    assert (cfg.diversity, cfg.strategy, cfg.iterate, cfg.ngram_range) == (
        "response",
        "iterit",
        True,
        (1, 3),
    )
    assert cfg.needs_scores and not cfg.in_loop


def test_ifd_strategy_is_iterit_without_diversity():
    cfg = SelectionConfig(strategy="ifd", diversity="both")
    assert (cfg.strategy, cfg.diversity) == ("iterit", "none") and cfg.needs_scores


@pytest.mark.parametrize("strategy", ["random", "longest"])
def test_static_baselines_need_no_scores_and_never_score_in_loop(strategy):
    cfg = SelectionConfig(strategy=strategy, rescore="in-loop")
    assert not cfg.needs_scores and not cfg.in_loop


def test_in_loop_needs_iteration():
    assert SelectionConfig(rescore="in-loop").in_loop
    assert not SelectionConfig(rescore="in-loop", iterate=False).in_loop


def test_ngram_range_is_normalised_to_a_tuple_of_ints():
    assert SelectionConfig(ngram_range=[1.0, 2]).ngram_range == (1, 2)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"strategy": "best"}, "unknown strategy 'best'"),
        ({"diversity": "words"}, "unknown diversity 'words'"),
        ({"decay": 1.0}, "decay must be in"),
        ({"decay": -0.1}, "decay must be in"),
        ({"pool_factor": 0.5}, "pool factor"),
        ({"pool_factor": float("nan")}, "pool factor"),
        ({"rescore": "gradients"}, "unknown rescore"),
        ({"loss_ema": 1.0}, "loss EMA"),
        ({"budget": 1.5}, "budget"),
    ],
)
def test_selection_config_names_the_bad_setting(kwargs, match):
    with pytest.raises((ConfigError, InvalidInputError), match=match):
        SelectionConfig(**kwargs)


def test_train_config_defaults_and_its_selection():
    cfg = TrainConfig(model="m", data="d.jsonl", budget=10, decay=0.2, seed=7)
    assert (cfg.epochs, cfg.learning_rate, cfg.lr_scheduler, cfg.warmup_ratio) == (
        3,
        2e-5,
        "cosine",
        0.03,
    )
    assert (cfg.batch_size, cfg.micro_batch_size, cfg.trainer) == (32, 4, "transformers")
    sel = cfg.selection()
    assert isinstance(sel, SelectionConfig)
    assert (sel.budget, sel.decay, sel.seed, sel.pool_factor) == (10, 0.2, 7, 3.0)
    assert (sel.diversity, sel.strategy, sel.rescore) == ("response", "iterit", "ifd")


def test_train_config_takes_the_selection_defaults():
    cfg, sel = TrainConfig(), SelectionConfig()
    for name in ("budget", "pool_factor", "decay", "diversity", "strategy", "iterate"):
        assert getattr(cfg, name) == getattr(sel, name), name


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"dtype": "int8"}, "unknown dtype"),
        ({"lora_r": 0}, "lora_r"),
        ({"lora_dropout": 1.0}, "lora_dropout"),
        ({"merge_lora": True}, "merge_lora needs lora"),
        ({"trainer": "keras"}, "unknown trainer"),
        ({"epochs": 0}, "epochs must be at least 1"),
        ({"batch_size": 0}, "batch_size"),
        ({"micro_batch_size": 0}, "micro_batch_size"),
        ({"max_length": 0}, "max_length"),
        ({"warmup_ratio": 1.0}, "warmup_ratio"),
        ({"ifd_variant": "ratio"}, "unknown IFD variant"),
        ({"diversity": "tokens"}, "diversity"),
        ({"budget": 0}, "budget"),
    ],
)
def test_train_config_names_the_bad_setting(kwargs, match):
    with pytest.raises((ConfigError, InvalidInputError), match=match):
        TrainConfig(**kwargs)


def test_train_config_to_json_is_json_with_paths_as_strings(tmp_path):
    cfg = TrainConfig(model="m", data=tmp_path / "d.jsonl", output_dir=Path("out"), budget=0.1)
    out = cfg.to_json()
    assert out["data"] == str(tmp_path / "d.jsonl") and out["output_dir"] == "out"
    assert json.loads(json.dumps(out))["budget"] == 0.1
    assert set(out) == {f for f in TrainConfig.__dataclass_fields__}


def test_every_compare_arm_is_a_valid_train_config():
    for name, fields in COMPARE_ARMS.items():
        cfg = TrainConfig(**fields)
        assert cfg.selection().strategy in STRATEGIES, name
    assert not TrainConfig(**COMPARE_ARMS["iterit-static"]).selection().iterate
    assert TrainConfig(**COMPARE_ARMS["iterit-inloop"]).selection().in_loop
