"""The Mamba-2 mixer after its input projection: causal conv -> SiLU -> SSD with the D skip -> gated RMSNorm ->
output projection.

On CUDA with mamba-ssm it is one fused autograd function (mamba-ssm's ``mamba_split_conv1d_scan_combined``,
calling causal-conv1d's conv, or our Triton conv where causal-conv1d's extension is absent), which recomputes
the conv output and the normalised activations in the backward instead of saving them. Otherwise each op takes
its own dispatch point: the conv (causal-conv1d or our Triton kernel, SiLU inside, saving only its input), the
chunk scan with softplus(dt + dt_bias) and the D skip inside, the fused gated norm; on the CPU all of them are
the torch references. ``benchmarks/results/mixer-memory-cpu.md`` measures what each path keeps.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange

from hnet_genomics.kernels import conv as conv_k
from hnet_genomics.kernels import dispatch
from hnet_genomics.kernels import norm as norm_k
from hnet_genomics.kernels import ssd as ssd_k


@dataclass(frozen=True)
class MixerDims:
    d_inner: int  # expand * d_model: SSM channels
    nheads: int
    head_dim: int
    ngroups: int
    d_state: int
    chunk_size: int
    eps: float  # of the gated RMSNorm

    @property
    def bc_width(self) -> int:
        return self.ngroups * self.d_state


@dataclass
class MixerWeights:
    conv_weight: torch.Tensor  # (d_inner + 2 G N, K)
    conv_bias: torch.Tensor
    dt_bias: torch.Tensor  # (H,)
    A_log: torch.Tensor  # (H,): A = -exp(A_log)
    D: torch.Tensor  # (H,)
    norm_weight: torch.Tensor  # (d_inner,)
    out_weight: torch.Tensor  # (d_model, d_inner)


def split_projection(zxbcdt: torch.Tensor, dims: MixerDims):
    """[z | x B C | dt] along the last axis (the in-projection's column order, as in mamba-ssm)."""
    return torch.split(zxbcdt, [dims.d_inner, dims.d_inner + 2 * dims.bc_width, dims.nheads], dim=-1)


def split_heads(xbc: torch.Tensor, dims: MixerDims):
    """Conv output -> x (.., H, P), B and C (.., G, N), for a sequence or a single step."""
    x, Bm, Cm = torch.split(xbc, [dims.d_inner, dims.bc_width, dims.bc_width], dim=-1)
    x = rearrange(x, "... (h p) -> ... h p", p=dims.head_dim)
    Bm = rearrange(Bm, "... (g n) -> ... g n", g=dims.ngroups)
    Cm = rearrange(Cm, "... (g n) -> ... g n", g=dims.ngroups)
    return x, Bm, Cm


def mamba2_mixer(
    zxbcdt: torch.Tensor,
    w: MixerWeights,
    dims: MixerDims,
    positions: torch.Tensor,
    starts: torch.Tensor,
    has_resets: bool,
) -> torch.Tensor:
    """zxbcdt (B, L, 2 d_inner + 2 G N + H) -> (B, L, d_model). ``starts`` (B, L) marks packed sequence starts;
    with ``has_resets`` neither the conv nor the scan carries anything across them."""
    fast = dispatch.gpu_kernel("mamba2_fused", zxbcdt)
    if fast is not None and (out := fast(zxbcdt, w, dims, starts if has_resets else None)) is not None:
        return out
    z, xbc, dt = split_projection(zxbcdt, dims)
    xbc = conv_k.causal_conv1d(xbc, w.conv_weight, w.conv_bias, positions, has_resets=has_resets, activation="silu")
    x, Bm, Cm = split_heads(xbc, dims)
    y = ssd_k.ssd_scan_chunked(
        x,
        dt,
        -torch.exp(w.A_log.float()),
        Bm,
        Cm,
        reset=starts if has_resets else None,
        chunk_size=dims.chunk_size,
        D=w.D,
        dt_bias=w.dt_bias,
        dt_softplus=True,
    )
    y = norm_k.gated_rms_norm(
        rearrange(y, "... h p -> ... (h p)"), z, w.norm_weight, dims.eps, group_size=dims.d_inner // dims.ngroups
    )
    return F.linear(y, w.out_weight)
