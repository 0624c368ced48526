"""Fused EMA dechunk: z_m = p_m x_m + (1 - p_m) z_{m-1} over the chunks, then out[b, t] = z[b, idx[b, t]].

The scan is parallel over the sequence as well as rows and channels, because the packed layout has one row:
1. ``_tiles``: every (tile of BLOCK_T chunks, channel block, row) program scans its tile from a zero state,
   as one small matmul with the decay matrix W[i, j] = prod_{k=j+1..i} (1 - p_k) (built from a cumulative
   sum of logs, with resets p = 1 counted apart so they stay exact zeros), and records the tile's last value
   and its whole decay;
2. ``_carries``: per (channel block, row), the same tile recurrence over the tiles' (decay, last value)
   pairs, BLOCK_T tiles at a time, gives the state entering every tile;
3. ``_fixup``: every tile adds its entering state times the decay from the tile start;
4. ``_plug_back``: a separate launch over positions copies each chunk's value to the positions of the chunk.
The reference H-Net gets the same numbers by running the whole Mamba-2 chunk scan with a state of size one.

The backward is the same scan run backwards in time, h_m = g_m + (1 - p_{m+1}) h_{m+1}, with g the position
gradients summed per chunk (a scatter-add in torch); its fix-up step also writes dx_m = p_m h_m and the
per-channel-block partial sums of dp_m = sum_d h_m (x_m - z_{m-1}).

Imported lazily (dispatch or tests); ``TRITON_INTERPRET=1`` set before this import runs it on CPU tensors.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from hnet_genomics.kernels.triton.device import on_device_of

BLOCK_D = 32  # channels per program
BLOCK_T = 64  # chunks per tile (and tiles per step of the carry scan)
BLOCK_L = 128  # positions per plug-back program
NUM_WARPS = 4


def require() -> None:
    """Importing this module needs triton; nothing else to check."""


@triton.jit
def _decay_from_start(decay):
    """prod_{k <= i} decay_k down the tile, exact zeros after a reset (decay == 0); and the reset counts."""
    reset = decay == 0.0
    log_cum = tl.cumsum(tl.log(tl.where(reset, 1.0, decay)), 0)
    resets = tl.cumsum(reset.to(tl.int32), 0)
    return tl.where(resets == 0, tl.exp(log_cum), 0.0), log_cum, resets


@triton.jit
def _tile_recurrence(decay, value, carry, BLOCK_T: tl.constexpr):
    """z_i = decay_i z_{i-1} + value_i down a (BLOCK_T, BLOCK_D) tile, entering with ``carry``.

    A dense (T, T) x (T, D) product rather than ``tl.associative_scan``: it keeps the GPU's FMA units busy and
    runs at numpy speed under the interpreter, whose generic scan steps element by element in Python.
    ``ieee`` precision: TF32 would cost the gradients three decimal digits.
    """
    from_start, log_cum, resets = _decay_from_start(decay)
    i = tl.arange(0, BLOCK_T)
    keep = (i[:, None] >= i[None, :]) & (resets[:, None] == resets[None, :])
    w = tl.where(keep, tl.exp(tl.minimum(log_cum[:, None] - log_cum[None, :], 0.0)), 0.0)  # <= 0 where kept
    return tl.dot(w, value, input_precision="ieee") + from_start[:, None] * carry[None, :]


@triton.jit
def _step_inputs(x_ptr, p_ptr, g_ptr, b, steps, offs_d, M, D, stride_xb, stride_xm, stride_pb, REVERSE: tl.constexpr):
    """(time index, decay, value) of scan steps ``steps``: forward in time for the EMA, backward for its
    gradient. Steps past the end decay by 1 and add 0, so they leave a tile's last value unchanged."""
    valid = steps < M
    mask = valid[:, None] & (offs_d < D)[None, :]
    if REVERSE:
        t = M - 1 - steps
        p_next = tl.load(p_ptr + b * stride_pb + t + 1, mask=valid & (t + 1 < M), other=0.0).to(tl.float32)
        decay = tl.where(valid, 1.0 - p_next, 1.0)
        value = tl.load(g_ptr + (b * M + t)[:, None] * D + offs_d[None, :], mask=mask, other=0.0)
    else:
        t = steps
        p = tl.load(p_ptr + b * stride_pb + t, mask=valid, other=0.0).to(tl.float32)
        x = tl.load(x_ptr + b * stride_xb + t[:, None] * stride_xm + offs_d[None, :], mask=mask, other=0.0).to(
            tl.float32
        )
        decay = tl.where(valid, 1.0 - p, 1.0)
        value = p[:, None] * x
    return t, decay, value, mask


@triton.jit
def _tiles(
    x_ptr,
    p_ptr,
    g_ptr,
    z_ptr,
    last_ptr,
    keep_ptr,
    M,
    D,
    n_tiles,
    stride_xb,
    stride_xm,
    stride_pb,
    REVERSE: tl.constexpr,
    BLOCK_T: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    tile, pid_d, b = tl.program_id(0), tl.program_id(1), tl.program_id(2).to(tl.int64)
    steps = tile * BLOCK_T + tl.arange(0, BLOCK_T).to(tl.int64)
    offs_d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    t, decay, value, mask = _step_inputs(
        x_ptr, p_ptr, g_ptr, b, steps, offs_d, M, D, stride_xb, stride_xm, stride_pb, REVERSE
    )
    local = _tile_recurrence(decay, value, tl.zeros((BLOCK_D,), tl.float32), BLOCK_T)
    tl.store(z_ptr + (b * M + t)[:, None] * D + offs_d[None, :], local, mask=mask)
    last = tl.sum(tl.where(tl.arange(0, BLOCK_T)[:, None] == BLOCK_T - 1, local, 0.0), axis=0)
    tl.store(last_ptr + (b * n_tiles + tile) * D + offs_d, last, mask=offs_d < D)
    if pid_d == 0:
        from_start, unused_log_cum, unused_resets = _decay_from_start(decay)
        whole = tl.sum(tl.where(tl.arange(0, BLOCK_T) == BLOCK_T - 1, from_start, 0.0), axis=0)
        tl.store(keep_ptr + b * n_tiles + tile, whole)


@triton.jit
def _carries(last_ptr, keep_ptr, out_ptr, D, n_tiles, BLOCK_T: tl.constexpr, BLOCK_D: tl.constexpr):
    """out[k] = state after tile k = last[k] + keep[k] * out[k - 1]: the tile recurrence over tiles."""
    pid_d, b = tl.program_id(0), tl.program_id(1).to(tl.int64)
    offs_d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    carry = tl.zeros((BLOCK_D,), tl.float32)
    for k0 in range(0, n_tiles, BLOCK_T):
        k = k0 + tl.arange(0, BLOCK_T)
        valid = k < n_tiles
        mask = valid[:, None] & (offs_d < D)[None, :]
        keep = tl.load(keep_ptr + b * n_tiles + k, mask=valid, other=1.0)
        last = tl.load(last_ptr + (b * n_tiles + k)[:, None] * D + offs_d[None, :], mask=mask, other=0.0)
        state = _tile_recurrence(keep, last, carry, BLOCK_T)
        tl.store(out_ptr + (b * n_tiles + k)[:, None] * D + offs_d[None, :], state, mask=mask)
        carry = tl.sum(tl.where(tl.arange(0, BLOCK_T)[:, None] == BLOCK_T - 1, state, 0.0), axis=0)


@triton.jit
def _fixup(
    x_ptr,
    p_ptr,
    g_ptr,
    z_ptr,
    state_ptr,
    carry_ptr,
    dx_ptr,
    dp_ptr,
    M,
    D,
    n_tiles,
    stride_xb,
    stride_xm,
    stride_pb,
    REVERSE: tl.constexpr,
    BLOCK_T: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    """Forward: z += decay-from-tile-start * entering state, in place. Backward (REVERSE): the same on the
    gradient state h (in ``state_ptr``), then dx = p h and this channel block's share of dp."""
    tile, pid_d, b = tl.program_id(0), tl.program_id(1), tl.program_id(2).to(tl.int64)
    steps = tile * BLOCK_T + tl.arange(0, BLOCK_T).to(tl.int64)
    offs_d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    # Every name bound once: the Triton compiler (not the interpreter) refuses a name that an if-block rebinds
    # with another type, and a reused ``_`` is such a name.
    t, decay, unused_value, mask = _step_inputs(
        x_ptr, p_ptr, g_ptr, b, steps, offs_d, M, D, stride_xb, stride_xm, stride_pb, REVERSE
    )
    rows = (b * M + t)[:, None] * D + offs_d[None, :]
    state = tl.load(state_ptr + rows, mask=mask, other=0.0)
    if tile > 0:
        entering = tl.load(carry_ptr + (b * n_tiles + tile - 1) * D + offs_d, mask=offs_d < D, other=0.0)
        from_start, unused_log_cum, unused_resets = _decay_from_start(decay)
        state += from_start[:, None] * entering[None, :]
    if REVERSE:
        p = tl.load(p_ptr + b * stride_pb + t, mask=steps < M, other=0.0).to(tl.float32)
        x = tl.load(x_ptr + b * stride_xb + t[:, None] * stride_xm + offs_d[None, :], mask=mask, other=0.0).to(
            tl.float32
        )
        z_prev = tl.load(z_ptr + rows - D, mask=mask & (t >= 1)[:, None], other=0.0)
        tl.store(
            dx_ptr + b * stride_xb + t[:, None] * stride_xm + offs_d[None, :],
            (p[:, None] * state).to(dx_ptr.dtype.element_ty),
            mask=mask,
        )
        dp = tl.sum(tl.where(mask, state * (x - z_prev), 0.0), axis=1)
        tl.store(dp_ptr + (b * tl.num_programs(1) + pid_d) * M + t, dp, mask=steps < M)
    else:
        tl.store(state_ptr + rows, state, mask=mask)


@triton.jit
def _plug_back(
    z_ptr, idx_ptr, out_ptr, M, L, D, stride_ib, stride_ob, stride_ot, BLOCK_L: tl.constexpr, BLOCK_D: tl.constexpr
):
    block, pid_d, b = tl.program_id(0), tl.program_id(1), tl.program_id(2).to(tl.int64)
    offs_t = block * BLOCK_L + tl.arange(0, BLOCK_L).to(tl.int64)
    offs_d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    mask = (offs_t < L)[:, None] & (offs_d < D)[None, :]
    chunk = tl.load(idx_ptr + b * stride_ib + offs_t, mask=offs_t < L, other=0)
    z = tl.load(z_ptr + (b * M + chunk)[:, None] * D + offs_d[None, :], mask=mask, other=0.0)
    tl.store(
        out_ptr + b * stride_ob + offs_t[:, None] * stride_ot + offs_d[None, :],
        z.to(out_ptr.dtype.element_ty),
        mask=mask,
    )


def _scan(x, p, g, z_or_h, block_t, reverse, dx=None, dp=None, z=None):
    """Run tiles -> carries -> fix-up. Forward fills ``z_or_h`` with z; backward fills dx and dp."""
    b, m, d = x.shape
    n_tiles, n_blocks = triton.cdiv(m, block_t), triton.cdiv(d, BLOCK_D)
    last = torch.empty(b, n_tiles, d, device=x.device, dtype=torch.float32)
    keep = torch.empty(b, n_tiles, device=x.device, dtype=torch.float32)
    carry = torch.empty_like(last)
    strides = (x.stride(0), x.stride(1), p.stride(0))
    grid = (n_tiles, n_blocks, b)
    src = g if g is not None else x
    _tiles[grid](
        x,
        p,
        src,
        z_or_h,
        last,
        keep,
        m,
        d,
        n_tiles,
        *strides,
        REVERSE=reverse,
        BLOCK_T=block_t,
        BLOCK_D=BLOCK_D,
        num_warps=NUM_WARPS,
    )
    _carries[(n_blocks, b)](last, keep, carry, d, n_tiles, BLOCK_T=block_t, BLOCK_D=BLOCK_D, num_warps=NUM_WARPS)
    _fixup[grid](
        x,
        p,
        src,
        x if z is None else z,
        z_or_h,
        carry,
        x if dx is None else dx,
        keep if dp is None else dp,
        m,
        d,
        n_tiles,
        *strides,
        REVERSE=reverse,
        BLOCK_T=block_t,
        BLOCK_D=BLOCK_D,
        num_warps=NUM_WARPS,
    )


class EmaDechunk(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, p: torch.Tensor, idx: torch.Tensor | None, block_t: int) -> torch.Tensor:
        x, p = x.contiguous(), p.contiguous()
        b, m, d = x.shape
        z = torch.empty(b, m, d, device=x.device, dtype=torch.float32)  # kept for the backward
        with on_device_of(x):
            _scan(x, p, None, z, block_t, reverse=False)
            if idx is None:
                out = z.to(x.dtype)
            else:
                idx = idx.contiguous()
                length = idx.shape[1]
                out = torch.empty(b, length, d, device=x.device, dtype=x.dtype)
                grid = (triton.cdiv(length, BLOCK_L), triton.cdiv(d, BLOCK_D), b)
                _plug_back[grid](
                    z,
                    idx,
                    out,
                    m,
                    length,
                    d,
                    idx.stride(0),
                    out.stride(0),
                    out.stride(1),
                    BLOCK_L=BLOCK_L,
                    BLOCK_D=BLOCK_D,
                    num_warps=NUM_WARPS,
                )
        ctx.save_for_backward(x, p, z, idx)
        ctx.block_t = block_t
        return out

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        x, p, z, idx = ctx.saved_tensors
        b, m, d = x.shape
        if idx is None:
            g = grad_out.float().contiguous()
        else:  # positions sharing a chunk add up their gradients
            g = torch.zeros_like(z).scatter_add_(1, idx[..., None].expand(-1, -1, d), grad_out.float())
        dx = torch.empty_like(x)
        dp = torch.empty(b, triton.cdiv(d, BLOCK_D), m, device=x.device, dtype=torch.float32)
        h = torch.empty_like(z)
        with on_device_of(x):
            _scan(x, p, g, h, ctx.block_t, reverse=True, dx=dx, dp=dp, z=z)
        return dx, dp.sum(1).to(p.dtype), None, None


def ema_dechunk_triton(x: torch.Tensor, p: torch.Tensor, idx: torch.Tensor, block_t: int = BLOCK_T) -> torch.Tensor:
    """x (B, M, D), p (B, M), idx (B, L) long in [0, M) -> (B, L, D) in x's dtype; fp32 inside."""
    return EmaDechunk.apply(x, p, idx, block_t)


def ema_scan_triton(x: torch.Tensor, p: torch.Tensor, block_t: int = BLOCK_T) -> torch.Tensor:
    """The EMA alone (no plug-back): (B, M, D) in x's dtype."""
    return EmaDechunk.apply(x, p, None, block_t)
