"""Held-out bits per base over fixed windows that tile each region exactly once."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.utils.data import DataLoader, Subset

from hnet_genomics.config import DataConfig
from hnet_genomics.data.datasets import EvalWindowDataset, collate_padded
from hnet_genomics.data.intervals import Interval
from hnet_genomics.devices import inference_precision
from hnet_genomics.model.lm import HNetLM
from hnet_genomics.training.objective import bits_per_base, next_base_nll, target_weights


def evenly_spaced(dataset, count: int | None):
    """A deterministic subset spread over the whole split (for quick periodic validation)."""
    if count is None or count >= len(dataset):
        return dataset
    step = len(dataset) / count
    return Subset(dataset, [int(i * step) for i in range(count)])


def with_bos(batch: dict, bos: int) -> dict:
    """A padded batch with ``bos`` before every row: a real position that is never a target itself."""
    rows = batch["input_ids"].shape[0]
    ones = torch.ones(rows, 1, dtype=torch.bool)
    return {
        **batch,
        "input_ids": torch.cat([torch.full((rows, 1), bos, dtype=batch["input_ids"].dtype), batch["input_ids"]], 1),
        "mask": torch.cat([ones, batch["mask"]], 1),
        "loss_mask": torch.cat([ones, batch["loss_mask"]], 1),
    }


@torch.inference_mode()
def evaluate_bpb(
    model: HNetLM,
    source,
    intervals: Sequence[Interval],
    seq_len: int,
    data_cfg: DataConfig,
    batch_size: int = 8,
    max_windows: int | None = None,
    device: str | torch.device = "cpu",
    progress: bool = False,
    precision: str = "fp32",
) -> dict:
    """bpb over every counted next-base target (the first base of each window has no context and is not
    scored; padding and loss-masked bases are excluded). A model trained with a BOS token (``bos_token``, the
    reference's imported text models) reads each window after it, as in its training, so every byte is scored.
    ``precision``: see ``devices.inference_precision``."""
    dataset = evenly_spaced(EvalWindowDataset(source, intervals, seq_len, data_cfg), max_windows)
    loader = DataLoader(dataset, batch_size=batch_size, collate_fn=collate_padded)
    model = model.to(device).eval()
    nll_total, count_total, level_counts = 0.0, 0.0, None
    batches = loader
    if progress:
        from tqdm import tqdm

        batches = tqdm(loader, desc="eval", unit="batch")
    for batch in batches:
        if model.bos_token is not None:
            batch = with_bos(batch, model.bos_token)
        ids, mask = batch["input_ids"].to(device), batch["mask"].to(device)
        with inference_precision(str(device), precision):
            out = model(ids, mask=mask)
        nll, count = next_base_nll(
            out.logits, ids, target_weights({**batch, "mask": mask, "loss_mask": batch["loss_mask"].to(device)})
        )
        nll_total += float(nll)
        count_total += float(count)
        # a BOS opens a chunk at every level: counted out, so the ratios are those of the text alone
        bos_rows = float(ids.shape[0]) if model.bos_token is not None else 0.0
        counts = [float(m.sum()) - bos_rows for m in out.level_masks]
        level_counts = counts if level_counts is None else [a + b for a, b in zip(level_counts, counts)]
    level_counts = level_counts or [0.0]
    return {
        "bpb": bits_per_base(nll_total, count_total),
        "bases_scored": int(count_total),
        "windows": len(dataset),
        "compression_ratios": [a / max(b, 1.0) for a, b in zip(level_counts, level_counts[1:])],
    }
