"""Shared fixtures (builders live in :mod:`tests.helpers`), and the ``--cpu-bf16`` option."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers.shared import shared_file, smollm2_gguf_path

#: What ``--cpu-bf16`` makes :func:`iterit.scoring.device.cpu_bf16` see: the CPU's own flags
#: (``detect``), or a CPU with (``native``) or without (``absent``) native bfloat16.  ``native``
#: runs the decisions a CPU with AVX512-BF16 / AMX / Arm BF16 takes on any machine (emulated
#: bfloat16 is slow but gives the same results), so a machine with bfloat16 is never the first
#: to run them (docs/ifd.md, "Precision (dtype)").
CPU_BF16_CHOICES = ("detect", "native", "absent")
_FAKE_CPUINFO = {
    "native": "processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_bf16\n",
    "absent": "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--cpu-bf16",
        choices=CPU_BF16_CHOICES,
        default="detect",
        help="fake the CPU's native-bfloat16 detection for the whole session (default: detect)",
    )


def pytest_configure(config: pytest.Config) -> None:
    mode = config.getoption("--cpu-bf16")
    if mode == "detect":
        return
    try:
        from iterit.scoring import device
    except ImportError:  # no torch: nothing decides a dtype
        return
    import tempfile
    from types import SimpleNamespace

    folder = Path(tempfile.mkdtemp(prefix="iterit-cpuinfo-"))
    (folder / "cpuinfo").write_text(_FAKE_CPUINFO[mode])
    # The file and the kernel check, not cpu_bf16 itself: tests that fake a CPU of their own
    # and refresh the check afterwards come back to this session's CPU.
    device._CPUINFO = folder / "cpuinfo"
    device._torch_cpu_bf16 = lambda: mode == "native"
    device.platform = SimpleNamespace(system=lambda: "Linux")  # this module's view only
    device.cpu_bf16(refresh=True)


def pytest_report_header(config: pytest.Config) -> str:
    return f"cpu-bf16: {config.getoption('--cpu-bf16')}"


@pytest.fixture(scope="session")
def alpaca_union_path() -> Path:
    return shared_file("general/alpaca_union_dedup.jsonl")


@pytest.fixture(scope="session")
def smollm2_path() -> Path:
    return smollm2_gguf_path()


@pytest.fixture(scope="session")
def data():
    """60 real Alpaca samples with a word-level tokenizer trained on them (training tests)."""
    from tests.helpers.tiny_llama import tiny_tokenizer
    from tests.helpers.training import real_samples

    samples = real_samples(60)
    return samples, tiny_tokenizer(samples)
