"""Fused routing: normalise q_t and k_{t-1}, take their cosine, p_t = clamp((1 - cos) / 2, 0, 1), p = 1 at
sequence starts, boundary = p >= 0.5; one pass over q and k instead of the five tensors torch materialises.

Forward and backward each read a tile of positions once per channel block; the backward recomputes the
norms rather than storing them. Every k_{t-1} feeds exactly one p_t, so the program that owns position t
writes the gradients of both q_t and k_{t-1}: no atomics. Gathering chunk starts stays in torch
(``Geometry.downsample``): it needs the boundary counts of the whole row first.

Imported lazily (dispatch or tests); ``TRITON_INTERPRET=1`` set before this import runs it on CPU tensors.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from hnet_genomics.kernels.triton.device import on_device_of

EPS = 1e-12  # F.normalize's floor on the norm
BLOCK_T = 16
NUM_WARPS = 4


def require() -> None:
    """Importing this module needs triton; nothing else to check."""


@triton.jit
def _positions(BLOCK_T: tl.constexpr):
    """This program's positions (tiles on grid axis 0, which has no 65,535 limit) and its row (axis 1)."""
    offs_t = tl.program_id(0).to(tl.int64) * BLOCK_T + tl.arange(0, BLOCK_T)
    return offs_t, tl.program_id(1).to(tl.int64)


@triton.jit
def _norms_and_dot(
    q_ptr, k_ptr, offs_t, has_prev, D, stride_ql, stride_kl, BLOCK_T: tl.constexpr, BLOCK_D: tl.constexpr
):
    qq = tl.zeros((BLOCK_T,), tl.float32)
    kk = tl.zeros((BLOCK_T,), tl.float32)
    qk = tl.zeros((BLOCK_T,), tl.float32)
    for d0 in range(0, D, BLOCK_D):
        offs_d = d0 + tl.arange(0, BLOCK_D)
        mask = has_prev[:, None] & (offs_d < D)[None, :]
        q = tl.load(q_ptr + offs_t[:, None] * stride_ql + offs_d[None, :], mask=mask, other=0.0).to(tl.float32)
        k = tl.load(k_ptr + (offs_t - 1)[:, None] * stride_kl + offs_d[None, :], mask=mask, other=0.0).to(tl.float32)
        qq += tl.sum(q * q, axis=1)
        kk += tl.sum(k * k, axis=1)
        qk += tl.sum(q * k, axis=1)
    return tl.sqrt(qq), tl.sqrt(kk), qk


@triton.jit
def _routing_fwd_kernel(
    q_ptr,
    k_ptr,
    starts_ptr,
    p_ptr,
    boundary_ptr,
    L,
    D,
    stride_qb,
    stride_ql,
    stride_kb,
    stride_kl,
    stride_sb,
    EPS: tl.constexpr,
    BLOCK_T: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    offs_t, b = _positions(BLOCK_T)
    in_row = offs_t < L
    start = tl.load(starts_ptr + b * stride_sb + offs_t, mask=in_row, other=1) != 0
    has_prev = in_row & (offs_t > 0) & ~start
    q_norm, k_norm, qk = _norms_and_dot(
        q_ptr + b * stride_qb, k_ptr + b * stride_kb, offs_t, has_prev, D, stride_ql, stride_kl, BLOCK_T, BLOCK_D
    )
    cos = qk / (tl.maximum(q_norm, EPS) * tl.maximum(k_norm, EPS))
    p = tl.minimum(tl.maximum((1.0 - cos) * 0.5, 0.0), 1.0)
    p = tl.where(has_prev, p, 1.0)
    tl.store(p_ptr + b * L + offs_t, p, mask=in_row)
    tl.store(boundary_ptr + b * L + offs_t, (p >= 0.5).to(tl.uint8), mask=in_row)


@triton.jit
def _routing_bwd_kernel(
    q_ptr,
    k_ptr,
    starts_ptr,
    dp_ptr,
    dq_ptr,
    dk_ptr,
    L,
    D,
    stride_qb,
    stride_ql,
    stride_kb,
    stride_kl,
    stride_sb,
    EPS: tl.constexpr,
    BLOCK_T: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    offs_t, b = _positions(BLOCK_T)
    in_row = offs_t < L
    start = tl.load(starts_ptr + b * stride_sb + offs_t, mask=in_row, other=1) != 0
    has_prev = in_row & (offs_t > 0) & ~start
    q_row, k_row = q_ptr + b * stride_qb, k_ptr + b * stride_kb
    q_norm, k_norm, qk = _norms_and_dot(q_row, k_row, offs_t, has_prev, D, stride_ql, stride_kl, BLOCK_T, BLOCK_D)
    nq, nk = tl.maximum(q_norm, EPS), tl.maximum(k_norm, EPS)
    cos = qk / (nq * nk)
    raw = (1.0 - cos) * 0.5
    dp = tl.load(dp_ptr + b * L + offs_t, mask=in_row, other=0.0)
    # d p / d cos = -1/2 where the clamp passes the gradient (inclusive bounds, as torch.clamp)
    d_cos = tl.where(has_prev & (raw >= 0.0) & (raw <= 1.0), -0.5 * dp, 0.0)
    cross = d_cos / (nq * nk)
    # the norm's own derivative vanishes below EPS, where F.normalize divides by the constant floor
    q_self = tl.where(q_norm > EPS, d_cos * cos / (nq * nq), 0.0)
    k_self = tl.where(k_norm > EPS, d_cos * cos / (nk * nk), 0.0)
    for d0 in range(0, D, BLOCK_D):
        offs_d = d0 + tl.arange(0, BLOCK_D)
        mask_d = (offs_d < D)[None, :]
        mask = has_prev[:, None] & mask_d
        q = tl.load(q_row + offs_t[:, None] * stride_ql + offs_d[None, :], mask=mask, other=0.0).to(tl.float32)
        k = tl.load(k_row + (offs_t - 1)[:, None] * stride_kl + offs_d[None, :], mask=mask, other=0.0).to(tl.float32)
        dq = cross[:, None] * k - q_self[:, None] * q
        dk = cross[:, None] * q - k_self[:, None] * k
        tl.store(
            dq_ptr + (b * L + offs_t)[:, None] * D + offs_d[None, :],
            dq.to(dq_ptr.dtype.element_ty),
            mask=in_row[:, None] & mask_d,
        )
        tl.store(
            dk_ptr + (b * L + offs_t - 1)[:, None] * D + offs_d[None, :], dk.to(dk_ptr.dtype.element_ty), mask=mask
        )


def _block_d(d: int) -> int:
    return min(128, max(16, triton.next_power_of_2(d)))


def launch_grid(b: int, l: int) -> tuple[int, int]:
    """Position tiles on axis 0 (up to 2**31 - 1 programs), rows on axis 1 (at most 65,535)."""
    return triton.cdiv(l, BLOCK_T), b


class RoutingFused(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q: torch.Tensor, k: torch.Tensor, starts: torch.Tensor):
        q, k = q.contiguous(), k.contiguous()
        starts = starts.contiguous().view(torch.uint8)
        b, l, d = q.shape
        p = torch.empty(b, l, device=q.device, dtype=torch.float32)
        boundary = torch.empty(b, l, device=q.device, dtype=torch.uint8)
        with on_device_of(q):
            _routing_fwd_kernel[launch_grid(b, l)](
                q,
                k,
                starts,
                p,
                boundary,
                l,
                d,
                q.stride(0),
                q.stride(1),
                k.stride(0),
                k.stride(1),
                starts.stride(0),
                EPS=EPS,
                BLOCK_T=BLOCK_T,
                BLOCK_D=_block_d(d),
                num_warps=NUM_WARPS,
            )
        boundary = boundary.view(torch.bool)
        ctx.mark_non_differentiable(boundary)
        ctx.save_for_backward(q, k, starts)
        return p, boundary

    @staticmethod
    def backward(ctx, grad_p: torch.Tensor, _grad_boundary):
        q, k, starts = ctx.saved_tensors
        b, l, d = q.shape
        dq = torch.empty_like(q)
        dk = torch.zeros_like(k)  # the last key of a row feeds no probability
        with on_device_of(q):
            _routing_bwd_kernel[launch_grid(b, l)](
                q,
                k,
                starts,
                grad_p.float().contiguous(),
                dq,
                dk,
                l,
                d,
                q.stride(0),
                q.stride(1),
                k.stride(0),
                k.stride(1),
                starts.stride(0),
                EPS=EPS,
                BLOCK_T=BLOCK_T,
                BLOCK_D=_block_d(d),
                num_warps=NUM_WARPS,
            )
        return dq, dk, None


def routing_fused_triton(q: torch.Tensor, k: torch.Tensor, starts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """q, k (B, L, D), starts (B, L) bool -> (p (B, L) fp32, boundary (B, L) bool). Gradients flow into q, k."""
    return RoutingFused.apply(q, k, starts)
