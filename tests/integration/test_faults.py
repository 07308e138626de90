"""Faults injected into the command line (docs/faults.md): a full disk (monkeypatched ENOSPC
and a real, small tmpfs), SIGINT, SIGTERM and SIGKILL while writing and scoring, a corrupt
``.gz`` input, non-finite option values, an unwritable cache, partial and damaged training
checkpoints, an output that is the input.  After each: the previous output set is whole, no
partial file remains, and the user sees one ``Error:`` line (no traceback)."""

from __future__ import annotations

import errno
import gzip
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from iterit.cli import main
from iterit.data import LoadedData
from tests.helpers.cli import EXAMPLE, fail, leftovers, run
from tests.helpers.processes import default_sigint
from tests.helpers.shared import ROOT

SELECT = ["--complexity", "none", "--budget", "5"]
#: How ``iterit select`` reads the data in these tests: a selection that needs only the texts
#: reads them as Arrow columns and writes its picks by position (iterit.data.columns); a named
#: format takes the record path (iterit.data.readers).  Both must survive the same faults.
READERS = {"columns": [], "records": ["--format", "alpaca"]}


def _selection_files(out: Path) -> dict[str, bytes]:
    files = [
        out,
        *(out.with_name(out.name + s) for s in (".scores.jsonl", ".meta.json", ".run.json")),
    ]
    return {p.name: p.read_bytes() for p in files if p.exists()}


def _previous_selection(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    out = tmp_path / "sel.jsonl"
    run("select", EXAMPLE, *SELECT, "--out", out)
    before = _selection_files(out)
    assert len(before) == 4
    return out, before


def _interrupt_records(monkeypatch, fault: BaseException) -> None:
    """Make writing the selected records fail after two of them, on either reading path."""
    from iterit.data import columns

    original = LoadedData.records
    picked_lines = columns._picked_lines

    class Failing(list):
        def __iter__(self):
            for k, item in enumerate(list.__iter__(self)):
                if k == 2:
                    raise fault
                yield item

    def records(self, indices=None):
        got = original(self, indices)
        return Failing(got) if indices is not None else got

    monkeypatch.setattr(LoadedData, "records", records)
    monkeypatch.setattr(columns, "_picked_lines", lambda *a: Failing(picked_lines(*a)))


# ------------------------------------------------------------------ output sets: defect 1


@pytest.mark.parametrize(
    "fault",
    [
        OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)),
        KeyboardInterrupt(),  # SIGINT
        SystemExit(128 + signal.SIGTERM),  # what the command line turns SIGTERM into
    ],
    ids=["enospc", "sigint", "sigterm"],
)
@pytest.mark.parametrize("reader", list(READERS))
def test_failed_overwrite_keeps_the_whole_previous_selection(tmp_path, monkeypatch, fault, reader):
    out, before = _previous_selection(tmp_path)
    _interrupt_records(monkeypatch, fault)
    args = ["select", EXAMPLE, *READERS[reader], "--complexity", "none", "--budget", "7"]
    args += ["--out", out]
    if isinstance(fault, OSError):
        assert "No space left" in fail(*args, "--overwrite")
    else:
        result = CliRunner().invoke(main, [str(a) for a in args] + ["--overwrite"])
        assert result.exit_code != 0
    assert _selection_files(out) == before  # all four files, byte for byte
    assert leftovers(tmp_path) == [] and sorted(os.listdir(tmp_path)) == sorted(before)


_SLOW_WRITER = textwrap.dedent(
    """
    import sys, time
    from iterit.data import LoadedData, columns
    from iterit.cli import main
    class Slow(list):
        def __iter__(self):
            for k, item in enumerate(list.__iter__(self)):
                if k == 1:
                    print("WRITING", file=sys.stderr, flush=True)
                    time.sleep(30)
                yield item
    original = LoadedData.records
    def records(self, indices=None):
        got = original(self, indices)
        return got if indices is None else Slow(got)
    LoadedData.records = records
    picked_lines = columns._picked_lines
    columns._picked_lines = lambda *a: Slow(picked_lines(*a))
    main(sys.argv[1:])
    """
)


def _start(code: str, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}
    return subprocess.Popen(
        [sys.executable, "-c", code, *map(str, args)],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        env=env,
        text=True,
        preexec_fn=default_sigint,  # these tests send SIGINT: never inherit it ignored
    )


def _wait_for(proc: subprocess.Popen, marker: str, timeout: float = 60.0) -> None:
    t0 = time.monotonic()
    for line in proc.stderr:
        if marker in line:
            return
        if time.monotonic() - t0 > timeout:
            break
    proc.kill()
    raise AssertionError(f"{marker!r} never came: {proc.stderr.read()}")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
@pytest.mark.parametrize("reader", list(READERS))
def test_signal_while_writing_keeps_the_previous_selection(tmp_path, sig, reader):
    out, before = _previous_selection(tmp_path)
    args = ["select", EXAMPLE, *READERS[reader], "--complexity", "none", "--budget", "7"]
    args += ["--out", out]
    proc = _start(_SLOW_WRITER, *args, "--overwrite")
    _wait_for(proc, "WRITING")
    proc.send_signal(sig)
    rest = proc.communicate(timeout=60)[1]
    assert proc.returncode != 0
    assert "Traceback" not in rest
    assert _selection_files(out) == before
    if sig != signal.SIGKILL:  # a killed process cannot clean up: its temporary files stay
        assert leftovers(tmp_path) == []
    assert not list(tmp_path.glob(".*iterit-lock")) or sig == signal.SIGKILL


def test_two_writers_to_one_output_do_not_mix(tmp_path):
    out, before = _previous_selection(tmp_path)
    slow = ["select", EXAMPLE, "--complexity", "none", "--budget", "7", "--out", out]
    proc = _start(_SLOW_WRITER, *slow, "--overwrite")
    try:
        _wait_for(proc, "WRITING")
        msg = fail(
            "select", EXAMPLE, "--complexity", "none", "--budget", "3", "--out", out, "--overwrite"
        )
        assert "another run is writing" in msg
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    assert _selection_files(out) == before


def test_output_that_is_the_input_is_refused_even_with_overwrite(tmp_path):
    data = tmp_path / "data.jsonl"
    data.write_bytes(EXAMPLE.read_bytes())
    os.symlink(data, tmp_path / "alias.jsonl")
    for out in (data, tmp_path / "alias.jsonl", tmp_path / "." / "data.jsonl"):
        msg = fail("select", data, *SELECT, "--out", out, "--overwrite")
        assert "is the input file" in msg
    assert data.read_bytes() == EXAMPLE.read_bytes()


def test_outputs_follow_the_umask_and_missing_folders_are_created(tmp_path):
    old = os.umask(0o022)
    try:
        out = tmp_path / "new" / "deeper" / "sel.jsonl"
        run("select", EXAMPLE, *SELECT, "--out", out)
    finally:
        os.umask(old)
    for name in _selection_files(out):
        assert (out.parent / name).stat().st_mode & 0o777 == 0o644


def test_selection_is_reproducible_byte_for_byte(tmp_path):
    out = tmp_path / "s.jsonl.gz"
    run("select", EXAMPLE, *SELECT, "--out", out)
    first = _selection_files(out)
    time.sleep(1.1)  # a different second: an mtime in the gzip header would show
    run("select", EXAMPLE, *SELECT, "--out", out, "--overwrite")
    again = _selection_files(out)
    run_file = out.name + ".run.json"
    assert {k: v for k, v in again.items() if k != run_file} == {
        k: v for k, v in first.items() if k != run_file
    }
    assert gzip.decompress(first[out.name]).count(b"\n") == 5
    run_meta = json.loads(again[run_file])  # the run-dependent part, kept apart
    assert run_meta["command"][:2] == ["iterit", "select"] or run_meta["command"][0] == "iterit"
    assert "select_seconds" in run_meta


# ------------------------------------------------------------------ a real full disk


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    try:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mnt)],
            capture_output=True,
            timeout=20,
        )
    except (OSError, subprocess.SubprocessError) as e:
        pytest.skip(f"cannot mount a tmpfs here: {e}")
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, timeout=20)


def test_real_full_disk_keeps_the_previous_selection(tmp_path, small_disk):
    big = tmp_path / "big.jsonl"
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines(keepends=True)
    big.write_text("".join(lines * 20), encoding="utf-8")  # ~ 2,000 records, > 64 KiB
    out = small_disk / "sel.jsonl"
    run("select", EXAMPLE, *SELECT, "--out", out)
    before = _selection_files(out)
    msg = fail(
        "select", big, "--complexity", "none", "--budget", "0.9", "--out", out, "--overwrite"
    )
    assert "No space left" in msg
    assert _selection_files(out) == before
    assert leftovers(small_disk) == []


# ------------------------------------------------------------------ one line: defect 5


def test_corrupt_gz_input_is_one_error_line(tmp_path):
    data = bytearray(gzip.compress(EXAMPLE.read_bytes()))
    for i in range(40, 80):
        data[i] ^= 0xFF
    bad = tmp_path / "bad.jsonl.gz"
    bad.write_bytes(bytes(data))
    msg = fail("select", bad, *SELECT, "--out", tmp_path / "o.jsonl")
    assert "bad.jsonl.gz" in msg
    truncated = tmp_path / "cut.jsonl.gz"
    truncated.write_bytes(gzip.compress(EXAMPLE.read_bytes())[:500])
    assert "cut.jsonl.gz" in fail("select", truncated, *SELECT, "--out", tmp_path / "o.jsonl")


@pytest.mark.parametrize(
    "option,value",
    [("--pool-factor", "inf"), ("--decay", "nan"), ("--pool-factor", "nan"), ("--decay", "-inf")],
)
def test_non_finite_option_values_are_refused(tmp_path, option, value):
    result = CliRunner().invoke(
        main, ["select", str(EXAMPLE), *SELECT, option, value, "--out", str(tmp_path / "o.jsonl")]
    )
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and option in result.output
    assert not (tmp_path / "o.jsonl").exists()


def test_debug_switch_shows_the_traceback(tmp_path, monkeypatch):
    monkeypatch.setenv("ITERIT_DEBUG", "1")
    bad = tmp_path / "bad.jsonl.gz"
    bad.write_bytes(b"not gzip")
    result = CliRunner().invoke(main, ["select", str(bad), *SELECT, "--out", str(tmp_path / "o")])
    assert result.exit_code != 0 and result.exception is not None
    assert not isinstance(result.exception, SystemExit)


# ------------------------------------------------------------------ scoring


def _small_data(tmp_path: Path, n: int = 30) -> Path:
    data = tmp_path / "d.jsonl"
    data.write_text("".join(EXAMPLE.read_text(encoding="utf-8").splitlines(True)[:n]))
    return data


def _score_args(tmp_path: Path, model_dir: Path, out: Path, *more) -> list:
    """``iterit score`` of :func:`_small_data` with the model in ``model_dir`` into ``out``."""
    return ["score", _small_data(tmp_path), "--model", model_dir, "--out", out, *more]


_SLOW_SCORER = textwrap.dedent(
    """
    import sys, time
    from iterit.scoring.scorer import IFDScorer
    from iterit.cli import main
    init, run_batch, calls = IFDScorer.__init__, IFDScorer._run_batch, [0]
    def __init__(self, *a, **k):
        init(self, *a, **k)
        self.flush_seconds = 0.0  # every batch's finished samples go to the cache
        self.batch_tokens = self._budget = 64
    def _run_batch(self, batch):
        calls[0] += 1
        if calls[0] > 1 and any(self.cache_dir.rglob("part-*.jsonl")):  # something was kept
            print("SCORING", file=sys.stderr, flush=True)
            time.sleep(60)
        return run_batch(self, batch)
    IFDScorer.__init__, IFDScorer._run_batch = __init__, _run_batch
    main(sys.argv[1:])
    """
)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_signal_while_scoring_keeps_the_scores_done(tmp_path, tiny_model_dir, sig):
    cache, out = tmp_path / "cache", tmp_path / "scores.jsonl"
    args = _score_args(tmp_path, tiny_model_dir, out, "--cache", cache)
    proc = _start(_SLOW_SCORER, *args, "--no-progress")
    _wait_for(proc, "SCORING", timeout=240)
    proc.send_signal(sig)
    rest = proc.communicate(timeout=60)[1]
    assert proc.returncode != 0 and "Traceback" not in rest
    assert not out.exists() and leftovers(tmp_path) == []
    again = run(*args, "--no-progress")
    assert "samples' scores read from the cache" in again.output


def test_unwritable_cache_folder_warns_and_scores(tmp_path, tiny_model_dir):
    (tmp_path / "afile").write_text("")
    out = tmp_path / "scores.jsonl"
    cache = tmp_path / "afile" / "cache"
    res = run(*_score_args(tmp_path, tiny_model_dir, out, "--no-progress", "--cache", cache))
    assert len(out.read_text().splitlines()) == 30
    assert res.output.count("cannot be written") <= 1


def test_full_disk_when_writing_scores_is_one_error_line(tmp_path, tiny_model_dir, monkeypatch):
    import iterit.utils.atomic as atomic

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(atomic, "_publish", full)
    out = tmp_path / "scores.jsonl"
    msg = fail(*_score_args(tmp_path, tiny_model_dir, out, "--no-progress", "--no-cache"))
    assert "No space left" in msg
    assert not out.exists() and leftovers(tmp_path) == []


# ------------------------------------------------------------------ training: defect 2


def _train_args(model_dir: Path, out: Path, data: Path) -> list:
    return [
        "train", "--model", model_dir, "--data", data, "--output-dir", out, "--budget", "4",
        "--epochs", "1", "--batch-size", "2", "--micro-batch-size", "2", "--max-length", "64",
        "--device", "cpu", "--no-cache", "--no-progress", "--learning-rate", "0.01",
    ]  # fmt: skip


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, tiny_model_dir):
    """A one-epoch run in runs/NAME (a folder that does not exist yet), with its checkpoint."""
    root = tmp_path_factory.mktemp("train")
    data = root / "data.jsonl"
    data.write_text("".join(EXAMPLE.read_text(encoding="utf-8").splitlines(True)[:24]))
    out = root / "runs" / "tiny"
    run(*_train_args(tiny_model_dir, out, data))
    assert list(out.glob("checkpoint-*"))
    return out, data


@pytest.mark.slow
def test_resume_skips_an_incomplete_checkpoint(tmp_path, tiny_model_dir, trained_run):
    import shutil

    src, data = trained_run
    out = tmp_path / "run"
    shutil.copytree(src, out)
    # Killed while writing the next checkpoint: no trainer_state.json, an empty optimizer.pt.
    partial = out / "checkpoint-999"
    partial.mkdir()
    (partial / "optimizer.pt").write_bytes(b"")
    with pytest.warns(UserWarning, match="checkpoint-999"):
        res = run(*_train_args(tiny_model_dir, out, data), "--resume")
    assert res.exit_code == 0


@pytest.mark.slow
def test_damaged_trainer_state_names_the_file(tmp_path, tiny_model_dir, trained_run):
    import shutil

    src, data = trained_run
    out = tmp_path / "run"
    shutil.copytree(src, out)
    ckpt = sorted(out.glob("checkpoint-*"))[-1]
    state = ckpt / "trainer_state.json"
    state.write_text(state.read_text()[:40])
    msg = fail(*_train_args(tiny_model_dir, out, data), "--resume", ckpt)
    assert "trainer_state.json" in msg and str(ckpt) in msg


def test_deepspeed_config_without_deepspeed_is_one_error_line(tmp_path, tiny_model_dir):
    import importlib.util

    if importlib.util.find_spec("deepspeed") is not None:
        pytest.skip("deepspeed is installed here")
    ds = tmp_path / "ds.json"
    ds.write_text(json.dumps({"train_micro_batch_size_per_gpu": "auto"}))
    data = tmp_path / "d.jsonl"
    data.write_text("".join(EXAMPLE.read_text(encoding="utf-8").splitlines(True)[:8]))
    msg = fail(*_train_args(tiny_model_dir, tmp_path / "r", data), "--deepspeed", ds)
    assert "deepspeed" in msg.lower() and "ds.json" in msg
