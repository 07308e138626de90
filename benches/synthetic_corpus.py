"""Seeded synthetic corpora for scale benchmarks: Alpaca-like response lengths, Zipf words.

Response lengths (in words) are log-normal with the parameters of the responses in
``alpaca_union_dedup.jsonl`` (mean of log length 3.25, sd 1.35: median 26-36 words, mean ~50),
capped at 1,000 words. Words are drawn from a vocabulary of ``vocab_size`` made-up words with
Zipf frequencies (exponent 1.07, as in English text).
"""

from __future__ import annotations

import string

import numpy as np

LOG_LENGTH_MEAN = 3.25
LOG_LENGTH_SD = 1.35
ZIPF_EXPONENT = 1.07


def make_vocabulary(rng: np.random.Generator, vocab_size: int) -> np.ndarray:
    letters = np.array(list(string.ascii_lowercase))
    lengths = np.clip(rng.poisson(5, size=vocab_size), 2, 14)
    words = {"".join(rng.choice(letters, size=k)) for k in lengths}
    while len(words) < vocab_size:  # collisions among short words
        words.add("".join(rng.choice(letters, size=8)))
    return np.array(sorted(words)[:vocab_size], dtype=object)


def synthetic_responses(n: int, *, seed: int = 0, vocab_size: int = 50_000) -> list[str]:
    rng = np.random.default_rng(seed)
    vocab = make_vocabulary(rng, vocab_size)
    rng.shuffle(vocab)  # frequency rank independent of spelling
    lengths = np.minimum(np.rint(rng.lognormal(LOG_LENGTH_MEAN, LOG_LENGTH_SD, size=n)), 1000)
    lengths = lengths.astype(np.int64)
    p = 1.0 / np.arange(1, vocab_size + 1) ** ZIPF_EXPONENT
    p /= p.sum()
    words = vocab[rng.choice(vocab_size, size=int(lengths.sum()), p=p)]
    ends = np.cumsum(lengths)
    starts = ends - lengths
    return [" ".join(words[s:e]) for s, e in zip(starts.tolist(), ends.tolist())]
