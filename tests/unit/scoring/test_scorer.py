"""IFDScorer: batched IFD equals the per-sample reference (docs/design.md, "IFD"), whatever the
batch size, padding side, input order, template or tokenizer; out-of-memory retries, the cache,
torch.distributed and the real SmolLM2-135M on real Alpaca data.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

import torch

from iterit import Sample
from iterit.scoring import (
    IFDScorer,
    encode_for_scoring,
    load_model,
    model_fingerprint,
    reference_ifd,
)
from tests.helpers.processes import TWO_PROCESS_TIMEOUT_S, run_without
from tests.helpers.tiny_llama import save_scoring_inputs
from tests.helpers.word_llama import (
    INVALID,
    MAX_LEN,
    assert_same_scores,
    make_model,
    make_samples,
    make_tokenizer,
)


def scorer(model, tok, **kw) -> IFDScorer:
    kw.setdefault("max_length", MAX_LEN)
    kw.setdefault("progress", False)
    return IFDScorer(model, tok, **kw)


# ------------------------------------------------------------------------ batched == reference


@pytest.mark.parametrize("side", ["right", "left"])
@pytest.mark.parametrize("budget", [1, 48, 200, 100_000])
def test_batched_equals_reference(model, tok, samples, ref, side, budget):
    tok.padding_side = side
    try:
        sc = scorer(model, tok, batch_tokens=budget)
        out = sc.score(samples)
    finally:
        tok.padding_side = "right"
    assert_same_scores(out, ref)
    assert set(np.flatnonzero(np.isnan(out.ifd))) == INVALID
    assert out.n_invalid == 3 and out.n_empty_response == 2 and out.n_prompt_too_long == 1
    assert out.n_truncated == ref.n_truncated >= 1
    st = out.stats
    assert st.padded_tokens <= max(budget, 64) * st.forward_calls
    if budget == 1:
        assert st.forward_calls == st.sequences  # one row per pass
    if budget == 100_000:
        assert st.forward_calls < st.sequences / 4
        assert st.prefix_sharing and st.prefix_tokens_saved > 0


def test_input_order_prefix_sharing_and_duplicates_are_invisible(model, tok, samples, ref):
    perm = np.random.default_rng(1).permutation(len(samples))
    shuffled = [samples[i] for i in perm] + [samples[0], samples[0]]
    sc = scorer(model, tok, batch_tokens=256)
    out = sc.score(shuffled)
    np.testing.assert_allclose(out.ifd[: len(perm)], ref.ifd[perm], rtol=1e-5, equal_nan=True)
    assert out.ifd[-1] == out.ifd[-2] == out.ifd[np.flatnonzero(perm == 0)[0]]
    sc.share_prefix = False
    plain = sc.score(samples)
    assert_same_scores(plain, ref)
    assert plain.stats.prefix_tokens_saved == 0


def test_dict_records_and_alpaca_input(model, tok, samples, ref):
    recs = [{"instruction": s.instruction, "input": s.input, "output": s.response} for s in samples]
    assert_same_scores(scorer(model, tok).score(recs), ref)


def test_truncation_scores_exactly_k_tokens(model, tok):
    s = Sample("write", " ".join(["the sea"] * 40))
    enc = encode_for_scoring(tok, [s], "alpaca", 40)
    p_len = enc.cond_offset[0]
    out = scorer(model, tok, max_length=40).score([s])
    assert out.n_tokens[0] == 40 - p_len and out.n_truncated == 1
    assert len(enc.cond[0]) == 40 and len(enc.prior[0]) == 1 + 40 - p_len
    assert_same_scores(out, reference_ifd(model, tok, [s], max_length=40))


def test_invalid_samples_are_nan_and_counted(model, tok):
    items = [Sample("a", ""), Sample(" ".join(["the"] * 100), "red"), Sample("a", "  ")]
    out = scorer(model, tok).score(items)
    assert np.isnan(out.ifd).all() and np.isnan(out.nll_cond).all()
    assert list(out.n_tokens) == [0, 0, 0]
    assert (out.n_invalid, out.n_empty_response, out.n_prompt_too_long) == (3, 2, 1)
    assert not out.candidate_mask.any()
    empty = scorer(model, tok).score([])
    assert len(empty) == 0 and empty.ifd.dtype == np.float64


def test_candidate_mask(model, tok, samples):
    out = scorer(model, tok).score(samples)
    expected = np.array([np.isfinite(x) and 0 < x < 1 for x in out.ifd])
    np.testing.assert_array_equal(out.candidate_mask, expected)


@pytest.mark.parametrize("template", ["plain", "chat", "callable"])
def test_templates_equal_reference(model, tok, samples, template):
    t = tok
    if template == "chat":
        t = make_tokenizer()
        t.chat_template = (
            "{{ bos_token }}{% for m in messages %}### {{ m['role'] }} : {{ m['content'] }} "
            "{% endfor %}{% if add_generation_prompt %}### response :{% endif %}"
        )
    tmpl = (lambda s: f"### {s.instruction} ? {s.input} :") if template == "callable" else template
    out = scorer(model, t, template=tmpl).score(samples)
    assert_same_scores(out, reference_ifd(model, t, samples, template=tmpl, max_length=MAX_LEN))
    if template == "chat":  # the template renders the start token: it is counted once
        enc = encode_for_scoring(t, samples[:1], "chat", MAX_LEN)
        assert enc.cond[0][0] == t.bos_token_id and enc.cond[0][1] != t.bos_token_id


def test_tokenizer_without_bos_uses_eos_as_start(model):
    t = make_tokenizer(bos=False)
    assert t.bos_token_id is None
    items = make_samples(12, seed=3)
    out = scorer(model, t).score(items)
    assert_same_scores(out, reference_ifd(model, t, items, max_length=MAX_LEN))
    enc = encode_for_scoring(t, items[:1], "alpaca", MAX_LEN)
    assert enc.prior[0][0] == t.eos_token_id


def test_bad_arguments(model, tok):
    with pytest.raises(ValueError, match="unknown template"):
        IFDScorer(model, tok, template="vicuna")
    with pytest.raises(ValueError, match="chat template"):
        IFDScorer(model, tok, template="chat")
    with pytest.raises(ValueError, match="batch_tokens"):
        IFDScorer(model, tok, batch_tokens=0)
    with pytest.raises(ValueError, match="missing field 'output'"):
        IFDScorer(model, tok, progress=False).score([{"instruction": "x"}])


# ------------------------------------------------------------------------ training-loop usage


def test_mode_restored_and_training_still_works(tok, samples):
    model = make_model(len(tok), seed=5)
    model.train()
    model.model.layers[0].eval()  # a mixed state must come back as it was
    out = scorer(model, tok).score(samples[:8])
    assert model.training and model.model.layers[1].training
    assert not model.model.layers[0].training
    # outputs are the eval-mode (dropout-free) scores
    model.eval()
    assert_same_scores(out, reference_ifd(model, tok, samples[:8], max_length=MAX_LEN))
    # the model still trains after scoring under inference_mode
    model.train()
    x = torch.tensor([[1, 5, 6, 7]])
    model(input_ids=x, labels=x).loss.backward()
    assert model.lm_head.weight.grad is not None


def test_output_transform_falls_back_to_full_logits(tok, samples):
    from transformers import LlamaForCausalLM

    class Scaled(LlamaForCausalLM):  # an architecture that post-processes its logits
        def forward(self, *args, **kwargs):
            out = super().forward(*args, **kwargs)
            out.logits = out.logits * 2.0
            return out

    model = make_model(len(tok), cls=Scaled)
    with pytest.warns(RuntimeWarning, match="full logits"):
        out = scorer(model, tok, batch_tokens=128).score(samples)
    assert_same_scores(out, reference_ifd(model, tok, samples, max_length=MAX_LEN))


def test_out_of_memory_halves_budget_and_warns_once(model, tok, samples, ref):
    sc = scorer(model, tok, batch_tokens=4096)
    real = sc._run_batch
    oom = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)

    def limited(batch):
        if len(batch) * batch[0].width > 300:
            raise oom("CUDA out of memory (simulated)")
        return real(batch)

    sc._run_batch = limited
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = sc.score(samples)
    msgs = [w for w in caught if "out of device memory" in str(w.message)]
    assert len(msgs) == 1
    assert out.stats.oom_retries >= 4 and sc.batch_tokens == 4096
    assert out.stats.batch_tokens <= 300
    assert_same_scores(out, ref)


def test_single_row_out_of_memory_is_raised(model, tok, samples):
    sc = scorer(model, tok, batch_tokens=4096)
    sc.score(samples[:2])  # self-checks done
    oom = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)

    def always(batch):
        raise oom("simulated")

    sc._run_batch = always
    with pytest.raises(oom), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sc.score(samples)


def test_progress_bar(model, tok, samples, capsys):
    scorer(model, tok, progress=True).score(samples[:6])
    assert "IFD" in capsys.readouterr().err
    scorer(model, tok, progress=False).score(samples[:6])
    assert "IFD" not in capsys.readouterr().err


def test_deterministic(model, tok, samples):
    a = scorer(model, tok, batch_tokens=200).score(samples)
    b = scorer(model, tok, batch_tokens=200).score(samples)
    np.testing.assert_array_equal(a.ifd, b.ifd)


# ----------------------------------------------------------------------------------- the cache


def test_cache_resumes_and_is_keyed_by_model(model, tok, samples, ref, tmp_path):
    cache = tmp_path / "cache"
    sc = scorer(model, tok, batch_tokens=200, cache=cache)
    sc.chunk_samples = 10  # a part per 10 samples
    real, calls = sc._score_chunk, {"n": 0}

    def interrupted(*args):
        calls["n"] += 1
        if calls["n"] == 3:  # killed while scoring the third chunk
            raise KeyboardInterrupt
        return real(*args)

    sc._score_chunk = interrupted
    with pytest.raises(KeyboardInterrupt):
        sc.score(samples)
    parts = list(cache.rglob("part-*.jsonl"))
    assert parts and not list(cache.rglob("*.tmp*"))
    for line in parts[0].read_text().splitlines():  # plain JSON, no pickle; "s": a checksum
        assert set(json.loads(line)) == {"h", "c", "p", "k", "s"}

    resumed = scorer(model, tok, batch_tokens=200, cache=cache)
    out = resumed.score(samples)
    done = out.stats.cached
    assert done == 20
    assert out.stats.scored == len(samples) - len(INVALID) - done
    assert_same_scores(out, ref)

    again = scorer(model, tok, cache=cache)
    hit = again.score(samples)
    assert_same_scores(hit, ref)
    assert hit.stats.cached == len(samples) - len(INVALID)
    assert hit.stats.forward_calls == 0

    # another max_length, or changed weights: never a stale hit
    other = scorer(model, tok, cache=cache, max_length=MAX_LEN + 1)
    assert other.score(samples[:4]).stats.cached == 0
    trained = make_model(len(tok))
    with torch.no_grad():
        trained.lm_head.weight[0, 0] += 1e-3
    assert model_fingerprint(trained) != model_fingerprint(model)
    fresh = scorer(trained, tok, cache=cache)
    assert fresh.score(samples[:4]).stats.cached == 0
    # score(cache=...) overrides the constructor
    plain = scorer(model, tok)
    hit = plain.score(samples, cache=cache)
    assert_same_scores(hit, ref)
    assert hit.stats.cached == len(samples) - len(INVALID)


# ----------------------------------------------------------------------------- distributed


DIST_SCRIPT = textwrap.dedent(
    """
    import sys, numpy as np, torch, torch.distributed as dist, torch.multiprocessing as mp

    def work(rank, world, folder, init, out):
        dist.init_process_group("gloo", init_method=init, rank=rank, world_size=world)
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from iterit.scoring import IFDScorer
        from iterit import Sample
        import json
        model = AutoModelForCausalLM.from_pretrained(folder)
        tok = AutoTokenizer.from_pretrained(folder)
        recs = json.load(open(folder + "/samples.json"))
        samples = [Sample(r[0], r[1], input=r[2]) for r in recs]
        sc = IFDScorer(model, tok, max_length=64, batch_tokens=128, progress=False)
        res = sc.score(samples)
        assert res.stats.scored < len(samples) - 3  # each rank scored a shard only
        np.savez(f"{out}/rank{rank}.npz", ifd=res.ifd, c=res.nll_cond, p=res.nll_prior,
                 k=res.n_tokens, n_invalid=res.n_invalid)
        dist.destroy_process_group()

    if __name__ == "__main__":
        folder, init, out = sys.argv[1:4]
        torch.set_num_threads(1)
        mp.spawn(work, args=(2, folder, init, out), nprocs=2, join=True)
    """
)


@pytest.mark.slow
def test_two_gloo_processes_equal_one(model, tok, samples, ref, tmp_path):
    folder = save_scoring_inputs(tmp_path / "tiny", model, tok, samples)
    script = tmp_path / "dist_ifd.py"
    script.write_text(DIST_SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    init = f"file://{tmp_path / 'rendezvous'}"
    proc = subprocess.run(
        [sys.executable, str(script), str(folder), init, str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=TWO_PROCESS_TIMEOUT_S,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    single = scorer(model, tok, batch_tokens=128).score(samples)
    for rank in (0, 1):
        got = np.load(tmp_path / f"rank{rank}.npz")
        np.testing.assert_allclose(got["ifd"], single.ifd, rtol=1e-6, equal_nan=True)
        np.testing.assert_allclose(got["c"], single.nll_cond, rtol=1e-6, equal_nan=True)
        np.testing.assert_allclose(got["p"], single.nll_prior, rtol=1e-6, equal_nan=True)
        np.testing.assert_array_equal(got["k"], single.n_tokens)
        assert int(got["n_invalid"]) == single.n_invalid == 3
        np.testing.assert_allclose(got["ifd"], ref.ifd, rtol=1e-5, equal_nan=True)


# ------------------------------------------------------------------------------- import rules


def test_import_iterit_needs_no_torch():
    code = (
        "import iterit, iterit.data.templates, iterit.scoring.cache\n"
        "import iterit.scoring.embedded_model, iterit.scoring.batching\n"
        "assert 'iterit.scoring.scorer' not in sys.modules\n"
        "import iterit.scoring\n"
        "assert 'iterit.scoring.model' not in sys.modules\n"
    )
    proc = run_without(["torch", "transformers"], code)
    assert proc.returncode == 0, proc.stderr


# ------------------------------------------------------------------- the real SmolLM2 model


@pytest.fixture(scope="module")
def smollm2(smollm2_path):
    # float32 pinned: an exactness test compares float32 with float32 (auto may pick bfloat16)
    loaded = load_model(smollm2_path, device="cpu", dtype="float32")
    model, tokenizer = loaded.model, loaded.tokenizer
    assert model.dtype == torch.float32 and not model.training
    return model, tokenizer


@pytest.mark.slow
@pytest.mark.shared_data
def test_real_smollm2_on_alpaca_equals_reference(smollm2, alpaca_union_path, record_property):
    model, tok = smollm2
    with open(alpaca_union_path, encoding="utf-8") as fh:
        records = [json.loads(line) for line in fh]
    rng = np.random.default_rng(3)
    picked = [records[i] for i in np.sort(rng.choice(len(records), 50, replace=False))]
    max_length = 80  # keeps the per-sample reference cheap on a 2-core CI machine
    out = IFDScorer(model, tok, max_length=max_length, batch_tokens=2048, progress=False).score(
        picked
    )
    ref = reference_ifd(model, tok, picked, max_length=max_length)
    finite = np.isfinite(ref.ifd)
    assert finite.sum() >= 45
    np.testing.assert_array_equal(np.isfinite(out.ifd), finite)
    np.testing.assert_allclose(out.ifd[finite], ref.ifd[finite], rtol=1e-4)
    np.testing.assert_allclose(out.nll_cond[finite], ref.nll_cond[finite], rtol=1e-4)
    np.testing.assert_allclose(out.nll_prior[finite], ref.nll_prior[finite], rtol=1e-4)
    np.testing.assert_array_equal(out.n_tokens, ref.n_tokens)
    share = float(np.mean(out.ifd[finite] >= 1.0))
    record_property("smollm2_share_ifd_ge_1", share)
    print(
        f"\nSmolLM2-135M, 50 Alpaca samples, max_length {max_length}: "
        f"{int(finite.sum())} finite, share with IFD >= 1: {share:.3f}"
    )
    # a real instruct model finds most responses easier with their instruction
    assert 0.0 <= share < 0.5
