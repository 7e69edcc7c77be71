"""Streaming FASTA reading: records of any length as token chunks, in bounded memory.

    for chunk in read_fasta_chunks("genome.fa.gz", runtime=rt):
        chunk.record_id, chunk.offset, chunk.tokens, chunk.last

Plain, gzip and BGZF files. The file is cut into blocks of about `chunk_bytes` uncompressed
bytes; with a `Runtime`, blocks are read (and inflated) by I/O tasks, ``read <file> <lo>-<hi>``,
and tokenized by CPU tasks, ``tokenize <file> <lo>-<hi>``, with numpy operations that
release the GIL (a lookup table, boolean compaction); only the cheap stitching of blocks
into records runs in the consumer. Plain and BGZF blocks are read in parallel; a plain gzip
stream is inflated block after block. Errors name the file and the record (`SeqmodelInputError`).

`FastaWindows` reads fixed-length windows straight from an uncompressed FASTA with a
`.fai` index (a memory map; one gather per batch), for loaders that take windows without
tokenizing the whole file first (see `token_cache` for the other way).
"""

from __future__ import annotations

import os
import zlib
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import as_strided

from seqmodel.data import alphabet
from seqmodel.io.bgzf import GZIP_MAGIC, inflate_members, is_bgzf_header
from seqmodel.io.genome import FaiEntry, read_fai
from seqmodel.errors import SeqmodelInputError, require_file, reraise_input_error
from seqmodel.runtime import Runtime, Task, TaskError

CHUNK_BYTES = 4 << 20  # uncompressed bytes per block: ~10 ms of tokenizing, big enough to scale
MAX_HEADER_BYTES = 1 << 20
SKIP = 254  # token for bytes dropped from sequence lines: line ends, spaces, tabs
_TOKEN_LUT = alphabet.ENCODE_LUT.copy()
_TOKEN_LUT[list(b"\n\r \t")] = SKIP


def _pair_table(lut: np.ndarray) -> np.ndarray:
    """`lut` applied to both bytes of every uint16: a 128 kB table for two lookups at once."""
    pairs = np.arange(1 << 16)
    low, high = lut[pairs & 0xFF].astype(np.uint16), lut[pairs >> 8].astype(np.uint16)
    return (low | (high << 8)).astype(np.uint16)


_PAIRS = {id(alphabet.ENCODE_LUT): _pair_table(alphabet.ENCODE_LUT), id(_TOKEN_LUT): _pair_table(_TOKEN_LUT)}


def lookup(lut: np.ndarray, raw: np.ndarray) -> np.ndarray:
    """`lut[raw]` for uint8 arrays, two bytes per lookup where the layout allows (2x faster).

    `np.take` releases the GIL; numpy casts the indices to intp first, so halving their
    number is what pays.
    """
    pairs = _PAIRS.get(id(lut))
    if pairs is None or raw.nbytes % 2 or not raw.flags.c_contiguous or raw.dtype != np.uint8:
        return np.take(lut, raw)
    return np.take(pairs, raw.view(np.uint16)).view(np.uint8).reshape(raw.shape)


@dataclass(frozen=True)
class FastaChunk:
    """Consecutive bases of one record.

    record_index: 0-based, in file order; description: the header line without '>';
    offset: 0-based position of `tokens[0]` in the record; tokens: `(n,)` uint8 ids
    (see `alphabet`), n >= 1; last: this is the record's final chunk (its length is
    `offset + n`).
    """

    record_index: int
    record_id: str
    description: str
    offset: int
    tokens: np.ndarray
    last: bool

    def __len__(self) -> int:
        return len(self.tokens)


def tokenize_sequence(raw: np.ndarray) -> np.ndarray:
    """Token ids `(n,)` uint8 of raw sequence-line bytes; line ends and blanks dropped.

    Bytes outside the alphabet become `alphabet.INVALID`. `lut[arr]` and the boolean
    compaction release the GIL.
    """
    tokens = lookup(_TOKEN_LUT, np.ascontiguousarray(raw))
    return tokens[tokens != SKIP]


# --- raw uncompressed blocks, by file format ---------------------------------------------


class _BlockSource(ABC):
    """The file's uncompressed bytes as consecutive blocks; `read(i)` gives block i.

    sequential: block i may only be read after block i - 1 (a plain gzip stream).
    count: number of blocks, None when unknown (reads past the end give b"").
    """

    sequential = False
    count: int | None = None

    def __init__(self, path: Path):
        self.path = path

    @abstractmethod
    def span(self, index: int) -> tuple[int, int]:
        """File bytes block `index` comes from (compressed bytes for gzip), for task names."""

    @abstractmethod
    def read(self, index: int) -> bytes:
        """The uncompressed bytes of block `index`."""

    def close(self) -> None:  # noqa: B027 - most sources hold nothing open
        """Release what the source holds open."""


class _PlainBlocks(_BlockSource):
    def __init__(self, path: Path, chunk_bytes: int):
        super().__init__(path)
        self.fd = os.open(path, os.O_RDONLY)
        self.size = os.fstat(self.fd).st_size
        self.chunk = chunk_bytes
        self.count = -(-self.size // chunk_bytes)

    def span(self, index: int) -> tuple[int, int]:
        return index * self.chunk, min((index + 1) * self.chunk, self.size)

    def read(self, index: int) -> bytes:
        lo, hi = self.span(index)
        return os.pread(self.fd, hi - lo, lo)

    def close(self) -> None:
        os.close(self.fd)


def bgzf_block_starts(path: Path) -> np.ndarray | None:
    """Compressed offsets `(B,)` of a BGZF file's blocks (from `.gzi`, else by walking headers).

    None when the file is not BGZF (a plain gzip stream).
    """
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        header = handle.read(18)
        if not is_bgzf_header(header):
            return None
        gzi = Path(f"{path}.gzi")
        if gzi.is_file():
            raw = np.fromfile(gzi, dtype="<u8")
            if raw.size >= 1 and raw.size == 1 + 2 * int(raw[0]):
                return np.concatenate([[0], raw[1:].reshape(-1, 2)[:, 0]]).astype(np.int64)
        starts, offset = [], 0
        while offset < size:
            handle.seek(offset)
            header = handle.read(18)
            if not is_bgzf_header(header):
                raise SeqmodelInputError(path, f"byte {offset}", "corrupt BGZF: expected a block header")
            starts.append(offset)
            offset += int.from_bytes(header[16:18], "little") + 1
    return np.array(starts, dtype=np.int64)


class _BgzfBlocks(_BlockSource):
    """Groups of whole BGZF blocks, inflated independently (in parallel)."""

    def __init__(self, path: Path, starts: np.ndarray, chunk_bytes: int):
        super().__init__(path)
        self.fd = os.open(path, os.O_RDONLY)
        size = os.fstat(self.fd).st_size
        bounds = np.append(starts, size)
        # DNA compresses about 3.5x: aim for ~chunk_bytes uncompressed per group.
        target = max(chunk_bytes // 4, 1)
        cuts = [0]
        for i in range(1, len(bounds)):
            if bounds[i] - bounds[cuts[-1]] >= target or i == len(bounds) - 1:
                cuts.append(i)
        self.groups = [(int(bounds[a]), int(bounds[b])) for a, b in zip(cuts, cuts[1:], strict=False)]
        self.count = len(self.groups)

    def span(self, index: int) -> tuple[int, int]:
        return self.groups[index]

    def read(self, index: int) -> bytes:
        lo, hi = self.groups[index]
        try:
            return inflate_members(os.pread(self.fd, hi - lo, lo))
        except (EOFError, zlib.error) as error:
            raise SeqmodelInputError(
                self.path, f"byte {lo}", f"corrupt or truncated gzip ({error})"
            ) from None

    def close(self) -> None:
        os.close(self.fd)


class _GzipBlocks(_BlockSource):
    """A gzip stream (one or more members), inflated in order, `chunk_bytes` out at a time."""

    sequential = True

    def __init__(self, path: Path, chunk_bytes: int):
        super().__init__(path)
        self.handle = open(path, "rb")
        self.chunk = chunk_bytes
        self.inflater = zlib.decompressobj(31)
        self.pending = b""  # compressed input not yet consumed
        self.position = 0  # compressed bytes read so far
        self.eof = False
        self.in_member = False  # input fed to the current member, which has not ended
        self.read_index = 0

    def span(self, index: int) -> tuple[int, int]:
        return self.position, self.position + self.chunk // 4  # approximate: a stream has no index

    def read(self, index: int) -> bytes:
        if index != self.read_index:
            raise RuntimeError(f"gzip blocks must be read in order: {index} after {self.read_index - 1}")
        self.read_index += 1
        out: list[bytes] = []
        size = 0
        try:
            while size < self.chunk and not self.eof:
                if not self.pending:
                    self.pending = self.handle.read(1 << 20)
                    self.position += len(self.pending)
                    if not self.pending:
                        if self.in_member:
                            raise EOFError("compressed file ended before the end-of-stream marker")
                        self.eof = True
                        break
                self.in_member = True
                out.append(self.inflater.decompress(self.pending, self.chunk - size))
                size += len(out[-1])
                self.pending = self.inflater.unconsumed_tail
                if self.inflater.eof:  # a member ended; another may follow
                    self.pending = self.inflater.unused_data + self.pending
                    self.inflater = zlib.decompressobj(31)
                    self.in_member = False
        except (EOFError, zlib.error) as error:
            raise SeqmodelInputError(self.path, None, f"corrupt or truncated gzip ({error})") from None
        return b"".join(out)

    def close(self) -> None:
        self.handle.close()


def _block_source(path: Path, chunk_bytes: int) -> _BlockSource:
    with open(path, "rb") as handle:
        magic = handle.read(2)
    if magic != GZIP_MAGIC:
        return _PlainBlocks(path, chunk_bytes)
    starts = bgzf_block_starts(path)
    return _GzipBlocks(path, chunk_bytes) if starts is None else _BgzfBlocks(path, starts, chunk_bytes)


# --- parsing -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Header:
    text: bytes
    origin: int  # uncompressed byte offset of the '>'


@dataclass(frozen=True)
class _Sequence:
    tokens: np.ndarray
    origin: int  # uncompressed byte offset of the first raw byte
    invalid: int | None = None  # index in `tokens` of the first byte outside the alphabet
    char: str = ""  # that byte


def _sequence(raw: np.ndarray, origin: int) -> _Sequence:
    tokens = tokenize_sequence(raw)
    if not len(tokens) or int(tokens.max()) <= alphabet.N:
        return _Sequence(tokens, origin)
    invalid = alphabet.first_invalid(tokens)
    byte = int(raw[np.flatnonzero(np.take(_TOKEN_LUT, raw) == alphabet.INVALID)[0]])
    return _Sequence(tokens, origin, invalid, chr(byte) if byte < 128 else f"\\x{byte:02x}")


def parse_block(body: bytes, line_start: bool, origin: int) -> list[_Header | _Sequence]:
    """Header lines and tokenized sequence runs of `body`, in order (a CPU task).

    body: raw bytes that never end inside a header line; line_start: body[0] begins a line;
    origin: uncompressed offset of body[0] in the file. Errors are left to the consumer,
    which knows the record.
    """
    raw = np.frombuffer(body, dtype=np.uint8)
    marks = np.flatnonzero(raw == ord(">")).tolist()
    pieces: list[_Header | _Sequence] = []
    done = 0
    for mark in marks:
        if mark < done or not ((mark == 0 and line_start) or (mark > 0 and body[mark - 1] == 10)):
            continue  # inside a header line, or a stray '>' in sequence (caught as invalid)
        if mark > done:
            pieces.append(_sequence(raw[done:mark], origin + done))
        end = body.find(b"\n", mark)
        end = len(body) if end < 0 else end
        pieces.append(_Header(body[mark + 1 : end].rstrip(b"\r"), origin + mark))
        done = end + 1
    if done < len(body):
        pieces.append(_sequence(raw[done:], origin + done))
    return pieces


class _Stitcher:
    """The consumer's side: pieces -> validated FastaChunks (one held back to set `last`)."""

    def __init__(self, path: Path):
        self.path = path
        self.index = -1
        self.record_id = ""
        self.description = ""
        self.offset = 0
        self.seen: set[str] = set()
        self.held: FastaChunk | None = None
        self.first_bytes = b""  # the file's first bytes, for the line number of a bad start

    def where(self) -> str:
        return f"record {self.index + 1} ({self.record_id or 'no id'})"

    def feed(self, pieces: list[_Header | _Sequence]) -> Iterator[FastaChunk]:
        for piece in pieces:
            if isinstance(piece, _Header):
                yield from self._end_record()
                self._start_record(piece)
                continue
            if not len(piece.tokens):
                continue
            if self.index < 0:
                line = self.first_bytes[: piece.origin].count(b"\n") + 1
                raise SeqmodelInputError(self.path, f"line {line}", "not FASTA: expected a '>' header line")
            if piece.invalid is not None:
                raise SeqmodelInputError(
                    self.path,
                    self.where(),
                    f"character {piece.char!r} at position {self.offset + piece.invalid + 1}"
                    " is not a DNA/IUPAC code",
                )
            if self.held is not None:
                yield self.held
            self.held = FastaChunk(
                self.index, self.record_id, self.description, self.offset, piece.tokens, False
            )
            self.offset += len(piece.tokens)

    def finish(self) -> Iterator[FastaChunk]:
        if self.index < 0:
            raise SeqmodelInputError(self.path, None, "no FASTA records (expected a '>' header line)")
        yield from self._end_record()

    def _start_record(self, header: _Header) -> None:
        self.index += 1
        self.record_id, self.description, self.offset = "", "", 0
        try:
            text = header.text.decode("ascii")
        except UnicodeDecodeError:
            raise SeqmodelInputError(
                self.path, f"byte {header.origin}", "not a text FASTA file (binary content)"
            ) from None
        self.record_id = text.split(None, 1)[0] if text.strip() else ""
        self.description = text
        if not self.record_id:
            raise SeqmodelInputError(self.path, self.where(), "header has no sequence id")
        if self.record_id in self.seen:
            raise SeqmodelInputError(self.path, self.where(), f"duplicate record id {self.record_id!r}")
        self.seen.add(self.record_id)

    def _end_record(self) -> Iterator[FastaChunk]:
        if self.index < 0:
            return
        if self.offset == 0:
            raise SeqmodelInputError(self.path, self.where(), "header with no sequence")
        held, self.held = self.held, None
        yield FastaChunk(held.record_index, held.record_id, held.description, held.offset, held.tokens, True)


def _bodies(raws: Iterator[bytes], path: Path) -> Iterator[tuple[bytes, bool, int]]:
    """(body, body[0] begins a line, uncompressed offset of body[0]) for each raw block.

    A body never ends inside a header line (that part is carried to the next block); an
    unfinished sequence line may be cut anywhere, so a record on one 60 Mb line still
    streams in blocks.
    """
    carry, line_start, origin = b"", True, 0
    for raw in raws:
        body = carry + raw if carry else raw
        body_line_start = True if carry else line_start
        cut = body.rfind(b"\n") + 1
        if (cut > 0 or body_line_start) and body[cut : cut + 1] == b">":
            body, carry, line_start = body[:cut], body[cut:], True
            if len(carry) > MAX_HEADER_BYTES:
                raise SeqmodelInputError(path, f"byte {origin + cut}", "header line longer than 1 MB")
        else:
            carry, line_start = b"", body.endswith(b"\n")
        if body:
            yield body, body_line_start, origin
            origin += len(body)
    if carry:
        yield carry, True, origin


def read_fasta_chunks(
    path: str | os.PathLike,
    chunk_bytes: int = CHUNK_BYTES,
    runtime: Runtime | None = None,
    prefetch: int = 4,
) -> Iterator[FastaChunk]:
    """Every record of a FASTA file (plain, gzip or BGZF) as `FastaChunk`s, in file order.

    Chunks hold at most about `chunk_bytes` bases; memory stays within about
    ``3 * prefetch * chunk_bytes`` whatever the record lengths. runtime: read blocks on its
    I/O pool and tokenize on its CPU pool, `prefetch` blocks ahead; None: in this thread.
    Raises SeqmodelInputError naming the file and record for what `fasta.read_fasta` rejects.
    """
    path = require_file(path, "input file")
    source = _block_source(path, chunk_bytes)
    stitcher = _Stitcher(path)
    parses: deque[Task | list] = deque()
    depth = max(prefetch, 1) if runtime is not None else 1
    try:
        for body, line_start, origin in _bodies(_raw_blocks(source, runtime, prefetch, path.name), path):
            if origin == 0:
                stitcher.first_bytes = body[:65536]
            if runtime is None:
                parses.append(parse_block(body, line_start, origin))
            else:
                parses.append(
                    runtime.submit(
                        parse_block,
                        body,
                        line_start,
                        origin,
                        pool="cpu",
                        name=f"tokenize {path.name} {origin}-{origin + len(body)}",
                        context={"file": str(path), "offset": origin},
                    )
                )
            while len(parses) >= depth:
                yield from stitcher.feed(_pieces(parses.popleft()))
        while parses:
            yield from stitcher.feed(_pieces(parses.popleft()))
        yield from stitcher.finish()
    except TaskError as error:
        reraise_input_error(error)
        raise
    finally:
        _drain(t for t in parses if isinstance(t, Task))
        source.close()


def _pieces(parsed: Task | list) -> list:
    return parsed if isinstance(parsed, list) else parsed.result()


def _drain(tasks) -> None:
    """Cancel tasks not started and wait for running ones (they may still use a file)."""
    for task in list(tasks):
        if not task.cancel():
            task.exception()


def _raw_blocks(source: _BlockSource, runtime: Runtime | None, prefetch: int, name: str) -> Iterator[bytes]:
    """The source's blocks in order, up to the first empty one of a stream.

    With a runtime, read by I/O tasks up to `prefetch` ahead (a gzip stream's in a chain).
    """
    index = 0
    if runtime is None:
        while source.count is None or index < source.count:
            raw = source.read(index)
            if not raw and source.count is None:
                return
            yield raw
            index += 1
        return
    inflight: deque[Task[bytes]] = deque()
    try:
        while True:
            while len(inflight) < max(prefetch, 1) and (source.count is None or index < source.count):
                lo, hi = source.span(index)
                inflight.append(
                    runtime.submit(
                        source.read,
                        index,
                        pool="io",
                        name=f"read {name} {lo}-{hi}",
                        context={"file": str(source.path), "offset": lo},
                        after=[inflight[-1]] if source.sequential and inflight else [],
                    )
                )
                index += 1
            if not inflight:
                return
            raw = inflight.popleft().result()
            if not raw and source.count is None:
                return
            yield raw
    finally:
        _drain(inflight)


# --- windows straight from an uncompressed FASTA ------------------------------------------


@dataclass
class WindowRows:
    """Raw FASTA bases of a batch of windows, grouped by line layout (what `read_rows` gives).

    groups: (row numbers in the batch, `(b, lines * line_bases)` uint8 bytes of the lines
    holding each window, line ends left out, and the column `(b,)` of its first base there).
    """

    size: int
    groups: list[tuple[np.ndarray, np.ndarray, np.ndarray]]


class FastaWindows:
    """Fixed-length windows read straight from an uncompressed FASTA with a `.fai` index.

    The file is memory-mapped. `read_rows` (an I/O task: it may fault pages in) copies,
    per window, the bases of the lines holding it (a strided view skips the line ends),
    all windows in one gather; `tokenize_rows` (a CPU task) cuts each window at its column
    and looks the bytes up: a few numpy calls per batch, each releasing the GIL.
    """

    def __init__(self, path: str | os.PathLike, window: int):
        self.path = require_file(path, "FASTA")
        with open(self.path, "rb") as handle:
            if handle.read(2) == GZIP_MAGIC:
                raise SeqmodelInputError(self.path, None, "windows need an uncompressed FASTA")
        fai = Path(f"{self.path}.fai")
        if not fai.is_file():
            raise SeqmodelInputError(fai, None, "FASTA index not found (samtools faidx)")
        self.index: dict[str, FaiEntry] = read_fai(fai)
        self.names = list(self.index)
        self.window = window
        self.raw = np.memmap(self.path, dtype=np.uint8, mode="r")
        self._views: dict[tuple[int, int, int], np.ndarray] = {}
        entries = list(self.index.values())
        self.number = {name: i for i, name in enumerate(self.names)}
        self.offset = np.array([e.offset for e in entries], dtype=np.int64)
        self.length = np.array([e.length for e in entries], dtype=np.int64)
        self.line_bases = np.array([e.line_bases for e in entries], dtype=np.int64)
        self.line_bytes = np.array([e.line_bytes for e in entries], dtype=np.int64)
        self.uniform = len(set(zip(self.line_bases.tolist(), self.line_bytes.tolist(), strict=True))) == 1

    def close(self) -> None:
        self.raw, self._views = None, {}

    def __enter__(self) -> FastaWindows:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def byte_range(self, name: str, start: int) -> tuple[int, int]:
        """File bytes `[lo, hi)` of bases `[start, start + window)` of record `name`."""
        entry = self.index[name]
        end = start + self.window
        if not 0 <= start < end <= entry.length:
            raise SeqmodelInputError(self.path, name, f"window {start}-{end} outside the record")
        lo = entry.offset + (start // entry.line_bases) * entry.line_bytes + start % entry.line_bases
        last = end - 1
        hi = entry.offset + (last // entry.line_bases) * entry.line_bytes + last % entry.line_bases + 1
        return lo, hi

    def locate(self, windows: Sequence[tuple[str, int]] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Record numbers and starts `(B,)` of windows, checked to lie inside their records.

        windows: `(name, start)` pairs, or a `(B, 2)` int array of (record number, start).
        """
        if isinstance(windows, np.ndarray):
            records, starts = windows[:, 0].astype(np.int64), windows[:, 1].astype(np.int64)
            if len(records) and not 0 <= records.min() <= records.max() < len(self.names):
                raise SeqmodelInputError(self.path, None, f"record numbers outside [0, {len(self.names)})")
        else:
            try:
                records = np.array([self.number[name] for name, _ in windows], dtype=np.int64)
            except KeyError as error:
                raise SeqmodelInputError(self.path, None, f"no record {error.args[0]!r}") from None
            starts = np.array([start for _, start in windows], dtype=np.int64)
        outside = (starts < 0) | (starts + self.window > self.length[records])
        if outside.any():
            i = int(np.flatnonzero(outside)[0])
            message = f"window {starts[i]}-{starts[i] + self.window} outside the record"
            raise SeqmodelInputError(self.path, self.names[records[i]], message)
        return records, starts

    def read_rows(self, windows: Sequence[tuple[str, int]]) -> WindowRows:
        """The raw lines holding each window (an I/O task)."""
        records, starts = self.locate(windows)
        groups = []
        if self.uniform:  # one line layout in the whole file (the usual case)
            layouts = [(int(self.line_bases[0]), int(self.line_bytes[0]), None)]
        else:
            pairs = np.stack([self.line_bases[records], self.line_bytes[records]], axis=1)
            layouts = [
                (lb, lbytes, np.flatnonzero((pairs[:, 0] == lb) & (pairs[:, 1] == lbytes)))
                for lb, lbytes in np.unique(pairs, axis=0).tolist()
            ]
        for line_bases, line_bytes, rows in layouts:
            rows = np.arange(len(records)) if rows is None else rows
            rec, start = records[rows], starts[rows]
            lines = (self.window + line_bases - 1) // line_bases + 1  # most lines a window touches
            lo = self.offset[rec] + start // line_bases * line_bytes
            reach = (lines - 1) * line_bytes + line_bases  # bytes from a first line's start to the last base
            inside = lo + reach <= len(self.raw)
            view = self._views.get((lines, line_bases, line_bytes))
            if view is None:  # at every file offset: `lines` lines of `line_bases` bytes (no copy)
                shape = (len(self.raw) - reach + 1, lines, line_bases)
                view = as_strided(self.raw, shape, (1, line_bytes, 1), writeable=False)
                self._views[(lines, line_bases, line_bytes)] = view
            if inside.all():
                bases = view[lo]  # one gather for all rows, line ends already left out
            else:  # the file's last lines: pad past its end
                bases = np.full((len(rows), lines, line_bases), ord("N"), dtype=np.uint8)
                bases[inside] = view[lo[inside]]
                for row in np.flatnonzero(~inside):
                    for line in range(lines):
                        text = self.raw[lo[row] + line * line_bytes :][:line_bases]
                        bases[row, line, : len(text)] = text
            groups.append((rows, bases.reshape(len(rows), -1), start % line_bases))
        return WindowRows(len(windows), groups)

    def tokenize_rows(self, rows: WindowRows) -> np.ndarray:
        """`(B, window)` uint8 token ids of the windows (a CPU task)."""
        out = None if len(rows.groups) == 1 else np.empty((rows.size, self.window), dtype=np.uint8)
        for numbers, bases, columns in rows.groups:
            b, n = bases.shape
            starts = as_strided(bases, (b, n - self.window + 1, self.window), (n, 1, 1), writeable=False)
            picked = starts[np.arange(b), columns]
            tokens = lookup(alphabet.ENCODE_LUT, picked)
            if int(tokens.max(initial=0)) > alphabet.N:
                row = int(np.flatnonzero((tokens > alphabet.N).any(axis=1))[0])
                bad = int(np.flatnonzero(tokens[row] > alphabet.N)[0])
                byte = chr(picked[row, bad])
                message = f"byte {byte!r} is not a DNA/IUPAC code (or the .fai does not match the file)"
                raise SeqmodelInputError(self.path, f"window {int(numbers[row])}", message)
            if out is None:  # one layout: the rows are the batch, in order
                return tokens
            out[numbers] = tokens
        return out if out is not None else np.empty((0, self.window), dtype=np.uint8)

    def batches_task(
        self, runtime: Runtime
    ) -> Callable[[Sequence[Sequence[tuple[str, int]] | np.ndarray]], Iterator]:
        """A generator task for `Runtime.ordered_map` over groups of batches.

        Each group is one I/O task reading every batch's rows, then tokenizing on the CPU
        task: one hand-off between the pools per group, not per batch (on a small machine
        the hand-offs, not the numpy work, dominate). Returns the `(B, window)` token arrays.
        """

        def batches(group: Sequence[Sequence[tuple[str, int]] | np.ndarray]):
            first = group[0]
            name, start = first[0]
            name = self.names[name] if isinstance(first, np.ndarray) else name
            label = f"read {name}:{start}-{start + self.window} +{sum(map(len, group)) - 1} windows"
            rows = yield runtime.submit(lambda: [self.read_rows(b) for b in group], pool="io", name=label)
            return [self.tokenize_rows(r) for r in rows]

        return batches
