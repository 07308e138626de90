"""The output-head self-check on the real SmolLM2-135M in bfloat16 on the CPU: the shortcut is
kept (bfloat16 weights, and float32 weights under bfloat16 autocast, as a Trainer scores) and
scores as the full logits do; a planted logit scale the head does not know is refused
(iterit.scoring.logprobs.head_tolerance, docs/ifd.md "The output-head self-check")."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

pytestmark = pytest.mark.slow
MAX_LEN = 256


@pytest.fixture(scope="module")
def real():
    from iterit.scoring import load_model
    from tests.helpers.shared import smollm2_gguf_path
    from tests.helpers.training import real_samples

    loaded = load_model(str(smollm2_gguf_path()), device="cpu", dtype="float32")
    return loaded.model.eval(), loaded.tokenizer, real_samples(12, offset=500)


def _forward(model, tok):
    from iterit.scoring.forward import BatchForward
    from iterit.scoring.model import causal_parts

    hf, dec, head = causal_parts(model)
    return BatchForward(model, hf, dec, head, tok, torch.device("cpu"), synced=False)


def test_real_model_bf16_shortcut_kept_and_matches_full_logits(real):
    from iterit.scoring import IFDScorer

    model32, tok, samples = real
    for autocast in (False, True):
        model = model32 if autocast else model32.to(torch.bfloat16)
        ctx = torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast)
        with torch.inference_mode(), ctx:
            fwd = _forward(model, tok)
            fwd.check_projection()
            assert fwd.full_logits is False, autocast
            short = IFDScorer(model, tok, max_length=MAX_LEN, progress=False).score(samples)
            sc = IFDScorer(model, tok, max_length=MAX_LEN, progress=False)
            sc._forward.full_logits = True
            full = sc.score(samples)
        model32.float()
        ok = ~np.isnan(full.nll_cond)
        assert ok.sum() >= 10
        # per-token log-probs within the check's tolerance, so their means are too
        for name in ("nll_cond", "nll_prior"):
            diff = np.abs(getattr(short, name)[ok] - getattr(full, name)[ok])
            print(f"autocast={autocast} {name}: largest mean-NLL difference {diff.max():.2e}")
            assert diff.max() <= 0.5


def test_real_model_planted_scale_refused(real):
    from iterit.scoring.logprobs import OutputHead, head_logit_error
    from iterit.scoring.model import causal_parts

    model32, _tok, _ = real
    model = model32.to(torch.bfloat16)
    try:
        _, dec, head = causal_parts(model)
        wrong = OutputHead(head, type("C", (), {"logit_scale": 1.05})())  # 5% off
        right = OutputHead(head, model.config)
        probe = [1, *[(7 * i + 3) % right.vocab for i in range(7)]]
        with torch.inference_mode():
            ok_diff, ok_tol = head_logit_error(model, dec, right, probe, "cpu")
            bad_diff, bad_tol = head_logit_error(model, dec, wrong, probe, "cpu")
        print(f"right head {ok_diff:.3g} <= {ok_tol:.3g}; 5% scale {bad_diff:.3g} > {bad_tol:.3g}")
        assert ok_diff <= ok_tol
        assert bad_diff > bad_tol
    finally:
        model32.float()
