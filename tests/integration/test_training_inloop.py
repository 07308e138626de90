"""rescore='in-loop' end to end: no scoring after epoch 0, the CLI, resume
mid-epoch, losses gathered with their indices across two processes (gloo)."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import torch
import transformers

from iterit.artifacts import TRAINER_STATE_KEY
from iterit.config import SelectionConfig
from tests.helpers.processes import run_two_ranks
from tests.helpers.shared import shared_file
from tests.helpers.tiny_llama import tiny_model
from tests.helpers.tiny_run import TINY_RUN_OPTIONS, tiny_train_config, write_tiny_run_inputs
from tests.helpers.training import ALPACA, MAX_LEN, make_trainer, read_log

pytestmark = pytest.mark.slow


def test_rescore_in_loop_scores_only_at_epoch_0(tmp_path, data):
    import iterit
    from iterit.training.run import train

    samples, tok = data
    model = tiny_model(tok, seed=1)
    no_grad_calls: list[int] = [0]
    per_epoch: list[int] = []

    def count(module, args, output):
        if not torch.is_grad_enabled():
            no_grad_calls[0] += 1

    # The scorer runs the decoder (body) directly; training runs it with gradients on.
    model.model.register_forward_hook(count)

    class PerEpoch(transformers.TrainerCallback):
        def on_epoch_end(self, args, state, control, **kw):
            per_epoch.append(no_grad_calls[0])
            no_grad_calls[0] = 0

    cfg = tiny_train_config(
        tmp_path, budget=6, epochs=3, max_length=MAX_LEN, rescore="in-loop", loss_ema=0.3
    )
    res = train(cfg, samples=samples, model=model, tokenizer=tok, callbacks=[PerEpoch()])
    recs = read_log(tmp_path)
    assert per_epoch[0] > 0 and per_epoch[1:] == [0, 0]  # no inference after epoch 0
    assert [r["score_forward_calls"] for r in recs][1:] == [0, 0]
    assert recs[0]["score_forward_calls"] > 0
    assert [r["n_scored"] for r in recs] == [len(samples), 0, 0]
    assert [r["complexity_source"] for r in recs] == ["ifd", "loss-ema", "loss-ema"]
    assert all(r["rescore"] == "in-loop" for r in recs)
    cb = res.callback
    # The EMA: first epoch trained -> its loss; then 0.3 * ema + 0.7 * loss.
    e = cb.losses.epochs
    for i, v in cb.losses.ema.items():
        hist = [e[k][i] for k in sorted(e) if i in e[k]]
        want = hist[0]
        for x in hist[1:]:
            want = 0.3 * want + 0.7 * x
        assert v == pytest.approx(want, rel=1e-12)
    # Epoch 2's selection: exp(ema - nll_prior) for the pool samples trained in epochs 0-1,
    # epoch-0 IFD for the others, then the ordinary greedy selection over the pool.
    pool = cb.pool
    ema01 = {}
    for i in pool.tolist():
        hist = [e[k][i] for k in (0, 1) if i in e[k]]
        if hist:
            ema01[i] = hist[0] if len(hist) == 1 else 0.3 * hist[0] + 0.7 * hist[1]
    c = np.array(
        [
            np.exp(ema01[i] - cb.pool_nll_prior[j]) if i in ema01 else cb.pool_scores[j]
            for j, i in enumerate(pool.tolist())
        ]
    )
    assert recs[2]["n_from_loss"] == len(ema01) > 0
    valid = np.flatnonzero(c < 1.0)
    sel = iterit.select([samples[int(pool[j])].response for j in valid], c[valid], 6, decay=0.1)
    assert pool[valid][sel.indices].tolist() == recs[2]["picks"]
    np.testing.assert_allclose(recs[2]["ifd"], c[valid][sel.indices], rtol=1e-9)
    summary = res.summary
    assert summary.rescore == "in-loop"
    assert [ep.score_forward_calls for ep in summary.epochs][1:] == [0, 0]
    # iterit report shows where each epoch's complexity came from and what scoring cost.
    from iterit.report import run_report, terminal_summary

    text = terminal_summary(run_report(tmp_path))
    assert "re-scoring of later epochs" in text and "in-loop" in text
    assert "complexity from" in text and "loss-ema" in text and "mean train loss" in text


def test_cli_train_rescore_in_loop(tmp_path, data):
    click_testing = pytest.importorskip("click.testing")
    from iterit.cli import main

    samples, tok = data
    inputs = write_tiny_run_inputs(tmp_path, samples[:30], tok)
    out = tmp_path / "run"
    args = ["train", "--model", str(inputs / "model"), "--data", str(inputs / "data.jsonl")]
    args += ["--output-dir", str(out), "--budget", "4", "--epochs", "2", *TINY_RUN_OPTIONS]
    args += ["--rescore", "in-loop", "--loss-ema", "0.2"]
    result = click_testing.CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output + repr(result.exception)
    assert "0 scoring forward passes" in result.output
    recs = read_log(out)
    assert [r["complexity_source"] for r in recs] == ["ifd", "loss-ema"]
    saved = json.loads((out / "iterit_train_config.json").read_text())
    assert (saved["rescore"], saved["loss_ema"]) == ("in-loop", 0.2)


def test_resume_mid_epoch_reproduces_in_loop_selections(tmp_path, data):
    samples, tok = data
    cfg = SelectionConfig(budget=10, rescore="in-loop")
    kw = {"save_strategy": "steps", "save_steps": 4}
    full_out = tmp_path / "full"
    trainer, cb = make_trainer(full_out, samples, tok, cfg, **kw)
    trainer.train()
    full = read_log(full_out)
    # M = 10, effective batch 4: 3 steps per epoch, step 4 is inside epoch 1.
    state = json.loads((full_out / "checkpoint-4" / "trainer_state.json").read_text())
    saved = state["stateful_callbacks"][TRAINER_STATE_KEY]["inloop"]
    assert saved["partial_epoch"] == 1 and len(saved["partial"]) == 4  # one step's samples
    assert len(saved["ema"]) == 10  # the EMA after epoch 0

    trainer2, cb2 = make_trainer(tmp_path / "resumed", samples, tok, cfg, model_seed=2, **kw)
    trainer2.train(resume_from_checkpoint=str(full_out / "checkpoint-4"))
    resumed = read_log(tmp_path / "resumed")
    assert [r["picks"] for r in resumed] == [r["picks"] for r in full]
    np.testing.assert_allclose(resumed[2]["ifd"], full[2]["ifd"], rtol=1e-5)
    assert sorted(cb2.losses.ema) == sorted(cb.losses.ema)
    np.testing.assert_allclose(
        [cb2.losses.ema[i] for i in sorted(cb.losses.ema)],
        [cb.losses.ema[i] for i in sorted(cb.losses.ema)],
        rtol=1e-5,
    )
    assert cb2.n_scored == 0  # neither the restored epoch nor epoch 2 was scored


DDP_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    sys.path.insert(0, {root!r})
    import torch, torch.distributed as dist
    from tests.helpers.tiny_llama import tiny_tokenizer
    from tests.helpers.training import make_trainer, real_samples
    from iterit.config import SelectionConfig
    from iterit.scoring import IFDScorer

    samples = real_samples(40)
    tok = tiny_tokenizer(samples)
    out = {out!r}
    trainer, cb = make_trainer(out, samples, tok, SelectionConfig(budget=8, rescore="in-loop"),
                               per_device_train_batch_size=2, gradient_accumulation_steps=1,
                               num_train_epochs=2, learning_rate=0.0)
    local = []
    hook = cb.losses._hook

    def spy(module, args, kwargs, output):
        before = len(cb.losses._local)
        hook(module, args, kwargs, output)
        for i, v in cb.losses._local[before:]:
            local.extend(zip(i.tolist(), v.tolist()))

    cb.losses._hook = spy
    trainer.train()
    ref = IFDScorer(trainer.model, tok, max_length=96, progress=False).score(samples)
    rank = dist.get_rank()
    with open(os.path.join(out, f"rank{{rank}}.json"), "w") as f:
        json.dump({{"world": dist.get_world_size(), "local": local,
                   "epochs": {{str(e): sorted(v.items()) for e, v in cb.losses.epochs.items()}},
                   "picks": [cb.records[e].picks for e in sorted(cb.records)],
                   "nll_cond": [None if x != x else x for x in ref.nll_cond.tolist()]}}, f)
    """
)


def test_two_process_gloo_gathers_losses_with_their_indices(tmp_path):
    shared_file(ALPACA)
    r0, r1 = run_two_ranks(DDP_SCRIPT, tmp_path)
    assert r0["world"] == r1["world"] == 2
    assert r0["epochs"] == r1["epochs"]  # every rank holds the same gathered losses
    assert r0["picks"] == r1["picks"] and r0["picks"][0] != []
    nll = r0["nll_cond"]
    for e, picks in enumerate(r0["picks"]):
        gathered = dict(r0["epochs"][str(e)])
        assert sorted(int(i) for i in gathered) == sorted(picks)
        # Zero learning rate: each loss is the model's nll_cond of *that* sample, so a loss
        # attached to the wrong index would show.
        for i, v in gathered.items():
            assert v == pytest.approx(nll[int(i)], rel=1e-5)
    # Each rank trained (and recorded) its own half; together exactly the selections.
    n0, n1 = len(r0["local"]), len(r1["local"])
    assert n0 == n1 == 2 * 4
    ids0 = [i for i, _ in r0["local"][:4]]
    ids1 = [i for i, _ in r1["local"][:4]]
    assert not set(ids0) & set(ids1) and sorted(ids0 + ids1) == sorted(r0["picks"][0])
    for i, v in r0["local"] + r1["local"]:
        assert v == pytest.approx(nll[i], rel=1e-5)
