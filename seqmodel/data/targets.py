"""Per-base targets from standard files: VCF or BED of mutation sites, or a bedGraph track.

Coordinate conventions: VCF POS is 1-based; BED and bedGraph are 0-based half-open. Every
file names sites by chrom; `RecordLocator` maps them onto FASTA records.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from seqmodel.data import alphabet
from seqmodel.io.fasta import FastaRecord, open_text
from seqmodel.data.intervals import RecordLocator
from seqmodel.errors import SeqmodelInputError

log = logging.getLogger(__name__)


def _data_lines(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(1-based line number, tab-split fields) of every non-header, non-empty line."""
    try:
        with open_text(path) as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip() or line.startswith(("#", "track", "browser")):
                    continue
                yield number, line.rstrip("\n").split("\t")
    except UnicodeDecodeError:
        raise SeqmodelInputError(path, None, "not a text file (binary content)") from None
    except (EOFError, OSError) as error:
        if isinstance(error, SeqmodelInputError):
            raise
        raise SeqmodelInputError(path, None, f"cannot read ({error})") from None


def _int(path: Path, number: int, text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise SeqmodelInputError(path, f"line {number}", f"{what} {text!r} is not an integer") from None


def read_sites(path: Path) -> Iterator[tuple[int, str, int, int, str | None]]:
    """(line, chrom, start, end, ref) in 0-based half-open coordinates from a VCF or BED."""
    is_vcf = path.name.endswith((".vcf", ".vcf.gz"))
    for number, fields in _data_lines(path):
        if is_vcf:
            if len(fields) < 5:
                raise SeqmodelInputError(
                    path,
                    f"line {number}",
                    f"expected >= 5 tab-separated VCF columns, got {len(fields)}",
                )
            pos = _int(path, number, fields[1], "POS")
            if pos < 1:
                raise SeqmodelInputError(path, f"line {number}", f"POS {pos} must be >= 1 (VCF is 1-based)")
            ref = fields[3].upper()
            yield number, fields[0], pos - 1, pos - 1 + len(ref), ref
        else:
            if len(fields) < 3:
                raise SeqmodelInputError(
                    path,
                    f"line {number}",
                    f"expected >= 3 tab-separated BED columns, got {len(fields)}",
                )
            start = _int(path, number, fields[1], "start")
            end = _int(path, number, fields[2], "end")
            if start < 0 or end <= start:
                raise SeqmodelInputError(
                    path,
                    f"line {number}",
                    f"need 0 <= start < end (BED is 0-based half-open), got {start}-{end}",
                )
            yield number, fields[0], start, end, None


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


def mutation_targets(path: str | os.PathLike, records: Sequence[FastaRecord]) -> list[np.ndarray]:
    """Binary per-base targets `(L,)` float32 per record: 1 where a VCF / BED site falls.

    A VCF REF that does not match the record raises SeqmodelInputError naming the line.
    """
    path = Path(path)
    locator = RecordLocator(records)
    targets = [np.zeros(len(record), dtype=np.float32) for record in records]
    unknown: dict[str, int] = {}
    mapped = 0
    for number, chrom, start, end, ref in read_sites(path):
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
            targets[index][local_start:local_end] = 1.0
    _check_chroms(path, unknown, mapped)
    return targets


def track_values(path: str | os.PathLike, records: Sequence[FastaRecord]) -> list[np.ndarray]:
    """Per-base values `(L,)` float32 per record from a bedGraph; NaN where the track is silent."""
    path = Path(path)
    locator = RecordLocator(records)
    values = [np.full(len(record), np.nan, dtype=np.float32) for record in records]
    unknown: dict[str, int] = {}
    mapped = 0
    for number, fields in _data_lines(path):
        if len(fields) < 4:
            raise SeqmodelInputError(
                path,
                f"line {number}",
                f"expected 4 bedGraph columns (chrom start end value), got {len(fields)}",
            )
        chrom = fields[0]
        start = _int(path, number, fields[1], "start")
        end = _int(path, number, fields[2], "end")
        if start < 0 or end <= start:
            raise SeqmodelInputError(path, f"line {number}", f"need 0 <= start < end, got {start}-{end}")
        try:
            value = float(fields[3])
        except ValueError:
            raise SeqmodelInputError(path, f"line {number}", f"value {fields[3]!r} is not a number") from None
        if not locator.knows(chrom):
            unknown[chrom] = unknown.get(chrom, 0) + 1
            continue
        for index, local_start, local_end in locator.locate(chrom, start, end):
            mapped += 1
            values[index][local_start:local_end] = value
    _check_chroms(path, unknown, mapped)
    return values
