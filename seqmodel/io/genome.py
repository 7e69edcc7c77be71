"""A reference genome, read one chromosome at a time.

With a samtools index beside the file (`genome.fa.fai`, plus `genome.fa.gz.gzi` for BGZF) a
chromosome is read straight from its offset; without one (or for plain gzip) the file is read
once, whole. Chromosome names match with or without a `chr` prefix (`chr20` = `20`,
`chrM` = `MT`), since genomes, VCFs and peak files disagree on it.
"""

from __future__ import annotations

import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seqmodel.errors import SeqmodelInputError
from seqmodel.io import alphabet
from seqmodel.io.bgzf import GZIP_MAGIC, bgzf_blocks, file_header, inflate_members, is_bgzf_header
from seqmodel.io.fasta import read_fasta, tokenize_sequence
from seqmodel.io.remote import is_input_file, open_reader, require_input, sibling


def chrom_key(name: str) -> str:
    """The name a chromosome is matched by: without a `chr` prefix, `M` spelt `MT`."""
    key = name[3:] if name.lower().startswith("chr") else name
    return "MT" if key == "M" else key


@dataclass(frozen=True)
class FaiEntry:
    """One `.fai` line: `offset` is the byte offset of the first base in the uncompressed file."""

    length: int
    offset: int
    line_bases: int
    line_bytes: int

    @property
    def span(self) -> int:
        """Uncompressed bytes from the first to the last base (line ends included)."""
        full, rest = divmod(self.length, self.line_bases)
        return full * self.line_bytes + rest


def read_fai(path: Path | str) -> dict[str, FaiEntry]:
    """name -> FaiEntry from a samtools `.fai` index (a local path or a URL)."""
    entries = {}
    with open_reader(path, "FASTA index") as reader:
        text = reader.read_all().decode("ascii", errors="replace")
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.rstrip("\n").split("\t")
        try:
            length, offset, line_bases, line_bytes = (int(f) for f in fields[1:5])
        except ValueError:
            raise SeqmodelInputError(
                path, f"line {number}", "expected 'name length offset linebases linebytes'"
            ) from None
        if len(fields) < 5 or line_bases < 1 or line_bytes < line_bases:
            raise SeqmodelInputError(path, f"line {number}", "not a FASTA index (.fai) line")
        entries[fields[0]] = FaiEntry(length, offset, line_bases, line_bytes)
    return entries


class Genome:
    """Chromosomes of a FASTA file as token arrays `(L,)` uint8; the last one read is kept."""

    def __init__(self, path: str | os.PathLike):
        self.path = require_input(path, "genome FASTA")
        fai = sibling(self.path, ".fai")
        header = file_header(self.path)
        compressed = header[:2] == GZIP_MAGIC
        self.bgzf = is_bgzf_header(header)
        self.index: dict[str, FaiEntry] | None = None
        self._records: dict[str, np.ndarray] = {}
        if is_input_file(fai) and (self.bgzf or not compressed):
            self.index = read_fai(fai)
            self.lengths = {name: entry.length for name, entry in self.index.items()}
            self._blocks = bgzf_blocks(self.path) if self.bgzf else None
        else:
            self._records = {record.id: record.tokens for record in read_fasta(self.path)}
            self.lengths = {name: len(tokens) for name, tokens in self._records.items()}
        self._by_key = {chrom_key(name): name for name in self.lengths}
        self._cached: tuple[str, np.ndarray] | None = None

    def resolve(self, chrom: str) -> str | None:
        """The genome's own name for `chrom` (see `chrom_key`), or None."""
        return chrom if chrom in self.lengths else self._by_key.get(chrom_key(chrom))

    def _read_indexed(self, name: str) -> bytes:
        entry = self.index[name]
        with open_reader(self.path, "genome FASTA") as reader:
            if not self.bgzf:
                return reader.pread(entry.span, entry.offset)
            # The BGZF blocks holding the chromosome are whole gzip members: inflate them in one call.
            starts = self._blocks[:, 1]
            first = int(np.searchsorted(starts, entry.offset, side="right")) - 1
            last = int(np.searchsorted(starts, entry.offset + entry.span, side="left"))
            begin = int(self._blocks[first, 0])
            end = int(self._blocks[last, 0]) if last < len(starts) else reader.size
            raw = reader.pread(end - begin, begin)
        skip = entry.offset - int(starts[first])
        return inflate_members(raw)[skip : skip + entry.span]

    def sequence(self, chrom: str) -> np.ndarray:
        """Token ids `(L,)` uint8 of a whole chromosome (any spelling `resolve` accepts)."""
        name = self.resolve(chrom)
        if name is None:
            known = ", ".join(list(self.lengths)[:10])
            raise SeqmodelInputError(self.path, None, f"no chromosome {chrom!r} (has: {known})")
        if name in self._records:
            return self._records[name]
        if self._cached is not None and self._cached[0] == name:
            return self._cached[1]
        try:
            raw = self._read_indexed(name)
        except (OSError, ValueError, EOFError, zlib.error) as error:
            raise SeqmodelInputError(self.path, name, f"cannot read the indexed sequence ({error})") from None
        tokens = tokenize_sequence(np.frombuffer(raw, dtype=np.uint8))  # a '>' is invalid too
        if len(tokens) != self.lengths[name] or alphabet.first_invalid(tokens) is not None:
            raise SeqmodelInputError(
                self.path, name, "the .fai index does not match the file; rebuild it (samtools faidx)"
            )
        self._cached = (name, tokens)
        return tokens

    def fetch(self, chrom: str, start: int, end: int) -> np.ndarray:
        """Tokens of `[start, end)` (0-based half-open) on `chrom`; the interval must lie inside."""
        tokens = self.sequence(chrom)
        if not 0 <= start < end <= len(tokens):
            raise SeqmodelInputError(
                self.path, chrom, f"interval {start}-{end} is outside the chromosome (length {len(tokens)})"
            )
        return tokens[start:end]
