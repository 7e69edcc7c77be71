"""The LightningModule: joint loss, optimisation and per-head metrics around a plain SeqModel."""

from __future__ import annotations

import math

import lightning as L
import torch
import torch.nn.functional as F
import torchmetrics
from torchmetrics.classification import BinaryAUROC, BinaryAveragePrecision

from seqmodel.data.batches import Batch
from seqmodel.errors import ParameterError
from seqmodel.models.network import SeqModel, per_genome_rate


class Pearson64(torchmetrics.Metric):
    """Pearson correlation from float64 running sums (rates near 1e-4 over millions of bases
    lose every digit in float32 accumulation)."""

    full_state_update = False

    def __init__(self):
        super().__init__()
        for name in ("n", "sx", "sy", "sxx", "syy", "sxy"):
            self.add_state(name, default=torch.zeros((), dtype=torch.float64), dist_reduce_fx="sum")

    def update(self, x: torch.Tensor, y: torch.Tensor) -> None:
        x, y = x.double(), y.double()
        self.n += x.numel()
        self.sx += x.sum()
        self.sy += y.sum()
        self.sxx += (x * x).sum()
        self.syy += (y * y).sum()
        self.sxy += (x * y).sum()

    def compute(self) -> torch.Tensor:
        n = self.n.clamp(min=1)
        cov = self.sxy - self.sx * self.sy / n
        var_x = self.sxx - self.sx**2 / n
        var_y = self.syy - self.sy**2 / n
        return cov / torch.sqrt(var_x * var_y)


class HeadMetrics(torch.nn.Module):
    """Global (not per-batch averaged) metrics of both heads for one stage.

    Per base, over valid positions: AUROC and AUPRC of "mutated in >= 1 genome", and the
    Pearson correlation of the predicted rate with the true rate where the data has one.
    Per sequence: one-vs-rest macro AUROC and accuracy. A metric that cannot be computed
    (no true rate, a single class among the labels) is left out, not logged as a number.
    """

    def __init__(self, num_classes: int):
        super().__init__()
        self.base_auroc = BinaryAUROC()
        self.base_auprc = BinaryAveragePrecision()
        self.pearson_true_rate = Pearson64()
        self.seq_auroc = torchmetrics.AUROC(task="multiclass", num_classes=num_classes)
        self.seq_acc = torchmetrics.Accuracy(task="multiclass", num_classes=num_classes)
        self.register_buffer("class_counts", torch.zeros(num_classes, dtype=torch.long), persistent=False)
        self.register_buffer("mutated", torch.zeros((), dtype=torch.long), persistent=False)
        self.saw_true_rate = False

    def update(self, rate: torch.Tensor, class_logits: torch.Tensor, batch: Batch) -> None:
        """rate: `(B, L)` predicted per-genome rate; class_logits: `(B, K)`."""
        prob = rate.float()[batch.mask]
        mutated = (batch.base_target[batch.mask] > 0).long()
        self.mutated += mutated.sum()
        self.base_auroc.update(prob, mutated)
        self.base_auprc.update(prob, mutated)
        true_rate = batch.true_rate[batch.mask]
        known = ~torch.isnan(true_rate)
        if bool(known.any()):
            self.saw_true_rate = True
            self.pearson_true_rate.update(prob[known], true_rate[known])
        class_prob = torch.softmax(class_logits.float(), dim=-1)
        self.class_counts += torch.bincount(batch.seq_target, minlength=len(self.class_counts))
        self.seq_auroc.update(class_prob, batch.seq_target)
        self.seq_acc.update(class_prob, batch.seq_target)

    def compute_and_reset(self) -> dict[str, torch.Tensor]:
        names = ["seq_acc"]
        if int(self.mutated) > 0:
            names += ["base_auroc", "base_auprc"]
        if self.saw_true_rate:
            names.append("pearson_true_rate")
        if int((self.class_counts > 0).sum()) > 1:
            names.append("seq_auroc")
        values = {name: getattr(self, name).compute() for name in names}
        for name in ("base_auroc", "base_auprc", "pearson_true_rate", "seq_auroc", "seq_acc"):
            getattr(self, name).reset()
        self.class_counts.zero_()
        self.mutated.zero_()
        self.saw_true_rate = False
        return values


def per_base_loss(
    logits: torch.Tensor, carriers: torch.Tensor, mask: torch.Tensor, genomes: float, kind: str, pos_weight
) -> torch.Tensor:
    """Mean per-base loss over `mask`.

    binomial: the negative log-likelihood of `carriers` out of `genomes` with the per-genome
    rate sigmoid(logits), per base (without the binomial coefficient, which does not depend on
    the rate): `genomes` x BCE against the fraction carriers / genomes. Its minimiser is the
    calibrated rate, and per base it weighs about as much as the sequence cross-entropy, so
    neither head's gradient drowns the other's in the shared trunk.
    presence: BCE of "carried by >= 1 genome" (for data without counts), with `pos_weight`.
    """
    if kind == "binomial":
        per_base = genomes * F.binary_cross_entropy_with_logits(logits, carriers / genomes, reduction="none")
    else:
        per_base = F.binary_cross_entropy_with_logits(
            logits, (carriers > 0).to(logits.dtype), pos_weight=pos_weight, reduction="none"
        )
    weights = mask.to(per_base.dtype)
    return (per_base * weights).sum() / weights.sum().clamp(min=1)


def gradient_cosine(
    losses: tuple[torch.Tensor, torch.Tensor], parameters: list[torch.Tensor]
) -> torch.Tensor:
    """Cosine between the gradients of two losses with respect to `parameters` (the trunk):
    below 0 the tasks pull the shared weights apart."""
    grads = [
        torch.cat(
            [
                (g if g is not None else torch.zeros_like(p)).flatten()
                for g, p in zip(
                    torch.autograd.grad(loss, parameters, retain_graph=True, allow_unused=True),
                    parameters,
                    strict=True,
                )
            ]
        )
        for loss in losses
    ]
    return F.cosine_similarity(grads[0].double(), grads[1].double(), dim=0)


class SeqLightningModule(L.LightningModule):
    """Trains a SeqModel on the joint loss `w_base * per-base loss + w_seq * cross-entropy`.

    The per-base output is the per-genome mutation rate (`loss.base: binomial`, on carrier
    counts out of `data_info["genomes"]`). Everything needed to rebuild the network and read
    new data (model settings, classes, window, genomes) is stored as plain hyperparameters
    inside the checkpoint.

    mean_rate: the training data's mean per-genome rate; the per-base head's bias starts there.
    """

    def __init__(
        self,
        model: dict,
        num_classes: int,
        data_info: dict,
        loss: dict,
        optim: dict,
        compile: bool = False,
        mean_rate: float | None = None,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.model = SeqModel(num_classes=num_classes, **model)
        if mean_rate is not None:
            self.model.per_base_head.start_at_rate(mean_rate)
        self.genomes = float(data_info.get("genomes") or 1)
        self.base_loss_kind = loss.get("base", "binomial")
        if self.base_loss_kind not in ("binomial", "presence"):
            raise ParameterError(
                "base_loss", f"must be 'binomial' or 'presence', got {self.base_loss_kind!r}"
            )
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
        base_loss = per_base_loss(
            base_logits.float(),
            batch.base_target,
            batch.mask,
            self.genomes,
            self.base_loss_kind,
            self.pos_weight,
        )
        seq_loss = F.cross_entropy(class_logits.float(), batch.seq_target)
        loss = self.loss_cfg["w_base"] * base_loss + self.loss_cfg["w_seq"] * seq_loss
        return {"loss": loss, "base_loss": base_loss, "seq_loss": seq_loss}

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor:
        losses = self.losses(batch, *self(batch))
        self.log_dict({f"train/{k}": v for k, v in losses.items()}, prog_bar=False, batch_size=len(batch))
        every = int(self.loss_cfg.get("grad_cosine_every", 0) or 0)
        if every and self.global_step % every == 0 and self.model.pooled_head.trunk_grad_scale > 0:
            trunk = [p for p in self.model.trunk.parameters() if p.requires_grad]
            cosine = gradient_cosine((losses["base_loss"], losses["seq_loss"]), trunk)
            self.log("train/grad_cosine", cosine.float(), batch_size=len(batch))
        self.log("loss", losses["loss"], prog_bar=True, logger=False, batch_size=len(batch))
        return losses["loss"]

    def _eval_step(self, stage: str, batch: Batch) -> None:
        base_logits, class_logits = self(batch)
        losses = self.losses(batch, base_logits, class_logits)
        self.log_dict({f"{stage}/{k}": v for k, v in losses.items()}, sync_dist=True, batch_size=len(batch))
        self.metrics[stage].update(self.rate(base_logits), class_logits, batch)

    def rate(self, base_logits: torch.Tensor) -> torch.Tensor:
        """The per-genome mutation rate `(B, L)` that the per-base head predicts."""
        return per_genome_rate(base_logits, self.base_loss_kind, self.genomes)

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
