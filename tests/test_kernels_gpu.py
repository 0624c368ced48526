"""On CUDA, every GPU kernel path equals the pure-torch path (forward and gradients), bf16 autocast trains
without NaN and the packed layout runs end to end. Skipped without a CUDA device; a kernel whose package does
not load is skipped with the reason. The Triton kernel tests in test_kernels_triton.py run natively here too."""

import pytest
import torch
import torch.nn.functional as F
from conftest import missing, small_model_config

from hnet_genomics import build_model
from hnet_genomics.kernels import attention as attn_k
from hnet_genomics.kernels import conv as conv_k
from hnet_genomics.kernels import dispatch
from hnet_genomics.kernels import ema as ema_k
from hnet_genomics.kernels import norm as norm_k
from hnet_genomics.kernels import ssd as ssd_k
from hnet_genomics.model.geometry import Geometry

pytestmark = pytest.mark.gpu  # skipped without CUDA (conftest), failed instead under HNET_TEST_REQUIRE=cuda

CU = torch.tensor([0, 70, 71, 190, 300])  # packed lengths 70, 1, 119, 110 (a one-token sequence included)


def kernel(op):
    fn, why = dispatch.load(op)
    if fn is None:
        missing(dispatch.PROVIDERS[op].package, f"{op} does not load ({why})")
    return fn


@pytest.fixture
def torch_path():
    """Run the pure-torch path on CUDA tensors inside the test, whatever HNET_KERNELS says."""

    class Switch:
        def __enter__(self):
            dispatch.set_backend("torch")

        def __exit__(self, *exc):
            dispatch.set_backend(None)

    yield Switch()
    dispatch.set_backend(None)


def leaves(*tensors):
    return [t.detach().clone().requires_grad_() for t in tensors]


def close(actual, expected, tol):
    """Within ``rtol`` of each element and ``atol`` of the tensor's largest magnitude. Gradients such as dt or dA
    sum hundreds of products, so a TF32 or bf16 rounding moves an element by a fraction of the largest term, not
    of itself: an element-scaled bound fails a correct kernel, while a wrong reset or layout still misses by O(1)."""
    scale = max(1.0, expected.abs().max().item())
    torch.testing.assert_close(actual.float(), expected.float(), rtol=tol["rtol"], atol=tol["atol"] * scale)


def compare(fast_out, ref_out, fast_in, ref_in, tol, seed=0):
    close(fast_out, ref_out, tol)
    # The upstream gradient as autograd hands it to each path: a bf16 output receives a bf16 gradient, so the
    # fp32 reference must get the same rounded numbers (else 0.4% noise per element adds up in dx and dp).
    w = torch.randn(ref_out.shape, device="cuda", generator=torch.Generator("cuda").manual_seed(seed))
    w = w.to(fast_out.dtype).float()
    g_fast = torch.autograd.grad((fast_out.float() * w).sum(), fast_in)
    g_ref = torch.autograd.grad((ref_out.float() * w).sum(), ref_in)
    for a, b in zip(g_fast, g_ref):
        close(a, b, tol)


FP32 = dict(rtol=2e-3, atol=2e-3)  # mamba-ssm's Triton matmuls run in TF32
BF16 = dict(rtol=3e-2, atol=3e-2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_mamba_ssd_equals_torch_scan_on_packed_sequences(dtype, torch_path):
    fast = kernel("ssd")
    g = torch.Generator("cuda").manual_seed(0)
    b, l, h, p, n = 1, 300, 4, 32, 16
    x = torch.randn(b, l, h, p, device="cuda", generator=g).to(dtype)
    dt = torch.rand(b, l, h, device="cuda", generator=g) * 0.1 + 0.01
    A = -torch.rand(h, device="cuda", generator=g) - 0.5
    Bm = torch.randn(b, l, 1, n, device="cuda", generator=g).to(dtype)
    Cm = torch.randn(b, l, 1, n, device="cuda", generator=g).to(dtype)
    reset = Geometry.from_cu_seqlens(CU.cuda(), l).starts
    ins = leaves(x, dt, A, Bm, Cm)
    refs = leaves(x.float(), dt, A, Bm.float(), Cm.float())
    out = fast(*ins, reset=reset, chunk_size=64)
    with torch_path:
        ref = ssd_k.ssd_scan_chunked(*refs, reset=reset, chunk_size=64)
    compare(out, ref, ins, refs, FP32 if dtype == torch.float32 else BF16)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("packed", [False, True])
def test_causal_conv1d_equals_masked_taps(packed, dtype):
    """As training calls it: a column slice of the projection, bf16 under autocast with fp32 weights, SiLU inside."""
    fast = kernel("conv")
    g = torch.Generator("cuda").manual_seed(1)
    zx = torch.randn(1 if packed else 2, 300, 120, device="cuda", generator=g).to(dtype)
    x = zx[..., 24:88]
    w, bias = torch.randn(64, 4, device="cuda", generator=g), torch.randn(64, device="cuda", generator=g)
    geom = (
        Geometry.from_cu_seqlens(CU.cuda(), 300)
        if packed
        else Geometry.padded(torch.ones(2, 300, dtype=torch.bool, device="cuda"))
    )
    ins, refs = leaves(x, w, bias), leaves(x.float(), w, bias)
    out = fast(*ins, geom.positions, has_resets=geom.has_resets, activation="silu")
    assert out.dtype == dtype
    ref = F.silu(conv_k.causal_conv1d_ref(*refs, geom.positions))
    compare(out, ref, ins, refs, FP32 if dtype == torch.float32 else BF16)


def triton_conv():
    """Our Triton conv, whatever dispatch prefers (causal-conv1d when it loads)."""
    fn, why = dispatch._load_one(dispatch.PROVIDERS["conv"].chain()[-1])
    if fn is None:
        missing("triton", f"the Triton conv does not load ({why})")
    from hnet_genomics.kernels.triton import conv

    return conv


def _conv_case(packed, dtype, channels=1280, width=2320, first=1024, length=1000):
    """A column slice of a mixer's projection, as the paper model's conv sees it, fp32 parameters."""
    g = torch.Generator("cuda").manual_seed(10)
    b = 1 if packed else 2
    zx = torch.randn(b, length, width, device="cuda", generator=g).to(dtype)
    w = torch.randn(channels, 4, device="cuda", generator=g) * 0.5
    bias = torch.randn(channels, device="cuda", generator=g)
    cu = torch.tensor([0, 1, 3, 400, 401, 700, length], device="cuda")  # runs of 1 and 2 included
    geom = (
        Geometry.from_cu_seqlens(cu, length)
        if packed
        else Geometry.padded(torch.ones(b, length, dtype=torch.bool, device="cuda"))
    )
    return zx, zx[..., first : first + channels], w, bias, geom


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("packed", [False, True])
def test_triton_conv_equals_masked_taps(packed, dtype):
    """Our kernel as the unfused mixer calls it (positions), at the paper model's channel count."""
    conv = triton_conv()
    zx, x, w, bias, geom = _conv_case(packed, dtype)
    ins, refs = leaves(zx, w, bias), leaves(x.float(), w, bias)
    out = conv.causal_conv1d_triton(
        ins[0][..., 1024:2304], *ins[1:], geom.positions, has_resets=geom.has_resets, activation="silu"
    )
    assert out.dtype == dtype
    ref = F.silu(conv_k.causal_conv1d_ref(*refs, geom.positions))
    tol = FP32 if dtype == torch.float32 else BF16
    close(out, ref, tol)
    w_out = torch.randn(ref.shape, device="cuda", generator=torch.Generator("cuda").manual_seed(12)).to(dtype).float()
    got = torch.autograd.grad((out.float() * w_out).sum(), ins)
    want = torch.autograd.grad((ref * w_out).sum(), refs)
    assert not got[0][..., :1024].any() and not got[0][..., 2304:].any()
    for a, b in zip((got[0][..., 1024:2304], *got[1:]), want):
        close(a, b, tol)


@pytest.mark.parametrize("packed", [False, True])
def test_triton_conv_through_causal_conv1d_contract_equals_masked_taps(packed):
    """Our kernel as mamba-ssm's fused mixer calls it: (B, C, L) channel-last views, seq_idx, dx written into
    the slice of the projection's gradient."""
    conv = triton_conv()
    from hnet_genomics.kernels.gpu_mamba import sequence_index

    zx, x, w, bias, geom = _conv_case(packed, torch.bfloat16)
    seq_idx = sequence_index(geom.starts) if packed else None
    out = conv.conv_fwd_function(x.transpose(1, 2), w, bias, seq_idx, None, None, True).transpose(1, 2)
    refs = leaves(x.float(), w, bias)
    ref = F.silu(conv_k.causal_conv1d_ref(*refs, geom.positions))
    close(out, ref, BF16)
    dout = torch.randn(out.shape, device="cuda", generator=torch.Generator("cuda").manual_seed(11)).bfloat16()
    dzx = torch.zeros_like(zx)
    dx_view = dzx[..., 1024:2304].transpose(1, 2)
    _, dw, db, _ = conv.conv_bwd_function(
        x.transpose(1, 2), w, bias, dout.transpose(1, 2), seq_idx, None, None, dx_view, False, True
    )
    want = torch.autograd.grad(ref, refs, dout.float())
    for got, expected in zip((dzx[..., 1024:2304], dw, db), want):
        close(got, expected, BF16)
    assert not dzx[..., :1024].any() and not dzx[..., 2304:].any()


@pytest.mark.parametrize("packed", [False, True])
def test_triton_conv_equals_causal_conv1d(packed):
    """Both GPU convs on the same bf16 slice: forward and every gradient within bf16 rounding of each other."""
    conv = triton_conv()
    from hnet_genomics.kernels import gpu_conv

    try:
        gpu_conv.require()
    except Exception as e:
        missing("causal-conv1d", f"does not load ({type(e).__name__}: {e})")
    zx, x, w, bias, geom = _conv_case(packed, torch.bfloat16)
    ins, refs = leaves(x, w, bias), leaves(x, w, bias)
    ours = conv.causal_conv1d_triton(*ins, geom.positions, has_resets=geom.has_resets, activation="silu")
    theirs = gpu_conv.causal_conv1d(*refs, geom.positions, has_resets=geom.has_resets, activation="silu")
    compare(ours, theirs, ins, refs, BF16)


def test_torch_taps_keep_a_bf16_activation_in_bf16(torch_path):
    """Without a GPU conv the taps run in the activation's dtype (fp32 parameters cast, as autocast does)."""
    zx, x, w, bias, geom = _conv_case(True, torch.bfloat16)
    with torch_path:
        out = conv_k.causal_conv1d(x, w, bias, geom.positions, has_resets=True, activation="silu")
    assert out.dtype == torch.bfloat16
    close(out, F.silu(conv_k.causal_conv1d_ref(x.float(), w, bias, geom.positions)), BF16)


@pytest.mark.parametrize("packed", [False, True])
def test_fused_mamba2_mixer_on_the_triton_conv_equals_the_torch_mixer(packed, torch_path, monkeypatch):
    """mamba_split_conv1d_scan_combined calling our conv (what runs when causal-conv1d is absent), even where
    causal-conv1d is installed, against the torch mixer."""
    conv = triton_conv()
    kernel("mamba2_fused")
    from hnet_genomics.config import SSMConfig
    from hnet_genomics.kernels import gpu_mamba
    from hnet_genomics.model.mamba2 import Mamba2

    combined = gpu_mamba._kernels().combined
    monkeypatch.setattr(combined, "causal_conv1d_fwd_function", conv.conv_fwd_function)
    monkeypatch.setattr(combined, "causal_conv1d_bwd_function", conv.conv_bwd_function)
    torch.manual_seed(0)
    mixer = Mamba2(128, SSMConfig(d_state=64, expand=2, d_conv=4, chunk_size=64, head_dim=32, ngroups=2)).cuda()
    hidden = torch.randn(1 if packed else 2, 300, 128, device="cuda")
    geom = (
        Geometry.from_cu_seqlens(CU.cuda(), 300)
        if packed
        else Geometry.padded(torch.ones(2, 300, dtype=torch.bool, device="cuda"))
    )
    ins, refs = leaves(hidden), leaves(hidden)
    params = list(mixer.parameters())
    out = mixer(ins[0], geom)
    with torch_path:
        ref = mixer(refs[0], geom)
    compare(out, ref, ins + params, refs + params, FP32)


@pytest.mark.parametrize("window", [-1, 16])
@pytest.mark.parametrize("packed", [False, True])
def test_flash_attention_equals_masked_softmax(window, packed):
    fast = kernel("attention")
    g = torch.Generator("cuda").manual_seed(2)
    b = 1 if packed else 2
    q, k, v = (torch.randn(b, 4, 300, 64, device="cuda", generator=g).bfloat16() for _ in range(3))
    geom = (
        Geometry.from_cu_seqlens(CU.cuda(), 300)
        if packed
        else Geometry.padded(torch.ones(b, 300, dtype=torch.bool, device="cuda"))
    )
    ins, refs = leaves(q, k, v), leaves(q.float(), k.float(), v.float())
    out = fast(*ins, geom.seq_idx, window, single_sequence_rows=not packed)
    ref = attn_k.attention_ref(*refs, geom.seq_idx, window)
    compare(out, ref, ins, refs, BF16)


def test_fused_rms_norms_equal_reference():
    rms, gated = kernel("rms_norm"), kernel("gated_rms_norm")
    g = torch.Generator("cuda").manual_seed(3)
    x, z = (torch.randn(2, 50, 128, device="cuda", generator=g) for _ in range(2))
    w = torch.rand(128, device="cuda", generator=g) + 0.5
    ins, refs = leaves(x, w), leaves(x, w)
    compare(rms(*ins, 1e-5), norm_k.rms_norm_ref(*refs, 1e-5), ins, refs, FP32)
    ins, refs = leaves(x, z, w), leaves(x, z, w)
    compare(gated(*ins, 1e-5, 32), norm_k.gated_rms_norm_ref(*refs, 1e-5, 32), ins, refs, FP32)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("first", [False, True], ids=["mid-stack", "first block"])
def test_fused_add_rms_norm_equals_reference(dtype, first):
    """A block's residual add and norm: a branch output (bf16 under autocast) onto the fp32 residual stream,
    or the stack's input starting it; outputs and every gradient, both outputs receiving one."""
    fused = kernel("add_rms_norm")
    g = torch.Generator("cuda").manual_seed(4)
    x = torch.randn(2, 50, 128, device="cuda", generator=g).to(dtype)
    residual = None if first else torch.randn(2, 50, 128, device="cuda", generator=g)
    w = torch.rand(128, device="cuda", generator=g) + 0.5
    ins = leaves(*(t for t in (x, residual, w) if t is not None))
    refs = leaves(*(t.float() if t is x else t for t in (x, residual, w) if t is not None))
    args = (ins[0], None if first else ins[1], ins[-1], 1e-5)
    normed, total = fused(*args)
    ref_normed, ref_total = norm_k.add_rms_norm_ref(refs[0], None if first else refs[1], refs[-1], 1e-5)
    assert normed.dtype == dtype and total.dtype == torch.float32
    tol = FP32 if dtype == torch.float32 else BF16
    compare(torch.cat([normed.float(), total], -1), torch.cat([ref_normed, ref_total], -1), ins, refs, tol)
    last, none = fused(*args, keep_residual=False)
    assert none is None
    compare(last, ref_normed.to(dtype), ins, refs, tol)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_triton_dechunk_equals_reference_at_training_size(dtype):
    """Long rows (many tiles, packed resets) in the dtype training uses."""
    fast = kernel("ema_dechunk")
    g = torch.Generator("cuda").manual_seed(4)
    b, m, d, l = 2, 3000, 512, 8192
    x = torch.randn(b, m, d, device="cuda", generator=g).to(dtype)
    p = torch.rand(b, m, device="cuda", generator=g) * 0.9 + 0.05
    p[:, [0, 700, 701, 2999]] = 1.0
    idx = torch.sort(torch.randint(0, m, (b, l), device="cuda", generator=g), dim=1).values
    ins, refs = leaves(x, p), leaves(x.float(), p)
    with torch.no_grad():
        ref_fwd = ema_k.ema_dechunk_ref(x.float(), p, idx)  # sequential loop: forward only at this size
    torch.testing.assert_close(fast(*ins, idx).float(), ref_fwd, **(FP32 if dtype == torch.float32 else BF16))
    small = slice(0, 400)
    ins, refs = leaves(x[:, small], p[:, small]), leaves(x[:, small].float(), p[:, small])
    idx_small = idx.clamp(max=399)
    compare(
        fast(*ins, idx_small),
        ema_k.ema_dechunk_ref(*refs, idx_small),
        ins,
        refs,
        FP32 if dtype == torch.float32 else BF16,
    )


def test_triton_dechunk_equals_reference_chunk_scan_reuse():
    """Our kernel and the reference model's SSD-based EMA agree (up to its clamping of p)."""
    ours = kernel("ema")
    kernel("ssd")
    from hnet_genomics.kernels.gpu_mamba import ema_via_chunk_scan

    g = torch.Generator("cuda").manual_seed(5)
    x = torch.randn(2, 1000, 256, device="cuda", generator=g)
    p = torch.rand(2, 1000, device="cuda", generator=g) * 0.98 + 0.01
    torch.testing.assert_close(ours(x, p), ema_via_chunk_scan(x, p), rtol=1e-2, atol=1e-2)  # its B*C in TF32


def _lm_loss(out, ids):
    return F.cross_entropy(out.logits[:, :-1].flatten(0, 1).float(), ids[:, 1:].flatten()) + 0.03 * out.ratio_loss


@pytest.mark.parametrize("packed", [False, True])
def test_hnet_on_gpu_kernels_matches_torch_path(packed, dna_batch, torch_path, monkeypatch):
    """Same weights, same real DNA: logits agree in every sequence whose boundaries agree; a boundary may flip
    only where p sits within rounding of 0.5 (the kernels' TF32 and summation order differ from torch's)."""
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    torch.manual_seed(0)
    model = build_model(small_model_config("dna/hnet_1stage_tiny")).cuda()
    ids = dna_batch(4, 256).cuda()
    kwargs = {}
    if packed:
        ids, kwargs = ids.reshape(1, -1), {"cu_seqlens": torch.tensor([0, 256, 512, 768, 1024], device="cuda")}
    fast = model(ids, **kwargs)
    grads_fast = torch.autograd.grad(_lm_loss(fast, ids), list(model.parameters()), allow_unused=True)
    with torch_path:
        ref = model(ids, **kwargs)
        grads_ref = torch.autograd.grad(_lm_loss(ref, ids), list(model.parameters()), allow_unused=True)
    torch.testing.assert_close(fast.boundary_probs[0], ref.boundary_probs[0], **FP32)
    flipped = fast.boundary_masks[0] != ref.boundary_masks[0]
    assert bool(((ref.boundary_probs[0] - 0.5).abs() < 1e-3)[flipped].all())
    per_sequence = lambda t: t.reshape(4, 256, *t.shape[2:])  # noqa: E731 - rows or packed segments alike
    agree = ~per_sequence(flipped).any(1)
    assert int(agree.sum()) >= 3
    torch.testing.assert_close(per_sequence(fast.logits)[agree], per_sequence(ref.logits)[agree], rtol=1e-2, atol=1e-2)
    if bool(agree.all()):
        for a, b in zip(grads_fast, grads_ref):
            if a is not None:
                torch.testing.assert_close(a, b, rtol=5e-2, atol=5e-3)


@pytest.mark.parametrize("packed", [False, True])
def test_fused_mamba2_mixer_equals_the_torch_mixer(packed, torch_path):
    """mamba_split_conv1d_scan_combined (or the unfused kernels when causal-conv1d is absent) behind the block."""
    from hnet_genomics.config import SSMConfig
    from hnet_genomics.model.mamba2 import Mamba2

    torch.manual_seed(0)
    mixer = Mamba2(128, SSMConfig(d_state=64, expand=2, d_conv=4, chunk_size=64, head_dim=32, ngroups=2)).cuda()
    hidden = torch.randn(1 if packed else 2, 300, 128, device="cuda")
    geom = (
        Geometry.from_cu_seqlens(CU.cuda(), 300)
        if packed
        else Geometry.padded(torch.ones(2, 300, dtype=torch.bool, device="cuda"))
    )
    ins, refs = leaves(hidden), leaves(hidden)
    params = list(mixer.parameters())
    out = mixer(ins[0], geom)
    with torch_path:
        ref = mixer(refs[0], geom)
    compare(out, ref, ins + params, refs + params, FP32)


def test_segment_attention_on_a_packed_row_of_many_sequences(torch_path):
    """The SDPA path a packed row takes without flash-attn: exact against the masked softmax, in bf16."""
    lengths = [1, 70, 1, 119, 5, 300, 33, 2] * 8
    seq_idx = torch.cat([torch.full((n,), i) for i, n in enumerate(lengths)])[None].cuda()
    g = torch.Generator("cuda").manual_seed(8)
    q, k, v = (torch.randn(1, 4, seq_idx.shape[1], 64, device="cuda", generator=g).bfloat16() for _ in range(3))
    ins, refs = leaves(q, k, v), leaves(q.float(), k.float(), v.float())
    with torch_path:
        out = attn_k.attention(*ins, seq_idx, 64, single_sequence_rows=False)
    compare(out, attn_k.attention_ref(*refs, seq_idx, 64), ins, refs, BF16)


def test_fused_routing_launches_on_a_packed_row_beyond_the_grid_axis_limit():
    fast = kernel("routing")
    from hnet_genomics.kernels import routing as routing_k

    g = torch.Generator("cuda").manual_seed(9)
    q, k = (torch.randn(1, 1_100_000, 32, device="cuda", generator=g) for _ in range(2))
    starts = torch.zeros(1, 1_100_000, dtype=torch.bool, device="cuda")
    starts[:, ::1024] = True
    p, _ = fast(q, k, starts)
    torch.testing.assert_close(p, routing_k.routing_probs_ref(q, k, starts), **FP32)


@pytest.mark.parametrize(
    "name", ["dna/hnet_1stage_tiny", "dna/hnet_2stage_tiny", "dna/mamba2_tiny", "dna/transformer_tiny"]
)
def test_bf16_autocast_training_on_packed_dna_stays_finite(name, dna_batch):
    torch.manual_seed(0)
    model = build_model(small_model_config(name)).cuda()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    cu = torch.tensor([0, 1000, 1001, 2600, 4096], device="cuda")
    for step in range(3):
        ids = dna_batch(1, 4096, seed=step).cuda()
        with torch.autocast("cuda", dtype=torch.bfloat16):
            loss = _lm_loss(model(ids, cu_seqlens=cu), ids)
        assert torch.isfinite(loss), f"step {step}: loss {loss.item()}"
        opt.zero_grad()
        loss.backward()
        assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
        opt.step()
