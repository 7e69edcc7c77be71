"""Training callbacks that belong to seqmodel."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import LearningRateMonitor

from seqmodel.io import alphabet

log = logging.getLogger(__name__)


class WindowLog(L.Callback):
    """Writes the window ids each rank trains on, one file per rank and epoch.

    `dirpath/rank<r>.epoch<e>.txt` holds one batch per line (space-separated window ids), so a
    run can be audited: shards disjoint across ranks, nothing repeated or skipped on resume.
    """

    def __init__(self, dirpath: str):
        self.dirpath = Path(dirpath)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.dirpath.mkdir(parents=True, exist_ok=True)
        path = self.dirpath / f"rank{trainer.global_rank}.epoch{trainer.current_epoch}.txt"
        with open(path, "a") as handle:
            handle.write(" ".join(map(str, batch.window_ids.tolist())) + "\n")


class LastCheckpoint(L.Callback):
    """Keeps `dirpath/last.ckpt` current: every `every_n_train_steps` steps and at each epoch end.

    The file is written to a temporary name and renamed, so a kill at any moment leaves
    either the previous or the new checkpoint, never a partial one. Resuming from a
    mid-epoch checkpoint continues at the next batch (see `SeqDataModule`).
    """

    def __init__(self, dirpath: str, every_n_train_steps: int = 50):
        self.dirpath = Path(dirpath)
        self.every_n_train_steps = every_n_train_steps
        self.last_model_path = ""

    def save(self, trainer: L.Trainer) -> None:
        path = self.dirpath / "last.ckpt"
        tmp = self.dirpath / ".last.ckpt.tmp"
        # collective: every rank calls it, rank 0 writes; the full state (optimizer, loops) for resuming
        trainer.save_checkpoint(tmp, weights_only=False)
        if trainer.is_global_zero:
            os.replace(tmp, path)
        self.last_model_path = str(path)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if self.every_n_train_steps and trainer.global_step % self.every_n_train_steps == 0:
            self.save(trainer)

    def on_train_epoch_end(self, trainer, pl_module) -> None:
        self.save(trainer)


# --- experiment-tracker callbacks ------------------------------------------------------------------


def wandb_logger(trainer: L.Trainer):
    """The trainer's WandbLogger, or None (without importing wandb)."""
    from lightning.pytorch.loggers import WandbLogger

    return next((logger for logger in trainer.loggers if isinstance(logger, WandbLogger)), None)


class LearningRates(LearningRateMonitor):
    """Lightning's LearningRateMonitor that stays quiet in a run without a logger (`logger=none`,
    `debug=fast`) instead of refusing it."""

    def on_train_start(self, trainer, *args, **kwargs) -> None:
        if trainer.loggers:
            super().on_train_start(trainer, *args, **kwargs)

    def on_train_batch_start(self, trainer, *args, **kwargs) -> None:
        if trainer.loggers:
            super().on_train_batch_start(trainer, *args, **kwargs)

    def on_train_epoch_start(self, trainer, *args, **kwargs) -> None:
        if trainer.loggers:
            super().on_train_epoch_start(trainer, *args, **kwargs)


class WandbSummaries(L.Callback):
    """Best-value summaries of the monitored metrics in the wandb run (`define_metric`).

    metrics: metric name -> `min` or `max`; the run's summary then holds e.g. `val/loss.min`
    beside `val/loss.last`. Declared once the run exists (at fit start), on the trainer's step
    axis like every other metric.
    Nothing happens without a WandbLogger.
    """

    def __init__(self, metrics: dict[str, str] | None = None):
        self.metrics = dict(metrics or {})
        for name, goal in self.metrics.items():
            if goal not in ("min", "max"):
                raise ValueError(f"summary of {name}: 'min' or 'max', not {goal!r}")

    def on_fit_start(self, trainer, pl_module) -> None:
        logger = wandb_logger(trainer)
        if logger is None or not trainer.is_global_zero:
            return
        run = logger.experiment
        for name, goal in self.metrics.items():
            run.define_metric(
                name,
                step_metric="trainer/global_step",
                step_sync=True,
                summary=f"{goal},last",
            )


@dataclass
class RecordPrediction:
    """One validation record through the network: per-base arrays `(n,)` over its first `n` bases."""

    index: int  # into the dataset
    rate: np.ndarray  # predicted per-genome rate, NaN at N
    carriers: np.ndarray  # observed carriers
    truth: np.ndarray  # true rate, NaN where unknown
    class_prob: np.ndarray  # `(K,)`


class WandbTracks(L.Callback):
    """What a wandb run shows of the validation split after each validation epoch.

    - `val/rate_tracks`: one image, one row per record for `records` fixed validation records
      (classes taken in turn): the predicted per-genome rate against the true rate (where the
      data has one), observed mutations ticked below (`plots.rate_track_figure`);
    - `val/predictions`: a table of the first `table_records` validation records: id, label,
      predicted class and class probabilities, bases, observed mutated bases, mean predicted
      rate, the `top_k` positions of highest predicted rate (0-based in the record) and how
      many of them are mutated.

    Each record is cut into the data's windows (as validation does) over its first `max_bases`
    bases; its class probabilities are its windows' averaged by valid bases. Only rank 0 works,
    every `every_n_epochs` epochs, not in the sanity check; without a WandbLogger nothing
    happens (one look at the loggers per validation epoch). Without matplotlib the images are
    left out (with one warning) and the table is still logged.
    """

    def __init__(
        self,
        records: int = 4,
        table_records: int = 200,
        top_k: int = 5,
        max_bases: int = 2000,
        every_n_epochs: int = 1,
        batch_size: int = 64,
    ):
        self.records = records
        self.table_records = table_records
        self.top_k = top_k
        self.max_bases = max_bases
        self.every_n_epochs = max(1, every_n_epochs)
        self.batch_size = batch_size
        self._track_indices: list[int] | None = None
        self._warned = False

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        logger = wandb_logger(trainer)
        if logger is None or (trainer.current_epoch + 1) % self.every_n_epochs:
            return
        datamodule = trainer.datamodule
        view = getattr(datamodule, "splits", {}).get("val")
        if view is None or len(view) == 0:
            return
        if self._track_indices is None:
            self._track_indices = fixed_records(view.labels, self.records)
        table = list(range(min(self.table_records, len(view))))
        wanted = sorted(set(table) | set(self._track_indices))
        window = int(getattr(datamodule, "window", None) or pl_module.hparams.data_info["window"])
        predictions = dict(zip(wanted, self.predict(trainer, pl_module, view, wanted, window), strict=True))
        import wandb

        media = {}
        if table:
            columns, rows = self.table(view, [predictions[i] for i in table])
            media["val/predictions"] = wandb.Table(columns=columns, data=rows)
        image = self.track_image(view, [predictions[i] for i in self._track_indices])
        if image is not None:
            ids = ", ".join(view.dataset.ids[predictions[i].index] for i in self._track_indices)
            media["val/rate_tracks"] = wandb.Image(image, caption=ids)
        if media:
            logger.log_metrics(media, step=trainer.global_step)

    @torch.no_grad()
    def predict(self, trainer, pl_module, view, positions: list[int], window: int) -> list[RecordPrediction]:
        """The split's records at `positions`, through `pl_module.model` window by window."""
        data = view.dataset
        tiles, lengths, owners, spans = [], [], [], []
        for position in positions:
            index = int(view.records[position])
            lo = int(data.offsets[index])
            hi = min(int(data.offsets[index + 1]), lo + self.max_bases)
            spans.append((index, lo, hi))
            for start in range(lo, hi, window):
                tile = np.full(window, alphabet.N, dtype=np.int64)
                chunk = data.tokens[start : min(start + window, hi)]
                tile[: len(chunk)] = chunk
                tiles.append(tile)
                lengths.append(len(chunk))
                owners.append(len(spans) - 1)
        tokens = torch.from_numpy(np.stack(tiles)) if tiles else torch.zeros((0, window), dtype=torch.int64)
        tile_lengths = torch.as_tensor(lengths, dtype=torch.int64)
        rates, class_probs = [], []
        with trainer.precision_plugin.forward_context():
            for first in range(0, len(tokens), self.batch_size):
                chunk = tokens[first : first + self.batch_size].to(pl_module.device)
                mask = chunk < alphabet.N
                chunk_lengths = tile_lengths[first : first + self.batch_size].to(pl_module.device)
                base_logits, class_logits = pl_module.model(chunk, mask, chunk_lengths)
                rate = pl_module.rate(base_logits).float().masked_fill(~mask, float("nan"))
                rates.append(rate.cpu().numpy())
                class_probs.append(torch.softmax(class_logits.float(), dim=-1).cpu().numpy())
        rate_tiles = np.concatenate(rates) if rates else np.zeros((0, window), np.float32)
        prob_tiles = np.concatenate(class_probs) if class_probs else np.zeros((0, 1), np.float32)
        valid_tiles = (tokens < alphabet.N).sum(1).numpy().astype(np.float64)
        owners_array = np.asarray(owners, dtype=np.int64)
        out = []
        for k, (index, lo, hi) in enumerate(spans):
            mine = owners_array == k
            weights = valid_tiles[mine]
            probs = prob_tiles[mine]
            class_prob = (
                (probs * weights[:, None]).sum(0) / weights.sum() if weights.sum() > 0 else probs.mean(0)
            )
            out.append(
                RecordPrediction(
                    index=index,
                    rate=rate_tiles[mine].reshape(-1)[: hi - lo],
                    carriers=np.asarray(data.base_target[lo:hi], dtype=np.float32),
                    truth=np.asarray(data.true_rate[lo:hi], dtype=np.float32),
                    class_prob=class_prob.astype(np.float32),
                )
            )
        return out

    def table(self, view, predictions: list[RecordPrediction]) -> tuple[list[str], list[list]]:
        """The columns and rows of `val/predictions`."""
        classes = list(view.classes)
        k = self.top_k
        columns = [
            "id",
            "label",
            "predicted",
            *(f"p_{name}" for name in classes),
            "bases",
            "mutated_bases",
            "mean_rate",
            f"top{k}_positions",
            f"top{k}_mutated",
        ]
        rows = []
        for prediction in predictions:
            valid = ~np.isnan(prediction.rate)
            ranked = np.argsort(np.where(valid, -prediction.rate, np.inf), kind="stable")
            order = ranked[: min(k, int(valid.sum()))]
            mutated = prediction.carriers > 0
            rows.append(
                [
                    view.dataset.ids[prediction.index],
                    classes[int(view.dataset.labels[prediction.index])],
                    classes[int(np.argmax(prediction.class_prob))],
                    *(round(float(p), 4) for p in prediction.class_prob),
                    int(valid.sum()),
                    int((mutated & valid).sum()),
                    float(np.nanmean(prediction.rate)) if valid.any() else float("nan"),
                    ", ".join(map(str, order.tolist())),
                    int(mutated[order].sum()),
                ]
            )
        return columns, rows

    def track_image(self, view, predictions: list[RecordPrediction]) -> np.ndarray | None:
        """The rate tracks of `predictions` as an RGB array, or None without matplotlib."""
        try:
            from matplotlib.backends.backend_agg import FigureCanvasAgg

            from seqmodel.plots import RateTrack, rate_track_figure
        except ImportError:
            if not self._warned:
                log.warning("wandb rate tracks need matplotlib (pip install 'seqmodel[plot]'); left out")
                self._warned = True
            return None
        if not predictions:
            return None
        classes = list(view.classes)
        tracks = []
        for prediction in predictions:
            label_id = int(view.dataset.labels[prediction.index])
            label, probability = classes[label_id], float(prediction.class_prob[label_id])
            truth = prediction.truth if np.isfinite(prediction.truth).any() else None
            tracks.append(
                RateTrack(
                    name=f"{view.dataset.ids[prediction.index]}  label {label}, p = {probability:.2f}",
                    start=0,
                    model=prediction.rate.astype(np.float64),
                    truth=None if truth is None else truth.astype(np.float64),
                    mutated=(prediction.carriers > 0).astype(np.float64),
                )
            )
        figure = rate_track_figure(
            tracks, title="Validation records: predicted vs true per-genome rate (positions in the record)"
        )
        canvas = FigureCanvasAgg(figure)
        canvas.draw()
        return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def fixed_records(labels: np.ndarray, count: int) -> list[int]:
    """`count` positions into a split, taking its classes in turn (each class's records in
    split order): the same records every epoch, every class shown where there are enough."""
    by_class = [list(np.flatnonzero(labels == c)) for c in np.unique(labels)]
    chosen: list[int] = []
    while len(chosen) < min(count, len(labels)):
        for members in by_class:
            if members and len(chosen) < count:
                chosen.append(int(members.pop(0)))
    return chosen
