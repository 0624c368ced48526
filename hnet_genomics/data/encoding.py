"""Bases are bytes: the model reads ASCII codes directly, so encoding is only a set of byte-level policies.

Policies (``DataConfig``): soft-masked lower case is upper-cased by default (``soft_mask="upper"``) and can
be exposed as a per-base side channel (``emit_soft_mask``); ambiguous IUPAC codes (anything but A/C/G/T/U)
are kept, replaced by N, or masked from the loss; ``drop`` masks them too and makes the random sampler
skip windows with more than ``max_n_fraction`` of them (predicting an unknown base teaches nothing).
All policies are 256-entry byte translation tables, so a window costs a few passes over its bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import overload

import numpy as np

from hnet_genomics.config import DataConfig
from hnet_genomics.data.fasta import IUPAC_BYTES
from hnet_genomics.errors import DataError

_FORWARD = b"ACGTURYSWKMBDHVN"
_COMPLEMENT = b"TGCAAYRSWMKVHDBN"  # U pairs with A; S, W, N are their own complements


def _table(mapping: dict[int, int] | None = None, default: str = "identity") -> np.ndarray:
    table = np.arange(256, dtype=np.uint8) if default == "identity" else np.zeros(256, dtype=np.uint8)
    for k, v in (mapping or {}).items():
        table[k] = v
    return table


COMPLEMENT = _table({**dict(zip(_FORWARD, _COMPLEMENT)), **dict(zip(_FORWARD.lower(), _COMPLEMENT.lower()))})
UPPER = _table({c: c - 32 for c in range(ord("a"), ord("z") + 1)})
IS_LOWER = np.zeros(256, dtype=bool)
IS_LOWER[ord("a") : ord("z") + 1] = True
IS_IUPAC = np.zeros(256, dtype=bool)
IS_IUPAC[list(IUPAC_BYTES)] = True
IS_AMBIGUOUS = IS_IUPAC.copy()
IS_AMBIGUOUS[list(b"ACGTUacgtu")] = False
TO_N = _table(
    {
        **{c: ord("N") for c in IUPAC_BYTES if IS_AMBIGUOUS[c] and c < 97},
        **{c: ord("n") for c in IUPAC_BYTES if IS_AMBIGUOUS[c] and c >= 97},
    }
)


_COMPLEMENT_BYTES = COMPLEMENT.tobytes()
_UPPER_BYTES = UPPER.tobytes()
_TO_N_BYTES = TO_N.tobytes()
_UNAMBIGUOUS = b"ACGTUacgtu"


@overload
def reverse_complement(seq: np.ndarray) -> np.ndarray: ...
@overload
def reverse_complement(seq: bytes | bytearray) -> bytes: ...
def reverse_complement(seq: bytes | bytearray | np.ndarray) -> bytes | np.ndarray:
    """IUPAC-aware, case-preserving reverse complement (R<->Y, K<->M, B<->V, D<->H; S, W, N fixed)."""
    if isinstance(seq, np.ndarray):
        return COMPLEMENT.take(seq[::-1])
    return bytes(seq).translate(_COMPLEMENT_BYTES)[::-1]


@dataclass
class EncodedWindow:
    """One window after the byte policies; ``ambiguous_fraction`` lets the sampler apply ``n_policy=drop``."""

    ids: bytes
    loss_mask: np.ndarray  # bool (L,)
    soft_mask: np.ndarray | None  # bool (L,), True where the file had lower case
    ambiguous_fraction: float

    def reverse_complemented(self) -> EncodedWindow:
        return EncodedWindow(
            self.ids.translate(_COMPLEMENT_BYTES)[::-1],
            self.loss_mask[::-1].copy(),
            None if self.soft_mask is None else self.soft_mask[::-1].copy(),
            self.ambiguous_fraction,
        )


def encode_window(raw: bytes, cfg: DataConfig, source: str = "", chrom: str = "", start: int = 0) -> EncodedWindow:
    """Apply ``cfg``'s policies to raw bytes; ``source``/``chrom``/``start`` only locate errors.

    Byte-string ``translate`` does the common work (a clean window costs two passes over its bytes);
    numpy masks are only built for windows that contain ambiguous bases or when asked for.
    """
    n = len(raw)
    if cfg.kind == "text":
        return EncodedWindow(raw, np.ones(n, dtype=bool), None, 0.0)
    if raw.translate(None, IUPAC_BYTES):
        arr = np.frombuffer(raw, dtype=np.uint8)
        pos = int(np.argmin(IS_IUPAC.take(arr)))
        raise DataError(
            f"{source}: {chrom}:{start + pos + 1}: character {chr(arr[pos])!r} is not an IUPAC nucleotide code"
        )
    soft = IS_LOWER.take(np.frombuffer(raw, dtype=np.uint8)) if cfg.emit_soft_mask else None
    ids = raw.translate(_UPPER_BYTES) if cfg.soft_mask == "upper" else raw
    n_ambiguous = len(ids.translate(None, _UNAMBIGUOUS))
    loss_mask = np.ones(n, dtype=bool)
    if n_ambiguous and cfg.n_policy in ("mask", "drop"):
        loss_mask = ~IS_AMBIGUOUS.take(np.frombuffer(ids, dtype=np.uint8))
    if n_ambiguous and cfg.n_policy == "replace":
        ids = ids.translate(_TO_N_BYTES)
    return EncodedWindow(ids, loss_mask, soft, n_ambiguous / max(n, 1))
