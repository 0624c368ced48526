"""The kernel switch: CPU keeps the pure-torch path, ``gpu`` without CUDA fails clearly, GPU wrappers import
safely everywhere, and their input translation (sequence ids, varlen boundaries) follows the packed layout."""

import functools
import importlib.util
import logging
import subprocess
import sys
import types
import warnings

import pytest
import torch
from conftest import small_model_config

from hnet_genomics import build_model
from hnet_genomics.errors import ConfigError
from hnet_genomics.kernels import attention as attn_k
from hnet_genomics.kernels import dispatch, gpu_mamba
from hnet_genomics.model.geometry import Geometry

GPU_PACKAGES = ("mamba_ssm", "causal_conv1d", "flash_attn")


@pytest.fixture
def backend(monkeypatch):
    """Set the backend for one test through the environment, and always hand control back."""
    monkeypatch.delenv(dispatch.BACKEND_ENV, raising=False)
    yield lambda name: monkeypatch.setenv(dispatch.BACKEND_ENV, name)
    dispatch.set_backend(None)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only decision")
@pytest.mark.parametrize("name", ["auto", "torch"])
def test_cpu_tensors_take_the_torch_path(backend, name):
    backend(name)
    x = torch.zeros(2, 3)
    assert all(dispatch.gpu_kernel(op, x) is None for op in dispatch.PROVIDERS)
    assert set(dispatch.describe("cpu").values()) == {"torch"}


@pytest.mark.parametrize("how", ["env", "call"])
def test_forcing_gpu_on_cpu_tensors_is_a_one_line_config_error(backend, how):
    if how == "env":
        backend("GPU")
    else:
        dispatch.set_backend("gpu")
    with pytest.raises(ConfigError, match=r"^HNET_KERNELS=gpu: ssd got a cpu tensor .*use auto or torch") as e:
        dispatch.gpu_kernel("ssd", torch.zeros(1))
    assert "\n" not in str(e.value)


def test_unknown_backend_names_are_rejected(backend):
    with pytest.raises(ConfigError, match="kernels: kernel backend must be one of auto, torch, gpu, got 'cuda'"):
        dispatch.set_backend("cuda")
    backend("fast")
    with pytest.raises(ConfigError, match="HNET_KERNELS: .* got 'fast'"):
        dispatch.requested_backend()


def test_forced_torch_overrides_the_environment(backend):
    backend("gpu")
    dispatch.set_backend("torch")
    assert dispatch.gpu_kernel("ema", torch.zeros(1)) is None


def test_model_on_real_dna_is_bitwise_identical_under_auto_and_torch(backend, dna_batch):
    """On CPU the switch must not change a single bit of what the model computes."""
    torch.manual_seed(0)
    model = build_model(small_model_config("dna/hnet_1stage_tiny")).eval()
    ids = dna_batch(2, 96)
    with torch.no_grad():
        backend("auto")
        auto = model(ids).logits
        backend("torch")
        plain = model(ids).logits
    assert torch.equal(auto, plain)


def test_gpu_wrappers_import_without_loading_gpu_packages():
    """A fresh interpreter, so packages other tests loaded on a GPU machine do not count."""
    code = (
        "import sys; import hnet_genomics.kernels.gpu_mamba, hnet_genomics.kernels.gpu_conv, "
        "hnet_genomics.kernels.gpu_attention, hnet_genomics.model.lm; "
        f"print([n for n in {GPU_PACKAGES!r} if n in sys.modules])"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("op", ["ssd", "conv", "attention", "mamba2_fused"])
def test_gpu_packages_that_do_not_load_are_reported_not_raised(op):
    """Absent, or present without its compiled extension (a CPU build): either way one reason, no exception; an
    op whose first provider is absent says so, whether a fallback (our Triton conv) took over or nothing did."""
    kernel, why = dispatch.load(op)
    assert (kernel is None) == bool(why)
    package = dispatch.PROVIDERS[op].package.replace("-", "_")
    if importlib.util.find_spec(package) is None:
        described = why if kernel is None else dispatch.describe("cuda")[op]
        assert package in described


def _providers_that_load(packages, answer=lambda package, *args: f"{package} ran"):
    """A stand-in for importing providers: those of ``packages`` load (their kernel answers ``answer``)."""

    def load_one(provider):
        if provider.package in packages:
            return functools.partial(answer, provider.package), ""
        return None, f"ImportError: no {provider.package}"

    return load_one


@pytest.mark.parametrize(
    "loadable,conv,fused",
    [
        (("causal-conv1d", "triton"), "causal-conv1d", "causal-conv1d"),
        (("triton",), "triton (causal-conv1d unavailable: ImportError: no causal-conv1d)", "mamba-ssm + Triton conv"),
        ((), "torch (causal-conv1d unavailable: ImportError: no causal-conv1d; triton unavailable: ", "unfused ("),
    ],
    ids=["causal-conv1d", "triton", "torch"],
)
def test_the_conv_provider_chain_is_reported_as_it_runs(loadable, conv, fused, backend, monkeypatch):
    """causal-conv1d when it loads, else our Triton conv, else the torch taps: describe names the one that runs
    and why the ones before it do not, and only the torch taps earn the fallback warning."""
    backend("auto")
    monkeypatch.setattr(dispatch, "_load_one", _providers_that_load(loadable))
    dispatch.load.cache_clear()
    try:
        table = dispatch.describe("cuda")
        assert table["conv"].startswith(conv) and table["mamba2_fused"].startswith(fused)
        kernel = dispatch.gpu_kernel("conv", FAKE_CUDA_TENSOR)
        assert (kernel is None) == (not loadable)
        if loadable:
            assert kernel() == f"{loadable[0]} ran"
        with warnings.catch_warnings(record=True) as warned:
            warnings.simplefilter("always")
            dispatch.report("cuda")
        conv_warned = any("conv -> torch" in str(w.message) for w in warned)
        assert conv_warned == (not loadable)
    finally:
        dispatch.load.cache_clear()


def test_an_input_the_first_conv_provider_refuses_goes_to_the_next(backend, monkeypatch):
    """causal-conv1d returns None for channel counts that are not multiples of 8: our Triton conv takes those."""
    backend("auto")
    refuse = lambda package, *args: None if package == "causal-conv1d" else f"{package} ran"  # noqa: E731
    monkeypatch.setattr(dispatch, "_load_one", _providers_that_load(("causal-conv1d", "triton"), refuse))
    dispatch.load.cache_clear()
    try:
        assert dispatch.gpu_kernel("conv", FAKE_CUDA_TENSOR)() == "triton ran"
    finally:
        dispatch.load.cache_clear()


def test_gpu_mode_names_every_conv_provider_when_none_loads(backend, monkeypatch):
    backend("gpu")
    monkeypatch.setattr(dispatch, "_load_one", _providers_that_load(()))
    dispatch.load.cache_clear()
    try:
        with pytest.raises(ConfigError, match=r"conv needs causal-conv1d or triton, which does not load \(ImportError"):
            dispatch.gpu_kernel("conv", FAKE_CUDA_TENSOR)
    finally:
        dispatch.load.cache_clear()


FAKE_CUDA_TENSOR = types.SimpleNamespace(is_cuda=True, device=torch.device("cuda"))  # what gpu_kernel looks at


def test_gpu_mode_refuses_a_missing_flash_attn_and_auto_falls_back(backend, monkeypatch):
    monkeypatch.setattr(dispatch, "load", lambda op: (None, "ImportError: No module named 'flash_attn_2_cuda'"))
    backend("gpu")
    with pytest.raises(ConfigError, match=r"attention needs flash-attn, which does not load \(ImportError"):
        dispatch.gpu_kernel("attention", FAKE_CUDA_TENSOR)
    assert dispatch.gpu_kernel("mamba2_fused", FAKE_CUDA_TENSOR) is None  # an optional fusion: its parts decide
    backend("auto")
    assert dispatch.gpu_kernel("attention", FAKE_CUDA_TENSOR) is None


def test_every_cuda_fallback_is_logged_and_warned_with_its_reason(backend, monkeypatch, caplog):
    backend("auto")
    available = {"ema", "ema_dechunk", "routing", "ssd", "rms_norm", "gated_rms_norm"}
    monkeypatch.setattr(
        dispatch, "load", lambda op: (object(), "") if op in available else (None, f"ImportError: {op} is missing")
    )
    with caplog.at_level(logging.INFO, logger="hnet_genomics.kernels"), pytest.warns(UserWarning) as warned:
        table = dispatch.report("cuda", "pretrain")
    assert table["ssd"] == "mamba-ssm" and table["conv"].startswith("torch (causal-conv1d unavailable")
    assert table["mamba2_fused"].startswith("unfused (")
    message = str(warned[0].message)
    assert message.startswith("pretrain: CUDA ops without their GPU kernel")
    assert all(op in message for op in ("conv", "attention"))
    assert "ssd ->" not in message and "conv is missing" in message
    assert "kernels on cuda" in caplog.text and "ssd=mamba-ssm" in caplog.text


def test_cpu_runs_report_the_torch_path_without_warnings(backend, recwarn):
    backend("auto")
    assert set(dispatch.report("cpu").values()) == {"torch"}
    assert not [w for w in recwarn if "CUDA ops" in str(w.message)]


def test_triton_modules_of_a_package_whose_init_fails_still_import(tmp_path, monkeypatch):
    """mamba-ssm without its CUDA extension: ``__init__`` raises, the pure-Triton submodules are fine."""
    pkg = tmp_path / "brokenpkg"
    (pkg / "ops").mkdir(parents=True)
    (pkg / "__init__.py").write_text("import a_compiled_extension_that_is_missing\n")
    (pkg / "ops" / "__init__.py").write_text("")
    (pkg / "ops" / "scan.py").write_text("from brokenpkg.ops import helper\nVALUE = helper.VALUE + 1\n")
    (pkg / "ops" / "helper.py").write_text("VALUE = 41\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [n for n in sys.modules if n.startswith("brokenpkg")]:
        monkeypatch.delitem(sys.modules, name)
    with pytest.raises(ImportError):
        importlib.import_module("brokenpkg.ops.scan")
    module = gpu_mamba.import_skipping_init("brokenpkg", "ops.scan")
    assert module.VALUE == 42
    for name in [n for n in sys.modules if n.startswith("brokenpkg")]:
        monkeypatch.delitem(sys.modules, name)


def test_sequence_ids_change_exactly_at_packed_starts():
    geom = Geometry.from_cu_seqlens(torch.tensor([0, 5, 6, 13]), 13)
    seq_idx = gpu_mamba.sequence_index(geom.starts)
    assert seq_idx.dtype == torch.int32 and int(seq_idx.min()) >= 0
    changes = torch.ones_like(geom.starts)
    changes[:, 1:] = seq_idx[:, 1:] != seq_idx[:, :-1]
    assert torch.equal(changes, geom.starts)
    assert torch.equal(gpu_mamba.sequence_index(geom.positions == 0), seq_idx)  # what the conv derives
    assert gpu_mamba.sequence_index(geom.starts) is seq_idx  # every layer of the stage: computed once


def test_varlen_boundaries_reproduce_cu_seqlens():
    cu = torch.tensor([0, 7, 8, 20, 31], dtype=torch.int32)
    geom = Geometry.from_cu_seqlens(cu, 31)
    got, longest = attn_k.run_boundaries(geom.seq_idx)
    assert torch.equal(got, cu) and longest == 12
    padded_rows = torch.zeros(3, 10, dtype=torch.long)  # one sequence per row: rows are runs too
    got, longest = attn_k.run_boundaries(padded_rows)
    assert got.tolist() == [0, 10, 20, 30] and longest == 10
