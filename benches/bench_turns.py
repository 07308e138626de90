"""Conversations, every assistant turn against the last one only, on the real small model:
the share of assistant tokens trained, and scoring time per record, the last-turn run being the
baseline measured in the same run (docs/ifd.md, "Conversations").

    python benches/bench_turns.py --data ../shared/data/chat/hh_rlhf_harmless_base_test.jsonl \
        --n 40 --timed 6
    python benches/bench_turns.py --tiny     # the shipped ShareGPT example, 4 records (CI)
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from iterit.data import load
from iterit.scoring import IFDScorer, default_model, load_model
from iterit.scoring.encoding import conversation_tokens
from iterit.training.datasets import encode_samples

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "sharegpt_mini.json"


def assistant_tokens(samples, tok) -> int:
    """Every assistant turn's tokens as the chat template renders them, up to and including its
    end-of-turn token, before any truncation: what could be trained."""
    total = 0
    for s in samples:
        _, spans = conversation_tokens(tok, s)
        total += sum(b - a for a, b in spans)
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=EXAMPLE, help="conversations (any format)")
    ap.add_argument("--n", type=int, default=40, help="records for the token shares")
    ap.add_argument("--timed", type=int, default=6, help="records scored for the times")
    ap.add_argument("--repeats", type=int, default=2, help="timed runs of each reading")
    ap.add_argument("--max-length", type=int, default=1024)
    ap.add_argument("--tiny", action="store_true", help="4 records of the shipped example (CI)")
    a = ap.parse_args()
    if a.tiny:
        a.data, a.n, a.timed, a.max_length, a.repeats = EXAMPLE, 4, 4, 256, 1
    samples = load(a.data).samples[: a.n]
    turns_per = [s.n_turns for s in samples]
    print(
        f"{len(samples)} records of {a.data.name}: {sum(turns_per) / len(samples):.2f} assistant "
        f"turns per record (max {max(turns_per)}), max_length {a.max_length}"
    )
    loaded = load_model(default_model(), dtype="float32")
    tok = loaded.tokenizer
    total = assistant_tokens(samples, tok)
    for turns in ("last", "all"):
        rows = encode_samples(samples, tok, template="chat", max_length=a.max_length, turns=turns)
        trained = sum(sum(x != -100 for x in r["labels"]) for r in rows)
        print(f"turns={turns}: trained {trained}/{total} assistant tokens ({trained / total:.1%})")
    # The two readings alternate, each timed --repeats times (median), so that a load change
    # on a shared machine falls on both alike.
    times: dict[str, list[float]] = {"last": [], "all": []}
    for rep in range(a.repeats):
        for turns in ("last", "all") if rep % 2 == 0 else ("all", "last"):
            scorer = IFDScorer(
                loaded.model,
                tok,
                template="chat",
                max_length=a.max_length,
                turns=turns,
                progress=False,
            )
            scorer.score(samples[:1])  # warm-up: the first forward pays one-off costs
            t0 = time.perf_counter()
            got = scorer.score(samples[: a.timed])
            times[turns].append((time.perf_counter() - t0) / a.timed)
            print(
                f"turns={turns}: scoring {times[turns][-1] * 1000:.0f} ms/record ({a.timed} "
                f"records, {got.stats.forward_tokens} forward tokens, {got.n_invalid} invalid)",
                flush=True,
            )
    per_record = {k: statistics.median(v) for k, v in times.items()}
    ratio = per_record["all"] / per_record["last"]
    print(f"every turn costs {ratio:.2f}x the last turn only (medians of {a.repeats} runs)")


if __name__ == "__main__":
    main()
