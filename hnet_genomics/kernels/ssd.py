"""Mamba-2 state-space scan (SSD): a naive per-step reference and the chunked pure-torch path.

Shapes: x (B, L, H, P), dt (B, L, H) after softplus, A (H,) negative, Bm/Cm (B, L, G, N) with H % G == 0,
``reset`` (B, L) bool marks the first token of a packed sequence so no state leaks across sequences.
The recurrence is h_t = exp(dt_t A) h_{t-1} + dt_t B_t x_t,  y_t = C_t h_t.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange, repeat

from hnet_genomics.kernels import dispatch


def _expand_groups(m: torch.Tensor, nheads: int) -> torch.Tensor:
    return repeat(m, "b l g n -> b l (g r) n", r=nheads // m.shape[2])


def ssd_scan_ref(x, dt, A, Bm, Cm, reset=None, initial_state=None, return_final_state=False):
    """One step at a time, in fp32: the definition the fast paths are tested against."""
    b, l, h, p = x.shape
    Bh, Ch = _expand_groups(Bm, h).float(), _expand_groups(Cm, h).float()
    state = x.new_zeros(b, h, p, Bm.shape[-1], dtype=torch.float32) if initial_state is None else initial_state.float()
    ys = []
    for t in range(l):
        decay = torch.exp(dt[:, t].float() * A.float())  # (b, h)
        if reset is not None:
            decay = decay.masked_fill(reset[:, t, None], 0.0)
        state = state * decay[..., None, None] + torch.einsum(
            "bh,bhp,bhn->bhpn", dt[:, t].float(), x[:, t].float(), Bh[:, t]
        )
        ys.append(torch.einsum("bhpn,bhn->bhp", state, Ch[:, t]))
    y = torch.stack(ys, dim=1).to(x.dtype)
    return (y, state) if return_final_state else y


def segsum(a: torch.Tensor) -> torch.Tensor:
    """out[..., i, j] = sum_{k=j+1..i} a[..., k] for i >= j, -inf above the diagonal.

    Built by a masked cumulative sum rather than a difference of cumsums, so -inf entries (sequence resets)
    stay -inf instead of turning into NaN.
    """
    q = a.shape[-1]
    rep = a[..., None].expand(*a.shape, q)  # rep[..., i, j] = a[..., i]
    strict = torch.tril(torch.ones(q, q, dtype=torch.bool, device=a.device), diagonal=-1)
    out = torch.cumsum(rep.masked_fill(~strict, 0.0), dim=-2)
    incl = torch.tril(torch.ones(q, q, dtype=torch.bool, device=a.device), diagonal=0)
    return out.masked_fill(~incl, float("-inf"))


def ssd_scan_chunked(
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
    """Chunked SSD: quadratic inside chunks of ``chunk_size``, linear recurrence across them.

    With ``dt_bias`` / ``dt_softplus`` the step size is softplus(dt + dt_bias), and ``D`` (H,) adds the skip
    D * x, all in fp32, as Mamba-2 uses them; on CUDA they run inside mamba-ssm's fused Triton chunk scan when it
    loads (see ``dispatch``). The torch below is the same algorithm.
    """
    fast = dispatch.gpu_kernel("ssd", x)
    if fast is not None:
        return fast(
            x,
            dt,
            A,
            Bm,
            Cm,
            reset=reset,
            chunk_size=chunk_size,
            initial_state=initial_state,
            return_final_state=return_final_state,
            D=D,
            dt_bias=dt_bias,
            dt_softplus=dt_softplus,
        )
    if dt_bias is not None:
        dt = dt.float() + dt_bias.float()
    if dt_softplus:
        dt = F.softplus(dt.float())
    return _ssd_chunked_torch(x, dt, A, Bm, Cm, reset, chunk_size, initial_state, return_final_state, D)


def _log_decay_matrix(a: torch.Tensor, has_resets: bool) -> torch.Tensor:
    """L[..., i, j] = sum_{k=j+1..i} a_k (i >= j), -inf above the diagonal.

    Without resets the difference of cumulative sums is exact enough and much cheaper; with resets (-inf
    entries) the masked cumulative sum keeps -inf from turning into NaN.
    """
    if has_resets:
        return segsum(a)
    cs = torch.cumsum(a, dim=-1)
    q = a.shape[-1]
    lower = torch.tril(torch.ones(q, q, dtype=torch.bool, device=a.device))
    return (cs[..., :, None] - cs[..., None, :]).masked_fill(~lower, float("-inf"))


def _ssd_chunked_torch(x, dt, A, Bm, Cm, reset, chunk_size, initial_state, return_final_state, D=None):
    b, l, h, p = x.shape
    g, n = Bm.shape[2], Bm.shape[3]
    q = chunk_size
    pad = (-l) % q
    dtype = x.dtype
    a = dt.float() * A.float()  # (b, l, h) log-decay per step
    resets = reset is not None  # given for packed rows only; asking whether it holds a start would read the device
    if resets:
        a = a.masked_fill(reset[..., None], float("-inf"))
    xdt = x.float() * dt.float()[..., None]
    Bf, Cf = Bm.float(), Cm.float()
    if pad:
        a = F.pad(a, (0, 0, 0, pad))
        xdt = F.pad(xdt, (0, 0, 0, 0, 0, pad))
        Bf = F.pad(Bf, (0, 0, 0, 0, 0, pad))
        Cf = F.pad(Cf, (0, 0, 0, 0, 0, pad))
    a = rearrange(a, "b (c q) (g r) -> b g r c q", q=q, g=g)
    xdt = rearrange(xdt, "b (c q) (g r) p -> b g r c q p", q=q, g=g)
    Bf = rearrange(Bf, "b (c q) g n -> b g c q n", q=q)
    Cf = rearrange(Cf, "b (c q) g n -> b g c q n", q=q)

    seg = _log_decay_matrix(a, resets)  # (b, g, r, c, q, q)
    decay_in = torch.exp(seg)
    # within-chunk outputs: C_i . B_j is shared by the heads of a group
    cb = torch.einsum("bgcin,bgcjn->bgcij", Cf, Bf)
    y = torch.einsum("bgrcij,bgrcjp->bgrcip", decay_in * cb[:, :, None], xdt)
    # state each chunk contributes at its end, then the states entering each chunk (chunk-level decays)
    to_end = decay_in[..., -1, :]  # (b, g, r, c, q)
    chunk_states = torch.einsum("bgcjn,bgrcj,bgrcjp->bgrcpn", Bf, to_end, xdt)
    from_start = a[..., :1] + seg[..., :, 0]  # (b, g, r, c, q): decay from chunk start to position i
    whole = from_start[..., -1]  # (b, g, r, c)
    init = x.new_zeros(b, h, p, n, dtype=torch.float32) if initial_state is None else initial_state.float()
    init = rearrange(init, "b (g r) p n -> b g r 1 p n", g=g)
    states = torch.cat([init, chunk_states], dim=3)  # (b, g, r, c + 1, p, n)
    chunk_decay = torch.exp(_log_decay_matrix(F.pad(whole, (1, 0)), resets))  # (b, g, r, c + 1, c + 1)
    entering = torch.einsum("bgrzc,bgrcpn->bgrzpn", chunk_decay, states)
    prev, final = entering[:, :, :, :-1], entering[:, :, :, -1]
    y = y + torch.einsum("bgcin,bgrcpn,bgrci->bgrcip", Cf, prev, torch.exp(from_start))
    y = rearrange(y, "b g r c q p -> b (c q) (g r) p")[:, :l]
    if D is not None:
        y = y + x.float() * D.float()[:, None]
    y = y.to(dtype)
    if return_final_state:
        return y, rearrange(final, "b g r p n -> b (g r) p n")
    return y


def ssd_step(state, x, dt, A, Bm, Cm):
    """One decoding step: state (B, H, P, N), x (B, H, P), dt (B, H), Bm/Cm (B, G, N). Returns (y, state)."""
    h = x.shape[1]
    Bh = repeat(Bm, "b g n -> b (g r) n", r=h // Bm.shape[1]).float()
    Ch = repeat(Cm, "b g n -> b (g r) n", r=h // Cm.shape[1]).float()
    decay = torch.exp(dt.float() * A.float())
    state = state * decay[..., None, None] + torch.einsum("bh,bhp,bhn->bhpn", dt.float(), x.float(), Bh)
    y = torch.einsum("bhpn,bhn->bhp", state, Ch)
    return y.to(x.dtype), state
