"""Runs that cannot be mixed up (docs/faults.md, "Run folders"): ``train`` and ``compare`` lock
their output folder (a second run fails at once, a dead run's lock does not block), checkpoints
resume only with the settings that made them, ``--seed`` makes LoRA runs reproducible (killed
and resumed included), and peft's configuration errors are one ``Error:`` line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.helpers.cli import EXAMPLE, fail, run
from tests.helpers.processes import default_sigint
from tests.helpers.shared import ROOT

_HOLD = textwrap.dedent(
    """
    import sys, time
    import {module} as target
    def hold(*a, **k):
        print("HOLDING", file=sys.stderr, flush=True)
        time.sleep(120)
    target.{name} = hold
    from iterit.cli import main
    main(sys.argv[1:])
    """
)


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the model "m" of these tests is never fetched


def _start(module: str, name: str, *args: object) -> subprocess.Popen:
    """``iterit ARGS`` in another process, holding (sleeping) once it reaches ``module.name``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}
    code = _HOLD.format(module=module, name=name)
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *map(str, args)],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        env=env,
        text=True,
        preexec_fn=default_sigint,
    )
    for line in proc.stderr:
        if "HOLDING" in line:
            return proc
    proc.kill()
    raise AssertionError(f"the first run never got going: {proc.communicate()[1]}")


def _train(out: Path, *more: object, model: object = "m", data: object = EXAMPLE) -> list:
    return ["train", "--model", model, "--data", data, "--output-dir", out, *more]


def _compare(out: Path) -> list:
    return ["compare", "--model", "m", "--data", EXAMPLE, "--output-dir", out, "--budget", "4"]


@pytest.mark.parametrize(
    ("args", "module", "name"),
    [(_train, "iterit.training.run", "_load"), (_compare, "iterit.workflows.compare", "_load")],
    ids=["train", "compare"],
)
def test_a_second_run_into_a_busy_folder_is_one_error_line(tmp_path, args, module, name):
    out = tmp_path / "w"
    first = _start(module, name, *args(out))
    try:
        msg = fail(*args(out))
        assert "another run is writing" in msg and str(out) in msg
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=60)
    # The killed run's lock file stays behind, but a dead process holds no lock.
    assert list(tmp_path.glob(".w.iterit-lock"))
    import iterit.training.run as run_module
    import iterit.workflows.compare as compare_module
    from iterit.errors import ConfigError

    target = run_module if module == "iterit.training.run" else compare_module

    def reached(*a, **k):
        raise ConfigError("REACHED past the lock")

    mp = pytest.MonkeyPatch()
    try:
        mp.setattr(target, name, reached)
        assert "REACHED" in fail(*args(out))
    finally:
        mp.undo()
    assert not list(tmp_path.glob(".w.iterit-lock"))  # released when the run ends


# ------------------------------------------------------------------ checkpoints keyed by settings


def _small(tmp_path: Path, n: int = 24) -> Path:
    data = tmp_path / "d.jsonl"
    data.write_text("".join(EXAMPLE.read_text(encoding="utf-8").splitlines(True)[:n]))
    return data


def _tiny_args(model_dir: Path, out: Path, data: Path, *more: object) -> list:
    return _train(
        out, "--budget", "4", "--epochs", "1", "--batch-size", "2", "--micro-batch-size", "2",
        "--max-length", "64", "--device", "cpu", "--no-cache", "--no-progress",
        "--learning-rate", "0.01", *more, model=model_dir, data=data,
    )  # fmt: skip


@pytest.fixture(scope="module")
def one_epoch(tmp_path_factory, tiny_model_dir):
    root = tmp_path_factory.mktemp("settings")
    data = _small(root)
    out = root / "run"
    run(*_tiny_args(tiny_model_dir, out, data))
    return out, data


@pytest.mark.slow
@pytest.mark.parametrize(
    ("change", "setting"),
    [
        (("--max-length", "48"), "max_length"),
        (("--template", "plain"), "template"),
        (("--ifd-variant", "loss-ratio"), "ifd_variant"),
        (("--epochs", "2"), "epochs"),
        (("--seed", "7"), "seed"),
        (("--budget", "5"), "budget"),
    ],
)
def test_resume_with_other_settings_names_the_first_difference(
    tmp_path, tiny_model_dir, one_epoch, change, setting
):
    import shutil

    src, data = one_epoch
    out = tmp_path / "run"
    shutil.copytree(src, out)
    msg = fail(*_tiny_args(tiny_model_dir, out, data, "--resume", *change))
    assert setting in msg and "--overwrite" in msg and "another" in msg


@pytest.mark.slow
def test_resume_with_other_data_is_refused(tmp_path, tiny_model_dir, one_epoch):
    import shutil

    src, data = one_epoch
    out = tmp_path / "run"
    shutil.copytree(src, out)
    rows = [json.loads(x) for x in data.read_text().splitlines()]
    rows[3]["output"] += " (edited)"
    other = tmp_path / "other.jsonl"
    other.write_text("".join(json.dumps(r) + "\n" for r in rows))
    msg = fail(*_tiny_args(tiny_model_dir, out, other, "--resume"))
    assert "data" in msg and "--overwrite" in msg


@pytest.mark.slow
def test_resume_with_the_same_settings_continues(tmp_path, tiny_model_dir, one_epoch):
    import shutil

    src, data = one_epoch
    out = tmp_path / "run"
    shutil.copytree(src, out)
    run(*_tiny_args(tiny_model_dir, out, data, "--resume"))


# ------------------------------------------------------------------ seeded LoRA, peft errors


def _adapter(out: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(out / "adapter_model.safetensors"))


def _lora_args(model_dir: Path, out: Path, data: Path, *more: object) -> list:
    return _tiny_args(model_dir, out, data, "--lora", "--lora-r", "4", *more)


@pytest.mark.slow
def test_two_lora_runs_with_one_seed_are_equal(tmp_path, tiny_model_dir):
    import torch

    data = _small(tmp_path)
    for name in ("a", "b"):
        run(*_lora_args(tiny_model_dir, tmp_path / name, data, "--learning-rate", "0"))
    a, b = _adapter(tmp_path / "a"), _adapter(tmp_path / "b")
    lora_a = [k for k in a if "lora_A" in k]
    assert lora_a and sorted(a) == sorted(b)
    assert all(torch.equal(a[k], b[k]) for k in a)


_KILL_AFTER_FIRST_CHECKPOINT = textwrap.dedent(
    """
    import os, signal, sys
    import transformers
    save = transformers.Trainer._save_checkpoint
    def save_then_die(self, *a, **k):
        save(self, *a, **k)
        os.kill(os.getpid(), signal.SIGKILL)
    transformers.Trainer._save_checkpoint = save_then_die
    from iterit.cli import main
    main(sys.argv[1:])
    """
)


@pytest.mark.slow
def test_killed_lora_run_resumed_equals_a_clean_run(tmp_path, tiny_model_dir):
    import torch

    data = _small(tmp_path)
    args = ("--epochs", "2", "--seed", "5")
    run(*_lora_args(tiny_model_dir, tmp_path / "clean", data, *args))
    killed = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}
    cmd = [sys.executable, "-c", _KILL_AFTER_FIRST_CHECKPOINT]
    done = subprocess.run(
        [*cmd, *map(str, _lora_args(tiny_model_dir, killed, data, *args))],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert list(killed.glob("checkpoint-*")) and not (killed / "adapter_model.safetensors").exists()
    run(*_lora_args(tiny_model_dir, killed, data, *args, "--resume"))
    clean, resumed = _adapter(tmp_path / "clean"), _adapter(killed)
    assert sorted(clean) == sorted(resumed)
    assert all(torch.equal(clean[k], resumed[k]) for k in clean)


@pytest.mark.slow
def test_unknown_lora_target_lists_the_model_modules(tmp_path, tiny_model_dir):
    data = _small(tmp_path, 8)
    msg = fail(*_lora_args(tiny_model_dir, tmp_path / "o", data, "--lora-targets", "foo_proj"))
    assert "foo_proj" in msg and "lora-targets" in msg
    assert "q_proj" in msg and "down_proj" in msg


# ------------------------------------------------------------------ scores tied to their model


@pytest.fixture(scope="module")
def other_model_dir(tmp_path_factory):
    """A second tiny model: the tokenizer of ``tiny_model_dir``, other weights."""
    from iterit.data import load
    from tests.helpers.tiny_llama import save_tiny_model, tiny_tokenizer

    fast = tiny_tokenizer(load(EXAMPLE).samples, vocab_size=400)
    return save_tiny_model(tmp_path_factory.mktemp("other"), fast, seed=1, max_positions=1024)


@pytest.mark.slow
def test_train_refuses_scores_of_another_model(tmp_path, tiny_model_dir, other_model_dir):
    data = _small(tmp_path)
    scores = tmp_path / "scores.jsonl"
    score = ["score", data, "--out", scores, "--max-length", "64", "--no-cache", "--no-progress"]
    run(*score, "--model", other_model_dir, "--dtype", "bfloat16")
    row = json.loads(scores.read_text().splitlines()[0])
    assert row["dtype"] == "bfloat16" and len(row["model_fingerprint"]) == 32
    args = _tiny_args(tiny_model_dir, tmp_path / "o", data, "--scores", scores)
    msg = fail(*args)
    assert "another model" in msg and "--allow-other-model-scores" in msg
    run(*args, "--allow-other-model-scores")  # knowingly
    # The scorer's own scores (bfloat16, while training loads float32 weights) are accepted.
    run(*score, "--model", tiny_model_dir, "--dtype", "bfloat16", "--overwrite")
    run(*_tiny_args(tiny_model_dir, tmp_path / "o2", data, "--scores", scores))


def test_sigint_exits_130_without_a_traceback(tmp_path):
    proc = _start("iterit.training.run", "_load", *_train(tmp_path / "w"))
    proc.send_signal(signal.SIGINT)
    rest = proc.communicate(timeout=60)[1]
    assert proc.returncode == 130, rest
    assert "Traceback" not in rest


@pytest.mark.slow
def test_select_keeps_the_scores_dtype_and_refuses_another_model(
    tmp_path, tiny_model_dir, other_model_dir
):
    from tests.helpers.cli import sidecar

    data = _small(tmp_path)
    scores = tmp_path / "scores.jsonl"
    run("score", data, "--out", scores, "--model", other_model_dir, "--dtype", "bfloat16",
        "--max-length", "64", "--no-cache", "--no-progress")  # fmt: skip
    sel = ["select", data, "--scores", scores, "--budget", "4"]
    run(*sel, "--out", tmp_path / "a.jsonl")
    meta = sidecar(tmp_path / "a.jsonl")[1]
    assert meta["scores_dtype"] == "bfloat16" and len(meta["scores_model_fingerprint"]) == 32
    msg = fail(*sel, "--model", tiny_model_dir, "--out", tmp_path / "b.jsonl")
    assert "another model" in msg and "--allow-other-model-scores" in msg
    run(*sel, "--model", other_model_dir, "--out", tmp_path / "c.jsonl")  # its own model
    run(
        *sel, "--model", tiny_model_dir, "--allow-other-model-scores", "--out", tmp_path / "e.jsonl"
    )
