"""Tiles with overlap over a record of any length, and stitching of their cores."""

from __future__ import annotations

import numpy as np

from seqmodel.data.windows import tile_starts


def tile_plan(length: int, window: int, overlap: int) -> np.ndarray:
    """Tiles `(T, 3)` int64 rows (start, core_start, core_end) covering `[0, length)`.

    Tiles are `window` long and overlap by `overlap`; each tile keeps only its core, which
    drops `overlap // 2` bases of context on each inner side. Cores are disjoint and their
    union is the record, so every base is predicted exactly once. The first and last cores
    reach the record ends (those bases have context on one side only). A record shorter
    than the window is one tile (padded by the caller).
    """
    if not 0 <= overlap < window:
        raise ValueError(f"overlap must be in [0, window), got {overlap} for window {window}")
    margin = overlap // 2
    starts = tile_starts(length, window, window - 2 * margin)
    core_end = np.minimum(starts + window - margin, length)
    core_end[-1] = length
    core_start = np.concatenate([[0], core_end[:-1]])
    return np.stack([starts, core_start, core_end], axis=1).astype(np.int64)
