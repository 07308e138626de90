"""The dtype a model runs in: native-bfloat16 detection (monkeypatched CPU flags), ``auto``
resolved per device, ``load_model``'s choice, bfloat16 scores against float32 on a tiny model,
and where the choice is recorded (cache key, scores file)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import torch

from iterit.errors import ConfigError
from iterit.scoring import IFDScorer, load_model
from iterit.scoring import device as dev
from iterit.scoring import precision as prec
from tests.helpers.word_llama import MAX_LEN, make_model

#: bfloat16 keeps 8 bits of mantissa (relative rounding 2^-9 per value).  Measured on these
#: samples with this tiny random model (near-uniform predictions over a small vocabulary, the
#: hard case): largest difference 0.014 in a mean NLL and 0.028 in IFD.  Tolerances: twice that.
BF16_NLL_ATOL = 0.03
BF16_IFD_ATOL = 0.06

X86 = "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_tile amx_bf16\n\n"
ARM = "processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\nCPU implementer\t: 0x41\n"
AVX2 = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n"


def _cpu(monkeypatch, tmp_path, cpuinfo: str | None, kernels: bool, system: str = "Linux"):
    """This process sees a CPU described by ``cpuinfo`` (None: no /proc/cpuinfo)."""
    path = tmp_path / "cpuinfo"
    if cpuinfo is not None:
        path.write_text(cpuinfo)
    monkeypatch.setattr(dev, "_CPUINFO", path)
    monkeypatch.setattr(dev.platform, "system", lambda: system)
    monkeypatch.setattr(dev, "_torch_cpu_bf16", lambda: kernels)
    return dev.cpu_bf16(refresh=True)


@pytest.fixture(autouse=True)
def _fresh_check():
    yield
    dev.cpu_bf16(refresh=True)  # the next test sees this machine again


def test_cpu_flags_read_x86_and_arm(tmp_path):
    for text, expected in ((X86, "amx_bf16"), (ARM, "bf16"), (AVX2, "avx2")):
        path = tmp_path / "cpuinfo"
        path.write_text(text)
        assert expected in dev.cpu_flags(path)
    assert dev.cpu_flags(tmp_path / "missing") == frozenset()


@pytest.mark.parametrize(
    ("cpuinfo", "kernels", "system", "native"),
    [
        (X86, True, "Linux", True),  # AVX512-BF16 / AMX, and torch's kernels use them
        (ARM, True, "Linux", True),  # Armv8.6 BF16
        (X86, False, "Linux", False),  # the flag, but no bfloat16 kernels in this torch
        (AVX2, True, "Linux", False),  # oneDNN says yes on AVX-512 without BF16: not enough
        (None, True, "Darwin", False),  # macOS: float32
    ],
)
def test_native_bf16_needs_the_flag_and_the_kernels(
    monkeypatch, tmp_path, cpuinfo, kernels, system, native
):
    check = _cpu(monkeypatch, tmp_path, cpuinfo, kernels, system)
    assert check.native is native
    choice = prec.scoring_precision("auto", "cpu")
    assert choice.weights == (torch.bfloat16 if native else torch.float32)
    assert choice.requested == "auto" and choice.reason == check.describe()
    assert ("CPU with native bfloat16" in choice.describe()) is native


def test_scoring_precision_names_and_errors(monkeypatch, tmp_path):
    _cpu(monkeypatch, tmp_path, X86, True)
    assert prec.scoring_precision(None, "cpu").weights == torch.bfloat16  # None is auto
    assert prec.scoring_precision("float32", "cpu").weights == torch.float32
    assert prec.scoring_precision("BFloat16", "cpu").describe() == "bfloat16 (as asked)"
    assert prec.scoring_precision(torch.float16).weights == torch.float16
    assert prec.scoring_precision("auto", "meta").weights == torch.float32  # other devices
    assert prec.scoring_precision("auto", "cpu").autocast is None  # scoring never mixes
    with pytest.raises(ConfigError, match="unknown dtype 'int8'"):
        prec.scoring_precision("int8")


def test_auto_on_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    assert prec.scoring_precision("auto", "cuda").weights == torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    assert prec.scoring_precision("auto", "cuda").weights == torch.float16


def test_cpu_autocast_follows_auto(monkeypatch, tmp_path):
    _cpu(monkeypatch, tmp_path, X86, True)
    assert prec.float32_training_precision("auto", "cpu").cpu_autocast
    assert not prec.float32_training_precision("float32", "cpu").bf16
    _cpu(monkeypatch, tmp_path, AVX2, True)
    assert not prec.float32_training_precision("auto", "cpu").bf16
    mixed = prec.float32_training_precision("bfloat16", "cpu")
    assert mixed.cpu_autocast and mixed.weights == torch.float32


def test_load_model_picks_bf16_on_a_native_cpu(monkeypatch, tmp_path, tok):
    make_model(len(tok)).save_pretrained(tmp_path / "m")
    tok.save_pretrained(tmp_path / "m")
    _cpu(monkeypatch, tmp_path, X86, True)
    loaded = load_model(tmp_path / "m", device="cpu")
    assert loaded.model.dtype == torch.bfloat16 and loaded.precision.requested == "auto"
    assert loaded.dtype == "bfloat16" and loaded.why.startswith("bfloat16 (auto: CPU with")
    assert not hasattr(loaded.model, "iterit_dtype_choice")  # the record, not the model, says
    _cpu(monkeypatch, tmp_path, AVX2, True)
    loaded = load_model(tmp_path / "m", device="cpu")
    assert loaded.model.dtype == torch.float32 and "without native" in loaded.precision.reason
    loaded = load_model(tmp_path / "m", device="cpu", dtype="bfloat16")
    assert loaded.model.dtype == torch.bfloat16 and loaded.why == "bfloat16 (as asked)"


def test_bf16_scores_agree_with_float32(model, tok, samples, ref):
    """bfloat16 weights (log-softmax still in float32) against the float32 reference."""
    import copy

    bf16 = copy.deepcopy(model).to(torch.bfloat16)
    out = IFDScorer(bf16, tok, max_length=MAX_LEN, progress=False).score(samples)
    finite = np.isfinite(ref.ifd)
    np.testing.assert_array_equal(np.isfinite(out.ifd), finite)
    np.testing.assert_array_equal(out.n_tokens, ref.n_tokens)
    diff = np.abs(out.ifd[finite] - ref.ifd[finite])
    assert diff.max() <= BF16_IFD_ATOL, diff.max()
    np.testing.assert_allclose(out.nll_cond[finite], ref.nll_cond[finite], atol=BF16_NLL_ATOL)
    np.testing.assert_allclose(out.nll_prior[finite], ref.nll_prior[finite], atol=BF16_NLL_ATOL)


def test_cache_key_and_scores_file_record_the_dtype(model, tok, samples, tmp_path):
    import copy

    from iterit.artifacts.score_files import SCORE_COLUMNS, ifd_columns

    fp32 = IFDScorer(model, tok, max_length=MAX_LEN, progress=False)
    bf16 = IFDScorer(copy.deepcopy(model).to(torch.bfloat16), tok, max_length=MAX_LEN)
    key32, key16 = fp32._open_cache(tmp_path).key, bf16._open_cache(tmp_path).key
    assert "dtype" not in key32  # float32 keeps the key (and the caches) it always had
    assert key16["dtype"] == "bfloat16"
    scores = {
        "ifd": np.ones(2),
        "nll_cond": np.ones(2),
        "nll_prior": np.ones(2),
        "n_tokens": [1, 1],
    }
    assert tuple(ifd_columns(scores, samples[:2])) == SCORE_COLUMNS
    cols = ifd_columns(scores, samples[:2], dtype="bfloat16")
    assert tuple(cols) == (*SCORE_COLUMNS, "dtype") and cols["dtype"] == ["bfloat16"] * 2


# ------------------------------------------------------------------- the real SmolLM2 model

#: The iterit.select selections of 8 of these 40 records (seed 5, max_length 256) made from
#: bfloat16 and from float32 IFD share at least this many of their samples.  Not yet measured:
#: the machine this was written on has no native bfloat16 (see the skip below); set it to the
#: share measured on one that has (benches/bench_dtype.py prints the 200-record figure).
SELECTION_OVERLAP_MEASURED = 0.75


def _native_bf16_only() -> None:
    if not dev.cpu_bf16().native:
        pytest.skip(
            "this CPU has no native bfloat16: auto never picks it here, and emulated bfloat16 "
            "is several times slower than float32"
        )


@pytest.mark.slow
@pytest.mark.shared_data
def test_real_bf16_selection_overlaps_float32(smollm2_path, alpaca_union_path):
    _native_bf16_only()
    import copy
    import json

    import iterit

    loaded = load_model(smollm2_path, device="cpu", dtype="float32")

    model, tok = loaded.model, loaded.tokenizer
    with open(alpaca_union_path, encoding="utf-8") as fh:
        records = [json.loads(line) for line in fh]
    rng = np.random.default_rng(5)
    picked = [records[i] for i in np.sort(rng.choice(len(records), 40, replace=False))]
    fp32 = IFDScorer(model, tok, max_length=256, progress=False).score(picked).ifd
    bf16_model = copy.deepcopy(model).to(torch.bfloat16)
    bf16 = IFDScorer(bf16_model, tok, max_length=256, progress=False).score(picked).ifd
    np.testing.assert_array_equal(np.isfinite(fp32), np.isfinite(bf16))
    texts = [r["output"] for r in picked]
    a = set(iterit.select(texts, fp32, 8).indices.tolist())
    b = set(iterit.select(texts, bf16, 8).indices.tolist())
    assert len(a & b) / len(a) >= SELECTION_OVERLAP_MEASURED
