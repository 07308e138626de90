"""Selector benchmark: iterit.select against pure Python and against scikit-learn + numpy.

    python benches/bench_select.py                 # real data, ratios from one run
    python benches/bench_select.py --scale 1000000 # synthetic corpus, time and peak memory
    python benches/bench_select.py --tiny          # seconds: 400 responses, one run (CI)

Real data: the 20,678 responses of ../shared/data/general/alpaca_union_dedup.jsonl, a seeded
random complexity vector and a 5% budget. Every contender runs end to end (texts in, picks out)
in this process, and the picks must be identical:
  (a) iterit.selection.reference: pure Python (re tokens, Counter n-grams, math.fsum, heapq
      lazy greedy);
  (b) what a numpy user would write: scikit-learn's TfidfVectorizer(ngram_range=(1, 3)) fitted
      on the candidates and a greedy loop recomputing every score as X @ alpha at each step.
With --tiny the same contenders run on the first 400 responses (or, without the data, on a
synthetic corpus), once: a check that the benchmark still runs, not a measurement.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import iterit
from iterit.selection import reference

DEFAULT_DATA = (
    Path(__file__).resolve().parents[1].parent / "shared/data/general/alpaca_union_dedup.jsonl"
)


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - start, out


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB


def read_responses(path: Path, limit: int | None = None) -> list[str]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line)["output"] for _, line in zip(range(limit or sys.maxsize), f)]


def bench_real(responses: list[str], name: str, repeats: int, skip_reference: bool) -> None:
    n = len(responses)
    complexity = np.random.default_rng(0).uniform(0.0, 1.2, size=n)
    budget = 0.05
    print(
        f"data: {name}, {n} responses; budget 5% ({iterit.resolve_budget(budget, n)});"
        f" {os.cpu_count()} cores; python {platform.python_version()}"
    )

    # The word-character table is built once per process; time that first call on its own.
    first, _ = timed(iterit.select, responses, complexity, budget)
    times = {}
    for threads in (None, 1):
        runs = [
            timed(iterit.select, responses, complexity, budget, n_threads=threads)
            for _ in range(repeats)
        ]
        times[threads] = statistics.median(t for t, _ in runs)
        fast = runs[0][1]

    def numpy_baseline():
        # TfidfVectorizer fitted on the candidates, as iterit.select fits its TF-IDF.
        return reference.select_numpy(responses, complexity, budget)

    t_numpy, slow_numpy = timed(numpy_baseline)
    assert fast.indices.tolist() == slow_numpy.indices, "picks differ from the numpy baseline"
    rows = [
        ("iterit.select (all cores)", times[None], None),
        ("iterit.select (1 thread)", times[1], None),
        ("sklearn + numpy greedy", t_numpy, t_numpy / times[None]),
    ]
    if not skip_reference:
        t_ref, slow_ref = timed(reference.select, responses, complexity, budget)
        assert fast.indices.tolist() == slow_ref.indices, "picks differ from the reference"
        assert fast.scores.tolist() == slow_ref.scores, "scores differ from the reference"
        rows.append(("iterit.selection.reference (pure Python)", t_ref, t_ref / times[None]))
    print(f"first call in a process (builds the word table): {first:.3f} s")
    print(f"{'contender':34s} {'median s':>9s} {'slower than iterit':>19s}")
    for name, t, ratio in rows:
        print(f"{name:34s} {t:9.3f} {f'{ratio:.1f}x' if ratio else '':>19s}")
    print(
        f"picks identical across all contenders: {len(fast)} picks, shortfall {fast.shortfall},"
        f" {fast.n_candidates} candidates, {fast.n_evaluations} row evaluations"
        f" (naive would need {fast.n_candidates * len(fast) - len(fast) * (len(fast) - 1) // 2})"
    )
    print(f"parallel speed-up (1 thread / all cores): {times[1] / times[None]:.2f}x")


def bench_scale(n: int, budget: int, seed: int) -> None:
    from synthetic_corpus import synthetic_responses

    t_gen, texts = timed(synthetic_responses, n, seed=seed)
    words = sum(t.count(" ") + 1 for t in texts if t)
    complexity = np.random.default_rng(seed).uniform(0.0, 1.0, size=n)
    rss_before = peak_rss_gib()
    t_sel, sel = timed(iterit.select, texts, complexity, budget)
    print(
        f"synthetic corpus: {n} responses, {words} words (generated in {t_gen:.1f} s);"
        f" budget {budget}; {os.cpu_count()} cores"
    )
    print(
        f"iterit.select end to end: {t_sel:.1f} s; {len(sel)} picks;"
        f" {sel.n_evaluations} row evaluations"
    )
    print(
        f"peak RSS of the process: {peak_rss_gib():.2f} GiB"
        f" (after generating the corpus: {rss_before:.2f} GiB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--skip-reference", action="store_true", help="leave out the slow pure-Python contender"
    )
    parser.add_argument("--scale", type=int, help="synthetic corpus of this many responses")
    parser.add_argument("--budget", type=int, default=50_000, help="budget with --scale")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--tiny", action="store_true", help="400 responses, one run: checks that it still runs"
    )
    args = parser.parse_args()
    if args.tiny:
        if args.data.is_file():
            bench_real(read_responses(args.data, 400), args.data.name, 1, False)
        else:
            from synthetic_corpus import synthetic_responses

            bench_real(synthetic_responses(400, seed=args.seed), "synthetic corpus", 1, False)
    elif args.scale:
        bench_scale(args.scale, args.budget, args.seed)
    else:
        if not args.data.is_file():
            sys.exit(f"{args.data} not found: pass --data PATH (alpaca_union_dedup.jsonl)")
        bench_real(read_responses(args.data), args.data.name, args.repeats, args.skip_reference)


if __name__ == "__main__":
    main()
