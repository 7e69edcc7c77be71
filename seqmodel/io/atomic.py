"""Atomic output files: per-base tracks (bedGraph) and the per-sequence table."""

from __future__ import annotations

import contextlib
import errno
import gzip
import io
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from seqmodel.errors import SeqmodelInputError

OUT_OF_SPACE = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)


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


@contextlib.contextmanager
def atomic_text(path: str | os.PathLike) -> Iterator[io.TextIOBase]:
    """Write text to a temporary file beside `path`, renamed over it only on success.

    A failure (or kill) leaves no file at `path`; `.gz` paths are gzip-compressed.
    """
    path = Path(path)
    if path.is_dir():
        raise SeqmodelInputError(path, None, "output path is a directory")
    if not path.parent.is_dir():
        raise SeqmodelInputError(path, None, f"output directory {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as raw:
            # Level 6 (gzip's default): level 9 costs three times the CPU for 2 % smaller tracks.
            gzipped = path.name.endswith(".gz")
            binary = gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, compresslevel=6) if gzipped else raw
            text = io.TextIOWrapper(binary, encoding="ascii", newline="\n")
            yield GuardedWriter(text, path)
            with write_errors_name(path):
                text.flush()
                text.detach()
                if binary is not raw:
                    binary.close()  # writes the gzip trailer; leaves `raw` open
                raw.flush()
                os.fsync(raw.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get the usual mode
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
