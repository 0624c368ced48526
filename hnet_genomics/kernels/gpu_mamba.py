"""mamba-ssm's Triton kernels behind our signatures: the Mamba-2 chunked SSD scan, its fused RMSNorms, and the
whole mixer fused (``mamba_split_conv1d_scan_combined``), with causal-conv1d's CUDA conv when its extension
loads and with our Triton conv otherwise.

The fused mixer calls its conv through two module-level names of ``mamba_ssm.ops.triton.ssd_combined``
(``causal_conv1d_fwd_function``, ``causal_conv1d_bwd_function``), which mamba-ssm sets to causal-conv1d's
functions and to None when causal-conv1d does not import. Only in that second case are they set to
``kernels.triton.conv``'s functions of the same contract (``require_split_triton_conv``): the mixer then keeps
what it keeps with causal-conv1d (the projection output, the scan output and the norm's 1/rms) instead of the
unfused path's conv output and normalised activations as well. This leans on names and a call contract that
mamba-ssm does not publish: our conv functions check every argument against that contract and raise rather
than guess, and the interpreted and GPU tests compare the fused mixer on our conv with the torch mixer.

A mamba-ssm built without its CUDA extension (the usual wheel where nvcc is absent) cannot ``import
mamba_ssm``: the package ``__init__`` loads the compiled Mamba-1 scan. Mamba-2 needs only the pure-Triton
modules under ``mamba_ssm.ops.triton``, so when the normal import fails they are loaded beneath a bare
parent package that skips that ``__init__`` (a later ``import mamba_ssm`` then gets the bare package).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import sys
import types
import weakref

import torch

PACKAGE = "mamba_ssm"


def import_skipping_init(package: str, submodule: str) -> types.ModuleType:
    """Import ``package.submodule``; if the package's own ``__init__`` fails, import it under a bare parent."""
    name = f"{package}.{submodule}"
    try:
        return importlib.import_module(name)
    except ImportError:
        spec = importlib.util.find_spec(package)  # locates without executing __init__
        if spec is None or not spec.submodule_search_locations:
            raise
    parent = types.ModuleType(package)
    parent.__path__ = list(spec.submodule_search_locations)
    parent.__spec__ = spec
    sys.modules[package] = parent
    return importlib.import_module(name)


@functools.cache
def _kernels() -> types.SimpleNamespace:
    combined = import_skipping_init(PACKAGE, "ops.triton.ssd_combined")
    return types.SimpleNamespace(
        combined=combined,
        chunk_scan=combined.mamba_chunk_scan_combined,
        rms_norm=import_skipping_init(PACKAGE, "ops.triton.layer_norm").rms_norm_fn,
        gated_rms_norm=import_skipping_init(PACKAGE, "ops.triton.layernorm_gated").rmsnorm_fn,
    )


def require() -> None:
    _kernels()


def require_split_conv() -> None:
    """The fused mixer calls causal-conv1d's compiled forward and backward directly (mamba-ssm imports them
    when it can and leaves None otherwise). The reason names every package that is not installed, so a machine
    with neither says that causal-conv1d is missing, not only mamba-ssm."""
    absent = [name for name in ("causal_conv1d", PACKAGE) if importlib.util.find_spec(name) is None]
    if absent:
        raise ImportError(f"the fused Mamba-2 mixer needs {' and '.join(absent)}, not installed")
    combined = _kernels().combined
    if combined.causal_conv1d_fwd_function is None or combined.causal_conv1d_bwd_function is None:
        raise ImportError("mamba_split_conv1d_scan_combined needs causal-conv1d's CUDA extension, which does not load")
    if (combined.causal_conv1d_fwd_function, combined.causal_conv1d_bwd_function) == _triton_conv_functions():
        raise ImportError("causal-conv1d's CUDA extension does not load (the fused mixer runs our Triton conv)")


def _triton_conv_functions() -> tuple[object, object]:
    from hnet_genomics.kernels.triton import conv

    return conv.conv_fwd_function, conv.conv_bwd_function


def require_split_triton_conv() -> None:
    """The fused mixer on our Triton conv, where causal-conv1d's functions are absent: installs ours in their
    place (once; never over causal-conv1d's)."""
    if importlib.util.find_spec(PACKAGE) is None:
        raise ImportError(f"the fused Mamba-2 mixer needs {PACKAGE}, not installed")
    combined = _kernels().combined
    names = ("causal_conv1d_fwd_function", "causal_conv1d_bwd_function")
    if not all(hasattr(combined, name) for name in names):
        raise ImportError(f"{PACKAGE}'s fused mixer no longer calls its conv through {' and '.join(names)}")
    ours = _triton_conv_functions()
    present = tuple(getattr(combined, name) for name in names)
    if present == ours:
        return
    if any(function is not None for function in present):
        raise ImportError("the fused mixer already runs causal-conv1d's conv")
    for name, function in zip(names, ours):
        setattr(combined, name, function)


_SEQUENCE_INDEX: dict[int, tuple[weakref.ref, torch.Tensor]] = {}


def sequence_index(starts: torch.Tensor) -> torch.Tensor:
    """(B, L) bool sequence starts -> ``seq_idx``: int32, non-negative, changing exactly at each start.

    Every layer of a stage hands over the same ``starts`` tensor: its index is computed once and kept while
    that tensor lives (one launch per stage instead of one per layer)."""
    known = _SEQUENCE_INDEX.get(id(starts))
    if known is not None and known[0]() is starts:
        return known[1]
    seq_idx = torch.cumsum(starts, dim=1, dtype=torch.int32)
    key = id(starts)

    def forget(ref: weakref.ref, key: int = key) -> None:
        if _SEQUENCE_INDEX.get(key, (None,))[0] is ref:
            del _SEQUENCE_INDEX[key]

    _SEQUENCE_INDEX[key] = (weakref.ref(starts, forget), seq_idx)
    return seq_idx


def ssd_scan(
    x,
    dt,
    A,
    Bm,
    Cm,
    reset=None,
    chunk_size=64,
    initial_state=None,
    return_final_state=False,
    D=None,
    dt_bias=None,
    dt_softplus=False,
):
    """Same contract as ``ssd.ssd_scan_chunked``; packed sequences become ``seq_idx`` so no state leaks, and
    softplus(dt + dt_bias) and the D skip run inside the kernel (in fp32)."""
    seq_idx = None if reset is None else sequence_index(reset)
    out = _kernels().chunk_scan(
        x,
        dt,
        A,
        Bm,
        Cm,
        chunk_size,
        D=D,
        dt_bias=dt_bias,
        dt_softplus=dt_softplus,
        initial_states=initial_state,
        seq_idx=seq_idx,
        return_final_states=return_final_state,
    )
    if return_final_state:
        y, state = out
        return y, state.float()
    return out


def mamba2_split_scan(zxbcdt, w, dims, reset=None) -> torch.Tensor | None:
    """``mamba_mixer.mamba2_mixer``'s contract in one autograd function: conv + SiLU, SSD with softplus(dt +
    dt_bias) and the D skip, gated RMSNorm and the output projection; the backward recomputes the conv output
    and the normalised activations instead of keeping them."""
    seq_idx = None if reset is None else sequence_index(reset)
    if (dims.d_inner + 2 * dims.ngroups * dims.d_state) % 8 or not 2 <= w.conv_weight.shape[1] <= 4:
        return None  # channel counts mamba-ssm's layout takes and widths causal-conv1d takes
    return _kernels().combined.mamba_split_conv1d_scan_combined(
        zxbcdt,
        w.conv_weight,
        w.conv_bias,
        w.dt_bias,
        -torch.exp(w.A_log.float()),
        w.D,
        dims.chunk_size,
        seq_idx=seq_idx,
        activation="silu",
        rmsnorm_weight=w.norm_weight,
        rmsnorm_eps=dims.eps,
        outproj_weight=w.out_weight,
        outproj_bias=None,
        headdim=dims.head_dim,
        ngroups=dims.ngroups,
        norm_before_gate=False,
    )


def rms_norm(x, weight, eps):
    return _kernels().rms_norm(x, weight, None, eps=eps)


def add_rms_norm(x, residual, weight, eps, keep_residual=True):
    """``norm.add_rms_norm_ref``'s contract: the residual enters in fp32 (or is x, kept in fp32) and leaves in
    fp32, the normalised output is in x's dtype. Without ``keep_residual`` the kernel still writes the sum
    (its backward reads it) but the autograd function returns only the output."""
    if residual is not None and residual.dtype != torch.float32:
        return None
    out = _kernels().rms_norm(x, weight, None, residual=residual, eps=eps, prenorm=keep_residual, residual_in_fp32=True)
    return out if keep_residual else (out, None)


def gated_rms_norm(x, z, weight, eps, group_size=None):
    """Gate before normalising, as ``norm.gated_rms_norm_ref`` (mamba-ssm's ``norm_before_gate=False``)."""
    return _kernels().gated_rms_norm(x, weight, None, z=z, eps=eps, group_size=group_size, norm_before_gate=False)


def ema_via_chunk_scan(x: torch.Tensor, p: torch.Tensor, chunk_size: int = 256, head_dim: int = 64) -> torch.Tensor:
    """The EMA as the reference H-Net computes it, through the full SSD chunk scan with a state of size one:
    dt = -log(1 - p), inputs x / dt, A = -1, B = p, C = 1, so that each step is z = (1 - p) z + p x.
    p is kept inside [1e-4, 1 - 1e-4] to keep dt finite. The baseline our fused kernel is measured against."""
    b, m, d = x.shape
    pc = p.float().clamp(1e-4, 1 - 1e-4)
    dt = -torch.log1p(-pc)
    heads = d // head_dim
    xs = (x / dt[..., None].to(x.dtype)).view(b, m, heads, head_dim)
    ones = torch.ones(b, m, 1, 1, device=x.device, dtype=x.dtype)
    y = _kernels().chunk_scan(
        xs,
        dt[..., None].expand(b, m, heads),
        -torch.ones(heads, device=x.device),
        pc[..., None, None].to(x.dtype),
        ones,
        chunk_size,
    )
    return y.view(b, m, d)
