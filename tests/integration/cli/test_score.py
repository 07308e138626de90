"""``iterit score`` (and scoring for ``iterit select``) with a tiny random Llama saved to a
folder (safetensors) and a tokenizer built here: scores files, resuming from the cache, a model
that does not exist, the learning percentage's file."""

from __future__ import annotations

import numpy as np
import pytest

from iterit.data import load
from tests.helpers.cli import EXAMPLE, fail, run


def test_score_then_select_and_resume(tmp_path, tiny_model_dir):
    pq = pytest.importorskip("pyarrow.parquet")
    cache = tmp_path / "cache"
    half = tmp_path / "half.jsonl"
    lines = EXAMPLE.read_text(encoding="utf-8").splitlines(keepends=True)
    half.write_text("".join(lines[:40]), encoding="utf-8")
    # An "interrupted" run: only the first 40 records got scored into the cache.
    run(
        "score",
        half,
        "--model",
        tiny_model_dir,
        "--out",
        tmp_path / "half.parquet",
        "--cache",
        cache,
        "--no-progress",
    )
    out = tmp_path / "scores.parquet"
    res = run(
        "score", EXAMPLE, "--model", tiny_model_dir, "--out", out, "--cache", cache, "--no-progress"
    )
    assert "40 samples' scores read from the cache" in res.output
    table = pq.read_table(out).to_pydict()
    assert list(table)[:6] == ["index", "ifd", "nll_cond", "nll_prior", "n_tokens", "valid"]

    def col(name):
        return np.array([np.nan if v is None else v for v in table[name]], dtype=float)

    ifd, n_tokens = col("ifd"), col("n_tokens")
    assert len(ifd) == 97 and np.isnan(ifd).sum() == 1  # the empty response
    fin = np.isfinite(ifd)
    np.testing.assert_allclose(ifd[fin], np.exp(col("nll_cond")[fin] - col("nll_prior")[fin]))
    assert (n_tokens[fin] > 0).all()
    assert table["valid"] == [bool(v) for v in (fin & (np.nan_to_num(ifd, nan=9) < 1))]
    # select --scores FILE == select --model M (scores from the cache)
    run("select", EXAMPLE, "--scores", out, "--budget", "5", "--out", tmp_path / "a.jsonl")
    run(
        "select",
        EXAMPLE,
        "--model",
        tiny_model_dir,
        "--cache",
        cache,
        "--budget",
        "5",
        "--out",
        tmp_path / "b.jsonl",
        "--no-progress",
    )
    assert (tmp_path / "a.jsonl").read_bytes() == (tmp_path / "b.jsonl").read_bytes()
    assert fail("score", EXAMPLE, "--model", tiny_model_dir, "--out", out, "--no-cache")


def test_score_with_a_model_that_does_not_exist(tmp_path):
    pytest.importorskip("torch")
    msg = fail(
        "score",
        EXAMPLE,
        "--model",
        tmp_path / "nothing-here",
        "--out",
        tmp_path / "s.parquet",
        "--no-cache",
    )
    assert "no such model file or folder" in msg
    assert not (tmp_path / "s.parquet").exists()


def test_score_writes_jsonl_and_csv_without_pyarrow_needs(tmp_path, tiny_model_dir):
    for name in ("s.jsonl", "s.csv"):
        out = tmp_path / name
        res = run(
            "score", EXAMPLE, "--model", tiny_model_dir, "--out", out, "--no-cache", "--no-progress"
        )
        assert "candidates (IFD < 1)" in res.output and out.exists()
    from iterit.artifacts.score_files import read_scores

    a = read_scores(tmp_path / "s.jsonl", load(EXAMPLE).samples)
    b = read_scores(tmp_path / "s.csv", load(EXAMPLE).samples)
    np.testing.assert_allclose(a["ifd"], b["ifd"], rtol=1e-12, equal_nan=True)
