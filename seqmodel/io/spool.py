"""One rank's share of a prediction, spooled to disk, and the ordered merge of all shares.

A spool is a sequence of entries in (record index, position) order, each an int64 header
[kind, record index, a, b] and a payload:
- RECORD_START (a = -1, b = id length): the record id, UTF-8; written before the rank's
  first segment of the record;
- SEGMENT (a = start, b = n): n float32 values;
- RECORD_END (a = length, b = K): K float64 class sums and one float64 weight; every rank
  writes one for every record, so the merge can add up the class shares.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np

RECORD_START, SEGMENT, RECORD_END = 0, 1, 2


class SpoolSink:
    """A PredictionSink appending to a spool (record index = order of `record_done` calls)."""

    def __init__(self, handle: BinaryIO):
        self.handle = handle
        self.record_index = 0
        self.started = False

    def _entry(self, kind: int, a: int, b: int, payload: bytes) -> None:
        self.handle.write(np.array([kind, self.record_index, a, b], np.int64).tobytes() + payload)

    def segment(self, record_id: str, start: int, values: np.ndarray) -> None:
        if not self.started:
            name = record_id.encode()
            self._entry(RECORD_START, -1, len(name), name)
            self.started = True
        self._entry(SEGMENT, start, len(values), np.ascontiguousarray(values, np.float32).tobytes())

    def record_done(self, record_id: str, length: int, class_sum: np.ndarray, weight: float) -> None:
        sums = np.atleast_1d(np.asarray(class_sum, np.float64)) if weight else np.zeros(0)
        self._entry(RECORD_END, length, sums.size, sums.tobytes() + np.float64(weight).tobytes())
        self.record_index += 1
        self.started = False


def read_spool(path: str | os.PathLike) -> Iterator[tuple[int, float, int, object]]:
    """Entries (record index, position, kind, payload); position -1 / start / inf by kind."""
    with open(path, "rb") as handle:
        while header := handle.read(32):
            kind, record, a, b = np.frombuffer(header, np.int64).tolist()
            if kind == RECORD_START:
                yield record, -1, kind, handle.read(b).decode()
            elif kind == SEGMENT:
                yield record, a, kind, np.frombuffer(handle.read(4 * b), np.float32)
            else:
                sums = np.frombuffer(handle.read(8 * b), np.float64)
                weight = float(np.frombuffer(handle.read(8), np.float64)[0])
                yield record, float("inf"), kind, (a, sums, weight)


def merge_spools(paths: list[Path], sink) -> None:
    """Feed `sink` (a PredictionSink) the union of the spools in order, in bounded memory."""
    names: dict[int, str] = {}
    totals: dict[int, list] = {}  # record -> [class sum, weight, ranks seen]
    for record, position, kind, payload in heapq.merge(*(read_spool(p) for p in paths), key=lambda e: e[:2]):
        if kind == RECORD_START:
            names.setdefault(record, payload)
        elif kind == SEGMENT:
            sink.segment(names[record], int(position), payload)
        else:
            length, sums, weight = payload
            total = totals.setdefault(record, [0.0, 0.0, 0])
            total[0] = total[0] + (sums if sums.size else 0.0)
            total[1] += weight
            total[2] += 1
            if total[2] == len(paths):
                del totals[record]
                sink.record_done(names.pop(record), length, np.asarray(total[0]), total[1])
