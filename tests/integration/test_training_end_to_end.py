"""Training end to end with the real IFD scorer: three epochs, resume from a
mid-epoch checkpoint, two processes (gloo).  CPU, a tiny Llama, real Alpaca slices."""

from __future__ import annotations

import json
import math
import textwrap

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import transformers

from iterit.artifacts import SELECTION_SUMMARY, TRAINER_STATE_KEY
from iterit.config import SelectionConfig
from iterit.errors import CheckpointError
from iterit.training.datasets import ResponseOnlyCollator
from tests.helpers.processes import run_two_ranks
from tests.helpers.shared import shared_file
from tests.helpers.training import ALPACA, make_trainer, read_log

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def full_run(tmp_path_factory, data):
    """One uninterrupted 3-epoch run with the real IFD scorer, checkpointing mid-epoch 1;
    records which rows each batch held and the global step at each epoch start."""
    samples, tok = data
    out = tmp_path_factory.mktemp("full")
    seen: list[tuple[int, ...]] = []

    class Recording(ResponseOnlyCollator):
        def __call__(self, features):
            seen.extend(tuple(f["input_ids"]) for f in features)
            return super().__call__(features)

    # M = 10, effective batch 2 x 2 = 4: 3 steps per epoch, so step 4 is in the middle of epoch 1.
    trainer, cb = make_trainer(
        out, samples, tok, SelectionConfig(budget=10), save_strategy="steps", save_steps=4
    )
    trainer.data_collator = Recording(tok.pad_token_id)
    steps_at_epoch: list[int] = []

    class Steps(transformers.TrainerCallback):
        def on_epoch_begin(self, args, state, control, **kw):
            steps_at_epoch.append(state.global_step)

    trainer.add_callback(Steps())
    output = trainer.train()
    return {
        "out": out,
        "trainer": trainer,
        "callback": cb,
        "output": output,
        "seen": seen,
        "steps_at_epoch": steps_at_epoch,
    }


def test_three_epochs_end_to_end_real_ifd(full_run, data):
    samples, _tok = data
    trainer, out = full_run["trainer"], full_run["out"]
    m, eff, epochs = 10, 2 * 2, 3
    per_epoch = math.ceil(m / eff)
    # Fixed M per epoch: the step count and the schedule over all epochs are right.
    assert full_run["output"].global_step == trainer.state.max_steps == epochs * per_epoch
    assert full_run["steps_at_epoch"] == [0, per_epoch, 2 * per_epoch]
    assert trainer.lr_scheduler.get_last_lr()[0] < 1e-3  # cosine decayed to ~0 at the end
    recs = read_log(out)
    assert [r["epoch"] for r in recs] == [0, 1, 2]
    assert [r["global_step"] for r in recs] == full_run["steps_at_epoch"]
    # Every sample scored once, then only the pool of a * M.
    assert [r["n_scored"] for r in recs] == [len(samples), 30, 30]
    assert [r["pool_size"] for r in recs] == [30, 30, 30]
    for r in recs:
        assert {"n_candidates", "picks", "ifd", "score", "overlap_prev"} <= set(r)
        assert len(r["picks"]) == m and len(set(r["picks"])) == m and r["shortfall"] == 0
        assert all(v < 1.0 for v in r["ifd"])
        assert r["score"] == sorted(r["score"], reverse=True) or r["score"][0] >= r["score"][-1]
        assert r["score_forward_calls"] > 0
    # Each epoch trained on exactly its M selected samples, once each.
    ids = [tuple(trainer.train_dataset[i]["input_ids"]) for i in range(len(samples))]
    seen = full_run["seen"]
    for e, r in enumerate(recs):
        assert sorted(seen[e * m : (e + 1) * m]) == sorted(ids[i] for i in r["picks"])
    # Training changed the scores and the selection followed.
    assert min(r["overlap_prev"] for r in recs[1:]) < 1.0
    summary = json.loads((out / SELECTION_SUMMARY).read_text())
    assert summary["n_scored_total"] == len(samples) + 2 * 30
    assert summary["paper_bound_n_plus_aM_epochs_minus_1"] == len(samples) + 2 * 30
    assert summary["n_trained_total"] == 3 * m
    assert all(e["epoch_s"] >= e["score_s"] + e["select_s"] for e in summary["epochs"])


def test_resume_mid_run_reproduces_selections(tmp_path, data, full_run):
    samples, tok = data
    cfg = SelectionConfig(budget=10)
    kw = {"save_strategy": "steps", "save_steps": 4}
    full = read_log(full_run["out"])
    ckpt = full_run["out"] / "checkpoint-4"
    state = json.loads((ckpt / "trainer_state.json").read_text())
    saved = state["stateful_callbacks"][TRAINER_STATE_KEY]
    assert [r["epoch"] for r in saved["records"]] == [0, 1]
    assert len(saved["pool"]) == 30

    # A fresh process starts from a new model: a different init shows nothing else leaks in.
    trainer2, cb2 = make_trainer(tmp_path / "resumed", samples, tok, cfg, model_seed=2, **kw)
    trainer2.train(resume_from_checkpoint=str(ckpt))
    resumed = read_log(tmp_path / "resumed")
    assert [r["picks"] for r in resumed] == [r["picks"] for r in full]
    assert [r["ifd"] for r in resumed] == [r["ifd"] for r in full]
    # The resumed epoch was restored, not re-scored; epoch 2 was scored with the resumed model.
    assert cb2.summary().epochs[1].restored is True
    assert cb2.n_scored == 30

    # A checkpoint made with other settings is refused, not silently mixed.
    trainer3, _ = make_trainer(tmp_path / "other", samples, tok, SelectionConfig(budget=9), **kw)
    with pytest.raises(CheckpointError, match="budget"):
        trainer3.train(resume_from_checkpoint=str(ckpt))


DDP_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    sys.path.insert(0, {root!r})
    import torch.distributed as dist
    from tests.helpers.tiny_llama import tiny_tokenizer
    from tests.helpers.training import make_trainer, real_samples
    from iterit.config import SelectionConfig
    from iterit.training.datasets import ResponseOnlyCollator

    samples = real_samples(40)
    tok = tiny_tokenizer(samples)
    out = {out!r}
    seen = []

    trainer, cb = make_trainer(out, samples, tok, SelectionConfig(budget=8),
                               per_device_train_batch_size=2, gradient_accumulation_steps=1)
    index = {{tuple(r["input_ids"]): i for i, r in enumerate(trainer.train_dataset.rows)}}

    class Recording(ResponseOnlyCollator):
        def __call__(self, features):
            seen.extend(index[tuple(f["input_ids"])] for f in features)
            return super().__call__(features)

    trainer.data_collator = Recording(tok.pad_token_id)
    trainer.train()
    rank = dist.get_rank()
    weights = float(sum(p.double().sum() for p in trainer.model.parameters()))
    with open(os.path.join(out, f"rank{{rank}}.json"), "w") as f:
        json.dump({{"world": dist.get_world_size(), "picks": [cb.records[e].picks for e in
                   sorted(cb.records)], "n_scored": cb.n_scored, "seen": seen,
                   "steps": trainer.state.global_step, "weights": weights}}, f)
    """
)


def test_two_process_gloo_identical_selections(tmp_path):
    shared_file(ALPACA)
    r0, r1 = run_two_ranks(DDP_SCRIPT, tmp_path)
    assert r0["world"] == r1["world"] == 2
    assert r0["picks"] == r1["picks"] and len(r0["picks"]) == 3
    assert all(len(p) == 8 for p in r0["picks"])
    # 8 samples per epoch over 2 ranks x 2 per device = one optimizer step per 4 samples.
    assert r0["steps"] == r1["steps"] == 3 * math.ceil(8 / 4)
    # Each rank saw its own half of every epoch's selection; together exactly the selection.
    assert len(r0["seen"]) == len(r1["seen"]) == 3 * 4
    for e, picks in enumerate(r0["picks"]):
        a, b = r0["seen"][4 * e : 4 * e + 4], r1["seen"][4 * e : 4 * e + 4]
        assert not set(a) & set(b) and sorted(a + b) == sorted(picks)
    assert r0["weights"] == r1["weights"]  # DDP kept the replicas identical
    log = read_log(tmp_path)
    assert [r["picks"] for r in log] == r0["picks"]
    # The scorer sharded the work: each rank scored part, the log counts the whole.
    assert [r["n_scored"] for r in log] == [40, 24, 24]
