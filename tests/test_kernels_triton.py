"""Our Triton kernels equal their torch references, forward and gradients.

Without CUDA they run under the Triton interpreter on CPU tensors. Inputs come from the tiny 1-stage H-Net
run on real DNA packed three sequences to a row, so the shapes, probabilities and chunk layouts are the
ones training produces; synthetic cases add several time tiles and channel blocks, and mid-row resets.
"""

import os

import pytest
import torch

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
if DEVICE == "cpu":
    os.environ["TRITON_INTERPRET"] = "1"  # read when the kernel modules below are imported

from conftest import missing  # noqa: E402

try:
    import triton  # noqa: F401
except ImportError as e:
    missing("triton", f"does not import ({e})")

from conftest import small_model_config  # noqa: E402

from hnet_genomics import build_model  # noqa: E402
from hnet_genomics.kernels import ema as ema_k  # noqa: E402
from hnet_genomics.kernels import routing as routing_k  # noqa: E402
from hnet_genomics.kernels.triton.ema_dechunk import ema_dechunk_triton, ema_scan_triton  # noqa: E402
from hnet_genomics.kernels.triton.routing import routing_fused_triton  # noqa: E402

TOL = dict(rtol=1e-4, atol=2e-5)


@pytest.fixture(scope="module")
def captured(human_bases) -> dict:
    """Routing and dechunk inputs of the tiny H-Net on 192 real bases packed as sequences of 50, 80 and 62."""
    torch.manual_seed(0)
    model = build_model(small_model_config("dna/hnet_1stage_tiny")).eval()
    ids = torch.tensor([list(human_bases[1000:1192])])
    cu = torch.tensor([0, 50, 130, 192])
    seen = {}
    real_fused, real_dechunk = routing_k.routing_fused, ema_k.ema_dechunk

    def fused(q, k, starts):
        seen.update(q=q, k=k, starts=starts)
        return real_fused(q, k, starts)

    def dechunk(x, p, idx):
        seen.update(x=x, p=p, idx=idx)
        return real_dechunk(x, p, idx)

    with pytest.MonkeyPatch.context() as mp, torch.no_grad():
        mp.setattr(routing_k, "routing_fused", fused)
        mp.setattr(ema_k, "ema_dechunk", dechunk)
        model(ids, cu_seqlens=cu)
    return {k: v.detach().to(DEVICE) for k, v in seen.items()}


def _grads(out, inputs, weight):
    return torch.autograd.grad((out.float() * weight).sum(), inputs)


def test_fused_dechunk_equals_reference_on_real_chunks(captured):
    x = captured["x"].clone().requires_grad_()
    p = captured["p"].clone().requires_grad_()
    idx = captured["idx"]
    assert int((p == 1).sum()) >= 3  # the first chunk of each packed sequence resets the EMA
    out = ema_dechunk_triton(x, p, idx, block_t=16)
    ref = ema_k.ema_dechunk_ref(x, p, idx)
    torch.testing.assert_close(out, ref, **TOL)
    weight = torch.randn(out.shape, generator=torch.Generator().manual_seed(0)).to(DEVICE)
    for got, want in zip(_grads(out, (x, p), weight), _grads(ref, (x, p), weight)):
        torch.testing.assert_close(got, want, **TOL)


@pytest.mark.parametrize("resets", [[0], [0, 17, 18, 40]])
def test_fused_dechunk_matches_reference_across_tiles_blocks_and_resets(resets):
    """45 chunks = three 16-chunk tiles, 40 channels = two channel blocks; p = 1 restarts the recurrence."""
    g = torch.Generator().manual_seed(len(resets))
    b, m, d, l = 2, 45, 40, 120
    x = torch.randn(b, m, d, generator=g).to(DEVICE).requires_grad_()
    p = torch.rand(b, m, generator=g)
    p[:, resets] = 1.0
    p = p.to(DEVICE).requires_grad_()
    idx = torch.sort(torch.randint(0, m, (b, l), generator=g), dim=1).values.to(DEVICE)
    out = ema_dechunk_triton(x, p, idx, block_t=16)
    ref = ema_k.ema_dechunk_ref(x, p, idx)
    torch.testing.assert_close(out, ref, **TOL)
    weight = torch.randn(out.shape, generator=g).to(DEVICE)
    for got, want in zip(_grads(out, (x, p), weight), _grads(ref, (x, p), weight)):
        torch.testing.assert_close(got, want, **TOL)


def test_ema_scan_kernel_forgets_everything_before_a_reset(captured):
    x, p = captured["x"], captured["p"].clone()
    cut = x.shape[1] // 2
    p[:, cut] = 1.0
    whole = ema_scan_triton(x, p, block_t=16)
    torch.testing.assert_close(whole, ema_k.ema_scan_ref(x, p), **TOL)
    torch.testing.assert_close(whole[:, cut:], ema_scan_triton(x[:, cut:], p[:, cut:], block_t=16), **TOL)


def test_fused_routing_equals_reference_on_real_hidden_states(captured):
    q = captured["q"].clone().requires_grad_()
    k = captured["k"].clone().requires_grad_()
    starts = captured["starts"]
    p, boundary = routing_fused_triton(q, k, starts)
    p_ref, boundary_ref = routing_k.routing_fused_ref(q, k, starts)
    torch.testing.assert_close(p, p_ref, **TOL)
    decided = (p_ref - 0.5).abs() > 1e-5  # away from the threshold rounding cannot flip a boundary
    assert torch.equal(boundary[decided], boundary_ref[decided])
    assert bool(boundary[starts].all()) and 0 < int(boundary.sum()) < boundary.numel()
    weight = torch.randn(p.shape, generator=torch.Generator().manual_seed(1)).to(DEVICE)
    for got, want in zip(_grads(p, (q, k), weight), _grads(p_ref, (q, k), weight)):
        torch.testing.assert_close(got, want, **TOL)


def test_fused_routing_gradients_through_opposed_and_tiny_vectors():
    """cos = -1 puts p on the clamp's edge, and a near-zero key hits F.normalize's floor."""
    g = torch.Generator().manual_seed(5)
    q = torch.randn(1, 20, 24, generator=g)
    k = torch.randn(1, 20, 24, generator=g)
    k[0, 4] = -q[0, 5]
    k[0, 9] = 1e-14
    starts = torch.zeros(1, 20, dtype=torch.bool)
    starts[0, [0, 12]] = True
    q, k = q.to(DEVICE).requires_grad_(), k.to(DEVICE).requires_grad_()
    starts = starts.to(DEVICE)
    p, _ = routing_fused_triton(q, k, starts)
    p_ref, _ = routing_k.routing_fused_ref(q, k, starts)
    torch.testing.assert_close(p, p_ref, **TOL)
    weight = torch.randn(p.shape, generator=g).to(DEVICE)
    for got, want in zip(_grads(p, (q, k), weight), _grads(p_ref, (q, k), weight)):
        torch.testing.assert_close(got, want, **TOL)


@pytest.mark.parametrize("block_t", [16, 32, 64])
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fused_dechunk_on_one_long_packed_row_across_block_sizes_and_dtypes(block_t, dtype):
    """The packed layout's single row: more tiles than one carry step holds (the two-level scan's second
    level loops), two channel blocks, resets mid-row, bf16 activations with fp32 probabilities."""
    g = torch.Generator().manual_seed(block_t)
    m, d, l = 40 * block_t + 7, 40, 100 * block_t
    x = torch.randn(1, m, d, generator=g).to(dtype).to(DEVICE).requires_grad_()
    p = torch.rand(1, m, generator=g) * 0.9 + 0.05
    p[:, [0, 5, 6, m // 2, m - 1]] = 1.0
    p = p.to(DEVICE).requires_grad_()
    idx = torch.sort(torch.randint(0, m, (1, l), generator=g), dim=1).values.to(DEVICE)
    out = ema_dechunk_triton(x, p, idx, block_t=block_t)
    assert out.dtype == dtype
    x32 = x.detach().float().requires_grad_()
    ref = ema_k.ema_dechunk_ref(x32, p, idx)
    tol = TOL if dtype == torch.float32 else dict(rtol=1e-2, atol=1e-2)  # the output is rounded to bf16
    torch.testing.assert_close(out.float(), ref, **tol)
    weight = torch.randn(out.shape, generator=g).to(dtype).float().to(DEVICE)  # what a bf16 output passes back
    got = _grads(out, (x, p), weight)
    want = _grads(ref, (x32, p), weight)
    torch.testing.assert_close(got[0].float(), want[0], **tol)
    torch.testing.assert_close(got[1], want[1], **TOL)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_fused_routing_in_training_dtypes(dtype):
    g = torch.Generator().manual_seed(6)
    q = torch.randn(2, 300, 48, generator=g).to(dtype).to(DEVICE).requires_grad_()
    k = torch.randn(2, 300, 48, generator=g).to(dtype).to(DEVICE).requires_grad_()
    starts = torch.zeros(2, 300, dtype=torch.bool)
    starts[:, [0, 120]] = True
    starts = starts.to(DEVICE)
    p, _ = routing_fused_triton(q, k, starts)
    p_ref, _ = routing_k.routing_fused_ref(q, k, starts)
    torch.testing.assert_close(p, p_ref, **TOL)
    weight = torch.randn(p.shape, generator=g).to(DEVICE)
    for got, want in zip(_grads(p, (q, k), weight), _grads(p_ref, (q, k), weight)):
        assert got.dtype == dtype
        torch.testing.assert_close(
            got.float(),
            want.float(),
            rtol=1e-2 if dtype == torch.bfloat16 else 1e-4,
            atol=1e-2 if dtype == torch.bfloat16 else 2e-5,
        )


def test_routing_grid_puts_long_packed_rows_on_the_unlimited_axis():
    """CUDA grids allow 65,535 programs on axes 1 and 2: a packed row of 2 M positions must not need more."""
    from hnet_genomics.kernels.triton import routing

    tiles, rows = routing.launch_grid(1, 2_000_000)
    assert tiles * routing.BLOCK_T >= 2_000_000 and rows == 1
    assert routing.launch_grid(4096, 1024)[1] <= 65_535


def test_every_triton_launch_runs_under_its_tensors_device_guard(monkeypatch):
    """Triton launches on the current CUDA device; each of our launches must sit inside ``on_device_of`` its
    inputs (``--device cuda:1`` would otherwise compute on GPU 0)."""
    import contextlib

    from hnet_genomics.kernels.triton import ema_dechunk, routing

    active: list[torch.device] = []

    @contextlib.contextmanager
    def guard(tensor):
        active.append(tensor.device)
        yield
        active.pop()

    launches = []
    kernel_type = type(ema_dechunk._tiles)
    real_run = kernel_type.run

    def run(self, *args, **kwargs):
        launches.append(list(active))
        return real_run(self, *args, **kwargs)

    monkeypatch.setattr(kernel_type, "run", run)
    for module in (ema_dechunk, routing):
        monkeypatch.setattr(module, "on_device_of", guard)
    x = torch.randn(1, 40, 32, device=DEVICE, requires_grad=True)
    p = torch.rand(1, 40, device=DEVICE).requires_grad_()
    idx = torch.arange(40, device=DEVICE)[None].repeat_interleave(2, 1)
    ema_dechunk_triton(x, p, idx, block_t=16).sum().backward()
    q = torch.randn(1, 40, 32, device=DEVICE, requires_grad=True)
    starts = torch.zeros(1, 40, dtype=torch.bool, device=DEVICE)
    routing_fused_triton(q, q, starts)[0].sum().backward()
    assert len(launches) == 2 * 3 + 1 + 2  # EMA: 3 scan launches each way + plug-back; routing: fwd + bwd
    assert all(devices == [x.device] for devices in launches)
