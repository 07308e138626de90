"""Re-scoring under a sharded model: two gloo processes on the CPU with a tiny Llama sharded
by FSDP2 (``fully_shard``).  The scorer's synced mode must give one process's scores, whatever
each rank's share of the work (none included), and per-epoch re-selection must run inside
FSDP training and pick what one process picks.  DeepSpeed ZeRO-3 and multi-GPU FSDP are
marked ``cuda`` (docs/training.md, "What works where")."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import torch

from tests.helpers.shared import shared_file
from tests.helpers.tiny_llama import save_scoring_inputs, tiny_model, tiny_tokenizer
from tests.helpers.training import ALPACA

pytestmark = pytest.mark.slow

ROOT = str(Path(__file__).resolve().parents[2])
TIMEOUT_S = 300  # a hang fails here; generous for a loaded 2-core machine


def _samples():
    from iterit import Sample

    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]
    words += ["eta", "theta", "iota", "kappa", "lambda", "mu"]
    out = []
    for i in range(13):
        n = 3 + (i * 7) % 23  # responses of very different lengths: unequal forward counts
        out.append(
            Sample(
                " ".join(words[(i + k) % 12] for k in range(4 + i % 5)),
                " ".join(words[(i * k) % 12] for k in range(n)),
                input="" if i % 3 else "mu nu",
            )
        )
    return out


def _run(script: Path, *args: str) -> None:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT)
    proc = subprocess.run(
        [sys.executable, str(script), *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,  # a collective mismatch hangs: fail instead
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]


SCORE_SCRIPT = textwrap.dedent(
    """
    import json, sys, numpy as np, torch, torch.distributed as dist, torch.multiprocessing as mp

    def work(rank, world, folder, init, out):
        dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
        from torch.distributed.fsdp import fully_shard
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from iterit import Sample
        from iterit.scoring import IFDScorer
        model = AutoModelForCausalLM.from_pretrained(folder)
        tok = AutoTokenizer.from_pretrained(folder)
        for layer in model.model.layers:
            fully_shard(layer)
        fully_shard(model)
        recs = json.load(open(folder + "/samples.json"))
        samples = [Sample(r[0], r[1], input=r[2]) for r in recs]
        stats = {}
        # all samples (unequal shares), one sample (rank 1 has none), none at all
        for name, part in (("all", samples), ("one", samples[:1]), ("none", [])):
            sc = IFDScorer(model, tok, max_length=64, batch_tokens=64, progress=False)
            res = sc.score(part)
            st = res.stats
            stats[name] = {"forward_calls": st.forward_calls, "idle_calls": st.idle_calls}
            stats[name]["synced"] = sc.synced
            np.save(f"{out}/{name}{rank}.npy", np.stack([res.ifd, res.nll_cond, res.nll_prior]))
        # the model still trains after scoring (parameters gathered and resharded)
        model.train()
        ids = torch.tensor([[2, 5, 6, 7, 8]])
        model(input_ids=ids, labels=ids).loss.backward()
        json.dump(stats, open(f"{out}/stats{rank}.json", "w"))
        dist.destroy_process_group()

    if __name__ == "__main__":
        folder, init, out = sys.argv[1:4]
        torch.set_num_threads(1)
        mp.spawn(work, args=(2, folder, init, out), nprocs=2, join=True)
    """
)


def _score_in_two_processes(tmp_path: Path, script_text: str):
    """Runs ``script_text`` (:data:`SCORE_SCRIPT` or a variant) over a tiny Llama and
    :func:`_samples` saved under ``tmp_path``; returns the samples, tokenizer and model."""
    samples = _samples()
    tok = tiny_tokenizer(samples)
    model = tiny_model(tok)
    folder = save_scoring_inputs(tmp_path / "tiny", model, tok, samples)
    script = tmp_path / "fsdp_score.py"
    script.write_text(script_text)
    _run(script, str(folder), f"file://{tmp_path / 'rendezvous'}", str(tmp_path))
    return samples, tok, model


def test_fsdp2_two_processes_score_as_one(tmp_path):
    from iterit.scoring import IFDScorer

    samples, tok, model = _score_in_two_processes(tmp_path, SCORE_SCRIPT)

    one = IFDScorer(model, tok, max_length=64, batch_tokens=64, progress=False)
    single = one.score(samples)
    want = np.stack([single.ifd, single.nll_cond, single.nll_prior])
    for rank in (0, 1):
        got = np.load(tmp_path / f"all{rank}.npy")
        np.testing.assert_allclose(got, want, atol=1e-5, rtol=0, equal_nan=True)
        np.testing.assert_allclose(
            np.load(tmp_path / f"one{rank}.npy"), want[:, :1], atol=1e-5, rtol=0
        )
        assert np.load(tmp_path / f"none{rank}.npy").shape == (3, 0)
        stats = json.loads((tmp_path / f"stats{rank}.json").read_text())
        assert all(s["synced"] for s in stats.values())  # chosen because the model is sharded
        # the ranks had unequal work: some calls were dummies, and the one-sample case had a
        # rank with nothing to score
        assert stats["all"]["idle_calls"] > 0 and stats["one"]["idle_calls"] > 0
        # the real forward calls are the single process's (same batches, just spread)
        assert stats["one"]["forward_calls"] == 2


TRAIN_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import accelerate.state as state
    import torch.distributed as dist
    from tests.helpers.tiny_llama import tiny_tokenizer
    from tests.helpers.training import make_trainer, real_samples
    from iterit.config import SelectionConfig
    from iterit.scoring.synced import sharding_kind

    # accelerate turns FSDP on for GPU-like devices only; on CPU processes (gloo) it would
    # silently fall back to DDP.  Force its FSDP path, which is device-agnostic otherwise.
    init = state.AcceleratorState.__init__

    def cpu_fsdp(self, *args, fsdp_plugin=None, **kwargs):
        init(self, *args, fsdp_plugin=fsdp_plugin, **kwargs)
        if fsdp_plugin is not None and self.distributed_type == state.DistributedType.MULTI_CPU:
            self.distributed_type, self.fsdp_plugin = state.DistributedType.FSDP, fsdp_plugin

    state.AcceleratorState.__init__ = cpu_fsdp

    out = sys.argv[1]
    samples = real_samples(40)
    tok = tiny_tokenizer(samples)
    fsdp = {"fsdp": True,
            "fsdp_config": {"version": 2, "transformer_layer_cls_to_wrap": ["LlamaDecoderLayer"]}}
    trainer, cb = make_trainer(out, samples, tok, SelectionConfig(budget=8),
                               per_device_train_batch_size=2, gradient_accumulation_steps=1,
                               learning_rate=1e-3, num_train_epochs=2, **fsdp)
    trainer.train()
    if dist.get_rank() == 0:
        json.dump({"picks": [cb.records[e].picks for e in sorted(cb.records)],
                   "pool_scores": [float(x) for x in cb.pool_scores],
                   "kind": sharding_kind(trainer.model), "world": dist.get_world_size()},
                  open(out + "/fsdp.json", "w"))
    # Leave together and close the group: a rank that exits while gloo's threads still run
    # aborts ("terminate called without an active exception") and fails the launch.
    dist.barrier()
    dist.destroy_process_group()
    """
)


def test_fsdp2_training_reselects_as_one_process(tmp_path):
    shared_file(ALPACA)
    from iterit.config import SelectionConfig
    from tests.helpers.training import make_trainer, real_samples

    script = tmp_path / "fsdp_train.py"
    script.write_text(TRAIN_SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=ROOT)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    proc = subprocess.run(
        [*cmd, str(script), str(tmp_path / "fsdp")],
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    got = json.loads((tmp_path / "fsdp" / "fsdp.json").read_text())
    assert got["world"] == 2 and got["kind"] == "fsdp2"

    samples = real_samples(40)
    tok = tiny_tokenizer(samples)
    # One process, the same global batch (4) in the same order.
    trainer, cb = make_trainer(
        tmp_path / "one",
        samples,
        tok,
        SelectionConfig(budget=8),
        per_device_train_batch_size=4,
        gradient_accumulation_steps=1,
        learning_rate=1e-3,
        num_train_epochs=2,
    )
    trainer.train()
    # Epoch 1 re-scored its pool with the FSDP-trained model, inside training.
    assert len(got["picks"]) == 2
    assert got["picks"] == [cb.records[e].picks for e in sorted(cb.records)]
    np.testing.assert_allclose(got["pool_scores"], cb.pool_scores, atol=1e-4)


# ------------------------------------------------------------------------------ GPUs only


def _gpus() -> int:
    return torch.cuda.device_count() if torch.cuda.is_available() else 0


@pytest.mark.cuda
@pytest.mark.skipif(_gpus() < 2, reason="needs two CUDA GPUs")
def test_fsdp2_two_gpus_score_as_one(tmp_path):
    gpu = (
        SCORE_SCRIPT.replace('"gloo"', '"nccl"')
        .replace(
            "model = AutoModelForCausalLM.from_pretrained(folder)",
            "torch.cuda.set_device(rank); "
            "model = AutoModelForCausalLM.from_pretrained(folder).cuda()",
        )
        .replace(
            "ids = torch.tensor([[2, 5, 6, 7, 8]])", "ids = torch.tensor([[2, 5, 6, 7, 8]]).cuda()"
        )
    )
    samples, tok, model = _score_in_two_processes(tmp_path, gpu)
    from iterit.scoring import IFDScorer

    single = IFDScorer(model, tok, max_length=64, batch_tokens=64, progress=False).score(samples)
    want = np.stack([single.ifd, single.nll_cond, single.nll_prior])
    for rank in (0, 1):
        got = np.load(tmp_path / f"all{rank}.npy")
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=0, equal_nan=True)


ZERO3_SCRIPT = textwrap.dedent(
    """
    import json, sys
    import torch.distributed as dist
    from tests.helpers.tiny_llama import tiny_tokenizer
    from tests.helpers.training import make_trainer, real_samples
    from iterit.config import SelectionConfig
    from iterit.scoring.synced import sharding_kind

    out, ds = sys.argv[1:3]
    samples = real_samples(40)
    tok = tiny_tokenizer(samples)
    trainer, cb = make_trainer(out, samples, tok, SelectionConfig(budget=8),
                               per_device_train_batch_size=2, gradient_accumulation_steps=1,
                               learning_rate=1e-3, use_cpu=False, deepspeed=ds)
    trainer.train()
    if dist.get_rank() == 0:
        json.dump({"picks": [cb.records[e].picks for e in sorted(cb.records)],
                   "kind": sharding_kind(trainer.model)}, open(out + "/zero3.json", "w"))
    """
)


@pytest.mark.cuda
@pytest.mark.skipif(_gpus() < 2, reason="needs two CUDA GPUs")
def test_deepspeed_zero3_training_reselects(tmp_path):
    pytest.importorskip("deepspeed")
    shared_file(ALPACA)
    ds = tmp_path / "ds.json"
    ds.write_text(
        json.dumps(
            {
                "zero_optimization": {"stage": 3},
                "train_micro_batch_size_per_gpu": "auto",
                "gradient_accumulation_steps": "auto",
                "train_batch_size": "auto",
            }
        )
    )
    script = tmp_path / "zero3_train.py"
    script.write_text(ZERO3_SCRIPT)
    out = tmp_path / "zero3"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2"]
    env = dict(os.environ, PYTHONPATH=ROOT)
    proc = subprocess.run(
        [*cmd, str(script), str(out), str(ds)], capture_output=True, text=True, timeout=600, env=env
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    got = json.loads((out / "zero3.json").read_text())
    assert got["kind"] == "zero3" and len(got["picks"]) == 3
    shutil.rmtree(out, ignore_errors=True)
