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

    from hnet_genomics.kernels.triton import conv, ema_dechunk, routing

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
    for module in (ema_dechunk, routing, conv):
        monkeypatch.setattr(module, "on_device_of", guard)
    x = torch.randn(1, 40, 32, device=DEVICE, requires_grad=True)
    p = torch.rand(1, 40, device=DEVICE).requires_grad_()
    idx = torch.arange(40, device=DEVICE)[None].repeat_interleave(2, 1)
    ema_dechunk_triton(x, p, idx, block_t=16).sum().backward()
    q = torch.randn(1, 40, 32, device=DEVICE, requires_grad=True)
    starts = torch.zeros(1, 40, dtype=torch.bool, device=DEVICE)
    routing_fused_triton(q, q, starts)[0].sum().backward()
    w = torch.randn(32, 4, device=DEVICE, requires_grad=True)
    conv.causal_conv1d_triton(x, w, None, None, False, "silu").sum().backward()
    # EMA: 3 scan launches each way + plug-back; routing: fwd + bwd; conv: fwd + bwd
    assert len(launches) == 2 * 3 + 1 + 2 + 2
    assert all(devices == [x.device] for devices in launches)


# ---- the depthwise causal conv (kernels/triton/conv.py) ----

CONV_CASES = [  # x dtype, weight dtype, width, bias, SiLU, layout
    (torch.float32, torch.float32, 2, True, True, "packed"),
    (torch.float32, torch.float32, 3, False, True, "packed"),
    (torch.float32, torch.float32, 4, True, False, "packed"),
    (torch.float32, torch.float32, 4, False, False, "padded"),
    (torch.float32, torch.float32, 4, True, True, "padded"),
    (torch.bfloat16, torch.float32, 4, True, True, "packed"),
    (torch.bfloat16, torch.bfloat16, 4, True, True, "packed"),
    (torch.float32, torch.bfloat16, 3, True, True, "padded"),
    (torch.bfloat16, torch.float32, 2, False, False, "packed"),
]
CONV_RUNS = [[1, 2, 3, 30, 1, 40], [4, 1, 72]]  # per row of 77: runs shorter than the width, one-token runs
BF16_TOL = dict(rtol=1e-2, atol=1e-2)


def _run_positions(runs_per_row) -> torch.Tensor:
    return torch.stack([torch.cat([torch.arange(n) for n in runs]) for runs in runs_per_row]).to(DEVICE)


def _conv_ref(x, w, bias, positions, silu):
    """The torch taps in fp32 (the reference the kernel must equal)."""
    from hnet_genomics.kernels.conv import causal_conv1d_ref

    y = causal_conv1d_ref(x, w, bias, positions)
    return torch.nn.functional.silu(y) if silu else y


def _close_to_scale(actual, expected, tol):
    """Element-wise ``rtol`` and an ``atol`` relative to the tensor's largest magnitude (sums of many rounded
    terms are off by a fraction of the largest term, not of each element)."""
    scale = max(1.0, expected.abs().max().item())
    torch.testing.assert_close(actual.float(), expected.float(), rtol=tol["rtol"], atol=tol["atol"] * scale)


@pytest.mark.parametrize("x_dtype,w_dtype,width,with_bias,silu,layout", CONV_CASES)
def test_triton_conv_equals_the_taps(x_dtype, w_dtype, width, with_bias, silu, layout):
    """Forward, dx, dweight and dbias against the torch taps: a 50-channel column slice of a 100-wide projection
    (strided, no copy), 77 positions (not a multiple of the 16-position tile, three backward programs per row),
    two channel blocks (the second partial), packed rows whose runs include one- and two-token sequences."""
    from hnet_genomics.kernels.triton.conv import Tiles, causal_conv1d_triton

    g = torch.Generator().manual_seed(width * 10 + int(silu))
    zx = torch.randn(2, 77, 100, generator=g).to(x_dtype).to(DEVICE)
    w = (torch.randn(50, width, generator=g) * 0.5).to(w_dtype).to(DEVICE)
    bias = torch.randn(50, generator=g).to(w_dtype).to(DEVICE) if with_bias else None
    packed = layout == "packed"
    positions = _run_positions(CONV_RUNS) if packed else torch.arange(77, device=DEVICE).expand(2, 77)
    zx.requires_grad_()
    x = zx[..., 30:80]
    params = [w.requires_grad_()] + ([bias.requires_grad_()] if with_bias else [])
    tiles = Tiles(rows=16, channels=32, per_program=2, warps=4)
    out = causal_conv1d_triton(x, w, bias, positions, packed, "silu" if silu else None, tiles=tiles)
    assert out.dtype == x_dtype and out.shape == x.shape and out.is_contiguous()
    refs = [t.detach().float().requires_grad_() for t in [x] + params]
    ref = _conv_ref(refs[0], refs[1], refs[2] if with_bias else None, positions if packed else None, silu)
    low = torch.bfloat16 in (x_dtype, w_dtype)
    tol = BF16_TOL if low else TOL
    _close_to_scale(out, ref, BF16_TOL if x_dtype == torch.bfloat16 else tol)
    weight = torch.randn(out.shape, generator=g).to(x_dtype).float().to(DEVICE)  # what a bf16 output passes back
    got = _grads(out, [zx] + params, weight)
    want = _grads(ref, refs, weight)
    assert got[0][..., :30].abs().max() == 0 and got[0][..., 80:].abs().max() == 0  # only the slice has inputs
    for a, b in zip([got[0][..., 30:80]] + list(got[1:]), want):
        _close_to_scale(a, b, tol)
    for a, p in zip(got[1:], params):
        assert a.dtype == p.dtype


def test_triton_conv_at_default_tiles_on_a_long_packed_row():
    """The tile sizes the GPU runs (three channel blocks, backward programs spanning 16 tiles, a partial one)."""
    from hnet_genomics.kernels.triton.conv import causal_conv1d_triton

    g = torch.Generator().manual_seed(11)
    lengths = [700, 3, 1, 300, 2, 60]
    positions = _run_positions([lengths])
    x = torch.randn(1, sum(lengths), 288, generator=g).to(DEVICE).requires_grad_()
    w = torch.randn(288, 4, generator=g).to(DEVICE).requires_grad_()
    bias = torch.randn(288, generator=g).to(DEVICE).requires_grad_()
    out = causal_conv1d_triton(x, w, bias, positions, True, "silu")
    refs = [t.detach().clone().requires_grad_() for t in (x, w, bias)]
    ref = _conv_ref(*refs, positions, True)
    _close_to_scale(out, ref, TOL)
    weight = torch.randn(out.shape, generator=g).to(DEVICE)
    for a, b in zip(_grads(out, (x, w, bias), weight), _grads(ref, refs, weight)):
        _close_to_scale(a, b, TOL)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_triton_conv_in_causal_conv1d_contract_takes_seq_idx_and_writes_dx_in_place(dtype):
    """What mamba-ssm's fused mixer calls: (B, C, L) channel-last views of the projection slice, seq_idx resets,
    dx written into the slice of the projection's gradient it hands over."""
    from hnet_genomics.kernels.gpu_mamba import sequence_index
    from hnet_genomics.kernels.triton.conv import conv_bwd_function, conv_fwd_function

    g = torch.Generator().manual_seed(12)
    positions = _run_positions(CONV_RUNS)
    seq_idx = sequence_index(positions == 0)
    zx = torch.randn(2, 77, 100, generator=g).to(dtype).to(DEVICE)
    x = zx[..., 24:72]
    w = torch.randn(48, 4, generator=g).to(DEVICE)
    bias = torch.randn(48, generator=g).to(DEVICE)
    out = conv_fwd_function(x.transpose(1, 2), w, bias, seq_idx, None, None, True)
    assert out.shape == (2, 48, 77) and out.dtype == dtype and out.stride(1) == 1  # channel-last, as given
    refs = [t.float().requires_grad_() for t in (x, w, bias)]
    ref = _conv_ref(*refs, positions, True)
    tol = TOL if dtype == torch.float32 else BF16_TOL
    _close_to_scale(out.transpose(1, 2), ref, tol)
    dout = torch.randn(2, 77, 48, generator=g).to(dtype).to(DEVICE)
    dzx = torch.zeros_like(zx)
    dx_view = dzx[..., 24:72].transpose(1, 2)
    dx, dw, db, dinit = conv_bwd_function(
        x.transpose(1, 2), w, bias, dout.transpose(1, 2), seq_idx, None, None, dx_view, False, True
    )
    assert dx is dx_view and dinit is None and dw.dtype == w.dtype and db.dtype == bias.dtype
    assert dzx[..., :24].abs().max() == 0 and dzx[..., 72:].abs().max() == 0
    want = torch.autograd.grad(ref, refs, dout.float())
    for a, b in zip((dzx[..., 24:72], dw, db), want):
        _close_to_scale(a, b, tol)
    with pytest.raises(NotImplementedError):
        conv_fwd_function(x.transpose(1, 2), w, bias, seq_idx, torch.zeros(2, 48, 3), None, True)
    with pytest.raises(ValueError, match="seq_idx must be int32"):
        conv_fwd_function(x.transpose(1, 2), w, bias, seq_idx.long(), None, None, True)


def test_triton_conv_saves_only_its_inputs():
    """The memory contract: the backward recomputes the pre-activation, so autograd keeps no (B, L, C) tensor
    but the input (here a slice of the projection, whose storage the mixer keeps anyway)."""
    from hnet_genomics.kernels.triton.conv import causal_conv1d_triton

    zx = torch.randn(1, 40, 96, device=DEVICE, requires_grad=True)
    w = torch.randn(64, 4, device=DEVICE, requires_grad=True)
    bias = torch.randn(64, device=DEVICE, requires_grad=True)
    positions = _run_positions([[25, 15]])
    proj = zx * 1.0  # a non-leaf projection output, as in_proj's
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t) or t, lambda t: t):
        out = causal_conv1d_triton(proj[..., 16:80], w, bias, positions, True, "silu")
    storages = {t.untyped_storage().data_ptr() for t in saved}
    allowed = {t.untyped_storage().data_ptr() for t in (proj, w, bias, positions)}
    assert storages <= allowed and proj.untyped_storage().data_ptr() in storages
    assert out.untyped_storage().data_ptr() not in storages


def test_mamba2_block_on_the_triton_conv_equals_the_torch_block(monkeypatch):
    """The model's Mamba-2 mixer with only its conv on our kernel (scan and norm on torch), packed and padded:
    output and every parameter and input gradient against the pure-torch block."""
    from hnet_genomics.config import SSMConfig
    from hnet_genomics.kernels import dispatch
    from hnet_genomics.kernels.triton.conv import causal_conv1d_triton
    from hnet_genomics.model.geometry import Geometry
    from hnet_genomics.model.mamba2 import Mamba2

    torch.manual_seed(5)
    mixer = Mamba2(32, SSMConfig(d_state=16, expand=2, d_conv=4, chunk_size=16, head_dim=16, ngroups=2)).to(DEVICE)
    cu = torch.tensor([0, 37, 38, 40, 90], device=DEVICE)  # lengths 37, 1, 2, 50
    hidden = torch.randn(1, 90, 32, generator=torch.Generator().manual_seed(6)).to(DEVICE)
    for geom in (Geometry.from_cu_seqlens(cu, 90), Geometry.padded(torch.ones(1, 90, dtype=torch.bool, device=DEVICE))):
        runs = []
        for conv in (None, causal_conv1d_triton):
            with monkeypatch.context() as mp:
                mp.setattr(dispatch, "gpu_kernel", lambda op, like, conv=conv: conv if op == "conv" else None)
                inp = hidden.clone().requires_grad_()
                out = mixer(inp, geom)
                weight = torch.randn(out.shape, generator=torch.Generator().manual_seed(7)).to(DEVICE)
                runs.append((out, _grads(out, [inp] + list(mixer.parameters()), weight)))
        (ref, ref_grads), (out, out_grads) = runs
        torch.testing.assert_close(out, ref, **TOL)
        for got, want in zip(out_grads, ref_grads):
            torch.testing.assert_close(got, want, rtol=1e-3, atol=1e-4)


def test_triton_conv_copies_only_what_has_strided_channels():
    """Channels with a stride (a (B, C, L)-contiguous tensor, an expanded gradient, a strided dx to fill) are
    copied to or from contiguous channels; the results stay those of the taps."""
    from hnet_genomics.kernels.triton.conv import causal_conv1d_triton, conv_bwd_function, conv_fwd_function

    g = torch.Generator().manual_seed(13)
    x_bcl = torch.randn(2, 24, 50, generator=g).to(DEVICE)  # (B, C, L) contiguous: channel stride 50
    w, bias = torch.randn(24, 3, generator=g).to(DEVICE), torch.randn(24, generator=g).to(DEVICE)
    ref_in = [t.clone().requires_grad_() for t in (x_bcl.transpose(1, 2), w, bias)]
    ref = _conv_ref(*ref_in, None, True)
    out = conv_fwd_function(x_bcl, w, bias, None, None, None, True)
    _close_to_scale(out.transpose(1, 2), ref, TOL)
    dout = torch.randn(2, 24, 50, generator=g).to(DEVICE)  # (B, C, L) contiguous as well
    dx = torch.empty(2, 24, 50, device=DEVICE)
    got = conv_bwd_function(x_bcl, w, bias, dout, None, None, None, dx, False, True)
    want = torch.autograd.grad(ref, ref_in, dout.transpose(1, 2))
    assert got[0] is dx
    for a, b in zip((dx.transpose(1, 2), got[1], got[2]), want):
        _close_to_scale(a, b, TOL)
    x = x_bcl.transpose(1, 2).requires_grad_()
    out = causal_conv1d_triton(x, w, bias, None, False, "silu")
    (dx_auto,) = torch.autograd.grad(out.sum(), x)  # an expanded (stride 0) incoming gradient
    (dx_ref,) = torch.autograd.grad(_conv_ref(x, w, bias, None, True).sum(), x)
    _close_to_scale(dx_auto, dx_ref, TOL)
