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
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benches"))
DATA = Path(os.environ.get("ITERIT_SHARED_DATA", ROOT.parent / "shared" / "data"))
ALPACA = DATA / "general" / "alpaca_union_dedup.jsonl"


def run(rescore: str, samples, tok, model, a) -> dict:
    from transformers import TrainerCallback

    from bench_train import ForwardCounter, cpu_training_args
    from iterit.config import SelectionConfig
    from iterit.training.datasets import ResponseOnlyCollator, TokenizedSamples
    from iterit.training.run import gradient_accumulation
    from iterit.training.trainers import IterITTrainer

    counter = ForwardCounter(model.get_decoder())
    per_epoch: list[dict] = []

    class Snap(TrainerCallback):
        def on_epoch_end(self, args, state, control, **kw):
            per_epoch.append(copy.deepcopy(counter.counts))

    accum = gradient_accumulation(32, a.micro_batch_size, 1)
    with tempfile.TemporaryDirectory() as out:
        args = cpu_training_args(out, a.micro_batch_size, accum, a.epochs, 1e-3)
        trainer = IterITTrainer(
            model=model,
            args=args,
            train_dataset=TokenizedSamples(samples, tok, max_length=a.max_length),
            data_collator=ResponseOnlyCollator(tok.pad_token_id),
            processing_class=tok,
            callbacks=[Snap()],
            samples=samples,
            selection_config=SelectionConfig(budget=a.budget, rescore=rescore, loss_ema=a.loss_ema),
            max_length=a.max_length,
            progress=False,
        )
        cb = trainer.iterit
        t0 = time.perf_counter()
        trainer.train()
        wall = time.perf_counter() - t0
    prev = {"calls": 0, "sequences": 0}
    scoring = []
    for snap in per_epoch:
        ev = snap["eval"]
        scoring.append({k: ev[k] - prev[k] for k in ("calls", "sequences")})
        prev = {k: ev[k] for k in ("calls", "sequences")}
    return {
        "summary": cb.summary(),
        "picks": [cb.records[e]["picks"] for e in sorted(cb.records)],
        "scoring": scoring,
        "wall_s": wall,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--budget", type=float, default=0.05)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--micro-batch-size", type=int, default=8)
    ap.add_argument("--loss-ema", type=float, default=0.5)
    ap.add_argument("--lp", action="store_true", help="also score the learning percentage")
    ap.add_argument("--json", action="store_true", help="print the results as JSON too")
    ap.add_argument(
        "--tiny", action="store_true", help="a few seconds: 48 records, M=12, 2 epochs, --lp (CI)"
    )
    a = ap.parse_args()
    if a.tiny:
        a.n, a.budget, a.epochs, a.max_length, a.lp = 48, 0.25, 2, 48, True

    from tests.helpers.tiny_llama import tiny_model, tiny_tokenizer

    from iterit.data import load_samples
    from iterit.training.planner import jaccard

    if not ALPACA.is_file():
        sys.exit(f"{ALPACA} is not present")
    samples = [s for s in load_samples(ALPACA)[: a.n] if s.response.strip()]
    tok = tiny_tokenizer(samples, vocab_size=2000)
    init = tiny_model(tok, seed=1)
    res = {r: run(r, samples, tok, copy.deepcopy(init), a) for r in ("ifd", "in-loop")}

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
    out = {"runs": {r: {k: v for k, v in res[r].items() if k != "picks"} for r in res}}

    if a.lp:
        from iterit.training.learning_percentage import score_learning_percentage

        t0 = time.perf_counter()
        lp = score_learning_percentage(
            samples,
            copy.deepcopy(init),
            tok,
            epochs=a.epochs,
            max_length=a.max_length,
            learning_rate=1e-3,
            batch_size=32,
            micro_batch_size=a.micro_batch_size,
            seed=0,
            training_args={"use_cpu": True, "report_to": "none", "logging_steps": 10**9},
        )
        wall = time.perf_counter() - t0
        ppl_s = sum(p["seconds"] for p in lp.passes)
        m = s["budget"]
        c = lp.complexity
        ok = np.flatnonzero(np.isfinite(c))
        top_lp = ok[np.argsort(-c[ok], kind="stable")[:m]]
        calls = ", ".join(str(p["forward_calls"]) for p in lp.passes)
        print(
            f"learning percentage: {lp.epochs} epochs on {len(samples)} samples in {wall:.1f} s, "
            f"{len(lp.passes)} perplexity passes ({calls} forward calls) = "
            f"{100 * ppl_s / wall:.1f}% of it; median LP "
            f"{float(np.nanmedian(lp.lp)):.3f}; Jaccard(top-{m} by LP, IFD epoch-0 picks) "
            f"{jaccard(top_lp, res['ifd']['picks'][0]):.3f}"
        )
        out["lp"] = {"wall_s": wall, "passes": lp.passes}
    if a.json:
        print(json.dumps(out, default=float))


if __name__ == "__main__":
    torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))
    main()
