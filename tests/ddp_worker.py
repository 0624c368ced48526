"""Run by test_training_ddp.py: 2-process DDP pretraining on CPU (gloo), recording what each rank saw."""

import json
import sys
from pathlib import Path

import lightning as L
import torch

from hnet_genomics import load_config
from hnet_genomics.data import demo
from hnet_genomics.training.pretrain import run_pretrain


class RankProbe(L.Callback):
    def __init__(self, out: Path):
        self.out, self.batches = out, []

    def on_train_batch_start(self, trainer, module, batch, batch_idx):
        self.batches.append(batch["input_ids"].tolist())

    def on_train_end(self, trainer, module):
        flat = torch.cat([p.detach().flatten() for p in module.parameters()])
        record = {
            "rank": trainer.global_rank,
            "world_size": trainer.world_size,
            "batches": self.batches,
            "weights_sum": float(flat.double().sum()),
            "weights_abs": float(flat.double().abs().sum()),
        }
        (self.out / f"rank{trainer.global_rank}.json").write_text(json.dumps(record))


if __name__ == "__main__":
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    cfg = load_config(
        "dna/hnet_1stage_tiny",
        [
            "train.seq_len=64",
            "train.batch_size=2",
            "train.max_steps=3",
            "train.val_windows=4",
            "train.val_every=3",
            "train.final_val_windows=4",
            "train.strategy=ddp",
            "train.devices=2",
            "train.accelerator=cpu",
            "model.ssm.chunk_size=32",
        ],
    )
    run_pretrain(cfg, demo.HUMAN_FASTA, out, callbacks=[RankProbe(out)], progress=False)
