"""The Lightning DataModule: reads the data once, splits it by record, serves batch loaders per rank."""

from __future__ import annotations

import logging

import lightning as L

from seqmodel.data.batches import BatchLoader, WindowAssembler
from seqmodel.data.dataset import SequenceDataset, load_dataset, split_records
from seqmodel.data.windows import WindowSampler

log = logging.getLogger(__name__)


class SeqDataModule(L.LightningDataModule):
    """Train / val / test loaders over one FASTA and its targets.

    Records are split (seeded by `split_seed`, independent of the training seed) into disjoint
    train / val / test sets; each set is cut into windows of `window` bases every `stride`.
    """

    def __init__(
        self,
        fasta: str,
        mutations: str | None = None,
        true_rate: str | None = None,
        labels: str | None = None,
        window: int = 200,
        stride: int | None = None,
        batch_size: int = 32,
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        split_seed: int = 0,
        rc_augment: bool = True,
        seed: int = 0,
    ):
        super().__init__()
        self.paths = {
            "fasta": fasta,
            "mutations": mutations,
            "true_rate": true_rate,
            "labels": labels,
        }
        self.window = window
        self.stride = stride or window
        self.batch_size = batch_size
        self.fractions = (val_fraction, test_fraction)
        self.split_seed = split_seed
        self.rc_augment = rc_augment
        self.seed = seed
        self.dataset: SequenceDataset | None = None
        self.splits: dict[str, SequenceDataset] = {}

    def setup(self, stage: str | None = None) -> None:
        if self.dataset is not None:
            return
        self.dataset = load_dataset(**self.paths)
        indices = split_records(len(self.dataset), *self.fractions, seed=self.split_seed)
        self.splits = {name: self.dataset.subset(idx) for name, idx in indices.items()}
        data = self.dataset
        valid = data.tokens < 4
        log.info(
            "%d records, %d bases, %.2f%% of valid bases mutated, classes %s; split %s",
            len(data),
            len(data.tokens),
            100 * float(data.base_target[valid].mean()) if valid.any() else 0.0,
            data.classes,
            {k: len(v) for k, v in self.splits.items()},
        )

    @property
    def num_classes(self) -> int:
        self.setup()
        return len(self.dataset.classes)

    @property
    def data_info(self) -> dict:
        """What prediction needs to read new data the way training did (stored in checkpoints)."""
        self.setup()
        return {
            "alphabet": "ACGTN",
            "window": self.window,
            "stride": self.stride,
            "classes": list(self.dataset.classes),
        }

    def positive_fraction(self) -> float:
        data = self.splits["train"]
        valid = data.tokens < 4
        return float(data.base_target[valid].mean()) if valid.any() else 0.0

    def _rank(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def loader(self, split: str, shuffle: bool) -> BatchLoader:
        self.setup()
        rank, world_size = self._rank()
        augment = self.rc_augment and split == "train"
        assembler = WindowAssembler(self.splits[split], self.window, self.stride, augment, self.seed)
        sampler = WindowSampler(len(assembler), self.batch_size, shuffle, self.seed, rank, world_size)
        return BatchLoader(assembler, sampler)

    def _batches_done_this_epoch(self) -> int:
        """Training batches of the current epoch already stepped (non-zero only on a mid-epoch resume).

        Derived from the restored global step, so it needs no loader state in the checkpoint.
        """
        trainer = self.trainer
        if trainer is None:
            return 0
        done = trainer.global_step * trainer.accumulate_grad_batches
        return done - trainer.current_epoch * int(trainer.num_training_batches)

    def train_dataloader(self) -> BatchLoader:
        loader = self.loader("train", shuffle=True)
        loader.start_index = self._batches_done_this_epoch
        return loader

    def val_dataloader(self) -> BatchLoader:
        return self.loader("val", shuffle=False)

    def test_dataloader(self) -> BatchLoader:
        return self.loader("test", shuffle=False)
