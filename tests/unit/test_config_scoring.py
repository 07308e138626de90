"""iterit.config.ScoringConfig: validated once when built, a JSON round trip, the defaults the
library and the command line share, and TrainConfig's view of it."""

from __future__ import annotations

import dataclasses
import json

import pytest

from iterit.config import DTYPES, IFD_VARIANTS, TEMPLATES, ScoringConfig, TrainConfig
from iterit.errors import ConfigError


def test_defaults_are_the_papers():
    cfg = ScoringConfig()
    assert (cfg.template, cfg.max_length, cfg.ifd_variant) == ("alpaca", 1024, "iterit")
    assert (cfg.batch_tokens, cfg.dtype, cfg.cache, cfg.progress) == (None, "auto", None, True)


def test_json_round_trip(tmp_path):
    cfg = ScoringConfig(
        template="plain",
        max_length=256,
        ifd_variant="loss-ratio",
        batch_tokens=4096,
        dtype="bfloat16",
        device="cpu",
        cache=tmp_path / "c",
        progress=False,
    )
    data = json.loads(json.dumps(cfg.to_json()))
    assert data["cache"] == str(tmp_path / "c")
    back = ScoringConfig.from_json(data)
    assert dataclasses.replace(back, cache=tmp_path / "c") == cfg
    assert ScoringConfig.from_json(ScoringConfig().to_json()) == ScoringConfig()


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("template", "jinja", "unknown template 'jinja'"),
        ("max_length", 1, "max_length must be at least 2"),
        ("ifd_variant", "cherry", "unknown IFD variant 'cherry'"),
        ("batch_tokens", 0, "batch_tokens must be positive"),
        ("dtype", "int8", "unknown dtype 'int8'"),
    ],
)
def test_each_setting_is_validated_once_when_built(field, value, message):
    with pytest.raises(ConfigError, match=message):
        ScoringConfig(**{field: value})


def test_of_replaces_settings_by_name_and_validates_them():
    base = ScoringConfig(template="plain", max_length=256)
    assert ScoringConfig.of(base, max_length=64) == ScoringConfig(template="plain", max_length=64)
    assert ScoringConfig.of(None, turns="last") == ScoringConfig(turns="last")
    assert ScoringConfig.of(base) is not base and ScoringConfig.of(base) == base
    with pytest.raises(ConfigError, match=r"unknown scoring setting\(s\): maxlen"):
        ScoringConfig.of(base, maxlen=64)
    with pytest.raises(ConfigError, match="max_length must be at least 2"):
        ScoringConfig.of(base, max_length=1)


def test_names_are_normalised_and_callables_accepted():
    assert ScoringConfig(dtype=None).dtype == "auto"
    assert ScoringConfig(dtype="BFloat16").dtype == "bfloat16"
    assert ScoringConfig(max_length="64").max_length == 64

    def render(sample):
        return sample.instruction

    cfg = ScoringConfig(template=render)
    assert cfg.template is render
    with pytest.raises(ConfigError, match="callable template"):
        cfg.to_json()
    with pytest.raises(ConfigError, match="unknown scoring setting"):
        ScoringConfig.from_json({"variant": "iterit"})  # the old name of ifd_variant


def test_choices_come_from_the_choice_lists():
    for template in TEMPLATES:
        ScoringConfig(template=template)
    for variant in IFD_VARIANTS:
        ScoringConfig(ifd_variant=variant)
    for dtype in DTYPES:
        ScoringConfig(dtype=dtype)


def test_train_config_exposes_its_scoring_whole(tmp_path):
    scoring = ScoringConfig(
        template="plain",
        max_length=128,
        ifd_variant="superfiltering",
        turns="last",
        batch_tokens=2048,
        device="cpu",
        cache=str(tmp_path),
        progress=False,
        model_cache=False,
    )
    cfg = TrainConfig.from_scoring(scoring, epochs=2)
    # every setting lands in its TrainConfig field (the cache in score_cache) and comes back
    assert (cfg.template, cfg.turns, cfg.score_cache, cfg.epochs) == (
        "plain",
        "last",
        str(tmp_path),
        2,
    )
    assert cfg.scoring == scoring
    # a setting given by name overrides the config's
    assert TrainConfig.from_scoring(scoring, max_length=64).scoring.max_length == 64
    # the dtype of TrainConfig is the trained model's; None means auto for the scorer
    assert TrainConfig(dtype=None).scoring.dtype == "auto"
    assert TrainConfig(dtype="bfloat16").scoring.dtype == "bfloat16"
    # the defaults are written once: TrainConfig takes ScoringConfig's
    assert (TrainConfig.template, TrainConfig.max_length) == ("alpaca", 1024)
    with pytest.raises(ConfigError, match="unknown IFD variant"):
        TrainConfig(ifd_variant="cherry")


def test_cli_defaults_are_the_dataclass_defaults():
    pytest.importorskip("click")
    from iterit.cli.score import score_command

    defaults = {p.name: p.default for p in score_command.params}
    scoring = ScoringConfig()
    for name in ("template", "max_length", "ifd_variant", "batch_tokens", "dtype", "device"):
        assert defaults[name] == getattr(scoring, name), name
    assert defaults["epochs"] == TrainConfig.epochs and defaults["seed"] == TrainConfig.seed
