"""iterit.scoring.model_cache: a .gguf file is converted once per content, written whole, and
two processes converting the same file at once produce one entry."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import time
from pathlib import Path

import pytest

from iterit.errors import ModelError
from iterit.scoring import model_cache as mc


@pytest.fixture
def calls(monkeypatch) -> list[Path]:
    """The model files converted, with the conversion replaced by :func:`fake_convert`'s."""
    seen: list[Path] = []
    monkeypatch.setattr(mc, "_convert", fake_convert(seen))
    return seen


def fake_convert(calls: list[Path]):
    def convert(gguf: Path, dest: Path) -> None:
        calls.append(gguf)
        (dest / "model.safetensors").write_bytes(gguf.read_bytes()[::-1])
        (dest / "tokenizer.json").write_text("{}", encoding="utf-8")

    return convert


def test_the_fingerprint_is_the_content_sha256(tmp_path):
    f = tmp_path / "m.gguf"
    f.write_bytes(b"abc" * 1000)
    assert mc.file_fingerprint(f) == hashlib.sha256(b"abc" * 1000).hexdigest()[:32]


def test_converted_once_then_read_from_the_cache(tmp_path, calls):
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"weights-1")
    first = mc.cached_gguf(gguf, tmp_path / "cache")
    again = mc.cached_gguf(gguf, tmp_path / "cache")
    assert first == again and calls == [gguf]
    assert (first / "model.safetensors").read_bytes() == b"1-sthgiew"
    info = json.loads((first / "iterit-model.json").read_text())
    assert info["sha256"] == mc.file_fingerprint(gguf)
    gguf.write_bytes(b"weights-2")  # new content, same name: a new entry
    second = mc.cached_gguf(gguf, tmp_path / "cache")
    assert second != first and len(calls) == 2


def test_a_failed_conversion_leaves_no_entry(tmp_path, monkeypatch):
    def broken(gguf: Path, dest: Path) -> None:
        (dest / "model.safetensors").write_bytes(b"half")
        raise RuntimeError("killed while converting")

    monkeypatch.setattr(mc, "_convert", broken)
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"w")
    with pytest.raises(RuntimeError):
        mc.cached_gguf(gguf, tmp_path / "cache")
    assert [p.name for p in (tmp_path / "cache").iterdir() if not p.name.endswith(".lock")] == []
    calls: list[Path] = []
    monkeypatch.setattr(mc, "_convert", fake_convert(calls))
    assert (mc.cached_gguf(gguf, tmp_path / "cache") / "model.safetensors").exists()


def test_an_entry_without_its_marker_is_made_again(tmp_path, calls):
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"w")
    entry = mc.cached_gguf(gguf, tmp_path / "cache")
    (entry / "iterit-model.json").unlink()
    assert mc.cached_gguf(gguf, tmp_path / "cache") == entry and len(calls) == 2


def test_the_folder_comes_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv(mc.MODEL_CACHE_ENV, str(tmp_path / "models"))
    assert mc.model_cache_dir() == tmp_path / "models"
    monkeypatch.delenv(mc.MODEL_CACHE_ENV)
    monkeypatch.setenv("ITERIT_CACHE_DIR", str(tmp_path / "c"))
    assert mc.model_cache_dir() == tmp_path / "c" / "models"


def test_an_unwritable_cache_is_a_model_error(tmp_path, monkeypatch):
    monkeypatch.setattr(mc, "_convert", fake_convert([]))
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"w")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ModelError, match="cannot write the model cache"):
        mc.cached_gguf(gguf, tmp_path / "file" / "cache")


def _slow_convert(gguf: Path, dest: Path) -> None:
    # Counts conversions in a shared log; slow enough for the two processes to overlap.
    with open(gguf.parent / "conversions.log", "a") as f:
        f.write(f"{os.getpid()}\n")
    time.sleep(0.5)
    (dest / "model.safetensors").write_bytes(b"x")


def _worker(gguf: str, cache: str) -> None:
    mc._convert = _slow_convert
    mc.cached_gguf(gguf, cache)


def test_two_processes_at_once_convert_once(tmp_path):
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(b"w")
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_worker, args=(str(gguf), str(tmp_path / "c"))) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    assert len((tmp_path / "conversions.log").read_text().split()) == 1
