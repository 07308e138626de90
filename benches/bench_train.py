"""Benchmark: the cost of IterIT's per-epoch re-scoring and re-selection inside training.

    python benches/bench_train.py [--n 1000] [--budget 0.05] [--epochs 3] [--model tiny|PATH]
    python benches/bench_train.py --tiny      # a few seconds: 48 records, 2 epochs (CI)

Trains an ``iterit.training.trainers.IterITTrainer`` on the first ``--n`` real Alpaca records
(paper defaults: pool factor 3, decay 0.1, effective batch 32, cosine schedule) and prints, per
epoch, the time spent scoring and selecting as a share of the epoch's wall time, and the
forward passes spent on scoring against training, counted by a hook on the decoder (eval mode =
scoring, train mode = training), next to the paper's O(N + a*M*(epochs-1)) count of scored
samples.

``--model tiny`` (default) is a 2-layer, 32-wide random Llama with a word-level tokenizer
trained here; a path or hub id trains that model instead (slow on CPU).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
DATA = Path(os.environ.get("ITERIT_SHARED_DATA", ROOT.parent / "shared" / "data"))
ALPACA = DATA / "general" / "alpaca_union_dedup.jsonl"


class ForwardCounter:
    """Counts decoder forward calls, sequences and tokens, split by train / eval mode."""

    def __init__(self, decoder: torch.nn.Module):
        self.counts = {
            mode: {"calls": 0, "sequences": 0, "tokens": 0} for mode in ("train", "eval")
        }
        decoder.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        emb = kwargs.get("inputs_embeds")
        shape = ids.shape if ids is not None else emb.shape[:2]
        mask = kwargs.get("attention_mask")
        tokens = int(mask.sum()) if isinstance(mask, torch.Tensor) and mask.dim() == 2 else 0
        c = self.counts["train" if module.training else "eval"]
        c["calls"] += 1
        c["sequences"] += int(shape[0])
        c["tokens"] += tokens or int(shape[0] * shape[1])


def train_timed(model, tok, samples, dataset, config, a, lr: float, callbacks=()):
    """Trains ``model`` on ``dataset`` with an IterITTrainer selecting by ``config``: effective
    batch 32 in micro-batches of ``a.micro_batch_size``, ``a.epochs`` epochs, the paper's cosine
    schedule with 3% warm-up, on the CPU, no checkpoints, no logging.  Returns the IterIT
    callback and the wall seconds of ``trainer.train()``."""
    from tests.helpers.training import training_args

    from iterit.training.datasets import ResponseOnlyCollator
    from iterit.training.run import gradient_accumulation
    from iterit.training.trainers import IterITTrainer

    accum = gradient_accumulation(32, a.micro_batch_size, 1)
    with tempfile.TemporaryDirectory() as out:
        args = training_args(
            out,
            per_device_train_batch_size=a.micro_batch_size,
            gradient_accumulation_steps=accum,
            num_train_epochs=a.epochs,
            learning_rate=lr,
            logging_steps=10_000,
        )
        trainer = IterITTrainer(
            model=model,
            args=args,
            train_dataset=dataset,
            data_collator=ResponseOnlyCollator(tok.pad_token_id),
            processing_class=tok,
            callbacks=list(callbacks),
            samples=samples,
            selection_config=config,
            max_length=a.max_length,
            progress=False,
        )
        t0 = time.perf_counter()
        trainer.train()
        return trainer.iterit, time.perf_counter() - t0


def parse_run_options(ap: argparse.ArgumentParser, tiny_help: str) -> argparse.Namespace:
    """Adds the options of the training benches (this one and bench_signals.py) to ``ap``,
    parses the command line and applies ``--tiny`` (48 records, M=12, 2 epochs)."""
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--budget", type=float, default=0.05)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--micro-batch-size", type=int, default=8)
    ap.add_argument("--json", action="store_true", help="print the results as JSON too")
    ap.add_argument("--tiny", action="store_true", help=tiny_help)
    a = ap.parse_args()
    if a.tiny:
        a.n, a.budget, a.epochs, a.max_length = 48, 0.25, 2, 48
    return a


def alpaca_samples(n: int) -> list:
    """The first ``n`` real Alpaca records, less those with an empty response."""
    from iterit.data import load_samples

    if not ALPACA.is_file():
        sys.exit(f"{ALPACA} is not present")
    return [s for s in load_samples(ALPACA)[:n] if s.response.strip()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="tiny")
    a = parse_run_options(ap, "a few seconds: 48 records, M=12, 2 epochs (CI)")
    if a.tiny:
        a.model = "tiny"

    from iterit.config import SelectionConfig
    from iterit.training.datasets import TokenizedSamples

    samples = alpaca_samples(a.n)
    if a.model == "tiny":
        from tests.helpers.tiny_llama import tiny_model, tiny_tokenizer

        tok = tiny_tokenizer(samples, vocab_size=2000)
        model = tiny_model(tok, seed=1)
    else:
        from iterit.scoring import load_model

        loaded = load_model(a.model, device="cpu", dtype="float32")

        model, tok = loaded.model, loaded.tokenizer
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
    counter = ForwardCounter(model.get_decoder())
    t_tok = time.perf_counter()
    dataset = TokenizedSamples(samples, tok, max_length=a.max_length)
    t_tok = time.perf_counter() - t_tok
    lr = 2e-5 if a.model != "tiny" else 1e-3
    cb, wall = train_timed(model, tok, samples, dataset, SelectionConfig(budget=a.budget), a, lr)
    summary = cb.summary().to_json()  # the summary file's fields

    n, m, pool = summary["n_samples"], summary["budget"], summary["pool_size"]
    steps = math.ceil(m / 32)
    print(
        f"N={n} M={m} pool={pool} epochs={a.epochs} effective batch 32 ({steps} steps/epoch), "
        f"model={a.model}, max_length={a.max_length}; tokenising once: {t_tok:.2f} s"
    )
    print(
        f"{'epoch':>5} {'scored':>7} {'score s':>8} {'select s':>9} {'train s':>8} "
        f"{'epoch s':>8} {'share':>6} {'overlap':>8}"
    )
    for e in summary["epochs"]:
        share = (e["score_s"] + e["select_s"]) / e["epoch_s"]
        ov = "-" if e["overlap_prev"] is None else f"{e['overlap_prev']:.2f}"
        print(
            f"{e['epoch']:>5} {e['n_scored']:>7} {e['score_s']:>8.2f} {e['select_s']:>9.3f} "
            f"{e['train_s']:>8.2f} {e['epoch_s']:>8.2f} {100 * share:>5.1f}% {ov:>8}"
        )
    sel_total = sum(e["score_s"] + e["select_s"] for e in summary["epochs"])
    print(f"whole run: {wall:.1f} s, scoring + selecting {100 * sel_total / wall:.1f}% of it")
    ev, tr = counter.counts["eval"], counter.counts["train"]
    bound = summary["paper_bound_n_plus_aM_epochs_minus_1"]
    print(
        f"scored samples: {summary['n_scored_total']} = N + a*M*(epochs-1) = {bound} "
        f"(re-scoring all N every epoch would be {n * a.epochs})"
    )
    print(
        f"forward passes: scoring {ev['calls']} calls / {ev['sequences']} sequences / "
        f"{ev['tokens']} tokens (2 sequences per scored sample); training {tr['calls']} calls / "
        f"{tr['sequences']} sequences / {tr['tokens']} tokens (+ as many backward passes)"
    )
    print(
        f"ratio scoring/training: {ev['sequences'] / max(tr['sequences'], 1):.1f}x sequences, "
        f"{ev['tokens'] / max(tr['tokens'], 1):.1f}x tokens (forward only)"
    )
    if a.json:
        print(json.dumps({"summary": summary, "forward": counter.counts, "wall_s": wall}))


if __name__ == "__main__":
    main()
