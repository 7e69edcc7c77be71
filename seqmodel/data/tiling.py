"""Tiles with overlap over a record of any length, and stitching of their cores."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from seqmodel.io import alphabet


@dataclass
class Tile:
    """One tile of a record: `tokens` `(window,)` uint8 (N-padded past `length` real bases).

    The tile's prediction is kept on `[core_start, core_end)` (record coordinates).
    `record_length` is set on the record's last tile only.
    """

    record: int
    start: int
    core_start: int
    core_end: int
    tokens: np.ndarray
    length: int
    record_length: int | None = None


def stream_tiles(record: int, chunks: Iterable[np.ndarray], window: int, overlap: int) -> Iterator[Tile]:
    """The tiles covering a record given as consecutive token chunks, in order.

    Tiles are `window` long and overlap by `overlap`; each tile keeps only its core, which
    drops `overlap // 2` bases of context on each inner side. Cores are disjoint and their
    union is the record, so every base is predicted exactly once. The first and last cores
    reach the record ends (those bases have context on one side only). A record shorter
    than the window is one tile, N-padded.

    Memory stays at about one window plus one chunk whatever the record's length: a tile is
    emitted once the next tile's start (or the record's end) fixes where its core ends.
    """
    if not 0 <= overlap < window:
        raise ValueError(f"overlap must be in [0, window), got {overlap} for window {window}")
    margin = overlap // 2
    stride = window - 2 * margin
    buffer, buffer_start = np.zeros(0, dtype=np.uint8), 0
    next_start, core_start = 0, 0
    pending: int | None = None  # start of the latest tile not yet emitted

    def tile(start: int, core_end: int, record_length: int | None = None) -> Tile:
        tokens = buffer[start - buffer_start : start - buffer_start + window]
        length = len(tokens)
        if length < window:
            tokens = np.concatenate([tokens, np.full(window - length, alphabet.N, dtype=np.uint8)])
        return Tile(record, start, core_start, core_end, tokens.copy(), length, record_length)

    for chunk in chunks:
        buffer = np.concatenate([buffer, chunk])
        while next_start + window <= buffer_start + len(buffer):
            if pending is not None:
                yield tile(pending, pending + window - margin)
                core_start = pending + window - margin
            pending, next_start = next_start, next_start + stride
        keep_from = pending if pending is not None else next_start
        buffer, buffer_start = buffer[keep_from - buffer_start :], keep_from
    length = buffer_start + len(buffer)
    if length == 0:
        return
    final = max(length - window, 0)
    if pending is not None and pending != final:
        yield tile(pending, pending + window - margin)
        core_start = pending + window - margin
    yield tile(final, length, record_length=length)
