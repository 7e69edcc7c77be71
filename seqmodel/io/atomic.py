"""Atomic output files (text, or BGZF for `.gz`): the one writer every text output goes through."""

from __future__ import annotations

import contextlib
import errno
import io
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from Bio import bgzf

from seqmodel.errors import SeqmodelInputError

OUT_OF_SPACE = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
# Uncompressed bytes per BGZF block, as bgzip writes them: even incompressible text fits the
# 64 KiB limit of a compressed block.
BGZF_BLOCK = 0xFF00


@contextlib.contextmanager
def write_errors_name(path: Path) -> Iterator[None]:
    """A full disk (or file size limit) while writing `path` becomes an error naming `path`."""
    try:
        yield
    except OSError as error:
        if error.errno in OUT_OF_SPACE:
            raise SeqmodelInputError(path, None, f"cannot write: {error.strerror}") from None
        raise


class GuardedWriter:
    """A text stream whose write errors name the output file."""

    def __init__(self, stream: io.TextIOBase, path: Path):
        self.stream, self.path = stream, path

    def write(self, text: str) -> int:
        with write_errors_name(self.path):
            return self.stream.write(text)


class _NoClose:
    """The temporary file as BgzfWriter sees it: its close() only flushes (the file is then
    fsynced and renamed)."""

    mode = "wb"

    def __init__(self, raw: io.BufferedWriter):
        self.raw = raw

    def write(self, data: bytes) -> int:
        return self.raw.write(data)

    def flush(self) -> None:
        self.raw.flush()

    def tell(self) -> int:
        return self.raw.tell()

    def fileno(self) -> int:
        return self.raw.fileno()

    def close(self) -> None:
        self.raw.flush()


class _Sink(io.RawIOBase):
    """Bytes to the file, plain or as BGZF blocks of `BGZF_BLOCK` bytes; after `abort`, writes
    go nowhere (so closing the text layers of a failed file cannot fail again)."""

    def __init__(self, raw: io.BufferedWriter, bgzf_writer: bgzf.BgzfWriter | None):
        self.raw, self.bgzf, self.aborted = raw, bgzf_writer, False
        self.pending = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        size = len(data)
        if self.aborted:
            return size
        if self.bgzf is None:
            self.raw.write(data)
            return size
        self.pending += data
        if len(self.pending) >= BGZF_BLOCK:
            full = len(self.pending) - len(self.pending) % BGZF_BLOCK
            for start in range(0, full, BGZF_BLOCK):
                # BgzfWriter holds it (under its 64 KiB limit); flush() makes it one block.
                self.bgzf.write(bytes(self.pending[start : start + BGZF_BLOCK]))
                self.bgzf.flush()
            del self.pending[:full]
        return size

    def close_bgzf(self) -> None:
        """The last block and BGZF's empty end-of-file block."""
        if self.pending:
            self.bgzf.write(bytes(self.pending))
            self.pending.clear()
        self.bgzf.close()  # leaves the file open (see _NoClose)


class _AtomicFile:
    """One output: a temporary file beside `path`, renamed over it by `commit`."""

    def __init__(self, path: str | os.PathLike):
        self.path = path = Path(path)
        if path.is_dir():
            raise SeqmodelInputError(path, None, "output path is a directory")
        if not path.parent.is_dir():
            raise SeqmodelInputError(path, None, f"output directory {path.parent} does not exist")
        fd, self.tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        self.raw = os.fdopen(fd, "wb")
        # Level 6 (gzip's default): level 9 costs three times the CPU for 2 % smaller tracks.
        writer = (
            bgzf.BgzfWriter(fileobj=_NoClose(self.raw), compresslevel=6)
            if path.name.endswith(".gz")
            else None
        )
        self.sink = _Sink(self.raw, writer)
        self.text = io.TextIOWrapper(io.BufferedWriter(self.sink, BGZF_BLOCK), encoding="utf-8", newline="\n")
        self.writer = GuardedWriter(self.text, path)

    def finish(self) -> None:
        """Flush every layer (BGZF: the last block and the end-of-file block) and fsync."""
        with write_errors_name(self.path):
            self.text.flush()
            self.text.detach().flush()
            if self.sink.bgzf is not None:
                self.sink.close_bgzf()
            self.raw.flush()
            os.fsync(self.raw.fileno())
            self.raw.close()

    def commit(self) -> None:
        os.chmod(self.tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual mode
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        self.sink.aborted = True
        with contextlib.suppress(Exception):
            self.text.close()
        with contextlib.suppress(Exception):
            self.raw.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.tmp)


@contextlib.contextmanager
def atomic_texts(paths: Sequence[str | os.PathLike]) -> Iterator[list[GuardedWriter]]:
    """Text writers for several outputs, all renamed into place only when all were written.

    Each output goes to a temporary file beside it; a failure (or kill) leaves none of them at
    their paths. `.gz` paths are BGZF (gzip readable, `tabix` indexable); text is UTF-8, lines
    end in LF; a full disk is an error naming the file.
    """
    files: list[_AtomicFile] = []
    try:
        for path in paths:
            files.append(_AtomicFile(path))
        yield [f.writer for f in files]
        for f in files:
            f.finish()
        for f in files:
            f.commit()
    except BaseException:
        for f in files:
            f.abort()
        raise


@contextlib.contextmanager
def atomic_text(path: str | os.PathLike) -> Iterator[GuardedWriter]:
    """Write text to a temporary file beside `path`, renamed over it only on success.

    A failure (or kill) leaves no file at `path`; `.gz` paths are BGZF-compressed.
    """
    with atomic_texts([path]) as (writer,):
        yield writer


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside `path` for a writer that wants a file name (a PNG, an archive);
    fsynced and renamed over `path` only when the block succeeds, removed otherwise."""
    path = Path(path)
    if path.is_dir():
        raise SeqmodelInputError(path, None, "output path is a directory")
    if not path.parent.is_dir():
        raise SeqmodelInputError(path, None, f"output directory {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with write_errors_name(path):
            yield Path(tmp)
            with open(tmp, "rb+") as written:
                os.fsync(written.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def sequence_table_header(classes: Sequence[str]) -> str:
    return "\t".join(["id", "length"] + [f"p_{name}" for name in classes]) + "\n"


def sequence_table_row(record_id: str, length: int, probabilities: np.ndarray) -> str:
    return "\t".join([record_id, str(length)] + [f"{p:.6g}" for p in probabilities]) + "\n"
