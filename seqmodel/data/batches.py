"""Batches of windows: assembly from a dataset (or a view of some of its records), and the loader
that runs it (on the runtime).

A batch is a pure function of (seed, epoch, rank, index): the sampler says which windows,
the assembler gathers them (RC flips hashed from (seed, epoch, window id)). The loader runs
`make_batch` in its own thread, or as CPU tasks of a `Runtime` with bounded prefetch; both
give the same batches in the same order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import torch

from seqmodel.data.dataset import DatasetView, SequenceDataset
from seqmodel.data.windows import WindowSampler, record_windows
from seqmodel.errors import reraise_input_error
from seqmodel.io import alphabet
from seqmodel.io.fasta import pick_engine
from seqmodel.runtime import PinnedBufferRing, Runtime, TaskError


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

    def tensors(self) -> dict[str, torch.Tensor]:
        return {f: getattr(self, f) for f in self.__dataclass_fields__}


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser on uint64 arrays (wrapping arithmetic): a cheap, well-mixed hash."""
    x = x ^ (x >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def rc_flips(seed: int, epoch: int, window_ids: np.ndarray) -> np.ndarray:
    """`(B,)` bool: which windows are reverse-complemented; a hash of (seed, epoch, window id).

    Vectorised (no per-window generator), so it costs microseconds per batch.
    """
    mask = (1 << 64) - 1
    key = _splitmix64(_splitmix64(np.array([seed & mask], np.uint64)) ^ np.array([epoch & mask], np.uint64))
    bits = _splitmix64(np.asarray(window_ids).astype(np.uint64) ^ key)
    return (bits >> np.uint64(63)).astype(bool)


class WindowAssembler:
    """Gathers windows `(record, start)` of a dataset into batch arrays, with RC augmentation.

    dataset: a SequenceDataset, or a DatasetView of some of its records (a split): windows
    are read from the dataset's flat arrays in place.
    engine: "numba" fills the per-base fields in one fused pass (gather, reverse complement,
    padding, mask; no GIL), "numpy" with vectorised gathers, "auto" numba when it is
    available. Both give bit-identical batches.
    """

    def __init__(
        self,
        dataset: SequenceDataset | DatasetView,
        window: int,
        stride: int,
        rc_augment: bool,
        seed: int,
        engine: str = "auto",
    ):
        self.engine = engine
        pick_engine(engine, _assemble_loop)  # a bad name, or "numba" without numba, fails here
        self.dataset = dataset
        self.window = window
        self.record_starts = np.asarray(dataset.starts, dtype=np.int64)
        self.record_ends = self.record_starts + dataset.lengths
        self.labels = np.asarray(dataset.labels)
        rate = dataset.true_rate
        # One value broadcast over every base (no truth track): fill, never gather (np.take
        # would first copy a broadcast array to full size).
        self.rate_fill = rate.flat[0] if rate.ndim == 1 and len(rate) and rate.strides == (0,) else None
        self.windows = record_windows(dataset.lengths, window, stride)
        self.rc_augment = rc_augment
        self.seed = seed

    def __len__(self) -> int:
        return len(self.windows)

    def fields(self, batch_size: int) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
        """Name -> (shape, dtype) of a full batch's tensors: the specs of a buffer ring."""
        b, length = batch_size, self.window
        return {
            "tokens": ((b, length), torch.int64),
            "mask": ((b, length), torch.bool),
            "lengths": ((b,), torch.int64),
            "base_target": ((b, length), torch.float32),
            "seq_target": ((b,), torch.int64),
            "true_rate": ((b, length), torch.float32),
            "window_ids": ((b,), torch.int64),
        }

    def assemble(
        self, window_ids: np.ndarray, epoch: int = 0, out: Mapping[str, torch.Tensor] | None = None
    ) -> Batch:
        """The batch holding windows `window_ids`; RC flips depend only on (seed, epoch, window id).

        out: tensors shaped like `fields(B')` with B' >= len(window_ids) (a buffer-ring slot) to
        fill; the batch is then their first rows. Default: new tensors. Vectorised numpy
        (gathers, `np.copyto`) that releases the GIL, so batches assemble in parallel threads.
        """
        window_ids = np.asarray(window_ids, dtype=np.int64)
        n, length = len(window_ids), self.window
        if out is None:
            out = {
                name: torch.empty((n, *shape[1:]), dtype=dtype)
                for name, (shape, dtype) in self.fields(n).items()
            }
        views = {name: tensor[:n].numpy() for name, tensor in out.items()}
        rows = self.windows[window_ids]
        starts = self.record_starts[rows[:, 0]] + rows[:, 1]
        lengths = np.minimum(self.record_ends[rows[:, 0]] - starts, length)
        flip = rc_flips(self.seed, epoch, window_ids) if self.rc_augment else np.zeros(n, bool)
        kernel = pick_engine(self.engine, _assemble_loop)
        if kernel is None or not self._fused(kernel, starts, lengths, flip, views):
            self._per_base_numpy(starts, lengths, flip, views)
        views["lengths"][:] = lengths
        views["seq_target"][:] = self.labels[rows[:, 0]]
        views["window_ids"][:] = window_ids
        return Batch(**{name: tensor[:n] for name, tensor in out.items()})

    def _fused(self, kernel, starts, lengths, flip, views) -> bool:
        """The per-base fields in one compiled pass; False (nothing to trust) on a token that the
        complement table does not hold, so that the numpy path raises as it always did."""
        data = self.dataset
        fill = self.rate_fill is not None
        rate = data.base_target if fill else data.true_rate  # not read when filling
        rate_fill = np.float32(self.rate_fill if fill else 0.0)
        ok = kernel(
            data.tokens,
            data.base_target,
            rate,
            rate_fill,
            fill,
            starts,
            lengths,
            flip,
            alphabet.COMPLEMENT_LUT,
            alphabet.N,
            views["tokens"],
            views["mask"],
            views["base_target"],
            views["true_rate"],
        )
        return bool(ok)

    def _per_base_numpy(self, starts, lengths, flip, views) -> None:
        """The reference: tokens, mask, base_target, true_rate by numpy gathers."""
        length, data = self.window, self.dataset
        column = np.arange(length)
        pad = column[None, :] >= lengths[:, None]
        # (B, L) positions in the flat store; a flipped window reads its bases backwards.
        # Padding positions are clipped into range by `take` and overwritten below.
        positions = starts[:, None] + column[None, :]
        if flip.any():
            positions[flip] = (starts[flip] + lengths[flip] - 1)[:, None] - column[None, :]
        tokens = np.take(data.tokens, positions, mode="clip")
        if flip.any():
            tokens[flip] = alphabet.COMPLEMENT_LUT[tokens[flip]]
        tokens[pad] = alphabet.N
        np.copyto(views["tokens"], tokens)
        np.less(tokens, alphabet.N, out=views["mask"])
        np.take(data.base_target, positions, out=views["base_target"], mode="clip")
        views["base_target"][pad] = 0.0
        if self.rate_fill is None:
            np.take(data.true_rate, positions, out=views["true_rate"], mode="clip")
        else:
            views["true_rate"].fill(self.rate_fill)
        views["true_rate"][pad] = np.nan


def _assemble_loop(
    store, base_store, rate_store, rate_fill, fill, starts, lengths, flip, complement, pad, *out
):  # pragma: no cover - compiled by numba; `WindowAssembler._per_base_numpy` is the reference
    """Window i: bases `starts[i]`.. (`lengths[i]` of them; backwards and complemented where
    `flip[i]`), then padding (N, masked, target 0, rate NaN). False on a token past `complement`."""
    tokens, mask, base, rate = out
    rows, length = tokens.shape
    nan = np.float32(np.nan)
    zero = np.float32(0.0)
    for i in range(rows):
        first, n = starts[i], lengths[i]
        for j in range(n):
            at = first + n - 1 - j if flip[i] else first + j
            token = store[at]
            if flip[i]:
                if token >= complement.shape[0]:
                    return False
                token = complement[token]
            tokens[i, j] = token
            mask[i, j] = token < pad
            base[i, j] = base_store[at]
            rate[i, j] = rate_fill if fill else rate_store[at]
        for j in range(max(n, 0), length):
            tokens[i, j] = pad
            mask[i, j] = False
            base[i, j] = zero
            rate[i, j] = nan
    return True


def reverse_valid(array: np.ndarray, lengths: np.ndarray, rows: np.ndarray | None = None) -> np.ndarray:
    """Reverse the first `lengths[i]` entries of each row (all rows, or where `rows` is True).

    Padding stays at the end, so a padded window's reverse complement lines up with it.
    """
    out = array.copy()
    for i in range(len(array)) if rows is None else np.flatnonzero(rows):
        out[i, : lengths[i]] = array[i, : lengths[i]][::-1]
    return out


class BatchLoader:
    """Iterator of one rank's Batches: batch i is `make_batch(i)`, in order.

    runtime: run `make_batch` as CPU tasks of this Runtime, at most `prefetch` ahead (the
        next batch is the most urgent); None: in the iterating thread.
    device: a CUDA device: batches are staged in a ring of `prefetch` page-locked buffers,
        copied with `non_blocking=True` on a side stream inside the task (the next batch
        moves while the current one computes) and yielded already on the device, so
        Lightning's own transfer is a no-op. A slot is reused only after its copy finished.
        None or CPU: batches are new CPU tensors, never reused, so a consumer may keep them.
    ring: stage through the buffer ring (default: when `device` is CUDA); on the CPU the
        batch is then copied out of its slot.

    Lightning sets the epoch through `sampler.set_epoch`. `start_index`, when given, says at
    iterator creation how many of this epoch's batches are already done (a mid-epoch resume):
    since a batch is a pure function of (seed, epoch, rank, index), resuming is starting there.
    An error in a task is raised here, naming the batch; a SeqmodelInputError comes out as such.
    """

    batch_sampler = None  # Lightning looks for `sampler` / `batch_sampler` to set the epoch

    def __init__(
        self,
        assembler: WindowAssembler,
        sampler: WindowSampler,
        start_index: Callable[[], int] | None = None,
        *,
        runtime: Runtime | None = None,
        prefetch: int = 4,
        device: torch.device | str | None = None,
        ring: bool | None = None,
        name: str = "assemble batch",
        on_epoch_end: Callable[[], None] | None = None,
    ):
        self.assembler = assembler
        self.sampler = sampler
        self.start_index = start_index
        self.runtime = runtime
        self.prefetch = prefetch
        self.device = None if device is None else torch.device(device)
        self.name = name
        self.on_epoch_end = on_epoch_end
        cuda = self.device is not None and self.device.type == "cuda"
        self.ring: PinnedBufferRing | None = None
        if ring if ring is not None else cuda:
            self.ring = PinnedBufferRing(assembler.fields(sampler.batch_size), slots=max(prefetch, 1))
        self._stream = torch.cuda.Stream(self.device) if cuda else None

    def __len__(self) -> int:
        return len(self.sampler)

    def make_batch(self, index: int, epoch: int | None = None) -> Batch:
        """Batch `index` of `epoch` (default: the sampler's current epoch), on the CPU."""
        epoch = self.sampler.epoch if epoch is None else epoch
        return self.assembler.assemble(self.sampler.batch_windows(index, epoch), epoch)

    def first_index(self) -> int:
        return 0 if self.start_index is None else min(max(int(self.start_index()), 0), len(self))

    def __iter__(self) -> Iterator[Batch]:
        first, last, epoch = self.first_index(), len(self) - 1, self.sampler.epoch
        if self.runtime is None and self.ring is None and self.device is None:
            batches: Iterator[Batch] = (self.make_batch(i, epoch) for i in range(first, last + 1))
        else:
            batches = self._staged(range(first, last + 1), epoch)
        for index, batch in enumerate(batches, start=first):
            if index == last and self.on_epoch_end is not None:
                self.on_epoch_end()  # before the yield: Lightning never asks past the last batch
            yield batch

    def _produce(self, index: int, epoch: int) -> tuple[Batch, torch.cuda.Event | None]:
        """One batch, as a task: assembled (into a ring slot), then moved to the device."""
        window_ids = self.sampler.batch_windows(index, epoch)
        if self.ring is None:
            batch = self.assembler.assemble(window_ids, epoch)
            return (batch if self.device is None else batch.to(self.device)), None
        slot = self.ring.acquire()
        try:
            batch = self.assembler.assemble(window_ids, epoch, out=slot.tensors)
            if self._stream is None:
                return Batch(
                    **{k: t.to(self.device or "cpu", copy=True) for k, t in batch.tensors().items()}
                ), None
            with torch.cuda.device(self.device), torch.cuda.stream(self._stream):
                moved = slot.to(self.device, non_blocking=True, rows=len(batch))
            return Batch(**moved), slot.copy_done
        finally:
            slot.release()

    def _staged(self, indices: range, epoch: int) -> Iterator[Batch]:
        if self.runtime is None:
            results = (self._produce(i, epoch) for i in indices)
        else:
            results = self.runtime.ordered_map(
                lambda i: self._produce(i, epoch),
                indices,
                prefetch=self.prefetch,
                name=self.name,
                start=indices.start,
                context={"epoch": epoch},
            )
        try:
            for batch, copied in results:
                if copied is not None:  # the compute stream waits for the copy, not this thread
                    stream = torch.cuda.current_stream(self.device)
                    stream.wait_event(copied)
                    for tensor in batch.tensors().values():
                        tensor.record_stream(stream)
                yield batch
        except TaskError as error:
            reraise_input_error(error)
            raise
