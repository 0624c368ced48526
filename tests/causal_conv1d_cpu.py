"""A CPU stand-in for causal-conv1d's compiled extension (``causal_conv1d_cuda``), for wiring tests.

causal-conv1d's Python interface (``causal_conv1d_fn``, ``cpp_functions``) and mamba-ssm's fused mixer call
four functions of the compiled module. This stand-in computes them in fp32 torch and enforces the input
contract the CUDA code checks (dtypes, shapes, the channel-last layout that ``seq_idx`` needs, strides in
multiples of 8, bias dtype equal to the weight's), so a wrong layout, dtype or argument order in our wrappers
fails on the CPU exactly where it would fail on a GPU. The kernels' arithmetic is tested on GPUs.
"""

from __future__ import annotations

import sys
import types

import torch
import torch.nn.functional as F

FLOATS = (torch.float32, torch.float16, torch.bfloat16)


def _check(x, weight, bias, seq_idx, grad=None):
    assert x.dtype in FLOATS and weight.dtype in FLOATS, (x.dtype, weight.dtype)
    b, dim, seqlen = x.shape
    assert weight.shape[0] == dim and 2 <= weight.shape[1] <= 4, "causal_conv1d only supports width 2 to 4"
    assert x.stride(2) == 1 or x.stride(1) == 1
    channel_last = x.stride(1) == 1 and x.stride(2) > 1
    if channel_last:
        assert dim % 8 == 0, "causal_conv1d only supports channel dimension divisible by 8 for now"
        assert x.stride(2) % 8 == 0 and x.stride(0) % 8 == 0, "channel last layout requires strides % 8 == 0"
    if bias is not None:
        assert bias.dtype == weight.dtype and bias.stride(-1) == 1 and bias.shape == (dim,)
    if seq_idx is not None:
        assert channel_last, "seq_idx is only supported for channel last layout"
        assert seq_idx.dtype == torch.int32 and seq_idx.is_contiguous() and seq_idx.shape == (b, seqlen)
    if grad is not None:
        assert grad.shape == x.shape
    return channel_last


def _same_sequence(seq_idx, shift, length):
    """(B, L) bool: position t and t - shift belong to one sequence (always, without seq_idx)."""
    if seq_idx is None or not shift:
        return None
    return F.pad(seq_idx, (shift, 0), value=-1)[..., :length] == seq_idx


def _shift(x, shift, same):
    """x[..., t - shift] where it lies in the same sequence, 0 elsewhere."""
    out = F.pad(x, (shift, 0))[..., : x.shape[-1]]
    return out if same is None else out * same[:, None, :]


def _conv_pre(x, weight, bias, seq_idx):
    """(B, C, L) fp32 depthwise causal conv before the activation; taps never cross a change of ``seq_idx``."""
    k, length = weight.shape[1], x.shape[-1]
    out = sum(
        _shift(x.float(), s, _same_sequence(seq_idx, s, length)) * weight.float()[:, k - 1 - s, None] for s in range(k)
    )
    return out if bias is None else out + bias.float()[:, None]


def causal_conv1d_fwd(x, weight, bias, seq_idx, initial_states, out, final_states_out, silu):
    _check(x, weight, bias, seq_idx)
    assert initial_states is None and final_states_out is None, "not used by the wrappers under test"
    pre = _conv_pre(x, weight, bias, seq_idx)
    out.copy_((F.silu(pre) if silu else pre).to(out.dtype))


def causal_conv1d_bwd(
    x, weight, bias, dout, seq_idx, initial_states, dfinal_states, dx, dweight, dbias, dinitial_states, silu
):
    """Analytic gradients (a custom op's implementation runs below autograd)."""
    channel_last = _check(x, weight, bias, seq_idx, grad=dout)
    assert (bias is None) == (dbias is None)
    assert dx.dtype == x.dtype and dx.shape == x.shape and (dx.stride(1) == 1 if channel_last else dx.stride(2) == 1)
    g = dout.float()
    if silu:
        pre = _conv_pre(x, weight, bias, seq_idx)
        sig = torch.sigmoid(pre)
        g = g * sig * (1 + pre * (1 - sig))
    k, length = weight.shape[1], x.shape[-1]
    xf, wf = x.float(), weight.float()
    grad_x = torch.zeros_like(xf)
    for s in range(k):
        same = _same_sequence(seq_idx, s, length)
        # y[t] += w[k-1-s] x[t-s]: x[t'] receives w[k-1-s] g[t'+s], where t'+s and t' share a sequence
        masked = g if same is None else g * same[:, None, :]
        grad_x += F.pad(masked, (0, s))[..., s:] * wf[:, k - 1 - s, None]
        dweight[:, k - 1 - s] += (g * _shift(xf, s, same)).sum((0, 2)).to(dweight.dtype)
    dx.copy_(grad_x.to(dx.dtype))
    if dbias is not None:
        dbias += g.sum((0, 2)).to(dbias.dtype)


def causal_conv1d_update(*args, **kwargs):
    raise NotImplementedError("decoding steps do not go through the CUDA conv")


def install() -> types.ModuleType:
    """Register the stand-in as ``causal_conv1d_cuda`` (before ``causal_conv1d`` is first imported)."""
    module = types.ModuleType("causal_conv1d_cuda")
    module.causal_conv1d_fwd = causal_conv1d_fwd
    module.causal_conv1d_bwd = causal_conv1d_bwd
    module.causal_conv1d_update = causal_conv1d_update
    sys.modules["causal_conv1d_cuda"] = module
    return module
