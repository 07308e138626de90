"""iterit.training.hf: IterIT inside transformers.Trainer / trl.SFTTrainer (issue 4).

CPU only, a tiny randomly initialised Llama built from a config and a word-level tokenizer
trained in-process, on small slices of the real Alpaca data in ../shared/data.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from iterit.training.hf import (  # noqa: E402
    STATE_KEY,
    SUMMARY_NAME,
    IterITCallback,
    IterITSampler,
    ResponseOnlyCollator,
    SelectionConfig,
    TokenizedSamples,
    attach,
    encode_samples,
    jaccard,
    sft_dataset,
)
from tests.helpers.shared import shared_file  # noqa: E402
from tests.helpers.tiny_llama import tiny_model, tiny_tokenizer  # noqa: E402
from tests.helpers.training import (  # noqa: E402
    ALPACA,
    MAX_LEN,
    make_trainer,
    read_log,
    real_samples,
    training_args,
)


@pytest.fixture(scope="module")
def data():
    samples = real_samples(60)
    return samples, tiny_tokenizer(samples)


# --------------------------------------------------------------------------------------------
# tokenisation and collation


def test_training_rows_are_the_scored_sequences(data):
    """The training sequence is IFD's conditional sequence: prompt masked, the k scored
    response tokens (and nothing else) carry labels, same template and truncation."""
    from iterit.scoring.ifd import IFDScorer

    samples, tok = data
    rows = encode_samples(samples[:12], tok, max_length=40)
    scores = IFDScorer(tiny_model(tok), tok, max_length=40, progress=False).score(samples[:12])
    for s, row, k in zip(samples[:12], rows, scores.n_tokens, strict=True):
        ids, labels = row["input_ids"], row["labels"]
        assert len(ids) == len(labels) <= 40
        assert ids[0] == tok.bos_token_id
        n_lab = sum(lab != -100 for lab in labels)
        assert n_lab == k  # exactly the scored response tokens
        if k:
            first = labels.index(next(lab for lab in labels if lab != -100))
            assert all(lab == -100 for lab in labels[:first])
            assert labels[first:] == ids[first:]
            resp = tok(s.response, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
            assert ids[first:] == resp[:k]


def test_collator_pads_right_with_masked_labels():
    coll = ResponseOnlyCollator(0, pad_to_multiple_of=4)
    batch = coll(
        [{"input_ids": [5, 6, 7], "labels": [-100, 6, 7]}, {"input_ids": [8], "labels": [8]}]
    )
    assert batch["input_ids"].tolist() == [[5, 6, 7, 0], [8, 0, 0, 0]]
    assert batch["labels"].tolist() == [[-100, 6, 7, -100], [8, -100, -100, -100]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 0], [1, 0, 0, 0]]
    with pytest.raises(ValueError, match="pad_token"):
        ResponseOnlyCollator(None)


# --------------------------------------------------------------------------------------------
# sampler


def test_sampler_fixed_length_seeded_shuffle_and_shortfall_repeat():
    s = IterITSampler(6, seed=3)
    with pytest.raises(RuntimeError, match="no selection"):
        list(s)
    s.set_selection([10, 11, 12, 13, 14, 15], epoch=0)
    a = list(s)
    assert len(s) == 6 and sorted(a) == [10, 11, 12, 13, 14, 15]
    assert list(s) == a  # same epoch, same order (resume skips the same batches)
    s.set_selection([10, 11, 12, 13, 14, 15], epoch=1)
    assert sorted(list(s)) == sorted(a) and list(s) != a  # reshuffled per epoch
    s.set_selection([1, 2, 3, 4], epoch=2)  # shortfall: repeated to keep M per epoch
    order = list(s)
    assert len(order) == 6 and set(order) == {1, 2, 3, 4}
    rows = IterITSampler(3, rows=np.array([2, -1, 0, 1]), seed=0)
    rows.set_selection([0, 2, 3], epoch=0)
    assert sorted(rows) == [0, 1, 2]
    with pytest.raises(ValueError, match="no row"):
        rows.set_selection([1], epoch=0)


def test_jaccard():
    assert jaccard([1, 2, 3], [2, 3, 4]) == 0.5
    assert jaccard([], []) == 1.0


# --------------------------------------------------------------------------------------------
# the callback with a pluggable scorer


class CountingScores:
    """A scorer whose IFD depends on a per-call offset; records what it was asked to score."""

    def __init__(self, n, change: bool):
        rng = np.random.default_rng(0)
        self.base = rng.uniform(0.3, 1.2, size=n)
        self.change = change
        self.calls: list[list[int]] = []
        self.modes: list[bool] = []
        self.index: dict[int, int] = {}

    def __call__(self, model, samples):
        self.modes.append(model.training)
        idx = [self.index[id(s)] for s in samples]
        self.calls.append(idx)
        out = self.base[idx].copy()
        if self.change and len(self.calls) > 1:
            rng = np.random.default_rng(len(self.calls))
            out = out * rng.uniform(0.6, 1.0, size=len(idx))
        return out


@pytest.mark.parametrize("change", [False, True])
def test_scores_all_once_then_only_the_pool(tmp_path, data, change):
    samples, tok = data
    fake = CountingScores(len(samples), change)
    trainer, cb = make_trainer(tmp_path, samples, tok, SelectionConfig(budget=6), score_fn=fake)
    fake.index = {id(s): i for i, s in enumerate(cb.samples)}
    trainer.train()
    recs = read_log(tmp_path)
    assert [r["epoch"] for r in recs] == [0, 1, 2]
    pool = sorted(cb.pool.tolist())
    assert len(pool) == recs[0]["pool_size"] == 18  # a * M
    # Epoch 0 scored every sample, later epochs only the pool, in eval mode.
    assert fake.calls[0] == list(range(len(samples)))
    assert [sorted(c) for c in fake.calls[1:]] == [pool, pool]
    assert fake.modes == [False, False, False]
    assert trainer.model.training  # back in train mode
    assert [r["n_scored"] for r in recs] == [len(samples), 18, 18]
    assert cb.summary()["n_scored_total"] == len(samples) + 2 * 18
    # The pool is the highest-IFD valid samples; the picks come from it.
    valid = np.flatnonzero(fake.base < 1.0)
    assert set(pool) == set(valid[np.argsort(-fake.base[valid], kind="stable")][:18].tolist())
    for r in recs:
        assert len(r["picks"]) == 6 and set(r["picks"]) <= set(pool)
        assert len(r["ifd"]) == len(r["score"]) == 6
    overlaps = [r["overlap_prev"] for r in recs[1:]]
    if change:
        assert min(overlaps) < 1.0  # scores changed, so did the selection
    else:
        assert overlaps == [1.0, 1.0]  # same scores, same selection


def test_no_iteration_and_static_scorer_reuse_epoch0(tmp_path, data):
    samples, tok = data
    fake = CountingScores(len(samples), change=True)
    trainer, cb = make_trainer(
        tmp_path, samples, tok, SelectionConfig(budget=6, iterate=False), score_fn=fake
    )
    fake.index = {id(s): i for i, s in enumerate(cb.samples)}
    trainer.train()
    recs = read_log(tmp_path)
    assert len(fake.calls) == 1
    assert [r["picks"] for r in recs] == [recs[0]["picks"]] * 3
    assert [r["rescored"] for r in recs] == [True, False, False]


def test_shortfall_is_reported_and_the_epoch_keeps_its_length(tmp_path, data):
    from iterit.errors import ShortfallWarning

    samples, tok = data
    fake = CountingScores(len(samples), change=False)
    fake.base[:] = 1.5  # invalid (IFD >= 1) ...
    fake.base[[3, 7, 11]] = [0.5, 0.6, 0.7]  # ... except three samples
    trainer, cb = make_trainer(
        tmp_path, samples, tok, SelectionConfig(budget=6), score_fn=fake, num_train_epochs=1
    )
    fake.index = {id(s): i for i, s in enumerate(cb.samples)}
    with pytest.warns(ShortfallWarning, match="only 3 valid"):
        out = trainer.train()
    (r,) = read_log(tmp_path)
    assert sorted(r["picks"]) == [3, 7, 11] and r["shortfall"] == 3 and r["pool_size"] == 3
    assert out.global_step == math.ceil(6 / 4)  # still M samples in the epoch
    assert sorted(cb.sampler.order().tolist()) == [3, 3, 7, 7, 11, 11]


def test_attach_checks(tmp_path, data):
    samples, tok = data
    from transformers import Trainer

    trainer = Trainer(
        model=tiny_model(tok),
        args=training_args(tmp_path),
        train_dataset=TokenizedSamples(samples[:10], tok, max_length=MAX_LEN),
        data_collator=ResponseOnlyCollator(tok.pad_token_id),
        processing_class=tok,
    )
    with pytest.raises(ValueError, match="rows for"):
        attach(trainer, samples, SelectionConfig(budget=3))
    with pytest.raises(ValueError, match="diversity"):
        SelectionConfig(diversity="words")
    with pytest.raises(ValueError, match="decay"):
        SelectionConfig(decay=1.0)
    assert SelectionConfig(strategy="ifd").diversity == "none"


# --------------------------------------------------------------------------------------------
# end to end with the real IFD scorer


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
    summary = json.loads((out / SUMMARY_NAME).read_text())
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
    saved = state["stateful_callbacks"][STATE_KEY]
    assert [r["epoch"] for r in saved["records"]] == [0, 1]
    assert len(saved["pool"]) == 30

    # A fresh process starts from a new model: a different init shows nothing else leaks in.
    trainer2, cb2 = make_trainer(tmp_path / "resumed", samples, tok, cfg, model_seed=2, **kw)
    trainer2.train(resume_from_checkpoint=str(ckpt))
    resumed = read_log(tmp_path / "resumed")
    assert [r["picks"] for r in resumed] == [r["picks"] for r in full]
    assert [r["ifd"] for r in resumed] == [r["ifd"] for r in full]
    # The resumed epoch was restored, not re-scored; epoch 2 was scored with the resumed model.
    assert cb2.summary()["epochs"][1]["restored"] is True
    assert cb2.n_scored == 30

    # A checkpoint made with other settings is refused, not silently mixed.
    trainer3, _ = make_trainer(tmp_path / "other", samples, tok, SelectionConfig(budget=9), **kw)
    with pytest.raises(ValueError, match="budget"):
        trainer3.train(resume_from_checkpoint=str(ckpt))


def test_sft_trainer_integration(tmp_path, data):
    trl = pytest.importorskip("trl")
    samples, tok = data
    args = trl.SFTConfig(
        output_dir=str(tmp_path),
        per_device_train_batch_size=2,
        gradient_accumulation_steps=2,
        num_train_epochs=2,
        learning_rate=1e-2,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        disable_tqdm=True,
        logging_steps=100,
        max_length=MAX_LEN,
        packing=False,
        bf16=False,  # TRL defaults to bf16 mixed precision and activation checkpointing:
        activation_checkpointing=False,  # neither helps a CPU test
        seed=0,
    )
    trainer = trl.SFTTrainer(
        model=tiny_model(tok, seed=1),
        args=args,
        train_dataset=sft_dataset(samples, tok, max_length=MAX_LEN),
        processing_class=tok,
    )
    cb = attach(trainer, samples, SelectionConfig(budget=8), max_length=MAX_LEN, progress=False)
    assert isinstance(cb, IterITCallback)
    out = trainer.train()
    assert out.global_step == 2 * math.ceil(8 / 4)
    recs = read_log(tmp_path)
    assert [len(r["picks"]) for r in recs] == [8, 8]
    # Labels survived TRL's preparation: prompt tokens are masked.
    row = trainer.train_dataset[0]
    assert row["labels"][0] == -100 and row["labels"][-1] == tok.eos_token_id

    packed = trl.SFTConfig(output_dir=str(tmp_path), packing=True, use_cpu=True, report_to="none")
    trainer.args = packed
    with pytest.raises(ValueError, match="packing"):
        attach(trainer, samples, SelectionConfig(budget=8))


# --------------------------------------------------------------------------------------------
# two processes (gloo): every rank trains on the identical selection

DDP_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    sys.path.insert(0, {root!r})
    import torch.distributed as dist
    from tests.helpers.tiny_llama import tiny_tokenizer
    from tests.helpers.training import make_trainer, real_samples
    from iterit.training.hf import SelectionConfig, ResponseOnlyCollator

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
        json.dump({{"world": dist.get_world_size(), "picks": [cb.records[e]["picks"] for e in
                   sorted(cb.records)], "n_scored": cb.n_scored, "seen": seen,
                   "steps": trainer.state.global_step, "weights": weights}}, f)
    """
)


@pytest.mark.slow
def test_two_process_gloo_identical_selections(tmp_path):
    shared_file(ALPACA)
    root = str(Path(__file__).resolve().parents[1])
    script = tmp_path / "ddp_run.py"
    script.write_text(DDP_SCRIPT.format(root=root, out=str(tmp_path)))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        str(script),
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
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
