"""LightningModule for causal nucleotide language modelling with dynamic chunking."""

from __future__ import annotations

import lightning as L
import torch

from hnet_genomics.config import Config
from hnet_genomics.model.lm import HNetLM
from hnet_genomics.training.microbatch import rescale_for_resume
from hnet_genomics.training.objective import bits_per_base, next_base_nll, target_weights
from hnet_genomics.training.optim import make_optimizer, make_scheduler, retarget_lr


def model_inputs(batch: dict) -> dict:
    if "cu_seqlens" in batch:
        return {"cu_seqlens": batch["cu_seqlens"]}
    return {"mask": batch["mask"]}


class LMTask(L.LightningModule):
    """Loss = next-base cross-entropy + alpha * sum of per-level ratio losses.

    Keeps ``bases_seen`` (all ranks) and the number of training windows consumed per rank in checkpoints,
    so a resumed run continues the same data stream and the same curves.
    """

    def __init__(self, config: Config):
        super().__init__()
        self.config = config
        self.save_hyperparameters({"config": config.to_dict()})
        self.model = HNetLM(config.model)
        self.unit = config.data.unit  # "base" or "byte": the name of the counts below in logs and metrics
        self.bases_seen = 0  # inputs trained on, all ranks (bytes of a text run)
        self.windows_consumed = 0  # per rank, counted in batches actually trained on
        self._val = None
        self.history: list[dict] = []

    # ---- training --------------------------------------------------------------------------------------

    def training_step(self, batch, batch_idx):
        out = self.model(batch["input_ids"], **model_inputs(batch))
        weights = target_weights(batch)
        nll, count = next_base_nll(out.logits, batch["input_ids"], weights)
        ce = nll / count.clamp(min=1)
        alpha = self.config.train.ratio_loss_weight
        loss = ce + alpha * out.ratio_loss
        bases = int(batch["mask"].sum()) * self.trainer.world_size
        self.bases_seen += bases
        self.windows_consumed += (
            batch["input_ids"].shape[0] if "cu_seqlens" not in batch else len(batch["cu_seqlens"]) - 1
        )
        log = {
            "train/loss": loss.detach(),
            "train/bpb": ce.detach() / torch.log(torch.tensor(2.0)),
            "train/ratio_loss": out.ratio_loss.detach(),
            f"{self.unit}s_seen": float(self.bases_seen),
        }
        for s, ratio in enumerate(out.compression_ratios()):
            log[f"train/compression_{s + 1}"] = ratio
        for s, (b, v) in enumerate(zip(out.boundary_masks, out.level_masks)):
            log[f"train/boundary_rate_{s + 1}"] = (b & v).sum().float() / v.sum().clamp(min=1)
        log["lr"] = self.trainer.optimizers[0].param_groups[0]["lr"] / self.trainer.optimizers[0].param_groups[0].get(
            "lr_multiplier", 1.0
        )
        self.log_dict(log, on_step=True, on_epoch=False, prog_bar=False, batch_size=batch["input_ids"].shape[0])
        self.log("loss", loss.detach(), prog_bar=True, on_step=True, batch_size=batch["input_ids"].shape[0])
        return loss

    def configure_optimizers(self):
        optimizer = make_optimizer(self.model, self.config.model, self.config.train)
        scheduler = make_scheduler(optimizer, self.config.train)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    # ---- validation ------------------------------------------------------------------------------------

    def on_validation_epoch_start(self):
        n_levels = len(self.config.model.target_compression)
        self._val = torch.zeros(2 + n_levels + 1, dtype=torch.float64, device=self.device)

    def validation_step(self, batch, batch_idx):
        out = self.model(batch["input_ids"], **model_inputs(batch))
        nll, count = next_base_nll(out.logits, batch["input_ids"], target_weights(batch))
        counts = [m.sum() for m in out.level_masks]
        self._val += torch.stack([nll.double(), count.double()] + [c.double() for c in counts])

    def on_validation_epoch_end(self):
        totals = self.trainer.strategy.reduce(self._val, reduce_op="sum")
        bpb = bits_per_base(float(totals[0]), float(totals[1]))
        counts = totals[2:].tolist()
        ratios = [a / max(b, 1.0) for a, b in zip(counts, counts[1:])]
        self.log("val_bpb", bpb, prog_bar=True, sync_dist=False)
        for s, r in enumerate(ratios):
            self.log(f"val/compression_{s + 1}", r, sync_dist=False)
        if not self.trainer.sanity_checking:
            self.history.append(
                {
                    "step": int(self.global_step),
                    f"{self.unit}s_seen": int(self.bases_seen),
                    "val_bpb": bpb,
                    "compression_ratios": ratios,
                }
            )

    # ---- checkpoint state ------------------------------------------------------------------------------

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["hnet_genomics"] = {
            "bases_seen": self.bases_seen,
            "windows_consumed": self.windows_consumed,
            "history": self.history,
            "torch_rng": torch.get_rng_state(),
            "accumulate_grad_batches": self.trainer.accumulate_grad_batches,  # the split may change on resume
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        # runs before Lightning restores the optimiser and schedule from this dict: resume at this config's LRs
        retarget_lr(checkpoint, self.config.model, self.config.train)
        if self._trainer is not None:  # the micro-batch split may have changed since the checkpoint was written
            rescale_for_resume(checkpoint, self._trainer.accumulate_grad_batches)
        state = checkpoint.get("hnet_genomics", {})
        self.bases_seen = int(state.get("bases_seen", 0))
        self.windows_consumed = int(state.get("windows_consumed", 0))
        self.history = list(state.get("history", []))
        if "torch_rng" in state:
            torch.set_rng_state(state["torch_rng"])
