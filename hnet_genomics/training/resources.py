"""A rough memory estimate before training starts, so an out-of-memory-prone setting is flagged up front."""

from __future__ import annotations

import os

from hnet_genomics.config import Config
from hnet_genomics.model.layout import parse_layout

BYTES_PER_PARAM = 16  # fp32 weight + gradient + two AdamW moments
ACTIVATION_BYTES_PER_TOKEN_PER_WIDTH = 4 * 24  # saved activations per block, fp32, empirical order of magnitude


def estimate_training_bytes(config: Config, batch_size: int, params: int) -> int:
    m = config.model
    tokens = batch_size * config.train.seq_len
    density, act = 1.0, 0.0
    for s, st in enumerate(parse_layout(m.arch_layout)):
        width = m.d_model[s] * max(m.ssm.expand, 1)
        act += density * len(st.all_blocks()) * width * ACTIVATION_BYTES_PER_TOKEN_PER_WIDTH
        if not st.innermost:
            density /= m.target_compression[s]
    act += m.vocab_size * 4 * 2  # logits and their gradient
    return int(params * BYTES_PER_PARAM + tokens * act)


def available_bytes(on_gpu: bool) -> int | None:
    if on_gpu:
        import torch

        return torch.cuda.mem_get_info()[0] if torch.cuda.is_available() else None
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None
