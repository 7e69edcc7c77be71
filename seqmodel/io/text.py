"""Numbered text lines of a plain, gzip or BGZF file, read in bounded memory.

The compression is found from the file's first bytes (never its name). Text is UTF-8: a bad
byte is an error naming its line; a truncated or corrupt gzip stream is an error naming the
file and the line being read. The line end (LF or CRLF) is removed.
"""

from __future__ import annotations

import gzip
import io
import logging
import os
import zlib
from collections.abc import Iterator
from pathlib import Path

from seqmodel.errors import SeqmodelInputError, require_file
from seqmodel.io.bgzf import GZIP_MAGIC, is_bgzf_header
from seqmodel.io.remote import is_url, open_stream, require_input

log = logging.getLogger(__name__)

# The empty block that ends every BGZF file.
BGZF_EOF = bytes.fromhex("1f8b08040000000000ff0600424302001b0003000000000000000000")
READ_BUFFER = 1 << 20
READ_ERRORS = (EOFError, zlib.error, OSError)  # gzip.BadGzipFile is an OSError


def open_binary(path: str | os.PathLike, what: str = "input file") -> io.BufferedIOBase:
    """`path` (a local path or a URL) opened for reading bytes, gzip / BGZF inflated transparently."""
    if is_url(path):
        handle = open_stream(path, what)
        if handle.peek(2)[:2] == GZIP_MAGIC:
            return gzip.GzipFile(fileobj=handle, mode="rb")
        return handle
    path = require_file(path, what)
    with open(path, "rb") as raw:
        magic = raw.read(18)
        if is_bgzf_header(magic):
            _warn_without_bgzf_eof(path, raw)
    if magic[:2] == GZIP_MAGIC:
        return gzip.open(path, "rb")
    return open(path, "rb", buffering=READ_BUFFER)


def _warn_without_bgzf_eof(path: Path, raw: io.BufferedReader) -> None:
    # htslib's rule: a BGZF file ends with an empty block; without it the file may be cut
    # at a block boundary, which gzip itself cannot see.
    size = raw.seek(0, os.SEEK_END)
    if size >= len(BGZF_EOF):
        raw.seek(size - len(BGZF_EOF))
        if raw.read(len(BGZF_EOF)) != BGZF_EOF:
            log.warning("%s: BGZF file without its end-of-file block; it may be truncated", path)


def first_line(path: str | os.PathLike, limit: int = 4096) -> str:
    """The first line of the file (at most `limit` bytes of it), decoded leniently."""
    path = require_input(path, "input file")
    try:
        with open_binary(path) as handle:
            head = handle.readline(limit)
    except READ_ERRORS as error:
        raise _read_error(path, error, 1) from None
    return head.decode("utf-8", errors="replace").lstrip("\ufeff").rstrip("\r\n")


def _read_error(path: Path, error: BaseException, line: int) -> SeqmodelInputError:
    """A truncated / corrupt gzip stream or a failed read, as an error naming `path` and `line`."""
    if isinstance(error, EOFError):
        return SeqmodelInputError(path, f"line {line}", "the gzip data ends early: the file is truncated")
    if isinstance(error, (zlib.error, gzip.BadGzipFile)):
        return SeqmodelInputError(path, f"line {line}", f"corrupt gzip data ({error})")
    return SeqmodelInputError(path, None, f"cannot read ({getattr(error, 'strerror', None) or error})")


def _failing_line(path: Path, first: int) -> int:
    """The line being read when the data went bad: read again, line by line, from the start of
    the batch (line `first`) that failed."""
    number = 0
    try:
        with open_binary(path) as handle:
            for number, _ in enumerate(handle, start=1):  # noqa: B007 (the count is the answer)
                pass
    except READ_ERRORS:
        return number + 1
    return first


def _decode(path: Path, first: int, batch: list[bytes]) -> list[str]:
    """The lines of `batch` (line `first` onwards) as text, without their line ends."""
    try:
        text = b"".join(batch).decode("utf-8")
    except UnicodeDecodeError:
        for number, raw in enumerate(batch, start=first):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError as error:
                raise SeqmodelInputError(
                    path,
                    f"line {number}",
                    f"not UTF-8 text (byte 0x{raw[error.start]:02x} at column {error.start + 1})",
                ) from None
        raise  # not reached: a line of the batch fails when the batch does
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the batch ends with a line end
    if "\r" in text:
        lines = [line[:-1] if line.endswith("\r") else line for line in lines]
    if first == 1 and lines and lines[0].startswith("\ufeff"):
        lines[0] = lines[0][1:]
    return lines


def line_batches(
    path: str | os.PathLike, what: str = "input file", batch_bytes: int = READ_BUFFER
) -> Iterator[tuple[int, list[str]]]:
    """(1-based number of the first line, lines without their line ends) of about
    `batch_bytes` at a time, for every line of the file; faster than one line at a time.

    A byte-order mark at the start is dropped. Raises SeqmodelInputError for a missing file,
    a line that is not UTF-8, and a truncated or corrupt gzip stream (naming the line being
    read).
    """
    path = require_input(path, what)
    first = 1
    try:
        with open_binary(path, what) as handle:
            while batch := handle.readlines(batch_bytes):
                lines = _decode(path, first, batch)
                yield first, lines
                first += len(lines)
    except READ_ERRORS as error:
        raise _read_error(path, error, _failing_line(path, first)) from None


def numbered_lines(path: str | os.PathLike, what: str = "input file") -> Iterator[tuple[int, str]]:
    """(1-based line number, text without its line end) for every line of the file; see
    `line_batches`."""
    for first, lines in line_batches(path, what):
        yield from enumerate(lines, start=first)
