"""Batches of windows: assembly from a SequenceDataset and the plain single-threaded loader."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from seqmodel.data import alphabet
from seqmodel.data.dataset import SequenceDataset
from seqmodel.data.windows import WindowSampler, record_windows


@dataclass
class Batch:
    """One batch of B windows of length L.

    tokens: `(B, L)` int64 token ids (padding is N); mask: `(B, L)` bool, True at real A/C/G/T;
    lengths: `(B,)` int64 bases before padding; base_target: `(B, L)` float32;
    seq_target: `(B,)` int64; true_rate: `(B, L)` float32, NaN where unknown;
    window_ids: `(B,)` int64 ids of the windows (for sharding checks and resume).
    """

    tokens: torch.Tensor
    mask: torch.Tensor
    lengths: torch.Tensor
    base_target: torch.Tensor
    seq_target: torch.Tensor
    true_rate: torch.Tensor
    window_ids: torch.Tensor

    def __len__(self) -> int:
        return self.tokens.shape[0]

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        return Batch(
            *(getattr(self, f).to(device, non_blocking=non_blocking) for f in self.__dataclass_fields__)
        )


class WindowAssembler:
    """Gathers windows `(record, start)` of a dataset into batch arrays, with RC augmentation."""

    def __init__(self, dataset: SequenceDataset, window: int, stride: int, rc_augment: bool, seed: int):
        self.dataset = dataset
        self.window = window
        self.windows = record_windows(dataset.lengths, window, stride)
        self.rc_augment = rc_augment
        self.seed = seed

    def __len__(self) -> int:
        return len(self.windows)

    def assemble(self, window_ids: np.ndarray, epoch: int = 0) -> Batch:
        """The batch holding windows `window_ids`; RC flips depend only on (seed, epoch, window id)."""
        data, length = self.dataset, self.window
        rows = self.windows[window_ids]
        starts = data.offsets[rows[:, 0]] + rows[:, 1]
        ends = np.minimum(starts + length, data.offsets[rows[:, 0] + 1])
        lengths = ends - starts
        # (B, L) gather indices into the flat store; positions past a record's end read a
        # sentinel slot holding N / 0 / NaN, which is the padding.
        positions = starts[:, None] + np.arange(length)[None, :]
        positions = np.where(np.arange(length)[None, :] < lengths[:, None], positions, len(data.tokens))
        tokens = np.append(data.tokens, np.uint8(alphabet.N))[positions]
        target = np.append(data.base_target, np.float32(0))[positions]
        rate = np.append(data.true_rate, np.float32(np.nan))[positions]
        if self.rc_augment:
            flip = np.array(
                [np.random.default_rng([self.seed, epoch, int(w)]).random() < 0.5 for w in window_ids],
                dtype=bool,
            )
            tokens, target, rate = (reverse_valid(a, lengths, flip) for a in (tokens, target, rate))
            tokens[flip] = np.where(tokens[flip] < alphabet.N, 3 - tokens[flip], tokens[flip])
        return Batch(
            tokens=torch.from_numpy(tokens.astype(np.int64)),
            mask=torch.from_numpy(tokens < alphabet.N),
            lengths=torch.from_numpy(lengths.astype(np.int64)),
            base_target=torch.from_numpy(target),
            seq_target=torch.from_numpy(data.labels[rows[:, 0]]),
            true_rate=torch.from_numpy(rate),
            window_ids=torch.from_numpy(np.asarray(window_ids, dtype=np.int64)),
        )


def reverse_valid(array: np.ndarray, lengths: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """Reverse the first `lengths[i]` entries of each row (all rows, or where `rows` is True).

    Padding stays at the end, so a padded window's reverse complement lines up with it.
    """
    out = array.copy()
    for i in range(len(array)) if rows is None else np.flatnonzero(rows):
        out[i, : lengths[i]] = array[i, : lengths[i]][::-1]
    return out


class BatchLoader:
    """Single-threaded iterator of Batches for one rank: batch i is `make_batch(i)`.

    Lightning sets the epoch through `sampler.set_epoch`. `start_index`, when given, says at
    iterator creation how many of this epoch's batches are already done (a mid-epoch resume):
    since a batch is a pure function of (seed, epoch, rank, index), resuming is starting there.
    """

    batch_sampler = None  # Lightning looks for `sampler` / `batch_sampler` to set the epoch

    def __init__(self, assembler: WindowAssembler, sampler: WindowSampler, start_index=None):
        self.assembler = assembler
        self.sampler = sampler
        self.start_index = start_index

    def __len__(self) -> int:
        return len(self.sampler)

    def make_batch(self, index: int) -> Batch:
        return self.assembler.assemble(self.sampler.batch_windows(index), self.sampler.epoch)

    def first_index(self) -> int:
        return 0 if self.start_index is None else min(max(int(self.start_index()), 0), len(self))

    def __iter__(self) -> Iterator[Batch]:
        for index in range(self.first_index(), len(self)):
            yield self.make_batch(index)
