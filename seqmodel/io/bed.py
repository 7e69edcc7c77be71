"""BED and bedGraph: the package's one reader of each (plain, gzip or BGZF; streamed).

Both are tab-separated and 0-based half-open: `start >= 0` and `end > start` are checked.
Blank lines and `track`, `browser` and `#` lines are skipped. Every error names the file and
the line.

| format | columns | yields |
|---|---|---|
| BED | `chrom start end [name ...]` | `BedInterval` (name: the 4th column, None when absent or empty) |
| bedGraph | `chrom start end value` | `BedGraphRow` (value: a float) |
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from seqmodel.errors import SeqmodelInputError
from seqmodel.io.remote import as_input
from seqmodel.io.text import numbered_lines

SKIPPED_PREFIXES = ("#", "track", "browser")


@dataclass(frozen=True, slots=True)
class BedInterval:
    """`[start, end)` 0-based on `chrom`; `name` the 4th column; `line` 1-based."""

    chrom: str
    start: int
    end: int
    name: str | None
    line: int


@dataclass(frozen=True, slots=True)
class BedGraphRow:
    """`value` over `[start, end)` 0-based on `chrom`; `line` 1-based."""

    chrom: str
    start: int
    end: int
    value: float
    line: int


def _integer(path: Path, number: int, what: str, text: str) -> int:
    digits = text[1:] if text.startswith("-") else text
    if not (digits.isascii() and digits.isdigit()):
        raise SeqmodelInputError(path, f"line {number}", f"{what} {text[:40]!r} is not an integer")
    if len(digits) > 18:
        raise SeqmodelInputError(path, f"line {number}", f"{what} {text[:40]}... is too large")
    return int(text)


def _fields(
    path: Path, what: str, kind: str, columns: int, expected: str
) -> Iterator[tuple[int, list[str], int, int]]:
    """(line, fields, start, end) of each data line with at least `columns` fields, checked."""
    for number, text in numbered_lines(path, what):
        if not text.strip() or text.startswith(SKIPPED_PREFIXES):
            continue
        fields = text.split("\t")
        if len(fields) < columns:
            raise SeqmodelInputError(path, f"line {number}", f"expected {expected}, got {len(fields)}")
        start = _integer(path, number, "start", fields[1])
        end = _integer(path, number, "end", fields[2])
        if start < 0 or end <= start:
            raise SeqmodelInputError(
                path,
                f"line {number}",
                f"need 0 <= start < end ({kind} is 0-based half-open), got {start}-{end}",
            )
        if not fields[0]:
            raise SeqmodelInputError(path, f"line {number}", "chrom is empty")
        yield number, fields, start, end


def read_bed(path: str | os.PathLike, what: str = "BED file") -> Iterator[BedInterval]:
    """Every interval of a BED file, in file order."""
    path = as_input(path)
    for number, fields, start, end in _fields(path, what, "BED", 3, ">= 3 tab-separated BED columns"):
        name = fields[3].strip() if len(fields) > 3 else ""
        yield BedInterval(fields[0], start, end, name or None, number)


def read_bedgraph(path: str | os.PathLike, what: str = "bedGraph file") -> Iterator[BedGraphRow]:
    """Every row of a bedGraph file, in file order."""
    path = as_input(path)
    for number, fields, start, end in _fields(
        path, what, "bedGraph", 4, "4 tab-separated bedGraph columns (chrom start end value)"
    ):
        try:
            value = float(fields[3])
        except ValueError:
            raise SeqmodelInputError(path, f"line {number}", f"value {fields[3]!r} is not a number") from None
        yield BedGraphRow(fields[0], start, end, value, number)
