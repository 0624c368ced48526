"""Run by test_training_ddp.py: 2-process DDP pretraining on CPU (gloo), recording what each rank saw.

``ddp_worker.py OUT tight-rank1``: rank 1 is told its memory holds one and a half windows, rank 0 nothing
(unknown free memory), so both must train the micro-batch rank 1 can hold."""

import json
import os
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
            "accumulate_grad_batches": trainer.accumulate_grad_batches,
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
    if sys.argv[2:] == ["tight-rank1"]:
        from hnet_genomics import build_model
        from hnet_genomics.training import microbatch
        from hnet_genomics.training.resources import MEMORY_MARGIN, measure_training_memory

        estimate = measure_training_memory(build_model(cfg.model), cfg.train.seq_len, seed=cfg.train.seed)
        tight = int((estimate.step_bytes(0) + 1.5 * estimate.per_window) / MEMORY_MARGIN)
        microbatch.available_bytes = lambda device: tight if os.environ.get("LOCAL_RANK") == "1" else None
    run_pretrain(cfg, demo.HUMAN_FASTA, out, callbacks=[RankProbe(out)], progress=False)
