"""FASTA reading (plain, gzip or BGZF) into validated, tokenized records.

Parsing is Biopython's `SimpleFastaParser`; this module adds format detection, the
alphabet check and errors that name the file and record.
"""

from __future__ import annotations

import gzip
import io
import itertools
import os
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from Bio.SeqIO.FastaIO import SimpleFastaParser

from seqmodel.data import alphabet
from seqmodel.io.bgzf import GZIP_MAGIC
from seqmodel.errors import SeqmodelInputError, require_file

# bedtools getfasta style ids: "chr20:53800000-53900000" (0-based half-open).
REGION_ID = re.compile(r"^(?P<chrom>[^:\s]+):(?P<start>\d+)-(?P<end>\d+)$")


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


def open_text(path: str | os.PathLike) -> io.TextIOBase:
    """Open a plain or gzip/BGZF file as ASCII text (universal newlines, so CRLF is accepted)."""
    path = require_file(path, "input file")
    with open(path, "rb") as handle:
        magic = handle.read(2)
    raw = gzip.open(path, "rb") if magic == GZIP_MAGIC else open(path, "rb")
    return io.TextIOWrapper(raw, encoding="ascii", newline=None)


def header_fields(description: str) -> dict[str, str]:
    """The `key=value` words of a FASTA header line."""
    return dict(word.split("=", 1) for word in description.split()[1:] if "=" in word)


def _checked_start(handle: io.TextIOBase, path: Path) -> Iterator[str]:
    """The lines of `handle`, after checking that the first non-blank one is a '>' header.

    (Biopython silently skips text before the first header.)
    """
    for number, line in enumerate(handle, start=1):
        if line.strip():
            if not line.startswith(">"):
                raise SeqmodelInputError(path, f"line {number}", "not FASTA: expected a '>' header line")
            return itertools.chain([line], handle)
    return iter(())


def read_fasta(path: str | os.PathLike) -> Iterator[FastaRecord]:
    """Yield every record of a FASTA file, validated against the alphabet.

    Raises SeqmodelInputError naming the file and record for: no records, text before the
    first header, an empty record, bytes outside the alphabet, duplicate ids, a truncated
    or corrupt gzip stream, or a binary file.
    """
    path = Path(path)
    seen: set[str] = set()
    count = 0
    try:
        with open_text(path) as handle:
            for index, (title, seq) in enumerate(SimpleFastaParser(_checked_start(handle, path))):
                record_id = title.split(None, 1)[0] if title.strip() else ""
                where = f"record {index + 1} ({record_id or 'no id'})"
                if not record_id:
                    raise SeqmodelInputError(path, where, "header has no sequence id")
                if record_id in seen:
                    raise SeqmodelInputError(path, where, f"duplicate record id {record_id!r}")
                if not seq:
                    raise SeqmodelInputError(path, where, "header with no sequence")
                tokens = alphabet.encode(seq)
                bad = alphabet.first_invalid(tokens)
                if bad is not None:
                    raise SeqmodelInputError(
                        path,
                        where,
                        f"character {seq[bad]!r} at position {bad + 1} is not a DNA/IUPAC code",
                    )
                seen.add(record_id)
                count += 1
                yield FastaRecord(record_id, title, tokens, index, header_fields(title))
    except SeqmodelInputError:
        raise
    except UnicodeDecodeError as error:
        raise SeqmodelInputError(
            path, f"byte {error.start}", "not a text FASTA file (binary content)"
        ) from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise SeqmodelInputError(path, None, f"corrupt or truncated gzip ({error})") from None
    if count == 0:
        raise SeqmodelInputError(path, None, "no FASTA records (expected a '>' header line)")


def load_fasta(path: str | os.PathLike) -> list[FastaRecord]:
    """All records of a FASTA file in file order."""
    return list(read_fasta(path))
