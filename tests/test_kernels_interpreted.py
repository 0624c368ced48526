"""mamba-ssm's Triton kernels through our GPU wrappers, on the CPU, under the Triton interpreter.

A wrong argument order, dtype or layout in ``kernels/gpu_mamba.py`` or ``gpu_conv.py`` fails here instead of in
a user's first GPU hour. mamba-ssm's Python sources (a wheel built without its CUDA extension, see .ci/run)
run as they are; the test process picks the autotuning config with the largest tiles instead of benchmarking,
makes ``torch.cuda.device`` a no-op and answers the SM count the backward kernels size their grids by.
causal-conv1d's compiled module is replaced by a CPU stand-in that enforces its input contract
(``causal_conv1d_cpu.py``). The interpreter's bf16 ``tl.dot`` is wrong, so everything here is
fp32 (plus bf16 *inputs* to the conv, which has no dot); bf16 arithmetic is checked by the GPU suite.

On a machine with a GPU this module is skipped: test_kernels_gpu.py runs the real kernels there.
"""

import importlib.util
import os

import pytest
import torch
from conftest import missing

if torch.cuda.is_available():
    pytest.skip("the GPU suite runs these kernels natively", allow_module_level=True)
os.environ["TRITON_INTERPRET"] = "1"  # read when mamba-ssm's kernel modules are imported below
for package, dist in (("triton", "triton"), ("mamba_ssm", "mamba-ssm")):
    if importlib.util.find_spec(package) is None:
        missing(dist, "is not installed (.ci/run builds mamba-ssm without its CUDA extension)")

import causal_conv1d_cpu  # noqa: E402

from hnet_genomics.config import SSMConfig  # noqa: E402
from hnet_genomics.kernels import dispatch, gpu_mamba  # noqa: E402
from hnet_genomics.kernels import norm as norm_k  # noqa: E402
from hnet_genomics.kernels import ssd as ssd_k  # noqa: E402
from hnet_genomics.model.geometry import Geometry  # noqa: E402
from hnet_genomics.model.mamba2 import Mamba2  # noqa: E402

TOL = dict(rtol=1e-4, atol=1e-5)
CU = torch.tensor([0, 37, 38, 90, 131])  # packed lengths 37, 1, 52, 41


@pytest.fixture(scope="module", autouse=True)
def interpreted():
    """Largest-tile autotuning config, no CUDA device context, an H100's SM count: what the interpreter needs."""
    from hnet_genomics.kernels.triton.interpreter import interpreted_as_gpu

    with interpreted_as_gpu():
        yield gpu_mamba._kernels()


@pytest.fixture
def conv_extension(monkeypatch):
    """causal-conv1d's Python interface over the CPU stand-in, wired into mamba-ssm's fused mixer as well."""
    if importlib.util.find_spec("causal_conv1d") is None:
        missing("causal-conv1d", "is not installed (.ci/run builds it without its CUDA extension)")
    causal_conv1d_cpu.install()
    from causal_conv1d import cpp_functions

    from hnet_genomics.kernels import gpu_conv

    combined = gpu_mamba._kernels().combined
    monkeypatch.setattr(combined, "causal_conv1d_fwd_function", cpp_functions.causal_conv1d_fwd_function)
    monkeypatch.setattr(combined, "causal_conv1d_bwd_function", cpp_functions.causal_conv1d_bwd_function)
    gpu_conv._conv_fn.cache_clear()
    dispatch.load.cache_clear()
    yield
    gpu_conv._conv_fn.cache_clear()
    dispatch.load.cache_clear()


@pytest.fixture
def triton_conv(monkeypatch):
    """causal-conv1d hidden: dispatch gives the conv, and the fused mixer its conv, to our Triton kernel."""
    from hnet_genomics.kernels import gpu_conv

    def absent():
        raise ImportError("causal-conv1d hidden by the test")

    monkeypatch.setattr(gpu_conv, "require", absent)
    combined = gpu_mamba._kernels().combined
    for name in ("causal_conv1d_fwd_function", "causal_conv1d_bwd_function"):
        monkeypatch.setattr(combined, name, None)  # restored after the test, whatever the test installs
    dispatch.load.cache_clear()
    yield
    dispatch.load.cache_clear()


def route_cpu_tensors_to(monkeypatch, ops):
    """Let ``ops`` take their GPU provider for CPU tensors (the interpreter runs the Triton code)."""

    def gpu_kernel(op, like):
        if op not in ops:
            return None
        kernel, why = dispatch.load(op)
        assert kernel is not None, why
        return kernel

    monkeypatch.setattr(dispatch, "gpu_kernel", gpu_kernel)


def leaves(*tensors):
    return [t.detach().clone().requires_grad_() for t in tensors]


def grads(out, inputs, seed=0, representable_in=None):
    """Gradients of a random projection of ``out``; its weights rounded to ``representable_in`` where a bf16
    output would round the incoming gradient, so both sides see the same one."""
    w = torch.randn(out.shape, generator=torch.Generator().manual_seed(seed))
    if representable_in is not None:
        w = w.to(representable_in)
    return torch.autograd.grad((out * w.to(out.dtype)).sum(), inputs)


@pytest.mark.parametrize("chunk_size,ngroups", [(16, 1), (24, 2)])
def test_mamba_chunk_scan_through_our_wrapper_equals_the_step_reference(chunk_size, ngroups):
    """Packed sequences (seq_idx), softplus(dt + dt_bias) and the D skip inside the kernel, a row length that
    is not a multiple of the chunk; outputs and every gradient against the fp64 per-step recurrence."""
    g = torch.Generator().manual_seed(chunk_size + ngroups)
    b, l, h, p, n = 1, int(CU[-1]), 4, 8, 16
    x = torch.randn(b, l, h, p, generator=g)
    dt_raw = torch.randn(b, l, h, generator=g) - 2
    dt_bias = torch.rand(h, generator=g) * 0.5
    A = -torch.rand(h, generator=g) - 0.5
    Bm, Cm = torch.randn(b, l, ngroups, n, generator=g), torch.randn(b, l, ngroups, n, generator=g)
    D = torch.randn(h, generator=g)
    reset = Geometry.from_cu_seqlens(CU, l).starts
    ins = leaves(x, dt_raw, A, Bm, Cm, D, dt_bias)
    out = gpu_mamba.ssd_scan(*ins[:5], reset=reset, chunk_size=chunk_size, D=ins[5], dt_bias=ins[6], dt_softplus=True)
    ref_in = leaves(*(t.double() for t in (x, dt_raw, A, Bm, Cm, D, dt_bias)))
    dt = torch.nn.functional.softplus(ref_in[1] + ref_in[6])
    ref = ssd_k.ssd_scan_ref(ref_in[0], dt, ref_in[2], ref_in[3], ref_in[4], reset=reset).double()
    ref = ref + ref_in[0] * ref_in[5][:, None]
    torch.testing.assert_close(out.double(), ref, **TOL)
    for got, want in zip(grads(out.double(), ins), grads(ref, ref_in)):
        torch.testing.assert_close(got.double(), want, rtol=1e-3, atol=1e-4)


def test_mamba_chunk_scan_carries_an_initial_state_and_returns_the_final_one():
    g = torch.Generator().manual_seed(3)
    b, l, h, p, n = 2, 50, 2, 8, 16
    x, dt = torch.randn(b, l, h, p, generator=g), torch.rand(b, l, h, generator=g) * 0.2 + 0.01
    A, Bm, Cm = (
        -torch.rand(h, generator=g) - 0.5,
        torch.randn(b, l, 1, n, generator=g),
        torch.randn(b, l, 1, n, generator=g),
    )
    init = torch.randn(b, h, p, n, generator=g)
    y, final = gpu_mamba.ssd_scan(x, dt, A, Bm, Cm, chunk_size=16, initial_state=init, return_final_state=True)
    y_ref, final_ref = ssd_k.ssd_scan_ref(x, dt, A, Bm, Cm, initial_state=init, return_final_state=True)
    torch.testing.assert_close(y, y_ref, **TOL)
    torch.testing.assert_close(final, final_ref, **TOL)


def test_mamba_fused_norms_through_our_wrappers_equal_the_references():
    g = torch.Generator().manual_seed(4)
    x, z = torch.randn(2, 30, 64, generator=g), torch.randn(2, 30, 64, generator=g)
    w = torch.rand(64, generator=g) + 0.5
    ins, refs = leaves(x, w), leaves(x, w)
    out, ref = gpu_mamba.rms_norm(*ins, 1e-5), norm_k.rms_norm_ref(*refs, 1e-5)
    torch.testing.assert_close(out, ref, **TOL)
    for got, want in zip(grads(out, ins), grads(ref, refs)):
        torch.testing.assert_close(got, want, **TOL)
    for group in (64, 16):
        ins, refs = leaves(x, z, w), leaves(x, z, w)
        out, ref = gpu_mamba.gated_rms_norm(*ins, 1e-5, group), norm_k.gated_rms_norm_ref(*refs, 1e-5, group)
        torch.testing.assert_close(out, ref, **TOL)
        for got, want in zip(grads(out, ins), grads(ref, refs)):
            torch.testing.assert_close(got, want, **TOL)


@pytest.mark.parametrize("first", [False, True], ids=["mid-stack", "first block"])
@pytest.mark.parametrize("keep", [True, False], ids=["block", "last norm"])
def test_mamba_fused_add_rms_norm_through_our_wrapper_equals_the_reference(first, keep):
    """The residual add fused into the norm (mamba-ssm's rms_norm_fn with a residual, prenorm, fp32
    residual): both outputs and every gradient against the reference's add and norm; a stack's first block
    (no residual yet) and its last norm (no residual returned)."""
    g = torch.Generator().manual_seed(8)
    x, residual = torch.randn(2, 30, 64, generator=g), torch.randn(2, 30, 64, generator=g)
    w = torch.rand(64, generator=g) + 0.5
    ins, refs = leaves(x, w, *(() if first else (residual,))), leaves(x, w, *(() if first else (residual,)))
    normed, total = gpu_mamba.add_rms_norm(ins[0], ins[2] if not first else None, ins[1], 1e-5, keep_residual=keep)
    ref_normed, ref_total = norm_k.add_rms_norm_ref(refs[0], refs[2] if not first else None, refs[1], 1e-5)
    if keep:
        out, ref = torch.cat([normed, total], -1), torch.cat([ref_normed, ref_total], -1)
    else:
        assert total is None
        out, ref = normed, ref_normed
    torch.testing.assert_close(out, ref, **TOL)
    for got, want in zip(grads(out, ins), grads(ref, refs)):
        torch.testing.assert_close(got, want, **TOL)


def _mixer(ngroups=1):
    torch.manual_seed(5)
    cfg = SSMConfig(d_state=16, expand=2, d_conv=4, chunk_size=16, head_dim=16, ngroups=ngroups)
    return Mamba2(32, cfg)


def _mixer_run(mixer, hidden, geom):
    hidden = hidden.detach().clone().requires_grad_()
    out = mixer(hidden, geom)
    params = [hidden] + list(mixer.parameters())
    return out, grads(out, params)


@pytest.mark.parametrize(
    "ops,packed,ngroups,conv",
    [
        (("ssd", "gated_rms_norm"), False, 1, None),
        (("ssd", "gated_rms_norm", "conv"), True, 2, "conv_extension"),
        (("mamba2_fused",), True, 2, "conv_extension"),
        (("ssd", "gated_rms_norm", "conv"), True, 2, "triton_conv"),
        (("mamba2_fused",), True, 2, "triton_conv"),
        (("mamba2_fused",), False, 1, "triton_conv"),
    ],
    ids=["scan+norm", "scan+norm+conv", "fused", "scan+norm+triton-conv", "fused+triton-conv", "fused+triton-padded"],
)
def test_mamba2_mixer_on_gpu_providers_equals_the_torch_mixer(ops, packed, ngroups, conv, monkeypatch, request):
    """The model's Mamba-2 block, forward and every parameter gradient, on mamba-ssm's unfused kernels (with
    causal-conv1d's interface or our Triton conv), or on ``mamba_split_conv1d_scan_combined`` (calling
    causal-conv1d's functions or ours), against the pure-torch path."""
    if conv is not None:
        request.getfixturevalue(conv)
    if conv == "triton_conv":  # what dispatch reports on a GPU without causal-conv1d
        table = dispatch.describe("cuda")
        assert table["conv"].startswith("triton (causal-conv1d unavailable: ImportError: causal-conv1d hidden")
        assert table["mamba2_fused"].startswith("mamba-ssm + Triton conv (causal-conv1d unavailable: ")
    mixer = _mixer(ngroups)
    cu = CU[CU <= 90]  # lengths 37, 1, 52
    hidden = torch.randn(1, int(cu[-1]), 32, generator=torch.Generator().manual_seed(6))
    geom = (
        Geometry.from_cu_seqlens(cu, hidden.shape[1])
        if packed
        else Geometry.padded(torch.ones(hidden.shape[:2], dtype=torch.bool))
    )
    ref, ref_grads = _mixer_run(mixer, hidden, geom)
    with monkeypatch.context() as mp:
        route_cpu_tensors_to(mp, ops)
        out, out_grads = _mixer_run(mixer, hidden, geom)
    torch.testing.assert_close(out, ref, **TOL)
    for got, want in zip(out_grads, ref_grads):
        torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_causal_conv1d_wrapper_takes_a_projection_slice_with_fp32_weights(dtype, conv_extension):
    """What training hands the conv: a column slice of the in-projection (no copy, channel-last), bf16 under
    autocast while the weights stay fp32, packed sequences as seq_idx, SiLU inside."""
    from hnet_genomics.kernels import conv as conv_k
    from hnet_genomics.kernels import gpu_conv

    g = torch.Generator().manual_seed(7)
    zx = torch.randn(1, int(CU[-1]), 120, generator=g).to(dtype)
    x = zx[..., 24:88]  # 64 channels out of a 120-wide projection
    w, bias = torch.randn(64, 4, generator=g), torch.randn(64, generator=g)
    geom = Geometry.from_cu_seqlens(CU, x.shape[1])
    ins = leaves(x, w, bias)
    out = gpu_conv.causal_conv1d(*ins, geom.positions, has_resets=True, activation="silu")
    assert out.dtype == dtype
    refs = leaves(x.float(), w, bias)
    ref = conv_k.causal_conv1d(*refs, geom.positions, has_resets=True, activation="silu")
    tol = TOL if dtype == torch.float32 else dict(rtol=2e-2, atol=2e-2)
    torch.testing.assert_close(out.float(), ref, **tol)
    for got, want in zip(grads(out.float(), ins, representable_in=dtype), grads(ref, refs, representable_in=dtype)):
        torch.testing.assert_close(got.float(), want, **tol)


def test_the_fused_mixer_gets_our_conv_only_where_causal_conv1d_is_absent(conv_extension, monkeypatch):
    """Our conv functions go into mamba-ssm's fused mixer in place of None, never over causal-conv1d's."""
    from hnet_genomics.kernels.triton import conv

    combined = gpu_mamba._kernels().combined
    theirs = combined.causal_conv1d_fwd_function
    with pytest.raises(ImportError, match="already runs causal-conv1d's conv"):
        gpu_mamba.require_split_triton_conv()
    assert combined.causal_conv1d_fwd_function is theirs
    gpu_mamba.require_split_conv()  # causal-conv1d's: the first choice
    for name in ("causal_conv1d_fwd_function", "causal_conv1d_bwd_function"):
        monkeypatch.setattr(combined, name, None)
    gpu_mamba.require_split_triton_conv()
    gpu_mamba.require_split_triton_conv()  # again: nothing changes
    assert combined.causal_conv1d_fwd_function is conv.conv_fwd_function
    assert combined.causal_conv1d_bwd_function is conv.conv_bwd_function
    with pytest.raises(ImportError, match="runs our Triton conv"):
        gpu_mamba.require_split_conv()  # ours installed is not causal-conv1d's extension
