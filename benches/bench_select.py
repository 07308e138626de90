"""Selector benchmark: iterit.select against pure Python and against scikit-learn + numpy.

    python benches/bench_select.py                 # real data, ratios from one run
    python benches/bench_select.py --n 1000000     # synthetic corpus: per-phase time, peak RSS
    python benches/bench_select.py --n 10000000    # the same at 10M (Arrow path only)
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

With --n the synthetic corpus (benches/synthetic_corpus.py) is built as Arrow, written to an
uncompressed Arrow file, and each contender runs in a fresh process (so that each peak RSS is
its own): iterit.select on the memory-mapped Arrow column, and on the same texts as a Python
list of str (what callers had to pass before). Each prints its per-phase times (from the
progress callback) and its peak RSS, texts included; the picks must be identical. --baseline
PYTHONPATH runs the Arrow contender once more with another checkout (e.g. the main branch), first,
so that both builds meet the same machine load as nearly as can be.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import iterit
from iterit.selection import reference

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = (
    Path(__file__).resolve().parents[1].parent / "shared/data/general/alpaca_union_dedup.jsonl"
)


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - start, out


def peak_rss_gib() -> float:
    """This process's peak RSS. Linux: VmHWM, which starts afresh at exec; ru_maxrss would also
    carry the peak of the parent that forked it (here the corpus generator)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 2**20  # KiB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux: KiB; macOS: B


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


def run_worker(corpus: Path, mode: str, budget: int, out: Path) -> None:
    """One contender in this (fresh) process; prints one JSON line."""
    import pyarrow.feather as feather

    column = feather.read_table(corpus, memory_map=True).column("text")
    texts = column.to_pylist() if mode == "list" else column
    complexity = np.load(corpus.with_suffix(".complexity.npy"))
    phases: dict[str, float] = {}
    peaks: dict[str, float] = {}  # peak RSS so far at the end of each phase
    clock = {"phase": None, "since": time.perf_counter()}

    def progress(phase: str, done: int, total: int) -> None:
        if phase != clock["phase"]:
            now = time.perf_counter()
            if clock["phase"] is not None:
                phases[clock["phase"]] = now - clock["since"]
                peaks[clock["phase"]] = peak_rss_gib()
            clock.update(phase=phase, since=now)

    kwargs = (
        {"progress": progress} if "progress" in inspect.signature(iterit.select).parameters else {}
    )
    rss_before = peak_rss_gib()
    start = time.perf_counter()
    sel = iterit.select(texts, complexity, budget, **kwargs)
    total = time.perf_counter() - start
    if clock["phase"] is not None:
        phases[clock["phase"]] = time.perf_counter() - clock["since"]
        peaks[clock["phase"]] = peak_rss_gib()
    np.save(out, sel.indices)
    report = {
        "mode": mode,
        "iterit": str(Path(iterit.__file__).parent),
        "seconds": total,
        "phases": phases,
        "peaks": peaks,
        "peak_rss_gib": peak_rss_gib(),
        "rss_before_gib": rss_before,
        "picks": len(sel),
        "n_evaluations": sel.n_evaluations,
    }
    print(json.dumps(report))


def make_corpus(n: int, seed: int, corpus: Path) -> None:
    """Writes the synthetic corpus and its complexities (in a process of its own, so that the
    memory the generator used is not held while the contenders run); prints one JSON line."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.feather as feather

    from synthetic_corpus import synthetic_arrow

    t_gen, column = timed(synthetic_arrow, n, seed=seed)
    words = int(pc.sum(pc.count_substring(column, " ")).as_py() or 0) + n
    feather.write_feather(pa.table({"text": column}), corpus, compression="uncompressed")
    np.save(corpus.with_suffix(".complexity.npy"), np.random.default_rng(seed).uniform(0, 1, n))
    print(json.dumps({"seconds": t_gen, "words": words, "text_gib": column.nbytes / 2**30}))


def bench_scale(n: int, budget: int, seed: int, with_list: bool, baseline: str | None) -> None:
    with tempfile.TemporaryDirectory(prefix="bench_select_") as tmp:
        corpus = Path(tmp) / f"synthetic_{n}.arrow"
        cmd = [sys.executable, __file__, "--make-corpus", "--n", str(n), "--seed", str(seed)]
        made = subprocess.run(
            [*cmd, "--corpus", str(corpus)], capture_output=True, text=True, check=True
        )
        info = json.loads(made.stdout.strip().splitlines()[-1])
        print(
            f"synthetic corpus: {n} responses, ~{info['words']} words,"
            f" {info['text_gib']:.2f} GiB of Arrow text (generated in {info['seconds']:.1f} s);"
            f" budget {budget}; {os.cpu_count()} cores; python {platform.python_version()}"
        )
        runs = [("arrow", baseline)] if baseline else []
        runs.append(("arrow", None))
        if with_list:
            runs.append(("list", None))
        results = []
        for mode, pythonpath in runs:
            env = dict(os.environ)
            if pythonpath:
                env["PYTHONPATH"] = pythonpath
            out = Path(tmp) / f"picks_{len(results)}.npy"
            cmd = [sys.executable, __file__, "--worker", mode, "--corpus", str(corpus)]
            cmd += ["--budget", str(budget), "--out", str(out)]
            done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                print(f"{mode} ({pythonpath or 'this checkout'}) failed:\n{done.stderr[-2000:]}")
                continue
            report = json.loads(done.stdout.strip().splitlines()[-1])
            report["indices"] = np.load(out)
            results.append(report)
        header = f"{'input':30s} {'total s':>8s} {'peak RSS GiB':>13s}"
        print(f"{header}  phases (s; peak RSS GiB so far)")
        for r in results:
            peaks = r.get("peaks", {})
            phases = ", ".join(
                f"{p} {t:.1f}" + (f" (peak {peaks[p]:.2f})" if p in peaks else "")
                for p, t in r["phases"].items()
            )
            phases = phases or "-"
            where = (
                r["mode"] if r["iterit"].startswith(str(ROOT)) else f"{r['mode']} ({r['iterit']})"
            )
            print(f"{where:30s} {r['seconds']:8.1f} {r['peak_rss_gib']:13.2f}  {phases}")
        load = " ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"load average after the runs (1, 5, 15 min): {load}")
        first = results[0]["indices"] if results else None
        same = all(np.array_equal(first, r["indices"]) for r in results)
        n_picks = 0 if first is None else len(first)
        print(f"picks identical across inputs: {same} ({n_picks} picks)")
        if not same:
            sys.exit("picks differ")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--skip-reference", action="store_true", help="leave out the slow pure-Python contender"
    )
    parser.add_argument(
        "--n", "--scale", type=int, dest="n", help="synthetic corpus of this many responses"
    )
    parser.add_argument("--budget", type=int, default=50_000, help="budget with --n")
    parser.add_argument(
        "--no-list",
        action="store_true",
        help="with --n, leave out the list-of-str contender (it needs ~4 GiB per million)",
    )
    parser.add_argument("--baseline", help="with --n, PYTHONPATH of another checkout to compare")
    parser.add_argument("--worker", choices=["arrow", "list"], help=argparse.SUPPRESS)
    parser.add_argument("--corpus", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--make-corpus", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--tiny", action="store_true", help="400 responses, one run: checks that it still runs"
    )
    args = parser.parse_args()
    if args.make_corpus:
        make_corpus(args.n, args.seed, args.corpus)
    elif args.worker:
        run_worker(args.corpus, args.worker, args.budget, args.out)
    elif args.tiny:
        if args.data.is_file():
            bench_real(read_responses(args.data, 400), args.data.name, 1, False)
        else:
            from synthetic_corpus import synthetic_responses

            bench_real(synthetic_responses(400, seed=args.seed), "synthetic corpus", 1, False)
    elif args.n:
        bench_scale(args.n, args.budget, args.seed, not args.no_list, args.baseline)
    else:
        if not args.data.is_file():
            sys.exit(f"{args.data} not found: pass --data PATH (alpaca_union_dedup.jsonl)")
        bench_real(read_responses(args.data), args.data.name, args.repeats, args.skip_reference)


if __name__ == "__main__":
    main()
