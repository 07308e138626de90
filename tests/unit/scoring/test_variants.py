"""IFD variants: each is checked against a small independent per-sample implementation written
here (full logits, one sequence per forward pass, Hugging Face's own label-shifted loss), on the
batched, cached and sharded paths of IFDScorer."""

from __future__ import annotations

import math

import numpy as np
import pytest

from iterit.config import IFD_VARIANTS
from iterit.errors import ConfigError
from tests.helpers.word_llama import INVALID, MAX_LEN

torch = pytest.importorskip("torch")


def _hf_loss(model, ids: list[int], first_label: int) -> float:
    """Mean loss over positions ``first_label..`` as Hugging Face computes it (labels shifted
    inside the model: the token at position t is predicted from the ones before it)."""
    x = torch.tensor([ids])
    labels = x.clone()
    labels[0, :first_label] = -100
    with torch.no_grad():
        return float(model(x, labels=labels).loss.double())


def superfiltering_reference(model, tok, samples, max_length: int):
    """The token accounting of ``code_ifd/data_analysis.py`` in tianyi-lab/Superfiltering, per
    sample: the prompt is the iterit template's (the variant is about token accounting, not the
    prompt), the whole text and the response truncated as the script truncates them, no
    special tokens added, the losses Hugging Face's own."""
    from iterit.data.templates import render_prompt

    def encode(text, limit=None):
        ids = tok(text, add_special_tokens=False)["input_ids"]
        return ids[:limit] if limit is not None else ids

    out = []
    for s in samples:
        prompt = render_prompt("alpaca", s, tok)
        if not s.response.strip():
            out.append((math.nan, math.nan, 0))
            continue
        n_prompt = len(encode(prompt, max_length))
        # The script tokenizes the joined text; iterit tokenizes prompt and response apart (the
        # token at the boundary can differ, docs/ifd.md "Variants"), and so does this oracle.
        whole = (encode(prompt) + encode(s.response))[:max_length]
        if n_prompt >= max_length:
            out.append((math.nan, math.nan, 0))
            continue
        alone = encode(s.response, max_length - n_prompt + 1)
        if len(alone) < 2:  # the script's direct loss is a mean over no token: NaN, no IFD
            out.append((math.nan, math.nan, 0))
            continue
        cond = _hf_loss(model, whole, n_prompt)
        prior = _hf_loss(model, alone, 0)
        out.append((cond, prior, len(whole) - n_prompt))
    return out


def loss_ratio_reference(model, tok, samples, max_length: int):
    """iterit's tokens (start token, prompt, response, end token), ratio of mean losses."""
    from iterit.data.templates import render_prompt

    bos, eos = tok.bos_token_id, tok.eos_token_id
    out = []
    for s in samples:
        p = [bos, *tok(render_prompt("alpaca", s, tok), add_special_tokens=False)["input_ids"]]
        r = [*tok(s.response, add_special_tokens=False)["input_ids"], eos]
        k = min(len(r), max_length - len(p))
        if not s.response.strip() or k <= 0:
            out.append((math.nan, math.nan, 0))
            continue
        cond = _hf_loss(model, p + r[:k], len(p))
        prior = _hf_loss(model, [bos, *r[:k]], 1)
        out.append((cond, prior, k))
    return out


def _check(scores, expected, combine) -> None:
    c = np.array([e[0] for e in expected])
    p = np.array([e[1] for e in expected])
    k = np.array([e[2] for e in expected])
    np.testing.assert_allclose(scores.nll_cond, c, rtol=1e-5, equal_nan=True)
    np.testing.assert_allclose(scores.nll_prior, p, rtol=1e-5, equal_nan=True)
    np.testing.assert_array_equal(scores.n_tokens, k)
    with np.errstate(all="ignore"):
        np.testing.assert_allclose(scores.ifd, combine(c, p), rtol=1e-5, equal_nan=True)


def _scorer(model, tok, **kw):
    from iterit.scoring import IFDScorer

    kw.setdefault("max_length", MAX_LEN)
    kw.setdefault("batch_tokens", 256)
    return IFDScorer(model, tok, progress=False, **kw)


@pytest.mark.parametrize("side", ["right", "left"])
def test_superfiltering_equals_its_script(model, tok, samples, side):
    tok.padding_side = side
    try:
        out = _scorer(model, tok, ifd_variant="superfiltering").score(samples)
    finally:
        tok.padding_side = "right"
    expected = superfiltering_reference(model, tok, samples, MAX_LEN)
    _check(out, expected, lambda c, p: np.exp(c - p))
    assert out.ifd_variant == "superfiltering"
    assert out.n_invalid == len(INVALID) + 1  # and sample 19, a one-token response
    truncated = [
        e[2] < len(tok(s.response, add_special_tokens=False)["input_ids"])
        for s, e in zip(samples, expected, strict=True)
        if e[2]
    ]
    assert out.n_truncated == sum(truncated) > 0


def test_loss_ratio_equals_ratio_of_mean_losses(model, tok, samples, ref):
    out = _scorer(model, tok, ifd_variant="loss-ratio").score(samples)
    _check(out, loss_ratio_reference(model, tok, samples, MAX_LEN), lambda c, p: c / p)
    # Same tokens as iterit's: only the combination differs.
    np.testing.assert_allclose(out.nll_cond, ref.nll_cond, rtol=1e-5, equal_nan=True)
    np.testing.assert_allclose(out.nll_prior, ref.nll_prior, rtol=1e-5, equal_nan=True)


def test_iterit_is_the_default_and_unchanged(model, tok, samples, ref):
    out = _scorer(model, tok).score(samples)
    assert out.ifd_variant == "iterit"
    np.testing.assert_allclose(out.ifd, ref.ifd, rtol=1e-5, equal_nan=True)


def test_superfiltering_scores_no_start_or_end_token(tok, samples):
    from iterit.scoring.encoding import encode_for_scoring

    short = samples[:3]  # none of them truncated
    enc = encode_for_scoring(tok, short, "alpaca", MAX_LEN, "superfiltering")
    for j, s in enumerate(short):
        r = tok(s.response, add_special_tokens=False)["input_ids"]
        assert enc.prior[j] == r and enc.n_prior[j] == len(r) - 1
        assert enc.cond[j][enc.cond_offset[j] :] == r and enc.n_tokens[j] == len(r)
        assert tok.bos_token_id not in enc.cond[j] and tok.eos_token_id not in enc.cond[j]


def test_one_token_response_has_no_superfiltering_score(model, tok):
    from iterit.data.sample import Sample

    out = _scorer(model, tok, ifd_variant="superfiltering").score([Sample("write", "four")])
    assert np.isnan(out.ifd[0]) and out.n_invalid == 1 and out.n_tokens[0] == 0


@pytest.mark.parametrize("variant", IFD_VARIANTS)
def test_cache_serves_each_variant_and_keeps_them_apart(model, tok, samples, variant, tmp_path):
    first = _scorer(model, tok, ifd_variant=variant, cache=tmp_path).score(samples)
    again = _scorer(model, tok, ifd_variant=variant, cache=tmp_path)
    second = again.score(samples)
    assert second.stats.cached == len(samples) - first.n_invalid
    np.testing.assert_array_equal(first.ifd, second.ifd)
    other = "superfiltering" if variant != "superfiltering" else "iterit"
    fresh = _scorer(model, tok, ifd_variant=other, cache=tmp_path)
    assert fresh.score(samples).stats.cached == 0  # another variant's scores are never reused


@pytest.mark.parametrize("variant", IFD_VARIANTS)
def test_sharded_path_serves_each_variant(model, tok, samples, variant, monkeypatch):
    """Two ranks simulated in one process: rank 1's shard is gathered into rank 0's result."""
    from iterit.utils import distributed

    single = _scorer(model, tok, ifd_variant=variant).score(samples)
    monkeypatch.setattr(distributed, "world_size", lambda: 2)
    monkeypatch.setattr(distributed, "barrier", lambda: None)
    payloads = {}

    def gather_as(rank):
        def gather(payload):
            payloads[rank] = payload
            return [payloads[r] for r in sorted(payloads)]

        return gather

    for rank in (1, 0):
        monkeypatch.setattr(distributed, "rank", lambda r=rank: r)
        monkeypatch.setattr(distributed, "all_gather_object", gather_as(rank))
        out = _scorer(model, tok, ifd_variant=variant).score(samples)
    np.testing.assert_allclose(out.ifd, single.ifd, rtol=1e-6, equal_nan=True)
    np.testing.assert_array_equal(out.n_tokens, single.n_tokens)


def test_unknown_variant_is_refused(model, tok):
    with pytest.raises(ConfigError, match="IFD variant"):
        _scorer(model, tok, ifd_variant="cherry")


def _scores_file(path, samples, **variant):
    """A scores file of ``samples`` (every IFD 0.5) written with ``ifd_columns(..., **variant)``."""
    from iterit.artifacts.score_files import ifd_columns, write_table

    n = len(samples)
    cols = {"ifd": np.full(n, 0.5), "nll_cond": np.ones(n), "nll_prior": np.ones(n)}
    cols["n_tokens"] = np.ones(n, dtype=np.int64)
    columns = ifd_columns(cols, samples, **variant)
    assert ("ifd_variant" in columns) == bool(variant)  # the default variant: files as before
    return write_table(path, columns)


def test_scores_file_records_the_variant_and_refuses_another(samples, tmp_path):
    from iterit.artifacts.score_files import read_scores
    from iterit.errors import ScoresFileError

    sf = _scores_file(tmp_path / "sf.jsonl", samples, variant="superfiltering")
    it = _scores_file(tmp_path / "it.jsonl", samples)
    assert read_scores(sf, samples, variant="superfiltering")["ifd"][0] == 0.5
    assert read_scores(it, samples, variant="iterit")["ifd"][0] == 0.5
    with pytest.raises(ScoresFileError, match="variant superfiltering, not iterit"):
        read_scores(sf, samples, variant="iterit")
    with pytest.raises(ScoresFileError, match="variant iterit, not loss-ratio"):
        read_scores(it, samples, variant="loss-ratio")


def test_train_refuses_a_scores_file_of_another_variant(samples, tmp_path):
    from iterit.config import TrainConfig
    from iterit.errors import ScoresFileError
    from iterit.training.run import _initial_scores

    path = _scores_file(tmp_path / "s.jsonl", samples, variant="loss-ratio")
    with pytest.raises(ScoresFileError, match="variant"):
        _initial_scores(TrainConfig(scores=str(path)), samples)
    ok = _initial_scores(TrainConfig(scores=str(path), ifd_variant="loss-ratio"), samples)
    assert ok.complexity[0] == 0.5 and ok.source == "ifd"
