"""Benchmark: ``--rescore ifd`` against ``--rescore in-loop``, and the cost of the learning
percentage, on real Alpaca records (docs/signals.md).

    python benches/bench_signals.py [--n 1000] [--budget 0.05] [--epochs 3] [--lp]
    python benches/bench_signals.py --tiny    # a few seconds: 48 records, 2 epochs, --lp (CI)

Trains the same model (same initial weights, same seed) twice with an
``iterit.training.trainers.IterITTrainer``, once re-scoring the pool with IFD before every later
epoch (the paper's) and once taking the later epochs' complexity from the in-loop training
losses, and prints per epoch: the scoring
forward passes (decoder calls in eval mode, counted by a hook, and the sequences in them), the
seconds spent scoring and selecting as a share of the epoch's wall time, and the Jaccard
overlap between the two runs' selections.  ``--lp`` also scores the learning percentage of the
same records (the tiny model trained on all of them) and prints its perplexity passes' cost and
the overlap of its IFD-only top-M with IFD's epoch-0 top-M.

``--model tiny`` (default) is a 2-layer, 32-wide random Llama with a word-level tokenizer
trained here (CPU); timings on shared cores are noisy.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benches"))


def run(rescore: str, samples, tok, model, a) -> dict:
    from transformers import TrainerCallback

    from bench_train import ForwardCounter, train_timed
    from iterit.config import SelectionConfig
    from iterit.training.datasets import TokenizedSamples

    counter = ForwardCounter(model.get_decoder())
    per_epoch: list[dict] = []

    class Snap(TrainerCallback):
        def on_epoch_end(self, args, state, control, **kw):
            per_epoch.append(copy.deepcopy(counter.counts))

    cb, wall = train_timed(
        model,
        tok,
        samples,
        TokenizedSamples(samples, tok, max_length=a.max_length),
        SelectionConfig(budget=a.budget, rescore=rescore, loss_ema=a.loss_ema),
        a,
        1e-3,
        callbacks=[Snap()],
    )
    prev = {"calls": 0, "sequences": 0}
    scoring = []
    for snap in per_epoch:
        ev = snap["eval"]
        scoring.append({k: ev[k] - prev[k] for k in ("calls", "sequences")})
        prev = {k: ev[k] for k in ("calls", "sequences")}
    return {
        "summary": cb.summary().to_json(),
        "picks": [cb.records[e].picks for e in sorted(cb.records)],
        "scoring": scoring,
        "wall_s": wall,
    }


def print_runs(res: dict, a: argparse.Namespace) -> None:
    """The per-epoch table of the two runs and their totals."""
    from iterit.selection.overlap import jaccard

    s = res["ifd"]["summary"]
    print(
        f"N={s['n_samples']} M={s['budget']} pool={s['pool_size']} epochs={a.epochs} "
        f"max_length={a.max_length} loss_ema={a.loss_ema}; tiny Llama, CPU (timings noisy)"
    )
    print(
        "per run: scoring forward calls / sequences, scoring+selecting share of the epoch, "
        "epoch s / training s"
    )
    print(
        f"{'epoch':>5} | {'ifd: calls':>10} {'seqs':>5} {'share':>6} {'epoch s':>8} {'train s':>8}"
        f" | {'in-loop: calls':>14} {'seqs':>5} {'share':>6} {'epoch s':>8} {'train s':>8}"
        f" | {'Jaccard':>7}"
    )
    for e in range(a.epochs):
        cells = []
        for r in ("ifd", "in-loop"):
            ep = res[r]["summary"]["epochs"][e]
            share = (ep["score_s"] + ep["select_s"]) / ep["epoch_s"]
            sc = res[r]["scoring"][e]
            cells.append(
                f"{sc['calls']:>{10 if r == 'ifd' else 14}} {sc['sequences']:>5} "
                f"{100 * share:>5.1f}% {ep['epoch_s']:>8.2f} {ep['train_s']:>8.2f}"
            )
        j = jaccard(res["ifd"]["picks"][e], res["in-loop"]["picks"][e])
        print(f"{e:>5} | {cells[0]} | {cells[1]} | {j:>7.3f}")
    for r in ("ifd", "in-loop"):
        eps = res[r]["summary"]["epochs"]
        sel = sum(ep["score_s"] + ep["select_s"] for ep in eps)
        calls = sum(x["calls"] for x in res[r]["scoring"])
        print(
            f"{r:>8}: whole run {res[r]['wall_s']:.1f} s, scoring + selecting "
            f"{100 * sel / res[r]['wall_s']:.1f}% of it, {calls} scoring forward calls"
        )


def learning_percentage(samples, init, tok, a: argparse.Namespace, ifd_picks) -> dict:
    """Scores the learning percentage, prints its cost and its agreement with epoch-0 IFD."""
    from iterit.config import LPTraining, ScoringConfig
    from iterit.selection.overlap import jaccard
    from iterit.training.learning_percentage import score_learning_percentage

    t0 = time.perf_counter()
    lp = score_learning_percentage(
        samples,
        copy.deepcopy(init),
        tok,
        scoring=ScoringConfig(max_length=a.max_length, progress=False),
        training=LPTraining(
            epochs=a.epochs,
            learning_rate=1e-3,
            batch_size=32,
            micro_batch_size=a.micro_batch_size,
            seed=0,
        ),
        training_args={"use_cpu": True, "report_to": "none", "logging_steps": 10**9},
    )
    wall = time.perf_counter() - t0
    ppl_s = sum(p["seconds"] for p in lp.passes)
    m = len(ifd_picks)
    c = lp.complexity
    ok = np.flatnonzero(np.isfinite(c))
    top_lp = ok[np.argsort(-c[ok], kind="stable")[:m]]
    calls = ", ".join(str(p["forward_calls"]) for p in lp.passes)
    print(
        f"learning percentage: {lp.epochs} epochs on {len(samples)} samples in {wall:.1f} s, "
        f"{len(lp.passes)} perplexity passes ({calls} forward calls) = "
        f"{100 * ppl_s / wall:.1f}% of it; median LP "
        f"{float(np.nanmedian(lp.lp)):.3f}; Jaccard(top-{m} by LP, IFD epoch-0 picks) "
        f"{jaccard(top_lp, ifd_picks):.3f}"
    )
    return {"wall_s": wall, "passes": lp.passes}


def main() -> None:
    from bench_train import alpaca_samples, parse_run_options

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--loss-ema", type=float, default=0.5)
    ap.add_argument("--lp", action="store_true", help="also score the learning percentage")
    a = parse_run_options(ap, "a few seconds: 48 records, M=12, 2 epochs, --lp (CI)")
    if a.tiny:
        a.lp = True

    from tests.helpers.tiny_llama import tiny_model, tiny_tokenizer

    samples = alpaca_samples(a.n)
    tok = tiny_tokenizer(samples, vocab_size=2000)
    init = tiny_model(tok, seed=1)
    res = {r: run(r, samples, tok, copy.deepcopy(init), a) for r in ("ifd", "in-loop")}
    print_runs(res, a)
    out = {"runs": {r: {k: v for k, v in res[r].items() if k != "picks"} for r in res}}
    if a.lp:
        out["lp"] = learning_percentage(samples, init, tok, a, res["ifd"]["picks"][0])
    if a.json:
        print(json.dumps(out, default=float))


if __name__ == "__main__":
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    main()
