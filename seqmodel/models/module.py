"""The LightningModule: joint loss, optimisation and per-head metrics around a plain SeqModel."""

from __future__ import annotations

import math

import lightning as L
import torch
import torch.nn.functional as F
import torchmetrics
from torchmetrics.classification import BinaryAUROC, BinaryAveragePrecision

from seqmodel.data.batches import Batch
from seqmodel.models.network import SeqModel


class HeadMetrics(torch.nn.Module):
    """Global (not per-batch averaged) metrics of both heads for one stage.

    Per base, over valid positions: AUROC, AUPRC (average precision), and the Pearson
    correlation of the predicted probability with the true rate where the data has one.
    Per sequence: one-vs-rest macro AUROC and accuracy.
    """

    def __init__(self, num_classes: int):
        super().__init__()
        self.base_auroc = BinaryAUROC()
        self.base_auprc = BinaryAveragePrecision()
        self.pearson_true_rate = torchmetrics.PearsonCorrCoef()
        self.seq_auroc = torchmetrics.AUROC(task="multiclass", num_classes=num_classes)
        self.seq_acc = torchmetrics.Accuracy(task="multiclass", num_classes=num_classes)
        self.saw_true_rate = False

    def update(self, base_logits: torch.Tensor, class_logits: torch.Tensor, batch: Batch) -> None:
        prob = torch.sigmoid(base_logits.float())[batch.mask]
        target = batch.base_target[batch.mask]
        self.base_auroc.update(prob, (target >= 0.5).long())
        self.base_auprc.update(prob, (target >= 0.5).long())
        rate = batch.true_rate[batch.mask]
        known = ~torch.isnan(rate)
        if bool(known.any()):
            self.saw_true_rate = True
            self.pearson_true_rate.update(prob[known], rate[known])
        class_prob = torch.softmax(class_logits.float(), dim=-1)
        self.seq_auroc.update(class_prob, batch.seq_target)
        self.seq_acc.update(class_prob, batch.seq_target)

    def compute_and_reset(self) -> dict[str, torch.Tensor]:
        names = ["base_auroc", "base_auprc", "seq_auroc", "seq_acc"]
        if self.saw_true_rate:
            names.append("pearson_true_rate")
        values = {name: getattr(self, name).compute() for name in names}
        for name in names + ["pearson_true_rate"]:
            getattr(self, name).reset()
        self.saw_true_rate = False
        return values


class SeqLightningModule(L.LightningModule):
    """Trains a SeqModel on the joint loss `w_base * masked BCE + w_seq * cross-entropy`.

    Everything needed to rebuild the network and read new data (model settings, classes,
    window, stride, alphabet) is stored as plain hyperparameters inside the checkpoint.
    """

    def __init__(
        self, model: dict, num_classes: int, data_info: dict, loss: dict, optim: dict, compile: bool = False
    ):
        super().__init__()
        self.save_hyperparameters()
        self.model = SeqModel(num_classes=num_classes, **model)
        # Kept outside the module tree so checkpoints hold plain `model.*` weights.
        object.__setattr__(self, "_forward_fn", torch.compile(self.model) if compile else self.model)
        self.loss_cfg = loss
        self.optim_cfg = optim
        self.register_buffer("pos_weight", torch.tensor(float(loss.get("pos_weight", 1.0))), persistent=False)
        self.metrics = torch.nn.ModuleDict({stage: HeadMetrics(num_classes) for stage in ("val", "test")})

    def forward(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        return self._forward_fn(batch.tokens, batch.mask, batch.lengths)

    def losses(
        self, batch: Batch, base_logits: torch.Tensor, class_logits: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        per_base = F.binary_cross_entropy_with_logits(
            base_logits.float(), batch.base_target, pos_weight=self.pos_weight, reduction="none"
        )
        mask = batch.mask.to(per_base.dtype)
        base_loss = (per_base * mask).sum() / mask.sum().clamp(min=1)
        seq_loss = F.cross_entropy(class_logits.float(), batch.seq_target)
        loss = self.loss_cfg["w_base"] * base_loss + self.loss_cfg["w_seq"] * seq_loss
        return {"loss": loss, "base_loss": base_loss, "seq_loss": seq_loss}

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        losses = self.losses(batch, *self(batch))
        self.log_dict({f"train/{k}": v for k, v in losses.items()}, prog_bar=False, batch_size=len(batch))
        self.log("loss", losses["loss"], prog_bar=True, logger=False, batch_size=len(batch))
        return losses["loss"]

    def _eval_step(self, stage: str, batch: Batch) -> None:
        base_logits, class_logits = self(batch)
        losses = self.losses(batch, base_logits, class_logits)
        self.log_dict({f"{stage}/{k}": v for k, v in losses.items()}, sync_dist=True, batch_size=len(batch))
        self.metrics[stage].update(base_logits, class_logits, batch)

    def _eval_epoch_end(self, stage: str) -> None:
        values = self.metrics[stage].compute_and_reset()
        # torchmetrics already reduced these across ranks; sync_dist only averages equal values.
        self.log_dict({f"{stage}/{k}": v for k, v in values.items()}, prog_bar=stage == "val", sync_dist=True)

    def validation_step(self, batch: Batch, batch_idx: int) -> None:
        self._eval_step("val", batch)

    def on_validation_epoch_end(self) -> None:
        self._eval_epoch_end("val")

    def test_step(self, batch: Batch, batch_idx: int) -> None:
        self._eval_step("test", batch)

    def on_test_epoch_end(self) -> None:
        self._eval_epoch_end("test")

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(
            self.parameters(), lr=self.optim_cfg["lr"], weight_decay=self.optim_cfg["weight_decay"]
        )
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = min(int(self.optim_cfg.get("warmup_steps", 0)), total - 1)
        schedule = torch.optim.lr_scheduler.LambdaLR(
            optimizer,
            lambda step: (
                min(1.0, (step + 1) / max(1, warmup))
                * 0.5
                * (1 + math.cos(math.pi * min(step, total) / total))
            ),
        )
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
