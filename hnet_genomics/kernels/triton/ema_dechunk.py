"""Fused EMA dechunk: z_m = p_m x_m + (1 - p_m) z_{m-1} over the chunks, then out[b, t] = z[b, idx[b, t]].

One program owns one row and a block of channels. It walks the chunks in tiles: inside a tile the recurrence
is one small matmul with the decay matrix W[i, j] = prod_{k=j+1..i} (1 - p_k) (built from a cumulative sum of
logs, with resets p = 1 counted apart so they stay exact zeros), across tiles one carried state; then, in the
same launch, it plugs the smoothed chunks back over their positions. The reference H-Net gets the same numbers by running
the whole Mamba-2 chunk scan with a state of size one, which spends most of its work on nothing.

The backward is the reverse-time recurrence h_m = g_m + (1 - p_{m+1}) h_{m+1} with g the position gradients
summed per chunk (a scatter-add in torch): dx_m = p_m h_m and dp_m = sum_d h_m (x_m - z_{m-1}).

Imported lazily (dispatch or tests); ``TRITON_INTERPRET=1`` set before this import runs it on CPU tensors.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

BLOCK_D = 32  # channels per program: B * D / 32 programs keep an H100's 132 SMs busy at B = 8, D = 512
NUM_WARPS = 4


def require() -> None:
    """Importing this module needs triton; nothing else to check."""


@triton.jit
def _tile_recurrence(decay, value, carry, BLOCK_T: tl.constexpr):
    """z_i = decay_i z_{i-1} + value_i down a (BLOCK_T, BLOCK_D) tile, entering with ``carry``.

    A dense (T, T) x (T, D) product rather than ``tl.associative_scan``: it keeps the GPU's FMA units busy and
    runs at numpy speed under the interpreter, whose generic scan steps element by element in Python.
    ``ieee`` precision: TF32 would cost the gradients three decimal digits.
    """
    reset = decay == 0.0
    log_cum = tl.cumsum(tl.log(tl.where(reset, 1.0, decay)), 0)
    resets = tl.cumsum(reset.to(tl.int32), 0)
    i = tl.arange(0, BLOCK_T)
    keep = (i[:, None] >= i[None, :]) & (resets[:, None] == resets[None, :])
    w = tl.where(keep, tl.exp(log_cum[:, None] - log_cum[None, :]), 0.0)
    from_carry = tl.where(resets == 0, tl.exp(log_cum), 0.0)
    return tl.dot(w, value, input_precision="ieee") + from_carry[:, None] * carry[None, :]


@triton.jit
def _last_row(v, offs, last):
    return tl.sum(tl.where(offs[:, None] == last, v, 0.0), axis=0)


@triton.jit
def _ema_fwd_kernel(x_ptr, p_ptr, idx_ptr, z_ptr, out_ptr, M, L, D,
                    stride_xb, stride_xm, stride_pb, stride_ib, stride_ob, stride_ot,
                    GATHER: tl.constexpr, BLOCK_T: tl.constexpr, BLOCK_D: tl.constexpr):
    b = tl.program_id(0).to(tl.int64)
    offs_d = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    mask_d = offs_d < D
    z_row = z_ptr + b * M * D  # fp32 (B, M, D) contiguous, kept for the backward
    carry = tl.zeros((BLOCK_D,), tl.float32)
    for t0 in range(0, M, BLOCK_T):
        offs_t = t0 + tl.arange(0, BLOCK_T)
        mask = (offs_t < M)[:, None] & mask_d[None, :]
        p = tl.load(p_ptr + b * stride_pb + offs_t, mask=offs_t < M, other=0.0).to(tl.float32)
        x = tl.load(x_ptr + b * stride_xb + offs_t[:, None] * stride_xm + offs_d[None, :], mask=mask,
                    other=0.0).to(tl.float32)
        z = _tile_recurrence(1.0 - p, p[:, None] * x, carry, BLOCK_T)
        tl.store(z_row + offs_t[:, None] * D + offs_d[None, :], z, mask=mask)
        if not GATHER:
            tl.store(out_ptr + b * stride_ob + offs_t[:, None] * stride_ot + offs_d[None, :],
                     z.to(out_ptr.dtype.element_ty), mask=mask)
        carry = _last_row(z, offs_t, t0 + BLOCK_T - 1)
    if GATHER:
        tl.debug_barrier()  # the plug-back reads z written by other threads of this program
        for t0 in range(0, L, BLOCK_T):
            offs_t = t0 + tl.arange(0, BLOCK_T)
            mask = (offs_t < L)[:, None] & mask_d[None, :]
            chunk = tl.load(idx_ptr + b * stride_ib + offs_t, mask=offs_t < L, other=0)
            z = tl.load(z_row + chunk[:, None] * D + offs_d[None, :], mask=mask, other=0.0)
            tl.store(out_ptr + b * stride_ob + offs_t[:, None] * stride_ot + offs_d[None, :],
                     z.to(out_ptr.dtype.element_ty), mask=mask)


@triton.jit
def _ema_bwd_kernel(x_ptr, p_ptr, z_ptr, g_ptr, dx_ptr, dp_ptr, M, D,
                    stride_xb, stride_xm, stride_pb,
                    BLOCK_T: tl.constexpr, BLOCK_D: tl.constexpr):
    b = tl.program_id(0).to(tl.int64)
    pid_d = tl.program_id(1)
    offs_d = pid_d * BLOCK_D + tl.arange(0, BLOCK_D)
    mask_d = offs_d < D
    z_row = z_ptr + b * M * D
    g_row = g_ptr + b * M * D
    carry = tl.zeros((BLOCK_D,), tl.float32)
    for i0 in range(0, M, BLOCK_T):
        offs_t = M - 1 - i0 - tl.arange(0, BLOCK_T)  # latest chunk first: a forward scan runs backwards in time
        valid = offs_t >= 0
        mask = valid[:, None] & mask_d[None, :]
        p_next = tl.load(p_ptr + b * stride_pb + offs_t + 1, mask=valid & (offs_t + 1 < M), other=0.0)
        g = tl.load(g_row + offs_t[:, None] * D + offs_d[None, :], mask=mask, other=0.0)
        h = _tile_recurrence(1.0 - p_next.to(tl.float32), g, carry, BLOCK_T)
        carry = _last_row(h, tl.arange(0, BLOCK_T), BLOCK_T - 1)
        p = tl.load(p_ptr + b * stride_pb + offs_t, mask=valid, other=0.0).to(tl.float32)
        x = tl.load(x_ptr + b * stride_xb + offs_t[:, None] * stride_xm + offs_d[None, :], mask=mask,
                    other=0.0).to(tl.float32)
        z_prev = tl.load(z_row + (offs_t - 1)[:, None] * D + offs_d[None, :], mask=mask & (offs_t >= 1)[:, None],
                         other=0.0)
        tl.store(dx_ptr + b * stride_xb + offs_t[:, None] * stride_xm + offs_d[None, :],
                 (p[:, None] * h).to(dx_ptr.dtype.element_ty), mask=mask)
        dp = tl.sum(tl.where(mask, h * (x - z_prev), 0.0), axis=1)
        tl.store(dp_ptr + (b * tl.num_programs(1) + pid_d) * M + offs_t, dp, mask=valid)


class EmaDechunk(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, p: torch.Tensor, idx: torch.Tensor | None, block_t: int) -> torch.Tensor:
        x, p = x.contiguous(), p.contiguous()
        b, m, d = x.shape
        z = torch.empty(b, m, d, device=x.device, dtype=torch.float32)
        if idx is None:
            out, length = torch.empty_like(x), m
        else:
            idx = idx.contiguous()
            length = idx.shape[1]
            out = torch.empty(b, length, d, device=x.device, dtype=x.dtype)
        grid = (b, triton.cdiv(d, BLOCK_D))
        _ema_fwd_kernel[grid](x, p, x if idx is None else idx, z, out, m, length, d,
                              x.stride(0), x.stride(1), p.stride(0), 0 if idx is None else idx.stride(0),
                              out.stride(0), out.stride(1),
                              GATHER=idx is not None, BLOCK_T=block_t, BLOCK_D=BLOCK_D, num_warps=NUM_WARPS)
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
        n_blocks = triton.cdiv(d, BLOCK_D)
        dx = torch.empty_like(x)
        dp = torch.empty(b, n_blocks, m, device=x.device, dtype=torch.float32)
        _ema_bwd_kernel[(b, n_blocks)](x, p, z, g, dx, dp, m, d, x.stride(0), x.stride(1), p.stride(0),
                                       BLOCK_T=ctx.block_t, BLOCK_D=BLOCK_D, num_warps=NUM_WARPS)
        return dx, dp.sum(1).to(p.dtype), None, None


def ema_dechunk_triton(x: torch.Tensor, p: torch.Tensor, idx: torch.Tensor, block_t: int = 64) -> torch.Tensor:
    """x (B, M, D), p (B, M), idx (B, L) long in [0, M) -> (B, L, D) in x's dtype; fp32 inside."""
    return EmaDechunk.apply(x, p, idx, block_t)


def ema_scan_triton(x: torch.Tensor, p: torch.Tensor, block_t: int = 64) -> torch.Tensor:
    """The EMA alone (no plug-back): (B, M, D) in x's dtype."""
    return EmaDechunk.apply(x, p, None, block_t)
