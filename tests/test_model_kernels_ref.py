"""Every torch fast path equals its naive reference (the contract GPU kernels are later held to)."""

import pytest
import torch

from hnet_genomics.kernels import attention as attn_k
from hnet_genomics.kernels import conv as conv_k
from hnet_genomics.kernels import ema as ema_k
from hnet_genomics.kernels import ssd as ssd_k


def _packed_reset(b, l, starts_at):
    reset = torch.zeros(b, l, dtype=torch.bool)
    reset[:, starts_at] = True
    return reset


@pytest.mark.parametrize("chunk", [4, 16, 64])
@pytest.mark.parametrize("with_reset", [False, True])
def test_chunked_ssd_equals_per_step_recurrence(chunk, with_reset):
    torch.manual_seed(chunk)
    b, l, h, p, g, n = 2, 37, 4, 8, 2, 6
    x = torch.randn(b, l, h, p, dtype=torch.float64)
    dt = torch.rand(b, l, h, dtype=torch.float64) * 0.5 + 0.01
    A = -torch.rand(h, dtype=torch.float64) * 3 - 0.1
    Bm, Cm = torch.randn(b, l, g, n, dtype=torch.float64), torch.randn(b, l, g, n, dtype=torch.float64)
    reset = _packed_reset(b, l, [0, 9, 10, 30]) if with_reset else None
    y_ref, s_ref = ssd_k.ssd_scan_ref(x, dt, A, Bm, Cm, reset=reset, return_final_state=True)
    y, s = ssd_k.ssd_scan_chunked(x, dt, A, Bm, Cm, reset=reset, chunk_size=chunk, return_final_state=True)
    torch.testing.assert_close(y.double(), y_ref.double(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(s.double(), s_ref.double(), rtol=1e-5, atol=1e-5)


def test_ssd_reset_isolates_sequences():
    torch.manual_seed(1)
    b, l, h, p, n = 1, 20, 2, 4, 3
    x, dt = torch.randn(b, l, h, p), torch.rand(b, l, h)
    A, Bm, Cm = -torch.rand(h), torch.randn(b, l, 1, n), torch.randn(b, l, 1, n)
    reset = _packed_reset(b, l, [0, 12])
    y = ssd_k.ssd_scan_chunked(x, dt, A, Bm, Cm, reset=reset, chunk_size=8)
    y_alone = ssd_k.ssd_scan_chunked(x[:, 12:], dt[:, 12:], A, Bm[:, 12:], Cm[:, 12:], chunk_size=8)
    torch.testing.assert_close(y[:, 12:], y_alone, rtol=1e-5, atol=1e-6)


def test_ssd_step_continues_the_scan():
    torch.manual_seed(2)
    b, l, h, p, n = 2, 10, 2, 4, 3
    x, dt = torch.randn(b, l, h, p), torch.rand(b, l, h)
    A, Bm, Cm = -torch.rand(h), torch.randn(b, l, 1, n), torch.randn(b, l, 1, n)
    y_ref = ssd_k.ssd_scan_ref(x, dt, A, Bm, Cm)
    state = torch.zeros(b, h, p, n)
    for t in range(l):
        y, state = ssd_k.ssd_step(state, x[:, t], dt[:, t], A, Bm[:, t], Cm[:, t])
        torch.testing.assert_close(y, y_ref[:, t], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("chunk", [3, 16, 64])
def test_chunked_ema_equals_loop(chunk):
    torch.manual_seed(3)
    x = torch.randn(3, 50, 7, dtype=torch.float64)
    p = torch.rand(3, 50, dtype=torch.float64)
    p[:, 0] = 1.0
    p[1, 17] = 1.0  # a packed sequence start
    torch.testing.assert_close(ema_k.ema_scan_chunked(x, p, chunk), ema_k.ema_scan_ref(x, p))


def test_ema_reset_at_probability_one_forgets_the_past():
    x = torch.randn(1, 10, 4)
    p = torch.rand(1, 10)
    p[0, 0] = p[0, 6] = 1.0
    z = ema_k.ema_scan_chunked(x, p, 4)
    torch.testing.assert_close(z[:, 6:], ema_k.ema_scan_ref(x[:, 6:], p[:, 6:]))


@pytest.mark.parametrize("window", [-1, 5])
@pytest.mark.parametrize("packed", [False, True])
def test_sdpa_attention_equals_masked_softmax(window, packed):
    torch.manual_seed(4)
    b, h, l, d = (1, 3, 24, 8) if packed else (2, 3, 24, 8)
    q, k, v = (torch.randn(b, h, l, d) for _ in range(3))
    seq_idx = torch.zeros(b, l, dtype=torch.long)
    if packed:
        seq_idx[:, 7:] = 1
        seq_idx[:, 15:] = 2
    out = attn_k.attention(q, k, v, seq_idx, window, single_sequence_rows=not packed)
    torch.testing.assert_close(out, attn_k.attention_ref(q, k, v, seq_idx, window), rtol=1e-5, atol=1e-5)


PACKED_LENGTHS = [1, 70, 1, 119, 5, 300, 33, 2]  # one-token sequences, every length class from 1 to 512


def _packed_seq_idx(lengths):
    return torch.cat([torch.full((n,), i) for i, n in enumerate(lengths)])[None]


@pytest.mark.parametrize("window", [-1, 1, 5, 64, 1000])
@pytest.mark.parametrize("dense_limit", [4096, 16])  # 16: long windowed runs go block by block
def test_packed_sdpa_attention_equals_masked_softmax_forward_and_backward(window, dense_limit, monkeypatch):
    monkeypatch.setattr(attn_k, "DENSE_WINDOW_MASK_MAX", dense_limit)
    torch.manual_seed(7)
    seq_idx = _packed_seq_idx(PACKED_LENGTHS)
    q, k, v = (torch.randn(1, 3, seq_idx.shape[1], 8, dtype=torch.float64, requires_grad=True) for _ in range(3))
    out = attn_k.attention(q, k, v, seq_idx, window, single_sequence_rows=False)
    ref = attn_k.attention_ref(q.double(), k.double(), v.double(), seq_idx, window)
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=2e-6)  # the reference softmax runs in fp32
    weight = torch.randn(out.shape, dtype=torch.float64)
    for got, want in zip(
        torch.autograd.grad((out * weight).sum(), (q, k, v)), torch.autograd.grad((ref * weight).sum(), (q, k, v))
    ):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("window", [3, 40, 300])
def test_blocked_window_attention_on_one_long_sequence_per_row(window, monkeypatch):
    monkeypatch.setattr(attn_k, "DENSE_WINDOW_MASK_MAX", 16)
    torch.manual_seed(8)
    q, k, v = (torch.randn(2, 2, 1000, 8) for _ in range(3))
    seq_idx = torch.zeros(2, 1000, dtype=torch.long)
    torch.testing.assert_close(
        attn_k.attention(q, k, v, seq_idx, window), attn_k.attention_ref(q, k, v, seq_idx, window), rtol=1e-5, atol=1e-5
    )


def test_packed_attention_never_builds_a_mask_over_the_whole_row(monkeypatch):
    """256 sequences of 64 tokens in one row: every SDPA call must stay within one sequence's length."""
    seen = []
    real = torch.nn.functional.scaled_dot_product_attention

    def spy(q, k, v, attn_mask=None, **kwargs):
        seen.append((q.shape[-2], k.shape[-2], None if attn_mask is None else tuple(attn_mask.shape)))
        return real(q, k, v, attn_mask=attn_mask, **kwargs)

    monkeypatch.setattr(attn_k.F, "scaled_dot_product_attention", spy)
    seq_idx = _packed_seq_idx([64] * 256)
    q, k, v = (torch.randn(1, 2, seq_idx.shape[1], 8) for _ in range(3))
    for window in (-1, 16):
        attn_k.attention(q, k, v, seq_idx, window, single_sequence_rows=False)
    assert seen and all(lq <= 64 and lk <= 64 and (m is None or max(m[-2:]) <= 64) for lq, lk, m in seen)


def test_window_w_shows_each_query_itself_and_w_earlier_keys():
    """flash-attn's window_size=(w, 0): w + 1 visible keys once a query is w deep into its sequence."""
    seq_idx = torch.zeros(1, 10, dtype=torch.long)
    visible = attn_k.visibility_mask(seq_idx, window=3)[0, 0].sum(-1)
    assert visible.tolist() == [1, 2, 3, 4, 4, 4, 4, 4, 4, 4]


def test_windowed_attention_decoding_step_equals_forward():
    """The KV-cache step applies the same window as the full forward."""
    from hnet_genomics.model.attention import CausalSelfAttention
    from hnet_genomics.model.geometry import Geometry

    torch.manual_seed(9)
    block = CausalSelfAttention(d_model=16, num_heads=2, rotary_dim=4, window=3).eval()
    x = torch.randn(2, 12, 16)
    with torch.no_grad():
        full = block(x, Geometry.padded(torch.ones(2, 12, dtype=torch.bool)))
        cache = block.init_state(2, x.device, x.dtype, capacity=4)
        steps = []
        for t in range(12):
            y, cache = block.step(x[:, t], cache)
            steps.append(y)
    torch.testing.assert_close(torch.stack(steps, 1), full, rtol=1e-5, atol=1e-5)


def test_attention_reference_never_looks_ahead_or_across_sequences():
    torch.manual_seed(5)
    q, k, v = (torch.randn(1, 1, 12, 4) for _ in range(3))
    seq_idx = torch.tensor([[0] * 5 + [1] * 7])
    base = attn_k.attention_ref(q, k, v, seq_idx)
    v2 = v.clone()
    v2[..., 8, :] += 10.0  # a later key of sequence 1
    changed = (attn_k.attention_ref(q, k, v2, seq_idx) - base).abs().sum(-1)[0, 0]
    assert torch.all(changed[:8] == 0) and torch.all(changed[8:] > 0)


def test_depthwise_conv_fast_path_and_resets():
    torch.manual_seed(6)
    x, w, bias = torch.randn(2, 19, 5), torch.randn(5, 4), torch.randn(5)
    pos = torch.arange(19).expand(2, 19)
    torch.testing.assert_close(conv_k.causal_conv1d(x, w, bias), conv_k.causal_conv1d_grouped(x, w, bias))
    torch.testing.assert_close(conv_k.causal_conv1d_ref(x, w, bias, pos), conv_k.causal_conv1d_grouped(x, w, bias))
    # packed: a sequence starting at 11 must not see tokens 8..10
    pos_packed = torch.cat([torch.arange(11), torch.arange(8)]).expand(2, 19)
    y = conv_k.causal_conv1d(x, w, bias, pos_packed, has_resets=True)
    torch.testing.assert_close(y[:, 11:], conv_k.causal_conv1d(x[:, 11:], w, bias))
    state = torch.zeros(2, 5, 4)
    for t in range(19):
        yt, state = conv_k.causal_conv1d_step(state, x[:, t], w, bias)
        torch.testing.assert_close(yt, conv_k.causal_conv1d_ref(x, w, bias, pos)[:, t])


def test_torch_conv_keeps_a_bf16_activation_in_bf16_off_the_cpu_and_the_cpu_as_it_was():
    """fp32 parameters against a bf16 activation: the CPU path still promotes (its results unchanged), other
    devices (the meta device stands in for CUDA) compute the taps in bf16, within bf16 rounding of the former."""
    torch.manual_seed(7)
    x, w, bias = torch.randn(2, 19, 5).bfloat16(), torch.randn(5, 4), torch.randn(5)
    on_cpu = conv_k.causal_conv1d(x, w, bias, activation="silu")
    assert on_cpu.dtype == torch.float32
    assert torch.equal(on_cpu, torch.nn.functional.silu(conv_k.causal_conv1d_ref(x, w, bias)))
    off_cpu = conv_k.causal_conv1d(x.to("meta"), w.to("meta"), bias.to("meta"), activation="silu")
    assert off_cpu.dtype == torch.bfloat16 and off_cpu.shape == x.shape
    taps = conv_k.causal_conv1d_taps(x, w, bias, activation="silu")
    assert taps.dtype == torch.bfloat16
    torch.testing.assert_close(taps.float(), on_cpu, rtol=2e-2, atol=2e-2)
    assert conv_k.causal_conv1d_taps(x.float(), w, bias).dtype == torch.float32  # fp32 in, fp32 throughout


@pytest.mark.parametrize("x_dtype", [torch.float32, torch.bfloat16])
def test_fused_add_norm_adds_in_fp32_and_normalises_the_sum(x_dtype):
    """What a pre-norm block hands on: the fp32 residual plus the branch output, and that sum normalised in
    the branch's dtype; with no residual yet, the input starts it; the last norm returns no residual."""
    from hnet_genomics.kernels import norm as norm_k

    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 5, 16, generator=g).to(x_dtype)
    residual, w = torch.randn(2, 5, 16, generator=g), torch.rand(16, generator=g) + 0.5
    normed, total = norm_k.add_rms_norm(x, residual, w, 1e-5)
    assert normed.dtype == x_dtype and total.dtype == torch.float32
    assert torch.equal(total, residual + x.float())
    assert torch.equal(normed, norm_k.rms_norm_ref(total, w, 1e-5).to(x_dtype))
    normed, total = norm_k.add_rms_norm(x, None, w, 1e-5, out_dtype=torch.float32)
    assert torch.equal(total, x.float()) and normed.dtype == torch.float32
    last, none = norm_k.add_rms_norm(x, residual, w, 1e-5, keep_residual=False)
    assert none is None and torch.equal(last, norm_k.rms_norm_ref(residual + x.float(), w, 1e-5).to(x_dtype))
