"""Training callbacks that belong to seqmodel."""

from __future__ import annotations

import os
from pathlib import Path

import lightning as L


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
