"""The Lightning DataModule: reads the data once, splits it by record, serves batch loaders per rank.

One M:N `Runtime` per DataModule (per process), started on first use and kept across epochs
and stages (persistent pools), closed at teardown, does the work: reading the FASTA (I/O
tasks read and inflate blocks, CPU tasks tokenize them) and making the batches.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch

from seqmodel.data.batches import BatchLoader, WindowAssembler
from seqmodel.data.dataset import DatasetView, SequenceDataset, load_dataset
from seqmodel.data.splits import record_splits
from seqmodel.data.windows import WindowSampler
from seqmodel.errors import SeqmodelInputError
from seqmodel.io import remote
from seqmodel.runtime import Runtime, available_cpus

log = logging.getLogger(__name__)


class SeqDataModule(L.LightningDataModule):
    """Train / val / test loaders over one FASTA and its targets.

    Records are split (seeded by `split_seed`, independent of the training seed) into disjoint
    train / val / test sets, or with `split_from_headers` by their `split=` header field (as
    `seqmodel-prepare` writes it: whole genome blocks); each set is a view of the dataset's
    records (the bases are held once), cut into windows of `window` bases every `stride`.
    The FASTA is read on the runtime; token_cache: a folder for the FASTA's memory-mapped
    token cache (None: tokens held in memory). Every path may be a URL (`https://`, `s3://`,
    `gs://`, `file://`), read by ranges on the runtime's I/O tasks; cache_dir: a folder that
    keeps those ranges (None: no cache).

    Loader settings (config group `loader`): cpu_workers (None: the CPUs this process may
    use but one, left to the training loop; 0: no runtime, batches made in the training
    thread), io_workers, prefetch (batches in flight), pin_cores, trace (a path: Chrome
    trace JSON of every loader task, written at teardown; other stages than fit get
    `<stem>.<stage>.json`), summary (log a per-task-kind table at the end of each
    training epoch).
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
        split_from_headers: bool = False,
        genomes: int | None = None,
        rc_augment: bool = True,
        seed: int = 0,
        token_cache: str | None = None,
        cache_dir: str | None = None,
        cpu_workers: int | None = None,
        io_workers: int = 1,
        prefetch: int = 4,
        pin_cores: bool = False,
        trace: str | None = None,
        summary: bool = False,
    ):
        super().__init__()
        self.paths = {
            "fasta": fasta,
            "mutations": mutations,
            "true_rate": true_rate,
            "labels": labels,
        }
        self.genomes = genomes
        self.window = window
        self.stride = stride or window
        self.batch_size = batch_size
        self.fractions = (val_fraction, test_fraction)
        self.split_seed = split_seed
        self.split_from_headers = split_from_headers
        self.rc_augment = rc_augment
        self.seed = seed
        self.token_cache = token_cache
        if cache_dir is not None or remote.is_url(fasta):
            remote.set_cache_dir(cache_dir)  # remote inputs keep their byte ranges there
        self.cpu_workers = cpu_workers
        self.io_workers = io_workers
        self.prefetch = prefetch
        self.pin_cores = pin_cores
        self.trace = trace
        self.summary = summary
        self.dataset: SequenceDataset | None = None
        self.splits: dict[str, DatasetView] = {}
        self._runtime: Runtime | None = None
        self._summary_mark = 0
        self.startup_ms: float | None = None

    @property
    def runtime(self) -> Runtime | None:
        """This DataModule's runtime, started on first use; None when `cpu_workers` is 0."""
        if self.cpu_workers == 0:
            return None
        if self._runtime is None:
            pci = None
            if self.pin_cores:  # near the GPU; the data may be read before a trainer is attached
                device = self._device() if self.trainer is not None else _visible_device()
                pci = _pci_address(device) if device is not None else None
            start = time.perf_counter()
            # null: the usable CPUs but one, which the training loop (main thread) keeps.
            workers = self.cpu_workers if self.cpu_workers is not None else max(1, available_cpus() - 1)
            self._runtime = Runtime(
                cpu_workers=workers,
                io_workers=self.io_workers,
                pin_cores=self.pin_cores,
                gpu_pci_address=pci,
                trace=bool(self.trace or self.summary),
            )
            self.startup_ms = 1e3 * (time.perf_counter() - start)
            log.info(
                "loader runtime: %d CPU + %d I/O workers%s, started in %.1f ms",
                self._runtime.cpu.size,
                self._runtime.io.size,
                " (pinned)" if self.pin_cores else "",
                self.startup_ms,
            )
        return self._runtime

    def close_runtime(self, trace_path: str | Path | None = None) -> None:
        """Write the trace (to `trace_path`, default the `trace` setting) and stop the runtime."""
        runtime, self._runtime = self._runtime, None
        if runtime is None:
            return
        try:
            path = trace_path or self.trace
            if path and runtime.tracer is not None:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
                runtime.tracer.write_chrome_trace(path)
                log.info("loader trace: %s (%d task steps)", path, len(runtime.tracer.spans))
        finally:
            runtime.close()
            self._summary_mark = 0

    def teardown(self, stage: str | None = None) -> None:
        path, stage = self.trace, getattr(stage, "value", stage)  # Lightning passes a TrainerFn
        if path and stage not in (None, "fit"):
            path = Path(path).with_suffix(f".{stage}{Path(path).suffix}")
        self.close_runtime(path)

    def on_exception(self, exception: BaseException) -> None:
        self.close_runtime()

    def setup(self, stage: str | None = None) -> None:
        if self.dataset is not None:
            return
        try:
            self.dataset = load_dataset(
                **self.paths, token_cache=self.token_cache, runtime=self.runtime, genomes=self.genomes
            )
        except BaseException:
            self.close_runtime()  # setup may run outside the trainer (no teardown follows)
            raise
        indices = record_splits(
            self.dataset,
            self.paths["fasta"],
            split_from_headers=self.split_from_headers,
            val_fraction=self.fractions[0],
            test_fraction=self.fractions[1],
            seed=self.split_seed,
        )
        self.splits = {name: self.dataset.view(idx) for name, idx in indices.items()}
        data = self.dataset
        valid = data.tokens < 4
        log.info(
            "%d records, %d bases, %.2f%% of valid bases mutated (in >= 1 of %d genomes), classes %s; "
            "split %s",
            len(data),
            len(data.tokens),
            100 * float(np.mean(data.base_target > 0, where=valid)) if valid.any() else 0.0,
            data.genomes,
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
            "classes": list(self.dataset.classes),
            "genomes": self.dataset.genomes,
        }

    def _rank(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def _device(self) -> torch.device | None:
        """The CUDA device batches are moved to by the loader; None on the CPU (or no trainer)."""
        trainer = self.trainer
        device = trainer.strategy.root_device if trainer is not None else None
        return device if device is not None and device.type == "cuda" else None

    def loader(self, split: str, shuffle: bool) -> BatchLoader:
        self.setup()
        rank, world_size = self._rank()
        augment = self.rc_augment and split == "train"
        assembler = WindowAssembler(self.splits[split], self.window, self.stride, augment, self.seed)
        if len(assembler) < world_size:
            raise SeqmodelInputError(
                self.paths["fasta"],
                None,
                f"the {split} split holds {len(assembler)} window(s), fewer than the {world_size} rank(s): "
                "give it records (the split fractions, or split= headers)",
            )
        sampler = WindowSampler(len(assembler), self.batch_size, shuffle, self.seed, rank, world_size)
        return BatchLoader(
            assembler,
            sampler,
            runtime=self.runtime,
            prefetch=self.prefetch,
            device=self._device(),
            name="assemble batch" if split == "train" else f"assemble {split} batch",
            on_epoch_end=self._epoch_summary if split == "train" and self.summary else None,
        )

    def _epoch_summary(self) -> None:
        """Log what the loader's tasks cost since the last summary, per task kind."""
        runtime = self._runtime
        if runtime is None or runtime.tracer is None:
            return
        tracer, since = runtime.tracer, self._summary_mark
        self._summary_mark = tracer.mark()
        trainer = self.trainer
        epoch = trainer.current_epoch if trainer is not None else 0
        if trainer is None or trainer.is_global_zero:
            log.info("loader tasks, epoch %d:\n%s", epoch, tracer.format_summary(since))
        if trainer is not None:
            metrics = {}
            for kind, s in tracer.summary(since).items():
                metrics.update(
                    {
                        f"loader/{kind}_count": float(s.count),
                        f"loader/{kind}_wall_s": s.wall_s,
                        f"loader/{kind}_cpu_s": s.cpu_s,
                        f"loader/{kind}_blocked": s.blocked_share,
                    }
                )
            for logger in trainer.loggers:
                logger.log_metrics(metrics, step=trainer.global_step)

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


def _visible_device() -> torch.device | None:
    """The CUDA device this process will most likely train on, before a trainer is attached
    (the data is read first): the local rank's, as DDP launchers number them."""
    if not torch.cuda.is_available():
        return None
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    return torch.device("cuda", local_rank % torch.cuda.device_count())


def _pci_address(device: torch.device) -> str | None:
    """`dddd:bb:dd.0` of a CUDA device, for placing loader threads on its NUMA node."""
    try:
        props = torch.cuda.get_device_properties(device)
        return f"{props.pci_domain_id:04x}:{props.pci_bus_id:02x}:{props.pci_device_id:02x}.0"
    except (AttributeError, RuntimeError, AssertionError):
        return None
