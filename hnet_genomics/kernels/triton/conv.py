"""Depthwise causal convolution (Mamba-2's conv before the SSM) in Triton: y[t] = act(bias + sum_k w[K-1-k] x[t-k]).

One forward and one backward kernel, fp32 accumulation whatever the input and weight dtypes (bf16 activations
with fp32 weights under autocast, or any mix of fp32/bf16/fp16), SiLU fused, and the packed layout's sequence
resets: a tap never reads across a sequence start. Two conventions for the resets, both read in the kernel with
no preparation launch: the model's ``positions`` (tap k of position t is used when positions[t] >= k) and
causal-conv1d's ``seq_idx`` (used when seq_idx[t - k] == seq_idx[t]).

The input is read through its strides, so a column slice of the in-projection output is used where it lies (no
copy; only a tensor whose channels are not contiguous is copied); the output is a new (B, L, C) tensor in the
input's dtype.

The backward saves nothing but the input: it recomputes the pre-activation of the positions each tile needs
(the SiLU derivative), writes dx and, per program, the partial sums of the weight and bias gradients over its
rows (a few hundred rows of partials, summed in torch: deterministic, no atomics). Its tiles are small (16
positions x 128 channels, 8 warps): recomputing K shifted pre-activations keeps many values live, and ptxas
reports no spill at these sizes for sm_90 (it does at 32 x 128 with 4 warps;
``benchmarks/results/conv-registers-sm90.md``).

``causal_conv1d_triton`` is the dispatch entry (``kernels.conv.causal_conv1d``'s signature);
``conv_fwd_function``/``conv_bwd_function`` follow causal-conv1d's ``cpp_functions`` contract on (B, C, L)
views, which is how mamba-ssm's fused mixer calls its conv (``gpu_mamba.require_split_triton_conv``).

Imported lazily (dispatch or tests); ``TRITON_INTERPRET=1`` set before this import runs it on CPU tensors.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import triton
import triton.language as tl

from hnet_genomics.kernels.triton.device import on_device_of

BLOCK_L = 16  # positions per tile
BLOCK_C = 128  # channels per program: one 16-byte vector of bf16 per thread and row
TILES = 16  # tiles per backward program: its weight-gradient partials cover BLOCK_L * TILES rows
NUM_WARPS = 8
MAX_WIDTH = 8  # the taps are unrolled; Mamba-2 uses 4

NO_RESETS, POSITIONS, SEQ_IDX = 0, 1, 2  # the ``RESETS`` modes
FLOATS = (torch.float32, torch.bfloat16, torch.float16)


def require() -> None:
    """Importing this module needs triton; nothing else to check."""


@triton.jit
def _index_at(idx_ptr, rows, in_rows, stride_il, RESETS: tl.constexpr):
    """What the reset test compares for output rows ``rows``: positions or seq_idx there (the rows themselves
    without resets), as int64."""
    here = rows
    if RESETS != 0:
        here = tl.load(idx_ptr + rows * stride_il, mask=in_rows, other=0).to(tl.int64)
    return here


@triton.jit
def _tap_ok(idx_ptr, rows, in_rows, here, stride_il, k, RESETS: tl.constexpr):
    """Tap k of output rows ``rows`` reads row ``rows - k``: inside the tensor and in the same sequence."""
    ok = in_rows & (rows >= k)
    if RESETS == 1:
        ok = ok & (here >= k)
    if RESETS == 2:
        there = tl.load(idx_ptr + (rows - k) * stride_il, mask=ok, other=-1).to(tl.int64)
        ok = ok & (there == here)
    return ok


@triton.jit
def _pre_activation(
    x_row,
    w_ptr,
    bias_ptr,
    idx_row,
    rows,
    in_rows,
    here,
    offs_c,
    c_mask,
    stride_xl,
    stride_wc,
    stride_wk,
    stride_il,
    K: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    RESETS: tl.constexpr,
    BLOCK_L: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    """bias + sum_k w[:, K-1-k] x[rows - k] over the taps that stay in the sequence, in fp32 (channels are
    contiguous: the wrappers guarantee a unit channel stride)."""
    acc = tl.zeros((BLOCK_L, BLOCK_C), tl.float32)
    for k in tl.static_range(K):
        ok = _tap_ok(idx_row, rows, in_rows, here, stride_il, k, RESETS)
        w = tl.load(w_ptr + offs_c * stride_wc + (K - 1 - k) * stride_wk, mask=c_mask, other=0.0).to(tl.float32)
        x = tl.load(
            x_row + (rows - k)[:, None] * stride_xl + offs_c[None, :], mask=ok[:, None] & c_mask[None, :], other=0.0
        ).to(tl.float32)
        acc += x * w[None, :]
    if HAS_BIAS:
        acc += tl.load(bias_ptr + offs_c, mask=c_mask, other=0.0).to(tl.float32)[None, :]
    return acc


@triton.jit
def _grad_pre(
    x_row,
    w_ptr,
    bias_ptr,
    idx_row,
    dy_row,
    rows,
    in_rows,
    here,
    offs_c,
    c_mask,
    stride_xl,
    stride_wc,
    stride_wk,
    stride_il,
    stride_gl,
    K: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    RESETS: tl.constexpr,
    SILU: tl.constexpr,
    BLOCK_L: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    """The gradient at the pre-activation of output rows ``rows``: dy there, times silu'(pre) with the
    pre-activation recomputed from x."""
    g = tl.load(
        dy_row + rows[:, None] * stride_gl + offs_c[None, :], mask=in_rows[:, None] & c_mask[None, :], other=0.0
    ).to(tl.float32)
    if SILU:
        pre = _pre_activation(
            x_row,
            w_ptr,
            bias_ptr,
            idx_row,
            rows,
            in_rows,
            here,
            offs_c,
            c_mask,
            stride_xl,
            stride_wc,
            stride_wk,
            stride_il,
            K,
            HAS_BIAS,
            RESETS,
            BLOCK_L,
            BLOCK_C,
        )
        sig = tl.sigmoid(pre)
        g = g * sig * (1.0 + pre * (1.0 - sig))
    return g


@triton.jit
def _conv_fwd(
    x_ptr,
    w_ptr,
    bias_ptr,
    idx_ptr,
    y_ptr,
    L,
    C,
    n_tiles,
    stride_xb,
    stride_xl,
    stride_wc,
    stride_wk,
    stride_ib,
    stride_il,
    stride_yb,
    stride_yl,
    K: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    RESETS: tl.constexpr,
    SILU: tl.constexpr,
    BLOCK_L: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    # (row, tile) flattened on axis 0, which has no 65,535 limit; channel blocks on axis 1
    pid = tl.program_id(0)
    b = (pid // n_tiles).to(tl.int64)
    rows = (pid % n_tiles).to(tl.int64) * BLOCK_L + tl.arange(0, BLOCK_L)
    offs_c = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    in_rows = rows < L
    c_mask = offs_c < C
    idx_row = idx_ptr + b * stride_ib
    here = _index_at(idx_row, rows, in_rows, stride_il, RESETS)
    acc = _pre_activation(
        x_ptr + b * stride_xb,
        w_ptr,
        bias_ptr,
        idx_row,
        rows,
        in_rows,
        here,
        offs_c,
        c_mask,
        stride_xl,
        stride_wc,
        stride_wk,
        stride_il,
        K,
        HAS_BIAS,
        RESETS,
        BLOCK_L,
        BLOCK_C,
    )
    if SILU:
        acc = acc * tl.sigmoid(acc)
    tl.store(
        y_ptr + b * stride_yb + rows[:, None] * stride_yl + offs_c[None, :],
        acc.to(y_ptr.dtype.element_ty),
        mask=in_rows[:, None] & c_mask[None, :],
    )


@triton.jit
def _conv_bwd(
    x_ptr,
    w_ptr,
    bias_ptr,
    idx_ptr,
    dy_ptr,
    dx_ptr,
    part_ptr,
    L,
    C,
    n_groups,
    tiles,
    stride_xb,
    stride_xl,
    stride_wc,
    stride_wk,
    stride_ib,
    stride_il,
    stride_gb,
    stride_gl,
    stride_db,
    stride_dl,
    K: tl.constexpr,
    K_PAD: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    RESETS: tl.constexpr,
    SILU: tl.constexpr,
    BLOCK_L: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    """Per tile of ``tiles`` consecutive ones: g = dy * silu'(pre) at its rows gives the tile's share of the
    weight gradient (sum_t g[t] x[t - k] for dw[:, K-1-k]) and of the bias gradient; then
    dx[s] = sum_k [tap k of s + k is used] w[:, K-1-k] g[s + k], g recomputed at s + k. The program's weight and
    bias sums go to row ``pid`` of ``part_ptr``: C * K in the weight's (C, K) order, then C."""
    pid = tl.program_id(0)
    b = (pid // n_groups).to(tl.int64)
    group = (pid % n_groups).to(tl.int64)
    offs_c = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    c_mask = offs_c < C
    x_row = x_ptr + b * stride_xb
    dy_row = dy_ptr + b * stride_gb
    idx_row = idx_ptr + b * stride_ib
    taps = tl.arange(0, K_PAD)
    dw = tl.zeros((K_PAD, BLOCK_C), tl.float32)
    db = tl.zeros((BLOCK_C,), tl.float32)
    for i in range(tiles):  # a runtime bound: the tiles run one after the other, not unrolled
        rows = (group * tiles + i) * BLOCK_L + tl.arange(0, BLOCK_L)
        in_rows = rows < L
        here = _index_at(idx_row, rows, in_rows, stride_il, RESETS)
        g = _grad_pre(
            x_row,
            w_ptr,
            bias_ptr,
            idx_row,
            dy_row,
            rows,
            in_rows,
            here,
            offs_c,
            c_mask,
            stride_xl,
            stride_wc,
            stride_wk,
            stride_il,
            stride_gl,
            K,
            HAS_BIAS,
            RESETS,
            SILU,
            BLOCK_L,
            BLOCK_C,
        )
        db += tl.sum(g, axis=0)
        for k in tl.static_range(K):
            ok = _tap_ok(idx_row, rows, in_rows, here, stride_il, k, RESETS)
            x = tl.load(
                x_row + (rows - k)[:, None] * stride_xl + offs_c[None, :],
                mask=ok[:, None] & c_mask[None, :],
                other=0.0,
            ).to(tl.float32)
            dw += tl.where(taps[:, None] == K - 1 - k, tl.sum(g * x, axis=0)[None, :], 0.0)
        w_last = tl.load(w_ptr + offs_c * stride_wc + (K - 1) * stride_wk, mask=c_mask, other=0.0).to(tl.float32)
        dx = g * w_last[None, :]  # tap 0: output row s reads x[s] itself
        for k in range(1, K):
            out_rows = rows + k
            in_out = out_rows < L
            here_k = _index_at(idx_row, out_rows, in_out, stride_il, RESETS)
            g_k = _grad_pre(
                x_row,
                w_ptr,
                bias_ptr,
                idx_row,
                dy_row,
                out_rows,
                in_out,
                here_k,
                offs_c,
                c_mask,
                stride_xl,
                stride_wc,
                stride_wk,
                stride_il,
                stride_gl,
                K,
                HAS_BIAS,
                RESETS,
                SILU,
                BLOCK_L,
                BLOCK_C,
            )
            ok = _tap_ok(idx_row, out_rows, in_out, here_k, stride_il, k, RESETS)
            w = tl.load(w_ptr + offs_c * stride_wc + (K - 1 - k) * stride_wk, mask=c_mask, other=0.0).to(tl.float32)
            dx += tl.where(ok[:, None], g_k * w[None, :], 0.0)
        tl.store(
            dx_ptr + b * stride_db + rows[:, None] * stride_dl + offs_c[None, :],
            dx.to(dx_ptr.dtype.element_ty),
            mask=in_rows[:, None] & c_mask[None, :],
        )
    part_row = part_ptr + pid.to(tl.int64) * (C * (K + 1))
    tl.store(part_row + offs_c[None, :] * K + taps[:, None], dw, mask=(taps < K)[:, None] & c_mask[None, :])
    if HAS_BIAS:
        tl.store(part_row + C * K + offs_c, db, mask=c_mask)


class Tiles(NamedTuple):
    """Tile sizes of both kernels (``benchmarks/conv.py --tiles`` compares choices on a GPU)."""

    rows: int = BLOCK_L
    channels: int = BLOCK_C
    per_program: int = TILES  # backward: consecutive tiles per program
    warps: int = NUM_WARPS


SHIPPED = Tiles()
ALTERNATIVES = (Tiles(32, 128, 8, 4), Tiles(8, 128, 32, 4), Tiles(16, 64, 16, 4))  # benchmarked against SHIPPED


def _block_c(c: int, block_c: int) -> int:
    return min(block_c, max(16, triton.next_power_of_2(c)))


def _index_args(index: torch.Tensor | None, fallback: torch.Tensor) -> tuple[torch.Tensor, int, int]:
    if index is None:
        return fallback, 0, 0  # never read (RESETS = 0)
    return index, index.stride(0), index.stride(1)


def _unit_channel_stride(t: torch.Tensor) -> torch.Tensor:
    """(B, L, C) with contiguous channels, as the kernels read and write them (a projection slice already is)."""
    return t if t.stride(-1) == 1 else t.contiguous()


def launch_fwd(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    index: torch.Tensor | None,
    resets: int,
    silu: bool,
    out: torch.Tensor,
    tiles: Tiles = SHIPPED,
) -> torch.Tensor:
    """Fill ``out`` (B, L, C, contiguous channels) with the convolution of x (B, L, C), read through its strides."""
    x = _unit_channel_stride(x)
    assert out.stride(-1) == 1
    b, l, c = x.shape
    n_tiles = triton.cdiv(l, tiles.rows)
    bc = _block_c(c, tiles.channels)
    idx, stride_ib, stride_il = _index_args(index, weight)
    with on_device_of(x):
        _conv_fwd[(b * n_tiles, triton.cdiv(c, bc))](
            x,
            weight,
            weight if bias is None else bias,
            idx,
            out,
            l,
            c,
            n_tiles,
            x.stride(0),
            x.stride(1),
            weight.stride(0),
            weight.stride(1),
            stride_ib,
            stride_il,
            out.stride(0),
            out.stride(1),
            K=weight.shape[1],
            HAS_BIAS=bias is not None,
            RESETS=resets,
            SILU=silu,
            BLOCK_L=tiles.rows,
            BLOCK_C=bc,
            num_warps=tiles.warps,
        )
    return out


def launch_bwd(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    index: torch.Tensor | None,
    resets: int,
    silu: bool,
    dy: torch.Tensor,
    dx: torch.Tensor,
    tiles: Tiles = SHIPPED,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Fill ``dx`` (B, L, C, any strides); return the weight gradient (C, K) and bias gradient (C,) in fp32."""
    x, dy = _unit_channel_stride(x), _unit_channel_stride(dy)
    into = dx if dx.stride(-1) == 1 else torch.empty(dx.shape, device=dx.device, dtype=dx.dtype)
    b, l, c = x.shape
    k = weight.shape[1]
    n_groups = triton.cdiv(l, tiles.rows * tiles.per_program)
    bc = _block_c(c, tiles.channels)
    idx, stride_ib, stride_il = _index_args(index, weight)
    partials = torch.empty(b * n_groups, c * (k + 1), device=x.device, dtype=torch.float32)
    with on_device_of(x):
        _conv_bwd[(b * n_groups, triton.cdiv(c, bc))](
            x,
            weight,
            weight if bias is None else bias,
            idx,
            dy,
            into,
            partials,
            l,
            c,
            n_groups,
            tiles.per_program,
            x.stride(0),
            x.stride(1),
            weight.stride(0),
            weight.stride(1),
            stride_ib,
            stride_il,
            dy.stride(0),
            dy.stride(1),
            into.stride(0),
            into.stride(1),
            K=k,
            K_PAD=triton.next_power_of_2(k),
            HAS_BIAS=bias is not None,
            RESETS=resets,
            SILU=silu,
            BLOCK_L=tiles.rows,
            BLOCK_C=bc,
            num_warps=tiles.warps,
        )
    if into is not dx:
        dx.copy_(into)
    sums = partials.sum(0)
    return sums[: c * k].view(c, k), (sums[c * k :] if bias is not None else None)


class CausalConv1d(torch.autograd.Function):
    """x (B, L, C) -> (B, L, C); saves only its inputs (the output is recomputed where the backward needs it)."""

    @staticmethod
    def forward(ctx, x, weight, bias, index, resets: int, silu: bool, tiles: Tiles):
        out = torch.empty(x.shape, device=x.device, dtype=x.dtype)
        launch_fwd(x, weight, bias, index, resets, silu, out, tiles)
        ctx.save_for_backward(x, weight, bias, index)
        ctx.resets, ctx.silu, ctx.tiles = resets, silu, tiles
        return out

    @staticmethod
    def backward(ctx, dy):
        x, weight, bias, index = ctx.saved_tensors
        dx = torch.empty(x.shape, device=x.device, dtype=x.dtype)
        dw, db = launch_bwd(x, weight, bias, index, ctx.resets, ctx.silu, dy, dx, ctx.tiles)
        return dx, dw.to(weight.dtype), None if db is None else db.to(bias.dtype), None, None, None, None


def supports(x: torch.Tensor, weight: torch.Tensor) -> bool:
    return (
        x.dim() == 3
        and weight.dim() == 2
        and weight.shape[0] == x.shape[-1]
        and 1 <= weight.shape[1] <= MAX_WIDTH
        and x.dtype in FLOATS
        and weight.dtype in FLOATS
    )


def causal_conv1d_triton(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    positions: torch.Tensor | None = None,
    has_resets: bool = False,
    activation: str | None = None,
    tiles: Tiles = SHIPPED,
) -> torch.Tensor | None:
    """``kernels.conv.causal_conv1d``'s contract: x (B, L, C) (any strides, e.g. a column slice of the
    in-projection), weight (C, K), bias (C,) -> (B, L, C) in x's dtype. With ``has_resets``, tap k of position t
    is used only when positions[t] >= k. None for shapes or dtypes the kernel does not take."""
    if not supports(x, weight):
        return None
    if has_resets and (positions is None or positions.shape != x.shape[:2]):
        raise ValueError("has_resets needs positions of shape (B, L)")
    index = positions if has_resets else None
    resets = POSITIONS if has_resets else NO_RESETS
    return CausalConv1d.apply(x, weight, bias, index, resets, activation == "silu", tiles)


def _check_seq_idx(seq_idx: torch.Tensor | None, x: torch.Tensor) -> None:
    if seq_idx is not None and (seq_idx.dtype != torch.int32 or seq_idx.shape != (x.shape[0], x.shape[2])):
        raise ValueError(f"seq_idx must be int32 of shape (B, L), got {seq_idx.dtype} {tuple(seq_idx.shape)}")


def conv_fwd_function(x, weight, bias, seq_idx, initial_states, final_states_out, silu_activation) -> torch.Tensor:
    """causal-conv1d's ``causal_conv1d_fwd_function``: x (B, C, L) (any strides) -> (B, C, L), the transpose of
    a contiguous (B, L, C) tensor (the channel-last layout mamba-ssm rearranges back without a copy)."""
    if initial_states is not None or final_states_out is not None:
        raise NotImplementedError("the Triton conv keeps no state between calls")
    if not isinstance(silu_activation, bool) or not supports(x.transpose(1, 2), weight):
        raise ValueError("conv_fwd_function: arguments do not follow causal-conv1d's contract")
    _check_seq_idx(seq_idx, x)
    b, c, l = x.shape
    out = torch.empty(b, l, c, device=x.device, dtype=x.dtype)
    launch_fwd(
        x.transpose(1, 2), weight, bias, seq_idx, SEQ_IDX if seq_idx is not None else NO_RESETS, silu_activation, out
    )
    return out.transpose(1, 2)


def conv_bwd_function(
    x, weight, bias, dout, seq_idx, initial_states, dfinal_states, dx, return_dinitial_states, silu_activation
):
    """causal-conv1d's ``causal_conv1d_bwd_function`` on (B, C, L) tensors: (dx, dweight, dbias, None), dx written
    into the given tensor (mamba-ssm passes its slice of the in-projection's gradient)."""
    if initial_states is not None or dfinal_states is not None or return_dinitial_states:
        raise NotImplementedError("the Triton conv keeps no state between calls")
    if not isinstance(silu_activation, bool) or not supports(x.transpose(1, 2), weight) or dout.shape != x.shape:
        raise ValueError("conv_bwd_function: arguments do not follow causal-conv1d's contract")
    _check_seq_idx(seq_idx, x)
    if dx is None:
        dx = torch.empty_like(dout)
    dw, db = launch_bwd(
        x.transpose(1, 2),
        weight,
        bias,
        seq_idx,
        SEQ_IDX if seq_idx is not None else NO_RESETS,
        silu_activation,
        dout.transpose(1, 2),
        dx.transpose(1, 2),
    )
    return dx, dw.to(weight.dtype), None if db is None else db.to(bias.dtype), None
