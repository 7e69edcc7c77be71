"""Per-base output tracks, chosen by the output's extension, written atomically in bounded memory.

| extension | content |
|---|---|
| `.bedgraph`, `.bg` (`.gz`) | `chrom start end value`, 0-based half-open; equal neighbours merged |
| `.tsv` (`.gz`) | header `chrom start end risk`, one row per base |
| `.npz` | one float32 array per record (key = record id), NaN at N |
| `.bw`, `.bigwig` | bigWig (needs the `bigwig` extra: pyBigWig) |

N positions get no value (no line, no bigWig entry; NaN in npz). Chrom is the record id.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from seqmodel.errors import SeqmodelInputError
from seqmodel.io.atomic import atomic_text, write_errors_name

TEXT_SUFFIXES = (".bedgraph", ".bedgraph.gz", ".bg", ".bg.gz", ".tsv", ".tsv.gz")
BINARY_SUFFIXES = (".npz", ".bw", ".bigwig")
SUFFIXES = TEXT_SUFFIXES + BINARY_SUFFIXES


def track_suffix(path: str | os.PathLike) -> str:
    """The recognised output suffix of `path`, or a SeqmodelInputError listing the choices."""
    name = Path(path).name.lower()
    for suffix in sorted(SUFFIXES, key=len, reverse=True):
        if name.endswith(suffix):
            return suffix
    raise SeqmodelInputError(path, None, f"unsupported output type; use one of {', '.join(SUFFIXES)}")


def bedgraph_lines(chrom: str, values: np.ndarray, offset: int = 0, merge: bool = True) -> str:
    """bedGraph rows (0-based half-open) for per-base `values` `(L,)` starting at `offset`.

    NaN positions are left out; with `merge`, consecutive bases with the same printed value
    share one row.
    """
    valid = np.flatnonzero(~np.isnan(values))
    if valid.size == 0:
        return ""
    printed = np.char.mod("%.6g", values[valid])
    # A row ends where the position jumps (N) or, when merging, where the printed value changes.
    change = np.diff(valid) != 1
    if merge:
        change |= printed[1:] != printed[:-1]
    else:
        change[:] = True
    breaks = np.flatnonzero(change) + 1
    starts = np.concatenate([[0], breaks]).tolist()
    ends = np.concatenate([breaks, [len(valid)]]).tolist()
    return "".join(
        f"{chrom}\t{offset + valid[s]}\t{offset + valid[e - 1] + 1}\t{printed[s]}\n"
        for s, e in zip(starts, ends, strict=True)
    )


class TrackWriter:
    """Context manager receiving a record-ordered stream of per-base values.

    `segment(record_id, start, values)` in order within each record, then
    `end_record(record_id, length)`. Nothing appears at `path` until the writer closes
    without error.
    """

    def __init__(self, path: str | os.PathLike, bigwig_zooms: int = 0):
        self.path = Path(path)
        self.bigwig_zooms = bigwig_zooms
        self.suffix = track_suffix(self.path)
        if self.suffix in (".bw", ".bigwig"):
            try:
                import pyBigWig  # noqa: F401
            except ImportError:
                raise SeqmodelInputError(
                    self.path, None, "bigWig output needs pyBigWig: pip install 'seqmodel[bigwig]'"
                ) from None
        self._stack = contextlib.ExitStack()

    def __enter__(self) -> TrackWriter:
        if self.suffix in TEXT_SUFFIXES:
            self._text = self._stack.enter_context(atomic_text(self.path))
            if self.suffix.startswith(".tsv"):
                self._text.write("chrom\tstart\tend\trisk\n")
        else:
            # Binary formats need every record's length first: spool float32 values to disk.
            self._spool_dir = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", dir=self.path.parent))
            self._stack.callback(shutil.rmtree, self._spool_dir, True)
            self._spool = self._stack.enter_context(open(self._spool_dir / "values.f32", "wb"))
            self._records: list[tuple[str, int, int]] = []  # id, length, offset in the spool (values)
            self._spooled = 0
            self._position = 0  # next base of the current record to spool
        return self

    def segment(self, record_id: str, start: int, values: np.ndarray) -> None:
        """Values for `[start, start + len(values))` of the current record; gaps hold no value."""
        if self.suffix in TEXT_SUFFIXES:
            self._text.write(
                bedgraph_lines(record_id, values, start, merge=not self.suffix.startswith(".tsv"))
            )
        else:
            with write_errors_name(self.path):
                self._fill_to(start)
                self._spool.write(np.ascontiguousarray(values, dtype=np.float32).tobytes())
            self._position += len(values)

    def end_record(self, record_id: str, length: int) -> None:
        if self.suffix in BINARY_SUFFIXES:
            with write_errors_name(self.path):
                self._fill_to(length)
            self._records.append((record_id, length, self._spooled))
            self._spooled += length
            self._position = 0

    def _fill_to(self, position: int) -> None:
        if position < self._position:
            raise ValueError(f"segments out of order: {position} < {self._position}")
        for lo in range(self._position, position, CHUNK):
            self._spool.write(np.full(min(CHUNK, position - lo), np.nan, dtype=np.float32).tobytes())
        self._position = position

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None and self.suffix in BINARY_SUFFIXES:
                self._spool.close()
                spool, tmp = self._spool_dir / "values.f32", self._spool_dir / "out"
                with write_errors_name(self.path):
                    if self.suffix == ".npz":
                        write_npz(tmp, self._records, spool)
                    else:
                        write_bigwig(tmp, self._records, spool, self.bigwig_zooms)
                os.chmod(tmp, 0o644)
                os.replace(tmp, self.path)
        finally:
            self._stack.__exit__(exc_type, exc, tb)


CHUNK = 1 << 20


def spooled_chunks(spool: Path, offset: int, length: int) -> Iterator[tuple[int, np.ndarray]]:
    """(start, values) chunks of one record's `length` float32 values at `offset` in `spool`.

    Plain reads, not a memory map: a map's pages would count against the process's memory
    for the whole genome.
    """
    with open(spool, "rb") as handle:
        for lo in range(0, length, CHUNK):
            handle.seek(4 * (offset + lo))
            yield lo, np.fromfile(handle, dtype=np.float32, count=min(CHUNK, length - lo))


def write_npz(path: Path, records: list[tuple[str, int, int]], spool: Path) -> None:
    """An `.npz` (uncompressed zip of `.npy`) with one array per record, streamed from the spool."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        for record_id, length, offset in records:
            with archive.open(f"{record_id}.npy", "w", force_zip64=True) as member:
                header = {"descr": "<f4", "fortran_order": False, "shape": (length,)}
                np.lib.format.write_array_header_2_0(member, header)
                for _, chunk in spooled_chunks(spool, offset, length):
                    member.write(chunk.tobytes())


def write_bigwig(path: Path, records: list[tuple[str, int, int]], spool: Path, zooms: int = 0) -> None:
    """A bigWig with one base-resolution entry per valid base, streamed from the spool.

    zooms: summary levels for zoomed-out browsing. libBigWig keeps them in memory until it
    closes the file (about 14 bytes per base: 0.9 GB for chr20), so 0 keeps memory bounded.
    """
    import pyBigWig

    bigwig = pyBigWig.open(str(path), "w")
    try:
        bigwig.addHeader([(record_id, length) for record_id, length, _ in records], maxZooms=zooms)
        for record_id, length, offset in records:
            for lo, chunk in spooled_chunks(spool, offset, length):
                valid = ~np.isnan(chunk)
                # Runs of valid bases become fixed-step entries.
                edges = np.flatnonzero(np.diff(np.concatenate([[False], valid, [False]]).astype(np.int8)))
                for run_start, run_end in zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True):
                    bigwig.addEntries(
                        record_id,
                        lo + run_start,
                        values=chunk[run_start:run_end].astype(np.float64),
                        span=1,
                        step=1,
                    )
    finally:
        bigwig.close()
