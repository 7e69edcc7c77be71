"""Per-base targets of FASTA records from mutation sites (VCF or BED) and from a bedGraph track.

The files are read by `seqmodel.io` (`io.vcf`, `io.bed`): a VCF is recognised by its first
line, anything else is read as BED. VCF sites are its SNVs (see `io.vcf` for what is kept and
what is skipped), with POS 1-based; BED and bedGraph are 0-based half-open. Every file names
sites by chrom; `RecordLocator` maps them onto the records.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from seqmodel.data.intervals import RecordLocator
from seqmodel.errors import SeqmodelInputError
from seqmodel.io import alphabet
from seqmodel.io.bed import read_bed, read_bedgraph
from seqmodel.io.fasta import FastaRecord
from seqmodel.io.remote import as_input
from seqmodel.io.vcf import VcfReader, is_vcf, named_vcf

log = logging.getLogger(__name__)


class _Sites:
    """(line, chrom, start, end, ref or None, carriers) of every site of a VCF (its SNVs) or BED
    (its intervals, 1 carrier each); `genomes` is the first VCF SNV's, once read."""

    def __init__(self, path: Path):
        self.path = path
        # The name only picks the error: a `.vcf` without the VCF header is not read as BED.
        self.vcf = is_vcf(path) or named_vcf(path)
        self.genomes: int | None = None

    def __iter__(self) -> Iterator[tuple[int, str, int, int, str | None, int]]:
        if not self.vcf:
            for interval in read_bed(self.path, "mutations file"):
                yield interval.line, interval.chrom, interval.start, interval.end, None, 1
            return
        first = True
        for snv in VcfReader(self.path):
            if first:
                self.genomes, first = snv.genomes, False
            yield snv.line, snv.chrom, snv.pos, snv.pos + 1, snv.ref, snv.carriers


def _check_chroms(path: Path, unknown: dict[str, int], mapped: int) -> None:
    if mapped == 0:
        names = ", ".join(sorted(unknown)[:5]) or "none"
        raise SeqmodelInputError(
            path,
            None,
            f"no site falls on any FASTA record (chroms seen: {names}); wrong file or genome?",
        )
    if unknown:
        log.info("%s: %d sites on chroms without records skipped", path, sum(unknown.values()))


def _site_values(
    path: Path, records: Sequence[FastaRecord], counts: bool
) -> tuple[list[np.ndarray], int | None]:
    """Per record `(L,)` float32: 1 where a site falls, or (`counts`) the carriers summed."""
    locator = RecordLocator(records)
    values = [np.zeros(len(record), dtype=np.float32) for record in records]
    unknown: dict[str, int] = {}
    mapped = 0
    sites = _Sites(path)
    for number, chrom, start, end, ref, carriers in sites:
        if not locator.knows(chrom):
            unknown[chrom] = unknown.get(chrom, 0) + 1
            continue
        hits = locator.locate(chrom, start, end)
        if chrom in locator.by_id and not hits:
            length = len(records[locator.by_id[chrom]])
            raise SeqmodelInputError(
                path,
                f"line {number}",
                f"position {start + 1} is past the end of {chrom} (length {length})",
            )
        for index, local_start, local_end in hits:
            mapped += 1
            if ref is not None and local_end - local_start == len(ref):
                seen = alphabet.decode(records[index].tokens[local_start:local_end])
                if any(r != s and r != "N" and s != "N" for r, s in zip(ref, seen, strict=True)):
                    raise SeqmodelInputError(
                        path,
                        f"line {number}",
                        f"REF {ref} does not match the sequence {seen} of record {records[index].id}",
                    )
            if counts:
                values[index][local_start:local_end] += carriers
            else:
                values[index][local_start:local_end] = 1.0
    _check_chroms(path, unknown, mapped)
    return values, sites.genomes


def mutation_targets(path: str | os.PathLike, records: Sequence[FastaRecord]) -> list[np.ndarray]:
    """Binary per-base targets `(L,)` float32 per record: 1 where a VCF SNV / BED site falls.

    A VCF REF that does not match the record raises SeqmodelInputError naming the line.
    """
    return _site_values(as_input(path), records, counts=False)[0]


def mutation_counts(
    path: str | os.PathLike, records: Sequence[FastaRecord]
) -> tuple[list[np.ndarray], int | None]:
    """Carrier counts `(L,)` float32 per record, and the genomes they are out of.

    Each VCF SNV adds its carriers (`AC`, else genotypes, else 1) at its base, so repeated
    lines of a site (and its several ALT alleles) add up; each BED interval adds 1 over its
    bases. Genomes: the first SNV's (`AN`, else its sample columns); None for a BED or when
    the VCF does not say (the caller supplies its default).
    """
    return _site_values(as_input(path), records, counts=True)


def track_values(path: str | os.PathLike, records: Sequence[FastaRecord]) -> list[np.ndarray]:
    """Per-base values `(L,)` float32 per record from a bedGraph; NaN where the track is silent."""
    path = as_input(path)
    locator = RecordLocator(records)
    values = [np.full(len(record), np.nan, dtype=np.float32) for record in records]
    unknown: dict[str, int] = {}
    mapped = 0
    for row in read_bedgraph(path, "track file"):
        if not locator.knows(row.chrom):
            unknown[row.chrom] = unknown.get(row.chrom, 0) + 1
            continue
        for index, local_start, local_end in locator.locate(row.chrom, row.start, row.end):
            mapped += 1
            values[index][local_start:local_end] = row.value
    _check_chroms(path, unknown, mapped)
    return values
