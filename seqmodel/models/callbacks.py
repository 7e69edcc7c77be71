"""Training callbacks that belong to seqmodel."""

from __future__ import annotations

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
