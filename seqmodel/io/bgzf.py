"""gzip and BGZF: format detection, opening as text, the BGZF block index (`.gzi`), inflation.

One place for what the FASTA reader, the indexed genome and the text readers (VCF, BED, TSV,
motif and signature files) share about compressed files.
"""

from __future__ import annotations

import logging
import os
import zlib
from pathlib import Path

import numpy as np

from seqmodel.errors import SeqmodelInputError
from seqmodel.io.remote import RangeReader, as_input, is_input_file, open_reader, sibling

log = logging.getLogger(__name__)

GZIP_MAGIC = b"\x1f\x8b"
BGZF_HEADER_BYTES = 18
BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")  # the empty last block


def is_bgzf_header(header: bytes) -> bool:
    """Whether an 18-byte gzip member header carries the BGZF extra field ('BC')."""
    return (
        len(header) == BGZF_HEADER_BYTES
        and header[:2] == GZIP_MAGIC
        and bool(header[3] & 4)
        and header[12:14] == b"BC"
    )


def file_header(path: str | os.PathLike) -> bytes:
    """The first 18 bytes of a file or URL (fewer when it is shorter): enough to tell plain, gzip and BGZF."""
    with open_reader(path) as reader:
        return reader.pread(BGZF_HEADER_BYTES, 0)


def bgzf_blocks(path: str | os.PathLike, reader: RangeReader | None = None) -> np.ndarray | None:
    """`(B, 2)` int64 rows (compressed offset, uncompressed offset) of every block of a BGZF file.

    From the `.gzi` index beside the file when there is one (checked against the file), else
    by walking the block headers (two small reads per block, nothing inflated). None when the
    file is not BGZF (plain, or a plain gzip stream). path: a local path or URL; reader: an
    open reader of it (else one is opened for the call).
    """
    path = as_input(path)
    own = reader is None
    reader = open_reader(path) if reader is None else reader
    try:
        pread, size = reader.pread, reader.size
        if not is_bgzf_header(pread(BGZF_HEADER_BYTES, 0)):
            return None
        if pread(len(BGZF_EOF), max(size - len(BGZF_EOF), 0)) != BGZF_EOF:
            # htslib's rule: a file cut at a block boundary inflates cleanly, only this shows it.
            log.warning("%s: BGZF file without its end-of-file block; it may be truncated", path)
        gzi = sibling(path, ".gzi")
        if is_input_file(gzi):
            with open_reader(gzi, "BGZF index") as index:
                return _read_gzi(gzi, index.read_all(), reader)
        rows, offset, inflated = [], 0, 0
        while offset < size:
            header = pread(BGZF_HEADER_BYTES, offset)
            if not is_bgzf_header(header):
                raise SeqmodelInputError(path, f"byte {offset}", "corrupt BGZF: expected a block header")
            rows.append((offset, inflated))
            end = offset + int.from_bytes(header[16:18], "little") + 1
            trailer = pread(4, end - 4)  # ISIZE: the block's uncompressed length
            if end > size or len(trailer) < 4:
                break  # cut short: inflating the last block reports it
            inflated += int.from_bytes(trailer, "little")
            offset = end
    finally:
        if own:
            reader.close()
    return np.array(rows, dtype=np.int64).reshape(-1, 2)


def _read_gzi(gzi: Path | str, data: bytes, reader: RangeReader) -> np.ndarray:
    """Rows of a samtools/bgzip `.gzi` (which leaves out the first block, at 0 / 0)."""
    raw = np.frombuffer(data[: len(data) // 8 * 8], dtype="<u8")
    if raw.size < 1 or len(data) % 8 or raw.size != 1 + 2 * int(raw[0]):
        raise SeqmodelInputError(gzi, None, "not a BGZF index (.gzi): wrong size")
    rows = np.vstack([np.zeros((1, 2), dtype=np.int64), raw[1:].reshape(-1, 2).astype(np.int64)])
    last = int(rows[-1, 0])
    if np.any(np.diff(rows, axis=0) < 0) or not (
        last < reader.size and is_bgzf_header(reader.pread(BGZF_HEADER_BYTES, last))
    ):
        raise SeqmodelInputError(gzi, None, "does not match its BGZF file; rebuild it (bgzip -r)")
    return rows


def inflate_members(raw: bytes) -> bytes:
    """Concatenated gzip members, inflated (zlib releases the GIL while it inflates).

    Raises EOFError when the last member is cut short.
    """
    parts = []
    while raw:
        member = zlib.decompressobj(31)
        parts.append(member.decompress(raw))
        if not member.eof:
            raise EOFError("truncated gzip member")
        raw = member.unused_data
    return b"".join(parts)
