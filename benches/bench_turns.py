"""Conversations, every assistant turn against the last one only, on the real small model:
the share of assistant tokens trained, and scoring time per record (docs/ifd.md,
"Conversations").  ``python benches/bench_turns.py [DATA.jsonl] [N] [N_TIMED]``: the token
shares over N records, the scoring time over the first N_TIMED."""

from __future__ import annotations

import sys
import time

from iterit.data import load
from iterit.scoring import IFDScorer, load_model
from iterit.scoring.default_model import default_model
from iterit.training.datasets import encode_samples


def main() -> None:
    path = sys.argv[1] if len(sys.argv) > 1 else "hh_rlhf_harmless_base_test.jsonl"
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 40
    n_timed = int(sys.argv[3]) if len(sys.argv) > 3 else n
    samples = load(path).samples[:n]
    loaded = load_model(default_model(), dtype="float32")
    tok = loaded.tokenizer
    total = 0
    for s in samples:
        for m in s.conversation():
            if m["role"] == "assistant":
                total += len(
                    tok(m["content"] + tok.eos_token, add_special_tokens=False)["input_ids"]
                )
    for turns in ("last", "all"):
        rows = encode_samples(samples, tok, template="chat", max_length=1024, turns=turns)
        trained = sum(sum(x != -100 for x in r["labels"]) for r in rows)
        print(f"turns={turns}: trained {trained}/{total} assistant tokens ({trained / total:.1%})")
    for turns in ("last", "all"):
        scorer = IFDScorer(loaded.model, tok, template="chat", turns=turns, progress=False)
        t0 = time.perf_counter()
        got = scorer.score(samples[:n_timed])
        dt = time.perf_counter() - t0
        print(
            f"turns={turns}: scoring {dt / n_timed * 1000:.0f} ms/record ({n_timed} records, "
            f"{got.stats.forward_tokens} forward tokens, {got.n_invalid} invalid)",
            flush=True,
        )


if __name__ == "__main__":
    main()
