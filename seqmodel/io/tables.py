"""Two small tab-separated inputs: a table of calls (SNVs) and a table of sequence labels.

Calls: a header naming the columns `chrom` (or `chr`, `chromosome`, `#chrom`), `pos` (or
`pos_1based`, `position`; 1-based), `ref` and `alt`, other columns ignored; one call per line.
Calls that are not single-base substitutions, or hold N / a missing allele, are skipped and
counted; other alleles that are not bases, and ALT == REF, are errors.

Labels: `id<TAB>label` lines (an `id<TAB>label` header line is allowed), or a BED whose 4th
column is the label and whose interval names the record `chrom:start-end`. The first data
line decides which.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from seqmodel.errors import SeqmodelInputError
from seqmodel.io.bed import read_bed
from seqmodel.io.remote import as_input
from seqmodel.io.text import numbered_lines
from seqmodel.io.vcf import Snv

log = logging.getLogger(__name__)

BASES = frozenset("ACGT")
CALL_COLUMNS = {
    "chrom": ("chrom", "chr", "chromosome", "#chrom"),
    "pos": ("pos", "pos_1based", "position"),
    "ref": ("ref",),
    "alt": ("alt",),
}
NOT_SNV = "not a single-base substitution"
N_ALLELE = "N or missing allele"


def _call_columns(path: Path, number: int, header: list[str]) -> dict[str, int]:
    names = [name.strip().lower() for name in header]
    columns = {}
    for key, aliases in CALL_COLUMNS.items():
        found = [names.index(alias) for alias in aliases if alias in names]
        if not found:
            raise SeqmodelInputError(
                path,
                f"line {number}",
                f"no {key!r} column in the header (need chrom, pos or pos_1based, ref, alt; got {header})",
            )
        columns[key] = found[0]
    return columns


class CallsReader:
    """The SNVs of a table of calls (`carriers` 1 each, `genomes` None), one pass per iteration;
    afterwards `skipped` counts the calls left out by reason."""

    def __init__(self, path: str | os.PathLike):
        self.path = as_input(path)
        self.skipped: Counter = Counter()
        self.snvs = 0

    def __iter__(self) -> Iterator[Snv]:
        return self._read()

    def _read(self) -> Iterator[Snv]:
        path = self.path
        self.skipped = skipped = Counter()
        self.snvs = 0
        columns: dict[str, int] | None = None
        for number, text in numbered_lines(path, "calls file"):
            if not text.strip():
                continue
            fields = text.split("\t")
            if columns is None:
                columns = _call_columns(path, number, fields)
                width = max(columns.values()) + 1
                continue
            where = f"line {number}"
            if len(fields) < width:
                raise SeqmodelInputError(path, where, f"{len(fields)} columns, fewer than the header")
            pos_text = fields[columns["pos"]].strip()
            if not (pos_text.isascii() and pos_text.lstrip("-").isdigit()) or len(pos_text) > 18:
                raise SeqmodelInputError(path, where, f"position {pos_text[:40]!r} is not an integer")
            pos = int(pos_text)
            if pos < 1:
                raise SeqmodelInputError(path, where, f"position {pos} must be >= 1 (1-based)")
            ref = fields[columns["ref"]].strip().upper()
            alt = fields[columns["alt"]].strip().upper()
            if len(ref) != 1 or len(alt) != 1:
                skipped[NOT_SNV] += 1
            elif ref not in BASES | {"N"} or alt not in BASES | {"N", "*", "."}:
                raise SeqmodelInputError(path, where, f"REF {ref!r} / ALT {alt!r} are not bases")
            elif ref == "N" or alt not in BASES:
                skipped[N_ALLELE] += 1
            elif ref == alt:
                raise SeqmodelInputError(path, where, f"ALT {alt} equals REF")
            else:
                self.snvs += 1
                yield Snv(fields[columns["chrom"]], pos - 1, ref, alt, 1, None, number)
        if columns is None:
            raise SeqmodelInputError(path, None, "empty file: expected a header line then one call per line")
        reasons = ", ".join(f"{n} {why}" for why, n in sorted(skipped.items())) or "none"
        log.info("%s: %d SNVs read; calls skipped: %s", path, self.snvs, reasons)


@dataclass(frozen=True, slots=True)
class LabelRow:
    """A record id (`chrom:start-end` for a BED row), its label and the 1-based line."""

    key: str
    label: str
    line: int


def read_labels(path: str | os.PathLike) -> Iterator[LabelRow]:
    """The rows of a labels file: `id<TAB>label` lines, or a BED with the label in column 4
    (when the first data line has 4 or more columns)."""
    path = as_input(path)
    first = next(_label_lines(path), None)
    if first is not None and len(first[1]) >= 4:
        for interval in read_bed(path, "labels file"):
            if interval.name is None:
                raise SeqmodelInputError(
                    path,
                    f"line {interval.line}",
                    "expected a label in the 4th column (chrom start end label)",
                )
            yield LabelRow(f"{interval.chrom}:{interval.start}-{interval.end}", interval.name, interval.line)
        return
    for number, fields in _label_lines(path):
        if len(fields) != 2:
            raise SeqmodelInputError(
                path, f"line {number}", "expected 'id<TAB>label' or 'chrom<TAB>start<TAB>end<TAB>label'"
            )
        key, label = fields[0], fields[1].strip()
        if not (number == 1 and key == "id" and label == "label"):
            yield LabelRow(key, label, number)


def _label_lines(path: Path) -> Iterator[tuple[int, list[str]]]:
    for number, text in numbered_lines(path, "labels file"):
        if text.strip() and not text.startswith("#"):
            yield number, text.split("\t")
