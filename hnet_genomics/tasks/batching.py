"""Byte sequences -> right-padded (input_ids, mask) batches, and the model-context length policy.

The model reads raw bytes (``A`` = 65), so there is no tokenizer: padding is byte 0 with mask False, and
every consumer (pooling, losses) must use the mask rather than trust the padding value.
"""

from __future__ import annotations

import warnings
from typing import Literal

import torch

from hnet_genomics.data.labelled import LabelledSequences
from hnet_genomics.errors import DataError

LongPolicy = Literal["error", "truncate"]
PAD_BYTE = 0


def pad_batch(seqs: list[bytes]) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, L) int64 byte ids right-padded with 0, and the (B, L) bool mask of real bases."""
    length = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), length), PAD_BYTE, dtype=torch.long)
    mask = torch.zeros((len(seqs), length), dtype=torch.bool)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = torch.frombuffer(bytearray(s), dtype=torch.uint8).long()
        mask[i, : len(s)] = True
    return ids, mask


def fit_to_context(data: LabelledSequences, max_len: int, policy: LongPolicy) -> LabelledSequences:
    """Refuse (default) or truncate sequences longer than the model was built to read."""
    too_long = [i for i, s in enumerate(data.sequences) if len(s) > max_len]
    if not too_long:
        return data
    first = too_long[0]
    if policy == "error":
        raise DataError(
            f"{data.origins[first]}: sequence of {len(data.sequences[first])} bp is longer than "
            f"the model context of {max_len} bp ({len(too_long)} such sequence(s); pass "
            f"--max-len or --on-long truncate)"
        )
    warnings.warn(
        f"{data.source}: truncating {len(too_long)} sequence(s) to the model context of {max_len} bp "
        f"(first: {data.origins[first]})",
        stacklevel=2,
    )
    seqs = [s[:max_len] for s in data.sequences]
    return LabelledSequences(seqs, data.labels, data.names, data.origins, data.source)
