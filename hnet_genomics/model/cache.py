"""Inference-state helpers: rows of a batch advance different stages, so state updates are per row."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from hnet_genomics.model.attention import KVCache
from hnet_genomics.model.mamba2 import MambaState

BlockStates = list[MambaState | KVCache]  # one per block of a stack, in order


@dataclass
class HNetState:
    """What one H-Net level carries from token to token."""

    encoder: BlockStates
    main: HNetState | BlockStates  # the next level's state, or the innermost stack's
    decoder: BlockStates
    prev_key: torch.Tensor | None  # router key of the previous token (None before the first)
    smoothed: torch.Tensor  # (B, d) fp32: EMA of the main network's output for each row's current chunk


def select_rows(mask: torch.Tensor, new, old):
    """Take ``new`` where mask (B,) is True and ``old`` elsewhere, through nested lists/dicts/dataclasses."""
    if old is None:  # state created by this very step (the first token opens a chunk in every row)
        return new
    if isinstance(new, torch.Tensor):
        if old.shape != new.shape:  # a key/value cache that grew during this step
            grown = old.new_zeros(new.shape)
            grown[tuple(slice(0, n) for n in old.shape)] = old
            old = grown
        m = mask.view(-1, *([1] * (new.dim() - 1)))
        return torch.where(m, new, old)
    if isinstance(new, dict):
        return {k: select_rows(mask, new[k], old[k]) for k in new}
    if isinstance(new, (list, tuple)):
        return type(new)(select_rows(mask, n, o) for n, o in zip(new, old))
    if dataclasses.is_dataclass(new) and not isinstance(new, type):
        return type(new)(
            **{f.name: select_rows(mask, getattr(new, f.name), getattr(old, f.name)) for f in dataclasses.fields(new)}
        )
    raise TypeError(f"cannot merge inference state of type {type(new).__name__}")


def take_rows(state, index: torch.Tensor):
    """The rows ``index`` (a 1-D long tensor, repeats allowed) of a state, through nested lists/dataclasses:
    one prefix's state copied for every suffix that continues it."""
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return state.index_select(0, index.to(state.device))
    if isinstance(state, (list, tuple)):
        return type(state)(take_rows(s, index) for s in state)
    if dataclasses.is_dataclass(state) and not isinstance(state, type):
        return type(state)(**{f.name: take_rows(getattr(state, f.name), index) for f in dataclasses.fields(state)})
    raise TypeError(f"cannot index inference state of type {type(state).__name__}")


def last_real(x: torch.Tensor, valid: torch.Tensor, old: torch.Tensor | None) -> torch.Tensor | None:
    """Per row, ``x`` (B, L, ...) at the row's last real position; ``old`` (B, ...) for rows with none."""
    n = valid.sum(1)
    at = (n - 1).clamp(min=0).view(-1, *([1] * (x.dim() - 1))).expand(-1, 1, *x.shape[2:])
    last = torch.gather(x, 1, at)[:, 0]
    if old is None:
        return last
    keep = (n > 0).view(-1, *([1] * (last.dim() - 1)))
    return torch.where(keep, last, old.to(last.dtype))
