"""The score cache under damage and failure (docs/faults.md): a changed digit or an undecodable
byte in a part is ignored, counted in one warning and re-scored; an interruption keeps what was
scored up to the last timed flush; the key follows the tokenizer's content, not its path; an
unwritable cache warns once and scoring goes on."""

from __future__ import annotations

import errno
import os
import re
import warnings

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

from iterit.scoring import IFDScorer
from iterit.scoring.cache import ScoreCache
from tests.helpers.word_llama import INVALID, MAX_LEN, assert_same_scores

N_VALID = 36 - len(INVALID)


def scorer(model, tok, **kw) -> IFDScorer:
    kw.setdefault("max_length", MAX_LEN)
    kw.setdefault("progress", False)
    return IFDScorer(model, tok, **kw)


@pytest.fixture(scope="module")
def filled(model, tok, samples, tmp_path_factory):
    """A cache holding every sample's scores, and the clean run's scores."""
    cache = tmp_path_factory.mktemp("filled") / "cache"
    clean = scorer(model, tok, cache=cache).score(samples)
    return cache, clean


def _copy(cache, tmp_path):
    import shutil

    shutil.copytree(cache, tmp_path / "cache")
    return tmp_path / "cache"


def _one_part(cache):
    parts = sorted(cache.rglob("part-*.jsonl"))
    assert len(parts) == 1
    return parts[0]


def test_changed_digit_is_detected_and_rescored(model, tok, samples, filled, tmp_path):
    cache = _copy(filled[0], tmp_path)
    part = _one_part(cache)
    text = part.read_text()
    # Change one digit of the first entry's conditional NLL (a valid JSON number still).
    m = re.search(r'"c": (\d)\.(\d)', text)
    digit = m.group(2)
    text = text[: m.start(2)] + str((int(digit) + 1) % 10) + text[m.end(2) :]
    part.write_text(text)
    with pytest.warns(UserWarning, match="1 damaged entry"):
        sc = scorer(model, tok, cache=cache)
        out = sc.score(samples)
    assert out.stats.cached == N_VALID - 1
    assert out.stats.scored == 1
    assert_same_scores(out, filled[1])


def test_undecodable_bytes_never_crash(model, tok, samples, filled, tmp_path):
    cache = _copy(filled[0], tmp_path)
    part = _one_part(cache)
    data = part.read_bytes()
    cut = data.index(b"\n") + 5  # inside the second entry
    part.write_bytes(data[:cut] + b"\xff\xfe" + data[cut:])
    with pytest.warns(UserWarning, match="1 damaged entry"):
        sc = scorer(model, tok, cache=cache)
        out = sc.score(samples)
    assert out.stats.cached == N_VALID - 1
    assert_same_scores(out, filled[1])
    # A truncated part (killed mid-write on a file system without atomic rename) too.
    part.write_bytes(data[: len(data) // 2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert_same_scores(scorer(model, tok, cache=cache).score(samples), filled[1])


def test_interruption_keeps_what_was_scored_before_the_last_timed_flush(
    model, tok, samples, tmp_path
):
    cache = tmp_path / "cache"
    counting = scorer(model, tok, batch_tokens=64)
    n_batches = counting.score(samples).stats.forward_calls
    sc = scorer(model, tok, cache=cache, batch_tokens=64)
    sc.chunk_samples = 10**6  # one chunk: before, nothing was kept until its end
    sc.flush_seconds = 0.0  # flush after every batch
    real, calls = sc._run_batch, {"n": 0}

    def interrupted(batch):
        calls["n"] += 1
        if calls["n"] == n_batches:  # killed during the last forward pass
            raise KeyboardInterrupt
        return real(batch)

    sc._run_batch = interrupted
    with pytest.raises(KeyboardInterrupt):
        sc.score(samples)
    kept = ScoreCache(cache, {}).root  # the namespace folder is the only one
    n_kept = sum(len(p.read_text().splitlines()) for p in kept.rglob("part-*.jsonl"))
    assert n_kept > 0
    resumed = scorer(model, tok, cache=cache)
    assert resumed.score(samples).stats.cached == n_kept


def test_key_follows_the_tokenizer_content_not_its_path(model, tok, samples, tmp_path):
    from transformers import AutoTokenizer

    folder = tmp_path / "m"
    tok.save_pretrained(folder)
    cache = tmp_path / "cache"
    absolute = AutoTokenizer.from_pretrained(str(folder.resolve()))
    scorer(model, absolute, cache=cache).score(samples[:4])
    cwd = os.getcwd()
    os.chdir(tmp_path / "m")
    try:
        relative = AutoTokenizer.from_pretrained(os.path.join("..", "m"))
    finally:
        os.chdir(cwd)
    again = scorer(model, relative, cache=cache)
    assert again.score(samples[:4]).stats.cached == 4
    assert len([p for p in cache.iterdir() if p.is_dir()]) == 1


def test_unwritable_cache_warns_once_and_scoring_goes_on(model, tok, samples, tmp_path):
    (tmp_path / "afile").write_text("")
    sc = scorer(model, tok, cache=tmp_path / "afile" / "cache")  # cannot be created
    sc.chunk_samples = 10
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        out = sc.score(samples)
    cache_warnings = [w for w in seen if "cannot be written" in str(w.message)]
    assert len(cache_warnings) == 1
    clean = scorer(model, tok).score(samples)
    assert_same_scores(out, clean)


def test_full_disk_while_flushing_keeps_the_scores(model, tok, samples, tmp_path, monkeypatch):
    def full(path, text, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("iterit.scoring.cache.atomic_write_text", full)
    sc = scorer(model, tok, cache=tmp_path / "cache")
    with pytest.warns(UserWarning, match="No space left"):
        out = sc.score(samples)
    assert np.isfinite(out.ifd).sum() == N_VALID
