"""The output-head self-check (iterit.scoring.forward.BatchForward.check_projection and the
tolerance of iterit.scoring.logprobs.head_tolerance): derived from the compute dtype's unit
roundoff, so the decoder + head shortcut is kept where it reproduces the model's logits up to
rounding (bfloat16 weights, float32 weights under bfloat16 autocast) and refused where the head
misses a transform the model applies.  On the CPU, in bfloat16."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from tests.helpers.word_llama import MAX_LEN, make_model

torch = pytest.importorskip("torch")

from iterit.scoring import IFDScorer  # noqa: E402
from iterit.scoring.logprobs import (  # noqa: E402
    MIN_HEAD_TOLERANCE,
    UNIT_ROUNDOFF,
    OutputHead,
    compute_dtype,
    head_tolerance,
    unit_roundoff,
)

U_BF16 = 2.0**-8


def _scorer(model, tok) -> IFDScorer:
    return IFDScorer(model, tok, max_length=MAX_LEN, batch_tokens=256, progress=False)


def _check(model, tok) -> tuple[bool, list[warnings.WarningMessage]]:
    """Score once and return whether the shortcut was refused (full logits) and the warnings."""
    sc = _scorer(model, tok)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sc._forward.check_projection()
    return bool(sc._forward.full_logits), caught


def test_unit_roundoff_of_each_dtype():
    assert UNIT_ROUNDOFF[torch.bfloat16] == U_BF16
    assert unit_roundoff(torch.bfloat16, "cpu") == U_BF16
    assert unit_roundoff(torch.float16, "cpu") == 2.0**-11
    assert unit_roundoff(torch.float32, "cpu") == 2.0**-24


def test_compute_dtype_follows_autocast():
    w = torch.zeros(3, 2)
    assert compute_dtype(w) == torch.float32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert compute_dtype(w) == torch.bfloat16
    assert compute_dtype(w.bfloat16()) == torch.bfloat16


def test_tolerance_by_hand():
    """4 (u max|z| + gamma_d max|h| max|w|), computed here from its definition."""
    torch.manual_seed(0)
    lin = torch.nn.Linear(16, 40, bias=False).bfloat16()
    hidden = torch.randn(5, 16).bfloat16()
    head = OutputHead(lin, object())
    z = hidden.float() @ lin.weight.float().T
    gamma = 16 * 2.0**-24 / (1 - 16 * 2.0**-24)
    h_norm = float(hidden.float().norm(dim=-1).max())
    w_norm = float(lin.weight.detach().float().norm(dim=-1).max())
    expected = 4 * (U_BF16 * float(z.abs().max()) + gamma * h_norm * w_norm)
    assert head_tolerance(head, hidden) == pytest.approx(expected, rel=1e-5)
    # the same head in float32 is held to the floor (its roundoff is 2^16 times smaller)
    assert head_tolerance(OutputHead(lin.float(), object()), hidden.float()) == MIN_HEAD_TOLERANCE
    # a head that scales its logits scales the bound
    scaled = OutputHead(lin.bfloat16(), type("C", (), {"logit_scale": 4.0})())
    assert head_tolerance(scaled, hidden) == pytest.approx(4 * expected, rel=1e-5)


def test_bf16_shortcut_kept_and_matches_full_logits(tok, samples):
    model = make_model(len(tok)).to(torch.bfloat16)
    refused, caught = _check(model, tok)
    assert not refused, [str(w.message) for w in caught]
    short = _scorer(model, tok).score(samples)
    full = _scorer(model, tok)
    full._forward.full_logits = True  # the full-logits path, as after a refused check
    full = full.score(samples)
    ok = ~np.isnan(full.nll_cond)
    assert ok.sum() > 20
    # mean per-token NLLs: each token's log-prob within the derived tolerance
    probe = model(input_ids=torch.tensor([[1, 5, 6, 7, 8]])).logits
    bound = 4 * U_BF16 * float(probe.float().abs().max()) + MIN_HEAD_TOLERANCE
    for name in ("nll_cond", "nll_prior"):
        diff = np.abs(getattr(short, name)[ok] - getattr(full, name)[ok])
        assert diff.max() <= bound, (name, diff.max(), bound)


class _Rerounded(torch.nn.Module):
    """A model whose logits are the same up to one bfloat16 rounding of their own (another
    kernel's result: each logit moved by at most ``u |z|``)."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        self.config = inner.config

    def forward(self, *args, **kwargs):
        out = self.inner(*args, **kwargs)
        z = out.logits.float()
        gen = torch.Generator().manual_seed(0)
        sign = torch.randint(0, 2, z.shape, generator=gen).float() * 2 - 1
        out.logits = z * (1 + U_BF16 * sign)
        return out

    def get_decoder(self):
        return self.inner.get_decoder()

    def get_output_embeddings(self):
        return self.inner.get_output_embeddings()


def test_rounding_differences_under_autocast_are_kept(tok):
    """The CUDA failure: float32 weights under bfloat16 autocast, logits one rounding apart.
    The float32 floor (the dtype of the hidden states) refuses it; the autocast dtype's
    tolerance keeps it."""
    from iterit.scoring.forward import BatchForward
    from iterit.scoring.logprobs import head_logit_error

    inner = make_model(len(tok))
    model = _Rerounded(inner)
    dec, head = inner.get_decoder(), OutputHead(inner.lm_head, inner.config)
    probe = [1, *range(5, 12)]
    with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
        diff, tol = head_logit_error(model, dec, head, probe, "cpu")
        fwd = BatchForward(model, inner, dec, inner.lm_head, tok, torch.device("cpu"), synced=False)
        fwd.check_projection()
    assert MIN_HEAD_TOLERANCE < diff <= tol
    assert fwd.full_logits is False


class _Capped(torch.nn.Module):
    """A planted wrong head: the model soft-caps its logits, the head does not know it."""

    def __init__(self, inner, cap: float):
        super().__init__()
        self.inner, self.cap, self.config = inner, cap, inner.config

    def forward(self, *args, **kwargs):
        out = self.inner(*args, **kwargs)
        out.logits = torch.tanh(out.logits.float() / self.cap) * self.cap
        return out


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("plant", ["scale", "softcap", "noise"])
def test_wrong_head_refused(tok, dtype, plant):
    from iterit.scoring.forward import BatchForward
    from iterit.scoring.logprobs import head_logit_error

    inner = make_model(len(tok)).to(dtype)
    probe = [1, *range(5, 12)]
    x = torch.tensor([probe])
    with torch.inference_mode():
        top = float(inner(input_ids=x).logits.float().abs().max())
    if plant == "scale":  # a logit scale (Cohere, Granite) of 5%: far above 4 u max|z|
        model = _Rerounded(inner)
        model.forward = lambda *a, **k: _scaled(inner(*a, **k), 1.05)
    elif plant == "softcap":  # Gemma's soft-capping at the top logit's magnitude
        model = _Capped(inner, cap=top)
    else:  # logits off by 8 units of bfloat16 rounding: more than two roundings explain
        model = _Rerounded(inner)
        model.forward = lambda *a, **k: _noisy(inner(*a, **k), 8 * U_BF16 * top)
    dec, head = inner.get_decoder(), OutputHead(inner.lm_head, inner.config)
    with torch.inference_mode():
        diff, tol = head_logit_error(model, dec, head, probe, "cpu")
        fwd = BatchForward(model, inner, dec, inner.lm_head, tok, torch.device("cpu"), synced=False)
        with pytest.warns(RuntimeWarning, match="full logits"):
            fwd.check_projection()
    assert diff > tol and fwd.full_logits is True
    assert math.isfinite(diff)


def _scaled(out, factor: float):
    out.logits = out.logits.float() * factor
    return out


def _noisy(out, size: float):
    z = out.logits.float()
    gen = torch.Generator().manual_seed(1)
    out.logits = z + size * (torch.randint(0, 2, z.shape, generator=gen).float() * 2 - 1)
    return out
