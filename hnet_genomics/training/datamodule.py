"""Training and validation loaders, built per process so each distributed rank gets its own shard."""

from __future__ import annotations

import lightning as L
import torch
from torch.utils.data import DataLoader, Subset

from hnet_genomics.config import Config
from hnet_genomics.data.datasets import EvalWindowDataset, RandomWindowDataset, collate_packed, collate_padded
from hnet_genomics.data.intervals import Interval
from hnet_genomics.errors import DataError
from hnet_genomics.training.evaluate import evenly_spaced

HOST_KEYS = ("cu_seqlens",)  # what the model reads on the host (packed layout): it stays there


def batch_size_for(config: Config) -> int:
    """Per-device batch; ``tokens_per_batch`` keeps batch x length constant when the length changes."""
    tc = config.train
    if tc.tokens_per_batch:
        return max(tc.tokens_per_batch // tc.seq_len, 1)
    return tc.batch_size


class GenomeDataModule(L.LightningDataModule):
    def __init__(self, config: Config, source, splits: dict[str, list[Interval]], start_windows: int = 0):
        super().__init__()
        self.config, self.source, self.splits = config, source, splits
        self.start_windows = start_windows  # windows this rank already trained on (resume)
        self.collate = collate_packed if config.train.layout == "packed" else collate_padded

    def _rank(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def setup(self, stage: str) -> None:
        if stage == "fit":  # a window longer than every interval: a DataError before the memory check runs
            self._train_dataset()

    def _pin(self) -> bool:
        """Batches for a GPU go into pinned memory, so that their copy to the device does not wait."""
        return self.config.train.accelerator in ("auto", "gpu") and torch.cuda.is_available()

    def transfer_batch_to_device(self, batch, device, dataloader_idx):
        """Count the batch's bases while it is on the host (``num_bases``), and leave ``HOST_KEYS`` there."""
        if not isinstance(batch, dict) or "mask" not in batch:
            return super().transfer_batch_to_device(batch, device, dataloader_idx)
        host = {k: batch[k] for k in HOST_KEYS if k in batch}
        moved = super().transfer_batch_to_device(
            {k: v for k, v in batch.items() if k not in host}, device, dataloader_idx
        )
        return {**moved, **host, "num_bases": int(batch["mask"].numpy().sum())}

    def _train_dataset(self) -> RandomWindowDataset:
        tc = self.config.train
        rank, world = self._rank()
        return RandomWindowDataset(
            self.source,
            self.splits["train"],
            tc.seq_len,
            self.config.data,
            tc.seed,
            rank=rank,
            world_size=world,
            start_index=self.start_windows,
            batch_size=batch_size_for(self.config),
        )

    def train_dataloader(self) -> DataLoader:
        tc = self.config.train
        bs = batch_size_for(self.config)
        dataset = self._train_dataset()
        return DataLoader(
            dataset,
            batch_size=bs,
            collate_fn=self.collate,
            num_workers=tc.num_workers,
            persistent_workers=tc.num_workers > 0,
            pin_memory=self._pin(),
        )

    def val_dataloader(self) -> DataLoader:
        tc = self.config.train
        rank, world = self._rank()
        full = EvalWindowDataset(self.source, self.splits["valid"], tc.seq_len, self.config.data)
        subset = evenly_spaced(full, tc.val_windows)
        if len(subset) < world:
            # a rank without validation batches would skip the epoch-end reduction the others wait in
            raise DataError(
                f"the valid split holds {len(subset)} window(s) of {tc.seq_len} bases, fewer than the "
                f"{world} training processes; enlarge the valid split or shorten train.seq_len"
            )
        indices = list(range(len(subset)))[rank::world]  # disjoint shards; bpb sums are reduced across ranks
        return DataLoader(
            Subset(subset, indices),
            batch_size=batch_size_for(self.config),
            collate_fn=self.collate,
            pin_memory=self._pin(),
        )
