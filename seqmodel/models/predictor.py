"""Per-base risk and per-sequence class probabilities for records of any length, tile by tile."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

import numpy as np
import torch

from seqmodel.data.batches import reverse_valid
from seqmodel.data.tiling import Tile, stream_tiles
from seqmodel.io import alphabet
from seqmodel.models.checkpoint import TrainedModel, load_trained_model


class PredictionSink(Protocol):
    """Receives a stream's results in record order."""

    def segment(self, record_id: str, start: int, values: np.ndarray) -> None:
        """Per-base probabilities `(n,)` float32 (NaN at N) for `[start, start + n)` of a record."""

    def record_done(self, record_id: str, length: int, class_sum: np.ndarray, weight: float) -> None:
        """The record is complete: its length and its tiles' class probabilities summed with `weight`s."""

    def window_done(self, record_id: str, start: int, end: int, probabilities: np.ndarray) -> None:
        """Class probabilities `(K,)` of the window `[start, end)` (only with `sequence_window`)."""


def class_probabilities(class_sum: np.ndarray, weight: float) -> np.ndarray:
    """A record's class probabilities `(K,)` from its tiles' weighted sum."""
    return np.asarray(class_sum / weight, dtype=np.float32)


class WindowClasses:
    """Class probabilities per fixed window of `size` bases along a record.

    A window's value is the class probabilities of the tiles whose cores cover it, weighted
    by the valid bases each core shares with the window. Windows are handed to `emit`
    (record id, start, end, probabilities `(K,)`) in order, as soon as they are complete.
    """

    def __init__(self, size: int, emit: Callable[[str, int, int, np.ndarray], None]):
        self.size, self.emit = size, emit
        self.sums: dict[int, list] = {}  # window index -> [class sum, weight]

    def add(self, record_id: str, core_start: int, valid: np.ndarray, classes: np.ndarray) -> None:
        end = core_start + len(valid)
        for window in range(core_start // self.size, (end - 1) // self.size + 1):
            lo, hi = max(core_start, window * self.size), min(end, (window + 1) * self.size)
            weight = float(valid[lo - core_start : hi - core_start].sum()) or 1e-6
            total = self.sums.setdefault(window, [0.0, 0.0])
            total[0], total[1] = total[0] + weight * classes, total[1] + weight
        self._emit_until(record_id, end // self.size, end)

    def finish(self, record_id: str, length: int) -> None:
        self._emit_until(record_id, -(-length // self.size), length)

    def _emit_until(self, record_id: str, stop: int, length: int) -> None:
        for window in sorted(w for w in self.sums if w < stop):
            class_sum, weight = self.sums.pop(window)
            start = window * self.size
            self.emit(
                record_id, start, min(start + self.size, length), class_probabilities(class_sum, weight)
            )


def resolve_device(name: str) -> str:
    """`auto` is the GPU when one is visible, else the CPU; anything else is kept."""
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


class RecordPredictor:
    """Runs a trained model over records of any length in bounded memory.

    Tiles of the training window overlap by `overlap` bases and only their cores are kept
    (see `stream_tiles`); tiles from consecutive records share batches. With `rc_average`,
    each tile is also predicted on its reverse complement and the per-base output is
    flipped back before the probabilities are averaged. A record's class probabilities are
    its tiles' averaged, weighted by the valid bases in each tile's core.
    """

    def __init__(
        self,
        trained: TrainedModel,
        batch_size: int = 64,
        overlap: int | None = None,
        rc_average: bool = True,
        device: str | torch.device = "cpu",
        sequence_window: int | None = None,
    ):
        self.device = torch.device(device)
        self.sequence_window = sequence_window
        self.trained = trained
        self.network = trained.network.to(self.device).eval()
        self.window = trained.window
        self.overlap = self.window // 2 if overlap is None else overlap
        self.batch_size = batch_size
        self.rc_average = rc_average
        self.classes = trained.classes
        self.forward_seconds = 0.0

    @classmethod
    def from_checkpoint(cls, ckpt_path: str, settings) -> RecordPredictor:
        """A predictor for the checkpoint, set up from the `predict` config group
        (`batch_size`, `overlap`, `rc_average`, `device`)."""
        device = resolve_device(settings.device)
        return cls(
            load_trained_model(ckpt_path, device),
            batch_size=settings.batch_size,
            overlap=settings.overlap,
            rc_average=settings.rc_average,
            device=device,
            sequence_window=settings.get("sequence_window"),
        )

    def move_to(self, device: str | torch.device) -> None:
        self.device = torch.device(device)
        self.network.to(self.device)

    @torch.inference_mode()
    def _forward(self, tokens: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities for a tile batch: per base `(B, W)` and per class `(B, K)`."""
        started = time.perf_counter()
        x = torch.from_numpy(tokens.astype(np.int64)).to(self.device, non_blocking=True)
        n = torch.from_numpy(lengths.astype(np.int64)).to(self.device, non_blocking=True)
        base_logits, class_logits = self.network(x, x < alphabet.N, n)
        result = (
            self.trained.rate(base_logits).cpu().numpy(),
            torch.softmax(class_logits.float(), -1).cpu().numpy(),
        )
        self.forward_seconds += time.perf_counter() - started  # .cpu() waited for the device
        return result

    def predict_tiles(self, tokens: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """`_forward`, averaged with the flipped reverse-complement prediction when `rc_average`."""
        base, classes = self._forward(tokens, lengths)
        if self.rc_average:
            rc_base, rc_classes = self._forward(
                reverse_valid(alphabet.COMPLEMENT_LUT[tokens], lengths), lengths
            )
            base = (base + reverse_valid(rc_base, lengths)) / 2
            classes = (classes + rc_classes) / 2
        return base, classes

    def tiles(self, records: Iterable[tuple[str, Iterable[np.ndarray]]]) -> Iterator[tuple[str, Tile]]:
        """(record id, tile) for every tile of every record, in order."""
        for index, (record_id, chunks) in enumerate(records):
            for tile in stream_tiles(index, chunks, self.window, self.overlap):
                yield record_id, tile

    def _batches(
        self, stream: Iterator[tuple[str, Tile]], owns: Callable[[Tile], bool] | None
    ) -> Iterator[list[tuple[str, Tile]]]:
        """Consecutive tiles holding `batch_size` owned ones (the last batch may hold fewer)."""
        batch, owned = [], 0
        for item in stream:
            batch.append(item)
            owned += owns is None or owns(item[1])
            if owned == self.batch_size:
                yield batch
                batch, owned = [], 0
        if batch:
            yield batch

    def run(
        self,
        records: Iterable[tuple[str, Iterable[np.ndarray]]],
        sink: PredictionSink,
        owns: Callable[[Tile], bool] | None = None,
    ) -> None:
        """Predict every base of every record (given as `(id, token chunks)`), feeding `sink` in order.

        owns: predict only the tiles it accepts (one rank's share of the work); every record
        still ends with `record_done`, carrying this share's class sums (weight 0 if none).
        Tiles are weighted by their core's valid bases (a tiny weight when all N).
        """
        class_sum: np.ndarray | float = 0.0
        weight_sum = 0.0
        windows = WindowClasses(self.sequence_window, sink.window_done) if self.sequence_window else None
        for batch in self._batches(self.tiles(records), owns):
            mine = [owns is None or owns(tile) for _, tile in batch]
            chosen = [tile for (_, tile), keep in zip(batch, mine, strict=True) if keep]
            if chosen:
                lengths = np.array([tile.length for tile in chosen])
                results = iter(
                    zip(*self.predict_tiles(np.stack([t.tokens for t in chosen]), lengths), strict=True)
                )
            for (record_id, tile), keep in zip(batch, mine, strict=True):
                if keep:
                    tile_base, tile_classes = next(results)
                    core = slice(tile.core_start - tile.start, tile.core_end - tile.start)
                    values = tile_base[core].astype(np.float32)
                    valid = tile.tokens[core] < alphabet.N
                    values[~valid] = np.nan
                    sink.segment(record_id, tile.core_start, values)
                    if windows is not None:
                        windows.add(record_id, tile.core_start, valid, tile_classes)
                    weight = float(valid.sum()) or 1e-6
                    class_sum = class_sum + weight * tile_classes
                    weight_sum += weight
                if tile.record_length is not None:
                    if windows is not None:
                        windows.finish(record_id, tile.record_length)
                    sink.record_done(record_id, tile.record_length, np.asarray(class_sum), weight_sum)
                    class_sum, weight_sum = 0.0, 0.0

    def predict_record(self, tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-base probability `(L,)` float32 (NaN at N) and class probabilities `(K,)` of one record."""
        sink = InMemorySink()
        self.run([("record", [tokens])], sink)
        return sink.values["record"], sink.classes["record"]


class InMemorySink:
    """Collects whole records in memory (for tests and small inputs)."""

    def __init__(self) -> None:
        self.parts: dict[str, list[tuple[int, np.ndarray]]] = {}
        self.values: dict[str, np.ndarray] = {}
        self.classes: dict[str, np.ndarray] = {}
        self.windows: list[tuple[str, int, int, np.ndarray]] = []

    def window_done(self, record_id: str, start: int, end: int, probabilities: np.ndarray) -> None:
        self.windows.append((record_id, start, end, probabilities))

    def segment(self, record_id: str, start: int, values: np.ndarray) -> None:
        self.parts.setdefault(record_id, []).append((start, values))

    def record_done(self, record_id: str, length: int, class_sum: np.ndarray, weight: float) -> None:
        out = np.full(length, np.nan, dtype=np.float32)
        for start, values in self.parts.pop(record_id, []):
            out[start : start + len(values)] = values
        self.values[record_id] = out
        self.classes[record_id] = class_probabilities(class_sum, weight)
