"""Windows over records and the seeded, rank-sharded order in which batches visit them."""

from __future__ import annotations

import numpy as np


def tile_starts(length: int, window: int, stride: int) -> np.ndarray:
    """Window starts covering `[0, length)`: every `stride` bases, the last window ending at the end.

    A record shorter than the window gets one window at 0 (padded by the batch assembler).
    """
    if length <= window:
        return np.zeros(1, dtype=np.int64)
    starts = np.arange(0, length - window + 1, stride, dtype=np.int64)
    if starts[-1] != length - window:
        starts = np.append(starts, length - window)
    return starts


def record_windows(lengths: np.ndarray, window: int, stride: int) -> np.ndarray:
    """All windows of all records as rows (record index, start), `(W, 2)` int64."""
    rows = [
        np.stack([np.full(len(starts), index), starts], axis=1)
        for index, starts in ((i, tile_starts(int(n), window, stride)) for i, n in enumerate(lengths))
    ]
    return np.concatenate(rows).astype(np.int64) if rows else np.zeros((0, 2), dtype=np.int64)


class WindowSampler:
    """Which windows make batch `index` of `epoch` on `rank`: a pure function of those and the seed.

    The epoch's windows (shuffled by (seed, epoch) when `shuffle`) are cut into
    `world_size * batches_per_rank` nearly equal batches (sizes differ by at most one, none
    larger than `batch_size`); rank r takes batches r, r + world_size, ... So every rank runs
    the same number of steps, shards are disjoint, and their union is the whole epoch.
    Resuming mid-epoch is starting from a batch index.
    """

    def __init__(
        self,
        num_windows: int,
        batch_size: int,
        shuffle: bool,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
    ):
        if num_windows < world_size:
            raise ValueError(f"{num_windows} windows cannot be shared by {world_size} ranks")
        self.num_windows = num_windows
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.batches_per_rank = -(-num_windows // (world_size * batch_size))
        # (epoch, order), replaced as a whole: loader threads may read it concurrently.
        self._order: tuple[int | None, np.ndarray] = (None, np.arange(num_windows))

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.batches_per_rank

    def _epoch_order(self, epoch: int) -> np.ndarray:
        cached_epoch, order = self._order
        if not self.shuffle or cached_epoch == epoch:
            return order
        order = np.random.default_rng([self.seed, epoch]).permutation(self.num_windows)
        self._order = (epoch, order)
        return order

    def batch_windows(self, index: int, epoch: int | None = None) -> np.ndarray:
        """Window ids `(b,)` of this rank's batch `index` in `epoch` (default: the current one)."""
        epoch = self.epoch if epoch is None else epoch
        if not 0 <= index < self.batches_per_rank:
            raise IndexError(f"batch {index} out of range [0, {self.batches_per_rank})")
        total = self.world_size * self.batches_per_rank
        chunk = index * self.world_size + self.rank
        # np.array_split boundaries, computed for one chunk only.
        base, extra = divmod(self.num_windows, total)
        start = chunk * base + min(chunk, extra)
        stop = start + base + (1 if chunk < extra else 0)
        return self._epoch_order(epoch)[start:stop]
