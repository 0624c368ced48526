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

pytest.importorskip("triton")

from hnet_genomics import build_model  # noqa: E402
from hnet_genomics.kernels import ema as ema_k  # noqa: E402
from hnet_genomics.kernels import routing as routing_k  # noqa: E402
from hnet_genomics.kernels.triton.ema_dechunk import ema_dechunk_triton, ema_scan_triton  # noqa: E402
from hnet_genomics.kernels.triton.routing import routing_fused_triton  # noqa: E402

from conftest import small_model_config  # noqa: E402

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
