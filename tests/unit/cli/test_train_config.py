"""iterit.cli.train_config: the options ``iterit train`` and ``iterit compare`` share (model,
data, output folder) and the TrainConfig built from their parsed values, through a command
declared the way both declare theirs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

click = pytest.importorskip("click")

from click.testing import CliRunner  # noqa: E402

from iterit.cli import options  # noqa: E402
from iterit.cli.train_config import (  # noqa: E402
    SHARED_SETTINGS,
    missing_training,
    run_inputs_options,
    train_config,
)
from iterit.config import TrainConfig  # noqa: E402
from iterit.errors import ConfigError, IteritError, MissingDependencyError  # noqa: E402
from tests.helpers.cli import EXAMPLE  # noqa: E402

OUTPUT_HELP = "Run folder: the test writes nothing there."


def command(seen: list[dict]):
    @click.command()
    @run_inputs_options(OUTPUT_HELP)
    @options.selection_options
    @options.training_options()
    @options.schedule_options
    @options.training_seed_option()
    @options.progress_option
    def cmd(**params):
        seen.append(params)

    return cmd


def parse(*args: str) -> dict:
    seen: list[dict] = []
    result = CliRunner().invoke(command(seen), [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return seen[0]


def parse_error(*args: str) -> str:
    result = CliRunner().invoke(command([]), [str(a) for a in args])
    assert result.exit_code == 2, result.output
    return result.output


def base_args(tmp_path: Path) -> list[str]:
    return ["--data", str(EXAMPLE), "--output-dir", str(tmp_path / "run")]


def test_every_shared_setting_is_a_train_config_field():
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    assert set(SHARED_SETTINGS) <= fields
    assert len(set(SHARED_SETTINGS)) == len(SHARED_SETTINGS)


def test_the_options_it_adds(tmp_path):
    cmd = command([])
    names = {p.name for p in cmd.params}
    assert {"output_dir", "data", "data_format", "fields", "split", "model", "cache"} <= names
    assert {"no_cache", "template", "ifd_variant", "max_length", "dtype", "device"} <= names
    out = next(p for p in cmd.params if p.name == "output_dir")
    assert out.required and out.help == OUTPUT_HELP
    data = next(p for p in cmd.params if p.name == "data")
    assert data.required


def test_defaults_make_the_default_train_config(tmp_path, monkeypatch):
    monkeypatch.setenv("ITERIT_CACHE_DIR", str(tmp_path / "cache"))
    params = parse(*base_args(tmp_path))
    cfg = train_config(params, "tiny-model", "alpaca")
    assert (cfg.model, cfg.data, cfg.output_dir) == (
        "tiny-model",
        str(EXAMPLE),
        str(tmp_path / "run"),
    )
    assert cfg.data_format == "alpaca" and cfg.fields is None and cfg.split is None
    assert cfg.score_cache == str(tmp_path / "cache")  # the user's cache by default
    default = TrainConfig(model="tiny-model", data=str(EXAMPLE), output_dir=str(tmp_path / "run"))
    for name in (*SHARED_SETTINGS, "diversity", "lr_scheduler", "ifd_variant"):
        if name == "progress":  # the command line's default: bars only on a terminal
            assert cfg.progress is False  # CliRunner's output is not one
            continue
        assert getattr(cfg, name) == getattr(default, name), name
    assert cfg.dtype == "auto" and default.dtype is None  # TrainConfig's None is auto


def test_every_shared_option_reaches_the_config(tmp_path):
    params = parse(
        *base_args(tmp_path),
        "--split", "validation",
        "--budget", "7",
        "--pool-factor", "2.5",
        "--decay", "0.25",
        "--template", "plain",
        "--max-length", "96",
        "--batch-tokens", "512",
        "--epochs", "2",
        "--learning-rate", "0.001",
        "--warmup-ratio", "0.1",
        "--batch-size", "8",
        "--micro-batch-size", "2",
        "--seed", "11",
        "--device", "cpu",
        "--no-progress",
        "--field", "output=answer",
        "--cache", str(tmp_path / "c"),
    )  # fmt: skip
    cfg = train_config(params, "m", "alpaca")
    got = {name: getattr(cfg, name) for name in SHARED_SETTINGS}
    assert got == {
        "split": "validation",
        "budget": 7,
        "pool_factor": 2.5,
        "decay": 0.25,
        "template": "plain",
        "max_length": 96,
        "batch_tokens": 512,
        "epochs": 2,
        "learning_rate": 0.001,
        "warmup_ratio": 0.1,
        "batch_size": 8,
        "micro_batch_size": 2,
        "seed": 11,
        "device": "cpu",
        "progress": False,
    }
    assert cfg.fields == {"output": "answer"} and cfg.score_cache == str(tmp_path / "c")


def test_no_cache_wins_over_a_cache_folder(tmp_path):
    params = parse(*base_args(tmp_path), "--cache", str(tmp_path / "c"), "--no-cache")
    assert train_config(params, "m", "alpaca").score_cache is None


def test_choices_are_lower_cased(tmp_path):
    params = parse(
        *base_args(tmp_path),
        "--diversity", "NONE",
        "--lr-scheduler", "Linear",
        "--ifd-variant", "SuperFiltering",
        "--dtype", "Float32",
    )  # fmt: skip
    cfg = train_config(params, "m", "alpaca")
    assert (cfg.diversity, cfg.lr_scheduler, cfg.ifd_variant, cfg.dtype) == (
        "none",
        "linear",
        "superfiltering",
        "float32",
    )
    # Values given as they are typed (not through click's choice) are lower-cased too.
    params.update(diversity="Both", dtype="BFLOAT16", strategy="RANDOM")
    cfg = train_config(params, "m", "alpaca", choices=("strategy",))
    assert (cfg.diversity, cfg.dtype, cfg.strategy) == ("both", "bfloat16", "random")


def test_extra_names_and_fields_are_passed_as_given(tmp_path):
    params = {**parse(*base_args(tmp_path)), "save_strategy": "no", "epochs": 1}
    cfg = train_config(params, "m", "alpaca", names=("save_strategy",), lora=True, lora_r=4)
    assert cfg.save_strategy == "no" and cfg.epochs == 1 and cfg.lora and cfg.lora_r == 4
    # A parsed option that is not named stays out of the config.
    cfg = train_config(params, "m", "alpaca")
    assert cfg.save_strategy == TrainConfig.save_strategy


def test_a_setting_the_config_refuses_is_a_config_error_naming_it(tmp_path):
    params = {**parse(*base_args(tmp_path)), "epochs": 0}
    with pytest.raises(ConfigError, match="epochs"):
        train_config(params, "m", "alpaca")


def test_required_options_and_paths_are_usage_errors(tmp_path):
    assert "Missing option '--output-dir'" in parse_error("--data", str(EXAMPLE))
    assert "Missing option '--data'" in parse_error("--output-dir", str(tmp_path / "run"))
    missing = parse_error("--data", str(tmp_path / "nope.jsonl"), "--output-dir", str(tmp_path))
    assert "--data" in missing and "does not exist" in missing
    a_file = tmp_path / "file"
    a_file.write_text("x")
    out = parse_error("--data", str(EXAMPLE), "--output-dir", str(a_file))
    assert "--output-dir" in out and "is a file" in out


def test_missing_training_names_the_command_the_cause_and_the_fix():
    err = missing_training("iterit compare", ModuleNotFoundError("No module named 'accelerate'"))
    assert isinstance(err, MissingDependencyError)
    assert isinstance(err, IteritError) and isinstance(err, ImportError)
    msg = str(err)
    assert msg.startswith("iterit compare needs torch, transformers and accelerate (")
    assert "No module named 'accelerate'" in msg
    assert msg.endswith("install them with pip install 'iterit[train]'") and "\n" not in msg
