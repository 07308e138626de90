"""iterit.scoring.device: the CPU flags read from /proc/cpuinfo, the native-bfloat16 check (the
flag and torch's kernels must agree; cached per process), its one-line description and a
model's dtype by name.  The CPU is faked through the module's file and kernel check."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")

from iterit.scoring import device as dev  # noqa: E402

TWO_CPUS = (
    "processor\t: 0\nvendor_id\t: GenuineIntel\nflags\t\t: fpu sse2 avx2 avx512f\n\n"
    "processor\t: 1\nflags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_bf16\n"
)


@pytest.fixture(autouse=True)
def _fresh_check():
    yield
    dev.cpu_bf16(refresh=True)  # the next test sees this session's CPU again


def fake_cpu(monkeypatch, tmp_path, cpuinfo, *, kernels=True, system="Linux"):
    path = tmp_path / "cpuinfo"
    if cpuinfo is not None:
        path.write_text(cpuinfo)
    monkeypatch.setattr(dev, "_CPUINFO", path)
    monkeypatch.setattr(dev, "_torch_cpu_bf16", lambda: kernels)
    monkeypatch.setattr(dev, "platform", SimpleNamespace(system=lambda: system))


# ----------------------------------------------------------------------------------- cpu_flags


def test_the_first_cpu_s_flags_are_read(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text(TWO_CPUS)
    assert dev.cpu_flags(path) == frozenset({"fpu", "sse2", "avx2", "avx512f"})


@pytest.mark.parametrize(
    ("text", "flags"),
    [
        ("Features\t: fp asimd bf16\n", {"fp", "asimd", "bf16"}),  # Arm
        ("FLAGS : a b\n", {"a", "b"}),  # any case, any spacing
        ("model name\t: x: y: flags\nflags\t: c\n", {"c"}),  # a colon in another value
        ("flags\t:\n", set()),
        ("processor\t: 0\nno colon here\n", set()),
        ("", set()),
    ],
)
def test_flags_lines_x86_and_arm(tmp_path, text, flags):
    path = tmp_path / "cpuinfo"
    path.write_text(text)
    assert dev.cpu_flags(path) == frozenset(flags)


def test_unreadable_cpuinfo_means_no_flags(tmp_path):
    assert dev.cpu_flags(tmp_path / "missing") == frozenset()
    assert dev.cpu_flags(tmp_path) == frozenset()  # a folder
    bad = tmp_path / "latin1"
    bad.write_bytes(b"vendor\t: \xe9\nflags\t: avx2 bf16\n")  # not UTF-8: still read
    assert dev.cpu_flags(bad) == frozenset({"avx2", "bf16"})


# ------------------------------------------------------------------------------------ cpu_bf16


def test_flags_are_reported_in_their_table_order(monkeypatch, tmp_path):
    fake_cpu(monkeypatch, tmp_path, "flags\t: bf16 amx_bf16 avx2 avx512_bf16\n")
    check = dev.cpu_bf16(refresh=True)
    assert check.flags == dev.CPU_BF16_FLAGS == ("avx512_bf16", "amx_bf16", "bf16")
    assert check.native and check.torch_kernels
    assert check.describe() == "CPU with native bfloat16 (avx512_bf16, amx_bf16, bf16)"


def test_the_flag_without_the_kernels_is_not_native(monkeypatch, tmp_path):
    fake_cpu(monkeypatch, tmp_path, "flags\t: avx2 amx_bf16\n", kernels=False)
    check = dev.cpu_bf16(refresh=True)
    assert not check.native and check.flags == ("amx_bf16",) and not check.torch_kernels
    assert check.describe() == "CPU flags amx_bf16 but no bfloat16 kernels in this torch"


def test_the_kernels_without_the_flag_are_not_native(monkeypatch, tmp_path):
    fake_cpu(monkeypatch, tmp_path, "flags\t: avx2 avx512f\n", kernels=True)
    check = dev.cpu_bf16(refresh=True)
    assert not check.native and check.flags == () and check.torch_kernels
    assert check.describe() == (
        f"CPU without native bfloat16 ({check.capability}, no bfloat16 flag)"
    )
    assert check.capability == str(torch.backends.cpu.get_cpu_capability())


def test_other_systems_never_read_the_flags(monkeypatch, tmp_path):
    fake_cpu(monkeypatch, tmp_path, "flags\t: avx512_bf16\n", system="Darwin")
    check = dev.cpu_bf16(refresh=True)
    assert not check.native and check.flags == ()


def test_the_check_runs_once_per_process_unless_refreshed(monkeypatch, tmp_path):
    fake_cpu(monkeypatch, tmp_path, "flags\t: avx512_bf16\n")
    first = dev.cpu_bf16(refresh=True)
    assert first.native
    (tmp_path / "cpuinfo").write_text("flags\t: avx2\n")
    assert dev.cpu_bf16() is first  # cached
    assert not dev.cpu_bf16(refresh=True).native
    assert dev.cpu_bf16() is dev.cpu_bf16()


def test_the_result_is_frozen():
    check = dev.CpuBf16(True, ("bf16",), True, "DEFAULT")
    with pytest.raises(AttributeError):
        check.native = False  # type: ignore[misc]


@pytest.fixture
def own_check(monkeypatch):
    """A fresh copy of the module: ``--cpu-bf16`` replaces the kernel check of the imported one
    for the whole session, and these tests are about the check itself."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("iterit_device_copy", dev.__file__)
    copy = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, copy)  # its dataclass looks itself up there
    spec.loader.exec_module(copy)
    return copy


@pytest.mark.parametrize(
    ("available", "supported", "expected"),
    [(True, lambda: True, True), (True, lambda: False, False), (False, lambda: True, False)],
)
def test_torch_kernel_check(monkeypatch, own_check, available, supported, expected):
    fake = SimpleNamespace(
        backends=SimpleNamespace(mkldnn=SimpleNamespace(is_available=lambda: available)),
        ops=SimpleNamespace(mkldnn=SimpleNamespace(_is_mkldnn_bf16_supported=supported)),
    )
    monkeypatch.setattr(own_check, "torch", fake)
    assert own_check._torch_cpu_bf16() is expected


def test_a_torch_without_the_kernel_check_says_no(monkeypatch, own_check):
    def broken():
        raise RuntimeError("no oneDNN")

    mkldnn = SimpleNamespace(is_available=lambda: True)
    no_op = SimpleNamespace(backends=SimpleNamespace(mkldnn=mkldnn), ops=SimpleNamespace())
    monkeypatch.setattr(own_check, "torch", no_op)
    assert own_check._torch_cpu_bf16() is False  # AttributeError: no torch.ops.mkldnn
    raising = SimpleNamespace(
        backends=SimpleNamespace(mkldnn=mkldnn),
        ops=SimpleNamespace(mkldnn=SimpleNamespace(_is_mkldnn_bf16_supported=broken)),
    )
    monkeypatch.setattr(own_check, "torch", raising)
    assert own_check._torch_cpu_bf16() is False


# ---------------------------------------------------------------------- dtype_name, model dtype


@pytest.mark.parametrize(
    ("dtype", "name"),
    [
        (torch.bfloat16, "bfloat16"),
        (torch.float16, "float16"),
        (torch.float32, "float32"),
        (torch.int64, "int64"),
    ],
)
def test_dtype_name(dtype, name):
    assert dev.dtype_name(dtype) == name


class LM(torch.nn.Module):
    """A causal LM's shape as far as the dtype goes: a head before the embeddings."""

    def __init__(self) -> None:
        super().__init__()
        self.head = torch.nn.Linear(2, 4)
        self.embed = torch.nn.Embedding(4, 2)

    def get_input_embeddings(self):
        return self.embed


def test_a_model_computes_in_its_input_embeddings_dtype():
    model = LM()
    assert dev.model_dtype_name(model) == "float32"
    model.embed.to(torch.bfloat16)  # the embeddings decide, not the first parameter
    assert dev.model_dtype_name(model) == "bfloat16"
    assert dev.model_dtype_name(model.to(torch.float16)) == "float16"


def test_without_embeddings_the_first_floating_parameter_decides():
    model = torch.nn.Sequential(torch.nn.Embedding(4, 2), torch.nn.Linear(2, 2))
    model[0].weight.requires_grad_(False)
    model[0].weight.data = model[0].weight.data.to(torch.int64)  # not floating: skipped
    model[1].to(torch.bfloat16)
    assert dev.model_dtype_name(model) == "bfloat16"
    assert dev.model_dtype_name(torch.nn.ReLU()) == "float32"  # no parameters at all


def test_embeddings_that_are_not_a_tensor_fall_back_to_the_parameters():
    class Odd(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = torch.nn.Linear(2, 2).to(torch.float16)

        def get_input_embeddings(self):
            return None

    assert dev.model_dtype_name(Odd()) == "float16"
