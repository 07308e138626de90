"""Seeded synthetic corpora for scale benchmarks: Alpaca-like response lengths, Zipf words.

Response lengths (in words) are log-normal with the parameters of the responses in
``alpaca_union_dedup.jsonl`` (mean of log length 3.25, sd 1.35: median 26-36 words, mean ~50),
capped at 1,000 words. Words are drawn from a vocabulary of ``vocab_size`` made-up words with
Zipf frequencies (exponent 1.07, as in English text).

:func:`synthetic_arrow` builds the same texts as :func:`synthetic_responses`, as a pyarrow
chunked string array assembled with numpy (no Python object per text): 10M texts in about a
minute. Both draw from the generator in the same order, so they agree text for text.
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


def _setup(n: int, seed: int, vocab_size: int):
    rng = np.random.default_rng(seed)
    vocab = make_vocabulary(rng, vocab_size)
    rng.shuffle(vocab)  # frequency rank independent of spelling
    lengths = np.minimum(np.rint(rng.lognormal(LOG_LENGTH_MEAN, LOG_LENGTH_SD, size=n)), 1000)
    lengths = lengths.astype(np.int64)
    p = 1.0 / np.arange(1, vocab_size + 1) ** ZIPF_EXPONENT
    p /= p.sum()
    return rng, vocab, lengths, p


def synthetic_responses(n: int, *, seed: int = 0, vocab_size: int = 50_000) -> list[str]:
    rng, vocab, lengths, p = _setup(n, seed, vocab_size)
    words = vocab[rng.choice(vocab_size, size=int(lengths.sum()), p=p)]
    ends = np.cumsum(lengths)
    starts = ends - lengths
    return [" ".join(words[s:e]) for s, e in zip(starts.tolist(), ends.tolist())]


class _WordSampler:
    """What ``Generator.choice(len(p), size, p=p)`` does (``cdf.searchsorted(uniforms,
    "right")``), drawn in pieces and faster: the same uniforms in the same order, so chunked
    draws equal one big draw. A guide table answers the uniforms whose bucket holds no cdf
    step; only the others are binary-searched."""

    BITS = 20

    def __init__(self, p: np.ndarray) -> None:
        cdf = p.cumsum()
        cdf /= cdf[-1]
        self.cdf = cdf
        edges = np.arange((1 << self.BITS) + 1, dtype=np.float64) / (1 << self.BITS)
        at = cdf.searchsorted(edges, side="right")
        self.lo = at[:-1].astype(np.int32)
        self.exact = at[:-1] == at[1:]

    def draw(self, rng: np.random.Generator, size: int) -> np.ndarray:
        u = rng.random(size)
        bucket = (u * (1 << self.BITS)).astype(np.int64)
        out = self.lo[bucket]
        unsure = ~self.exact[bucket]
        out[unsure] = self.cdf.searchsorted(u[unsure], side="right")
        return out


def synthetic_arrow(n: int, *, seed: int = 0, vocab_size: int = 50_000, chunk_texts: int = 65_536):
    """The texts of :func:`synthetic_responses` as a ``pyarrow.ChunkedArray`` of strings, one
    chunk per ``chunk_texts`` texts."""
    import pyarrow as pa

    rng, vocab, lengths, p = _setup(n, seed, vocab_size)
    sampler = _WordSampler(p)
    # Each word with a trailing space, as one byte buffer.
    spelled = [w.encode() + b" " for w in vocab]
    word_len = np.array([len(s) for s in spelled], dtype=np.int32)
    word_start = np.concatenate([[0], np.cumsum(word_len)[:-1]]).astype(np.int32)
    word_bytes = np.frombuffer(b"".join(spelled), dtype=np.uint8)
    chunks = []
    for lo in range(0, n, chunk_texts):
        k = lengths[lo : lo + chunk_texts]
        ids = sampler.draw(rng, int(k.sum()))
        lens = word_len[ids]
        out_end = np.cumsum(lens, dtype=np.int64)
        # Byte j of the chunk comes from word_bytes[word_start[id] + (j - start of its word)].
        total = int(out_end[-1]) if len(ids) else 0
        src = np.repeat(word_start[ids] - (out_end - lens), lens)
        src += np.arange(total, dtype=np.int32)
        stream = word_bytes[src]
        # Drop the trailing space of every non-empty text.
        keep = np.ones(stream.shape[0], dtype=bool)
        keep[out_end[(np.cumsum(k) - 1)[k > 0]] - 1] = False
        data = stream[keep]
        # Where each text ends in the stream, and how many trailing spaces precede that point.
        ends_in_stream = np.concatenate([[0], out_end])[np.cumsum(k)]
        offsets = np.concatenate([[0], ends_in_stream - np.cumsum(k > 0)]).astype(np.int64)
        if offsets[-1] < 2**31:
            chunk = pa.StringArray.from_buffers(
                len(k), pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data)
            )
        else:
            chunk = pa.LargeStringArray.from_buffers(
                len(k), pa.py_buffer(offsets), pa.py_buffer(data)
            )
        chunks.append(chunk)
    return pa.chunked_array(chunks, type=chunks[0].type if chunks else pa.string())
