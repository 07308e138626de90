"""iterit.selection.strategies: IterIT's epoch-0 selection and the random / longest / IFD-only
baselines."""

from __future__ import annotations

import numpy as np
import pytest

import iterit
from iterit.data.sample import Sample
from iterit.errors import ConfigError, InvalidInputError, ShortfallWarning
from iterit.selection.strategies import diversity_texts, response_words, select_samples


def make_samples(n: int, seed: int = 0) -> list[Sample]:
    rng = np.random.default_rng(seed)
    words = [f"w{k}" for k in range(40)]
    out = []
    for i in range(n):
        length = int(rng.integers(0, 30)) if i % 7 else 0  # every 7th response is empty
        resp = " ".join(rng.choice(words, size=length))
        out.append(Sample(instruction=f"task {i} " + " ".join(rng.choice(words, 3)), response=resp))
    return out


def test_iterit_pool_then_greedy_matches_the_selector():
    samples = make_samples(120)
    rng = np.random.default_rng(1)
    ifd = rng.uniform(0.1, 1.3, size=120)
    ifd[5] = np.nan
    c = select_samples(samples, 10, complexity=ifd, pool_factor=3.0, decay=0.1)
    valid = np.array([bool(s.response.strip()) for s in samples]) & (ifd < 1)
    valid &= np.isfinite(ifd)
    idx = np.flatnonzero(valid)
    pool = idx[np.argsort(-ifd[idx], kind="stable")[:30]]
    assert c.pool.tolist() == pool.tolist()
    ref = iterit.select([samples[i].response for i in pool], ifd[pool], 10, decay=0.1)
    assert c.indices.tolist() == pool[ref.indices].tolist()
    np.testing.assert_allclose(c.scores, ref.scores)
    np.testing.assert_allclose(c.diversity, ref.scores / ifd[c.indices])
    assert c.n_candidates == int(valid.sum()) and c.shortfall == 0
    assert set(c.indices) <= set(pool) and len(set(c.indices)) == 10
    assert (c.ranks[c.indices] == np.arange(10)).all() and (c.ranks >= 0).sum() == 10


def test_ifd_only_and_diversity_none_are_top_m_by_ifd():
    samples = make_samples(60)
    ifd = np.linspace(0.05, 0.95, 60)[::-1].copy()
    a = select_samples(samples, 8, strategy="ifd", complexity=ifd)
    b = select_samples(samples, 8, strategy="iterit", diversity="none", complexity=ifd)
    valid = [i for i, s in enumerate(samples) if s.response.strip()]
    assert a.indices.tolist() == valid[:8] == b.indices.tolist()
    assert b.pool.shape[0] == 24


def test_longest_and_random():
    samples = make_samples(50)
    words = response_words(samples)
    lo = select_samples(samples, 5, strategy="longest")
    assert words[lo.indices].tolist() == sorted(words.tolist(), reverse=True)[:5]
    r1 = select_samples(samples, 10, strategy="random", seed=3)
    r2 = select_samples(samples, 10, strategy="random", seed=3)
    r3 = select_samples(samples, 10, strategy="random", seed=4)
    assert r1.indices.tolist() == r2.indices.tolist() != r3.indices.tolist()
    assert all(samples[i].response.strip() for i in r1.indices)


def test_pure_diversity_without_complexity():
    samples = make_samples(40)
    c = select_samples(samples, 6, complexity=None)
    assert c.pool.shape[0] == c.n_candidates  # no complexity: every valid sample is a candidate
    ref = iterit.select([samples[i].response for i in c.pool], None, 6)
    assert c.indices.tolist() == c.pool[ref.indices].tolist()


def test_shortfall_is_reported_never_padded():
    samples = make_samples(20)
    ifd = np.full(20, 2.0)
    ifd[[1, 2]] = 0.5
    with pytest.warns(ShortfallWarning):
        c = select_samples(samples, 5, complexity=ifd)
    assert sorted(c.indices.tolist()) == [1, 2] and c.shortfall == 3


def test_diversity_texts_and_errors():
    s = [Sample(instruction="I", input="X", response="R")]
    assert diversity_texts(s, "instruction") == ["I\nX"]
    assert diversity_texts(s, "both") == ["I\nX\nR"]
    with pytest.raises(ConfigError, match="unknown strategy"):
        select_samples(s, 1, strategy="best")
    with pytest.raises(ConfigError, match="unknown diversity"):
        select_samples(s, 1, diversity="words")
    with pytest.raises(ConfigError, match="needs a complexity"):
        select_samples(s, 1, strategy="ifd")
    with pytest.raises(ConfigError, match="decay"):
        select_samples(s, 1, decay=1.0)
    with pytest.raises(ConfigError, match="pool factor"):
        select_samples(s, 1, pool_factor=0.5)
    with pytest.raises(InvalidInputError, match="budget"):
        select_samples(s, 0)
    with pytest.raises(InvalidInputError, match="no samples"):
        select_samples([], 1)
    with pytest.raises(InvalidInputError, match="complexity has shape"):
        select_samples(s, 1, complexity=[0.5, 0.5])
    with pytest.raises(ValueError):  # every one is also a ValueError
        select_samples(s, 1, strategy="best")


def test_pool_uses_the_candidate_rule():
    samples = make_samples(30)
    ifd = np.full(30, 0.5)
    ifd[[1, 3, 4, 5]] = [np.nan, 0.0, -0.5, 1.0]
    c = select_samples(samples, 20, complexity=ifd, pool_factor=1.0)
    assert not ({1, 3, 4, 5} & set(c.pool.tolist()))
    assert not c.valid[[0, 1, 3, 4, 5]].any()  # 0: an empty response
    lenient = select_samples(samples, 20, complexity=ifd, max_complexity=np.inf, pool_factor=1.0)
    assert 5 in lenient.pool.tolist()
