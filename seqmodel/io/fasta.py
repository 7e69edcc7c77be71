"""FASTA reading (plain, gzip or BGZF): one streaming parser, three ways to take its output.

    for chunk in read_fasta_chunks("genome.fa.gz", runtime=rt):   # bounded memory, any record length
        chunk.record_id, chunk.offset, chunk.tokens, chunk.last
    for record in read_fasta("regions.fa"):                         # whole records
        record.id, record.tokens, record.fields
    store = load_fasta_tokens("genome.fa.gz", runtime=rt)           # the whole file as one token array
    store.tokens[store.offsets[r] : store.offsets[r + 1]]

The file is cut into blocks of about `chunk_bytes` uncompressed bytes; with a `Runtime`,
blocks are read (and inflated) by I/O tasks, ``read <file> <lo>-<hi>``, and tokenized by CPU
tasks, ``tokenize <file> <lo>-<hi>``, with numpy operations that release the GIL (a lookup
table, boolean compaction); only the cheap stitching of blocks into records runs in the
consumer. Plain and BGZF blocks are read in parallel; a plain gzip stream is inflated block
after block. Every malformed input raises `SeqmodelInputError` naming the file and the record
(or line, or byte): no records, text before the first header, an empty record, a header
without an id, duplicate ids, bytes outside the alphabet, binary content, a corrupt or
truncated gzip stream.
"""

from __future__ import annotations

import os
import re
import zlib
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from seqmodel.errors import SeqmodelInputError, reraise_input_error
from seqmodel.io import alphabet
from seqmodel.io.bgzf import GZIP_MAGIC, bgzf_blocks, inflate_members
from seqmodel.io.remote import RangeReader, as_input, base_name, is_url, open_reader
from seqmodel.runtime import Runtime, Task, TaskError

CHUNK_BYTES = 4 << 20  # uncompressed bytes per block: ~10 ms of tokenizing, big enough to scale
MAX_READ_AHEAD_BYTES = 64 << 20  # the most one reader reads ahead, however slow the storage
MAX_HEADER_BYTES = 1 << 20
SKIP = 254  # token for bytes dropped from sequence lines: line ends, spaces, tabs
_TOKEN_LUT = alphabet.ENCODE_LUT.copy()
_TOKEN_LUT[list(b"\n\r \t")] = SKIP

# bedtools getfasta style ids: "chr20:53800000-53900000" (0-based half-open).
REGION_ID = re.compile(r"^(?P<chrom>[^:\s]+):(?P<start>\d+)-(?P<end>\d+)$")


# --- what the reader gives -----------------------------------------------------------------


@dataclass
class FastaRecord:
    """One FASTA record: `tokens` `(L,)` uint8 ids (see `alphabet`), `fields` the header's key=value pairs."""

    id: str
    description: str
    tokens: np.ndarray
    index: int
    fields: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def genome_interval(self) -> tuple[str, int, int] | None:
        """(chrom, start, end), 0-based half-open, when the id is `chrom:start-end`."""
        match = REGION_ID.match(self.id)
        if match is None:
            return None
        return match["chrom"], int(match["start"]), int(match["end"])


def header_fields(description: str) -> dict[str, str]:
    """The `key=value` words of a FASTA header line."""
    return dict(word.split("=", 1) for word in description.split()[1:] if "=" in word)


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


@dataclass
class FastaTokens:
    """A whole FASTA as one token store: record r is `tokens[offsets[r] : offsets[r + 1]]`.

    tokens: `(T,)` uint8 ids; offsets: `(R + 1,)` int64; ids and descriptions (header lines
    without '>') in file order.
    """

    tokens: np.ndarray
    offsets: np.ndarray
    ids: list[str]
    descriptions: list[str]

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def __len__(self) -> int:
        return len(self.ids)

    def record(self, index: int) -> np.ndarray:
        """Tokens `(L,)` of record `index`: a view of the store, no copy."""
        return self.tokens[self.offsets[index] : self.offsets[index + 1]]

    def records(self) -> list[FastaRecord]:
        """The records as FastaRecords whose tokens are views of the store."""
        return [
            FastaRecord(rid, desc, self.record(i), i, header_fields(desc))
            for i, (rid, desc) in enumerate(zip(self.ids, self.descriptions, strict=True))
        ]


# --- tokenizing ------------------------------------------------------------------------------


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
    return np.take(pairs, raw.reshape(-1).view(np.uint16)).view(np.uint8).reshape(raw.shape)


def tokenize_sequence(raw: np.ndarray) -> np.ndarray:
    """Token ids `(n,)` uint8 of raw sequence-line bytes; line ends and blanks dropped.

    Bytes outside the alphabet become `alphabet.INVALID`. `lut[arr]` and the boolean
    compaction release the GIL.
    """
    tokens = lookup(_TOKEN_LUT, np.ascontiguousarray(raw))
    return tokens[tokens != SKIP]


# --- fused passes: numba when it imports, numpy otherwise -------------------------------------

ENGINES = ("auto", "numba", "numpy")
_KERNELS: dict[str, object] = {}


def numba_kernel(function):
    """`function` compiled by numba (nopython, GIL released, cached on disk), or None.

    None when numba is not installed or ``SEQMODEL_NUMBA=0``: callers then take their numpy
    path, which gives the same arrays. numba is imported on first use (it takes ~0.3 s).
    """
    name = f"{function.__module__}.{function.__qualname__}"
    if name not in _KERNELS:
        kernel = None
        if os.environ.get("SEQMODEL_NUMBA", "1") != "0":
            try:
                import numba
            except ImportError:
                pass
            else:
                kernel = numba.njit(nogil=True, cache=True)(function)
        _KERNELS[name] = kernel
    return _KERNELS[name]


def pick_engine(engine: str, function) -> object | None:
    """The compiled kernel of `function` for `engine` ("auto", "numba", "numpy"), None for numpy."""
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, not {engine!r}")
    if engine == "numpy":
        return None
    kernel = numba_kernel(function)
    if kernel is None and engine == "numba":
        raise RuntimeError("numba is not available (not installed, or SEQMODEL_NUMBA=0)")
    return kernel


def _window_bytes_loop(
    raw, records, starts, offset, length, line_bases, line_bytes, lut, pad, out
):  # pragma: no cover - compiled by numba; the numpy path gives the same arrays
    """Fill `out` `(B, L)` with `lut` of the bases of windows `(records[i], starts[i])`.

    Returns (first window outside its record or -1, 1 if a looked-up byte is above `pad`).
    Line ends are skipped, one line's bases at a time (slices: no index checks inside).
    """
    size = raw.shape[0]
    rows, window = out.shape
    high = 0
    for i in range(rows):
        record, start = records[i], starts[i]
        if record < 0 or record >= offset.shape[0] or start < 0 or start + window > length[record]:
            return i, high
        width = line_bases[record]
        skip = line_bytes[record] - width
        col = start % width
        at = offset[record] + start // width * line_bytes[record] + col
        row = out[i]
        j = 0
        while j < window:
            n = min(width - col, window - j)
            dst = row[j : j + n]
            if at + n <= size:
                src = raw[at : at + n]
                for k in range(n):
                    token = lut[src[k]]
                    high |= token > pad
                    dst[k] = token
            else:  # past the end of the file (the .fai does not match it): N
                for k in range(n):
                    token = lut[raw[at + k]] if at + k < size else pad
                    high |= token > pad
                    dst[k] = token
            j += n
            at += n + skip
            col = 0
    return -1, high


def fasta_window_tokens(
    raw: np.ndarray,
    records: np.ndarray,
    starts: np.ndarray,
    fai: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    window: int,
    engine: str = "auto",
    views: dict | None = None,
) -> tuple[np.ndarray, int]:
    """`(B, window)` uint8 token ids of windows `(records[i], starts[i])` of an uncompressed FASTA
    mapped as `raw` (uint8), and the first window with a problem (-1 when none).

    fai: `(R,)` int64 arrays `(offset, length, line_bases, line_bytes)` of the records, as in
    the .fai. A problem is a window outside its record, or a byte outside the alphabet
    (its tokens are then `alphabet.INVALID`); the caller names the file and record. Line ends
    are skipped; bytes past the end of `raw` read as N.

    engine "numba": one fused pass (check, gather, skip line ends, look up; no GIL);
    "numpy": checks, then per line layout one gather of the lines holding each window (a
    strided view), a cut at each window's column and a two-byte table lookup; "auto": numba
    when available. Both give the same tokens. views: a dict kept by the caller (numpy path).
    """
    records, starts = np.asarray(records, np.int64), np.asarray(starts, np.int64)
    offset, length, line_bases, line_bytes = (np.asarray(a, np.int64) for a in fai)
    kernel = pick_engine(engine, _window_bytes_loop)
    if kernel is not None:
        out = np.empty((len(records), window), dtype=np.uint8)
        lut = alphabet.ENCODE_LUT
        outside, high = kernel(
            raw, records, starts, offset, length, line_bases, line_bytes, lut, alphabet.N, out
        )
        if outside >= 0:
            return out, int(outside)
        return out, (int(np.flatnonzero((out > alphabet.N).any(axis=1))[0]) if high else -1)
    bad = (records < 0) | (records >= len(offset))
    rec = np.where(bad, 0, records)
    bad |= (starts < 0) | (starts + window > length[rec])
    if bad.any():
        return np.empty((len(records), window), dtype=np.uint8), int(np.flatnonzero(bad)[0])
    width, nbytes = line_bases[rec], line_bytes[rec]
    column = starts % width
    first = offset[rec] + starts // width * nbytes + column
    views = {} if views is None else views
    out = _window_tokens_numpy(raw, first, column, width, nbytes, window, views)
    high = int(out.max(initial=0)) > alphabet.N
    return out, (int(np.flatnonzero((out > alphabet.N).any(axis=1))[0]) if high else -1)


def window_engine(engine: str = "auto") -> str:
    """Which pass `fasta_window_tokens(engine=engine)` takes: "numba" or "numpy"."""
    return "numpy" if pick_engine(engine, _window_bytes_loop) is None else "numba"


def _window_tokens_numpy(raw, first, column, line_bases, line_bytes, window, views) -> np.ndarray:
    from numpy.lib.stride_tricks import as_strided

    b = len(first)
    layout = np.stack([line_bases, line_bytes], axis=1)
    if b and (layout == layout[0]).all():
        layouts = [(int(line_bases[0]), int(line_bytes[0]), None)]
    else:
        layouts = [
            (width, nbytes, np.flatnonzero((layout[:, 0] == width) & (layout[:, 1] == nbytes)))
            for width, nbytes in np.unique(layout, axis=0).tolist()
        ]
    out = None if len(layouts) == 1 else np.empty((b, window), dtype=np.uint8)
    for width, nbytes, rows in layouts:
        lo = first - column if rows is None else (first - column)[rows]
        col = column if rows is None else column[rows]
        n = len(lo)
        lines = (window + width - 1) // width + 1  # most lines a window touches
        reach = (lines - 1) * nbytes + width  # bytes from a first line's start to the last base
        inside = lo + reach <= len(raw)
        view = views.get((lines, width, nbytes)) if len(raw) >= reach else None
        if view is None and len(raw) >= reach:  # at every file offset: `lines` lines of `width` bytes
            shape = (len(raw) - reach + 1, lines, width)
            view = views[(lines, width, nbytes)] = as_strided(raw, shape, (1, nbytes, 1), writeable=False)
        if inside.all():
            bases = view[lo]  # one gather for all rows, line ends already left out
        else:  # the file's last lines: pad past its end
            bases = np.full((n, lines, width), ord("N"), dtype=np.uint8)
            if inside.any():
                bases[inside] = view[lo[inside]]
            for row in np.flatnonzero(~inside):
                for line in range(lines):
                    text = raw[lo[row] + line * nbytes :][:width]
                    bases[row, line, : len(text)] = text
        bases = bases.reshape(n, -1)
        m = bases.shape[1]
        starts = as_strided(bases, (n, m - window + 1, window), (m, 1, 1), writeable=False)
        tokens = lookup(alphabet.ENCODE_LUT, starts[np.arange(n), col])
        if out is None:
            return tokens
        out[rows] = tokens
    return out if out is not None else np.empty((0, window), dtype=np.uint8)


# --- raw uncompressed blocks, by file format -------------------------------------------------


class _BlockSource(ABC):
    """The file's uncompressed bytes as consecutive blocks; `read(i)` gives block i.

    sequential: block i may only be read after block i - 1 (a plain gzip stream).
    count: number of blocks, None when unknown (reads past the end give b"").
    """

    sequential = False
    count: int | None = None

    def __init__(self, reader: RangeReader):
        self.reader = reader
        self.path = reader.name  # a local Path or a URL, for errors

    @abstractmethod
    def span(self, index: int) -> tuple[int, int]:
        """File bytes block `index` comes from (compressed bytes for gzip), for task names."""

    @abstractmethod
    def read(self, index: int) -> bytes:
        """The uncompressed bytes of block `index`."""

    def close(self) -> None:
        """Release what the source holds open."""
        self.reader.close()


class _PlainBlocks(_BlockSource):
    def __init__(self, reader: RangeReader, chunk_bytes: int):
        super().__init__(reader)
        self.size = reader.size
        self.chunk = chunk_bytes
        self.count = -(-self.size // chunk_bytes)

    def span(self, index: int) -> tuple[int, int]:
        return index * self.chunk, min((index + 1) * self.chunk, self.size)

    def read(self, index: int) -> bytes:
        lo, hi = self.span(index)
        return self.reader.pread(hi - lo, lo)


class _BgzfBlocks(_BlockSource):
    """Groups of whole BGZF blocks, inflated independently (in parallel)."""

    def __init__(self, reader: RangeReader, starts: np.ndarray, chunk_bytes: int):
        super().__init__(reader)
        size = reader.size
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
            return inflate_members(self.reader.pread(hi - lo, lo))
        except (EOFError, zlib.error) as error:
            raise SeqmodelInputError(
                self.path, f"byte {lo}", f"corrupt or truncated gzip ({error})"
            ) from None


class _GzipBlocks(_BlockSource):
    """A gzip stream (one or more members), inflated in order, `chunk_bytes` out at a time."""

    sequential = True

    def __init__(self, reader: RangeReader, chunk_bytes: int):
        super().__init__(reader)
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
                    self.pending = self.reader.pread(1 << 20, self.position)
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


def _block_source(path: Path | str, chunk_bytes: int) -> _BlockSource:
    """The blocks of a local file (`os.pread`) or a URL (ranged fsspec reads; see `io.remote`)."""
    reader = open_reader(path)
    try:
        if reader.pread(2, 0) != GZIP_MAGIC:
            return _PlainBlocks(reader, chunk_bytes)
        blocks = bgzf_blocks(path, reader)
        if blocks is None:
            return _GzipBlocks(reader, chunk_bytes)
        return _BgzfBlocks(reader, blocks[:, 0], chunk_bytes)
    except BaseException:
        reader.close()
        raise


# --- parsing -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Header:
    text: bytes
    origin: int  # uncompressed byte offset of the '>'


@dataclass(frozen=True)
class _Sequence:
    tokens: np.ndarray
    origin: int  # uncompressed byte offset of the first raw byte
    invalid: int | None = None  # index in `tokens` of the first byte outside the alphabet
    byte: int = 0  # that byte
    byte_offset: int = 0  # and its uncompressed offset in the file

    @property
    def binary(self) -> bool:
        """The bad byte is no printable ASCII: the file is not text at all."""
        return not 0x20 <= self.byte < 0x7F

    @property
    def char(self) -> str:
        return chr(self.byte) if self.byte < 128 else f"\\x{self.byte:02x}"


def _sequence(raw: np.ndarray, origin: int) -> _Sequence:
    tokens = tokenize_sequence(raw)
    if not len(tokens) or int(tokens.max()) <= alphabet.N:
        return _Sequence(tokens, origin)
    invalid = alphabet.first_invalid(tokens)
    at = int(np.flatnonzero(np.take(_TOKEN_LUT, raw) == alphabet.INVALID)[0])
    return _Sequence(tokens, origin, invalid, int(raw[at]), origin + at)


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
        pieces.append(_Header(body[mark + 1 : end].rstrip(), origin + mark))
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
                self._bad_start(piece)
            if piece.invalid is not None:
                position = self.offset + piece.invalid + 1
                if piece.binary:
                    byte = f"byte 0x{piece.byte:02x} at position {position}"
                    message = f"not a text FASTA file (binary content: {byte})"
                else:
                    message = f"character {piece.char!r} at position {position} is not a DNA/IUPAC code"
                raise SeqmodelInputError(self.path, self.where(), message)
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

    def _bad_start(self, piece: _Sequence) -> None:
        """Text before the first header: binary content, or the line where the text starts."""
        if piece.invalid is not None and piece.binary:
            where = f"byte {piece.byte_offset}"
            raise SeqmodelInputError(self.path, where, "not a text FASTA file (binary content)")
        start = piece.origin
        text = self.first_bytes[start:]
        start += len(text) - len(text.lstrip())  # the first byte that is not blank
        line = self.first_bytes[:start].count(b"\n") + 1
        raise SeqmodelInputError(self.path, f"line {line}", "not FASTA: expected a '>' header line")

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


# --- the reader ---------------------------------------------------------------------------------


def read_fasta_chunks(
    path: str | os.PathLike,
    chunk_bytes: int = CHUNK_BYTES,
    runtime: Runtime | None = None,
    prefetch: int = 4,
) -> Iterator[FastaChunk]:
    """Every record of a FASTA file (plain, gzip or BGZF) as `FastaChunk`s, in file order.

    Chunks hold at most about `chunk_bytes` bases. runtime: read blocks on its I/O pool and
    tokenize on its CPU pool, `prefetch` blocks ahead; None: in this thread. With a runtime
    the read-ahead starts at `prefetch` blocks and doubles whenever the next block is not
    read yet when its turn comes (slow storage), up to 64 MiB of blocks and twice the I/O
    pool's `max_size` (at least `prefetch`; a plain gzip stream, read in a chain, keeps
    `prefetch`); a URL's starts at that limit, since every one of its reads waits. Memory
    stays within about ``(read-ahead + 2 * prefetch) * chunk_bytes``,
    at most ``max(64 MiB, prefetch * chunk_bytes) + 2 * prefetch * chunk_bytes``, whatever
    the record lengths.
    Raises SeqmodelInputError naming the file and record (see the module's docstring).
    """
    path = as_input(path)
    source = _block_source(path, chunk_bytes)  # opening it checks the file (one round trip for a URL)
    stitcher = _Stitcher(path)
    parses: deque[Task | list] = deque()
    depth = max(prefetch, 1) if runtime is not None else 1
    try:
        raws = _raw_blocks(source, runtime, prefetch, chunk_bytes, base_name(path))
        for body, line_start, origin in _bodies(raws, path):
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
                        name=f"tokenize {base_name(path)} {origin}-{origin + len(body)}",
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


def read_fasta(
    path: str | os.PathLike, runtime: Runtime | None = None, chunk_bytes: int = CHUNK_BYTES
) -> Iterator[FastaRecord]:
    """Every record of a FASTA file, whole, in file order (see `read_fasta_chunks`)."""
    parts: list[np.ndarray] = []
    for chunk in read_fasta_chunks(path, chunk_bytes, runtime=runtime):
        parts.append(chunk.tokens)
        if chunk.last:
            tokens = parts[0] if len(parts) == 1 else np.concatenate(parts)
            parts = []
            fields = header_fields(chunk.description)
            yield FastaRecord(chunk.record_id, chunk.description, tokens, chunk.record_index, fields)


def load_fasta(path: str | os.PathLike, runtime: Runtime | None = None) -> list[FastaRecord]:
    """All records of a FASTA file in file order."""
    return list(read_fasta(path, runtime))


def load_fasta_tokens(
    path: str | os.PathLike, runtime: Runtime | None = None, chunk_bytes: int = CHUNK_BYTES
) -> FastaTokens:
    """A whole FASTA file as one token array (one byte per base, no per-record copies).

    The array grows in place as chunks arrive (a bytearray: the allocator extends it, so the
    peak stays near one copy of the tokens); runtime: as for `read_fasta_chunks`.
    """
    store = bytearray()
    starts: list[int] = []
    ids: list[str] = []
    descriptions: list[str] = []
    for chunk in read_fasta_chunks(path, chunk_bytes, runtime=runtime):
        if chunk.offset == 0:
            starts.append(len(store))
            ids.append(chunk.record_id)
            descriptions.append(chunk.description)
        store += chunk.tokens.data
    offsets = np.array([*starts, len(store)], dtype=np.int64)
    return FastaTokens(np.frombuffer(store, dtype=np.uint8), offsets, ids, descriptions)


def _pieces(parsed: Task | list) -> list:
    return parsed if isinstance(parsed, list) else parsed.result()


def _drain(tasks) -> None:
    """Cancel tasks not started and wait for running ones (they may still use a file)."""
    for task in list(tasks):
        if not task.cancel():
            task.exception()


def _raw_blocks(
    source: _BlockSource, runtime: Runtime | None, prefetch: int, chunk_bytes: int, name: str
) -> Iterator[bytes]:
    """The source's blocks in order, up to the first empty one of a stream.

    With a runtime, read by I/O tasks, `prefetch` ahead at first and twice as far each time
    the consumer would wait for a block (see `read_fasta_chunks`); a gzip stream's in a chain.
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
    depth = max(prefetch, 1)
    # Twice what the I/O pool can run at once: one round of reads running while the round
    # before waits for the consumer; deeper would only queue. A chained stream's reads run
    # one at a time whatever the depth.
    deepest = max(depth, min(MAX_READ_AHEAD_BYTES // chunk_bytes, 2 * runtime.io.max_size))
    if source.sequential:
        deepest = depth
    elif is_url(source.path):  # every request waits a round trip: start deep, not after waits
        depth = deepest

    def read_ahead() -> None:
        nonlocal index
        while len(inflight) < depth and (source.count is None or index < source.count):
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

    try:
        while True:
            read_ahead()
            if not inflight:
                return
            if depth < deepest and not inflight[0].done():  # the consumer would wait
                depth = min(2 * depth, deepest)
                read_ahead()
            raw = inflight.popleft().result()
            if not raw and source.count is None:
                return
            yield raw
    finally:
        _drain(inflight)
