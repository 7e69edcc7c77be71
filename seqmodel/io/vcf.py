"""VCF: the package's one reader (single-base substitutions, streamed) and one writer.

Reading
-------
A file is a VCF when its first line starts with `##fileformat=VCF`, whatever its name;
plain, gzip and BGZF are read alike, in bounded memory (about 1 MB of lines at a time), each
line decoded as UTF-8. `POS` is 1-based; `Snv.pos` is 0-based.

Accepted: any `##` meta lines; records on contigs without a `##contig` line; `.` in QUAL,
FILTER, INFO and FORMAT; per-sample fields that differ from FORMAT's list (trailing ones
dropped); genotypes `0/1`, `0|1`, `1`, `./.`, `.`; CRLF line ends; a `#CHROM` header line
with or without FORMAT and samples (a missing one is tolerated). Errors (SeqmodelInputError,
one line naming file and line): a first line that is not `##fileformat=VCF...`, a `#CHROM`
line or a record with fewer than the 8 fixed columns, an empty CHROM, a `POS` that is not an
integer >= 1, an `AC` / `AN` that is
not a count (or an `AC` whose number of values is not the number of ALT alleles), a line
that is not UTF-8, truncated or corrupt gzip data.

Policy:

- Multi-allelic records are split: each ALT allele is judged on its own (its carriers too).
- An SNV is a REF and an ALT that are single bases, A/C/G/T (lowercase read as uppercase),
  ALT != REF. A REF and ALT of equal length that differ at exactly one base (the padded
  form of multi-allelic records, e.g. `CA>TA` next to `CA>C`) are that one-base SNV, at its
  own position: the SNVs `bcftools view -v snps` reports after `bcftools norm -m-`.
- Every other allele is skipped and counted, by reason: `indel` (lengths differ), `MNP`
  (equal lengths, two or more bases differ), `symbolic` (`<DEL>`, `<*>`, `<NON_REF>`, ...),
  `* allele` (overlapping deletion), `breakend`, `ALT=.`, `IUPAC/N REF` (N or an ambiguity
  code, or any other non-base letter), `IUPAC/N ALT`, `ALT equals REF`.
- FILTER: records with `PASS` or `.` are kept; the others only with `keep_filtered=True`
  (else each of their SNVs is counted as skipped, reason `filtered`).
- Carriers of an SNV: the record's `AC` value for that ALT (AC is Number=A); where there is
  none (no AC, or `.`), the number of samples whose GT holds that ALT's allele index; where
  there are no genotypes, 1 per record.
- Genomes: counted in the same unit as the carriers, so that carriers / genomes is a rate.
  Carriers from `AC` (alleles): the record's `AN`, else the alleles called in GT, else None.
  Carriers from GT (samples): the number of sample columns. One per record: the record's `AN`,
  else the number of sample columns, else None (the caller supplies a default).

At the end of each pass the skip counts are logged (INFO, with the file name) and kept in
`VcfReader.skipped`.

Writing
-------
`write_vcf`: VCF 4.2 (or 4.3) of SNVs, one line per (site, ALT), `INFO=AC=<carriers>` (and
`;AN=<genomes>` when known, then any further INFO fields declared with `InfoField`s), sorted by
contig name (byte order), POS, ALT; written through `atomic_text`, so a `.vcf.gz` is BGZF and can
be indexed with `tabix -p vcf`. With `sort=False` the rows are streamed in the order given
(bounded memory; sorted output then needs sorted rows).
"""

from __future__ import annotations

import itertools
import logging
import os
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, TextIO

from seqmodel.errors import SeqmodelInputError
from seqmodel.io.atomic import atomic_text
from seqmodel.io.remote import as_input
from seqmodel.io.text import first_line, line_batches

log = logging.getLogger(__name__)

VCF_MAGIC = "##fileformat=VCF"
VCF_SUFFIXES = (".vcf", ".vcf.gz", ".vcf.bgz")
FIXED_COLUMNS = ("#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO")
BASES = frozenset("ACGT")
VERSIONS = ("4.2", "4.3")
DEFAULT_AC = "Carriers of the ALT allele"
DEFAULT_AN = "Genomes"
WRITE_BATCH = 8192  # lines joined per write call
MAX_DIGITS = 18  # of an integer field: below 2**63
INFO_ID = re.compile(r"[A-Za-z_][0-9A-Za-z_.]*")  # a VCF INFO key
INFO_TYPES = ("Integer", "Float", "Flag", "Character", "String")

# Reasons an ALT allele is not an SNV (keys of VcfReader.skipped).
INDEL = "indel"
MNP = "MNP"
SYMBOLIC = "symbolic"
STAR = "* allele"
BREAKEND = "breakend"
NO_ALT = "ALT=."
REF_NOT_BASE = "IUPAC/N REF"
ALT_NOT_BASE = "IUPAC/N ALT"
SAME = "ALT equals REF"
FILTERED = "filtered"


@dataclass(frozen=True, slots=True)
class Snv:
    """One single-base substitution: `pos` 0-based, `ref` / `alt` uppercase A/C/G/T, `carriers`
    the genomes carrying `alt`, `genomes` the genomes at the site (None: unknown), `line` the
    1-based line of the file it came from (0: not from a file)."""

    chrom: str
    pos: int
    ref: str
    alt: str
    carriers: int = 1
    genomes: int | None = None
    line: int = 0


class InfoField(NamedTuple):
    """A further INFO field of `write_vcf`'s lines: its `##INFO` header line's ID, Number, Type
    and Description."""

    id: str
    number: str
    type: str
    description: str

    def header_line(self) -> str:
        description = self.description.replace("\\", "\\\\").replace('"', '\\"')
        return f'##INFO=<ID={self.id},Number={self.number},Type={self.type},Description="{description}">'


def is_vcf(path: str | os.PathLike) -> bool:
    """Whether the file's first line (after any gzip / BGZF) is `##fileformat=VCF...`."""
    return first_line(path).startswith(VCF_MAGIC)


def named_vcf(path: str | os.PathLike) -> bool:
    """Whether the file's name says VCF: used only to choose the error for a file that is not."""
    return Path(path).name.lower().endswith(VCF_SUFFIXES)


def _classify(ref: str, alt: str) -> tuple[int, str, str] | str:
    """(offset in REF, ref base, alt base) of an SNV, or the reason the allele is not one."""
    if alt == ".":
        return NO_ALT
    if alt == "*":
        return STAR
    if alt.startswith("<"):
        return SYMBOLIC
    if "[" in alt or "]" in alt or (len(alt) > 1 and (alt[0] == "." or alt[-1] == ".")):
        return BREAKEND
    if len(ref) != len(alt) or not ref:
        return INDEL
    differ = [i for i, (r, a) in enumerate(zip(ref, alt, strict=True)) if r != a]
    if len(differ) > 1:
        return MNP
    if not differ:
        return REF_NOT_BASE if not set(ref) <= BASES else SAME
    offset = differ[0]
    r, a = ref[offset], alt[offset]
    if r not in BASES:
        return REF_NOT_BASE
    if a not in BASES:
        return ALT_NOT_BASE
    return offset, r, a


def _alleles(ref: str, alts: list[str], passed: bool, skipped: Counter) -> list[tuple[int, int, str, str]]:
    """(ALT index from 1, offset in REF, ref base, alt base) of the SNVs among `alts`, counting
    the others in `skipped` by reason (`passed`: the record passes FILTER)."""
    calls = []
    for index, alt in enumerate(alts, start=1):
        found = _classify(ref, alt)
        if isinstance(found, str):
            skipped[found] += 1
        elif not passed:
            skipped[FILTERED] += 1
        else:
            calls.append((index, *found))
    return calls


def _integer(path: Path, number: int, what: str, text: str) -> int:
    """An integer field: ASCII digits (at most `MAX_DIGITS`), an optional leading '-'."""
    digits = text[1:] if text.startswith("-") else text
    if not (digits.isascii() and digits.isdigit()):
        raise SeqmodelInputError(path, f"line {number}", f"{what} {text[:40]!r} is not an integer")
    if len(digits) > MAX_DIGITS:
        raise SeqmodelInputError(path, f"line {number}", f"{what} {text[:40]}... is too large")
    return int(text)


def _count(path: Path, number: int, what: str, text: str) -> int | None:
    """A non-negative integer field, None for `.`."""
    if text == ".":
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > MAX_DIGITS:
        raise SeqmodelInputError(path, f"line {number}", f"{what} {text[:40]!r} is not a count")
    return int(text)


class VcfReader:
    """The SNVs of a VCF (see the module docstring for the policy), one pass per iteration.

    After a pass, `skipped` counts the alleles left out by reason, `snvs` the SNVs yielded and
    `samples` holds the sample names of the `#CHROM` line.
    """

    def __init__(self, path: str | os.PathLike, *, keep_filtered: bool = False):
        self.path = as_input(path)
        self.keep_filtered = keep_filtered
        self.skipped: Counter = Counter()
        self.snvs = 0
        self.samples: list[str] = []

    def __iter__(self) -> Iterator[Snv]:
        return self._read()

    def _read(self) -> Iterator[Snv]:
        path, keep_filtered = self.path, self.keep_filtered
        self.skipped = skipped = Counter()
        self.snvs = 0
        self.samples = []
        number = 0
        for first, lines in line_batches(path, "VCF file"):
            if first == 1 and not lines[0].startswith(VCF_MAGIC):
                raise SeqmodelInputError(
                    path, "line 1", "not a VCF: the first line must be '##fileformat=VCFv4.x'"
                )
            for number, text in enumerate(lines, start=first):
                if not text or text[0] == "#":
                    if text.startswith("#CHROM"):
                        self._header(number, text)
                    continue
                # At most 9 fields: FORMAT and the samples stay one string until genotypes are needed.
                fields = text.split("\t", 8)
                if len(fields) < 8:
                    raise SeqmodelInputError(
                        path,
                        f"line {number}",
                        "expected >= 8 tab-separated VCF columns (CHROM POS ID REF ALT QUAL FILTER INFO), "
                        f"got {len(fields)}",
                    )
                chrom, pos_text, _, ref, alt, _, filter_text, info = fields[:8]
                if not chrom:
                    raise SeqmodelInputError(path, f"line {number}", "CHROM is empty")
                if pos_text.isdigit() and pos_text.isascii() and len(pos_text) <= MAX_DIGITS:
                    pos = int(pos_text)
                else:
                    pos = _integer(path, number, "POS", pos_text)
                if pos < 1:
                    raise SeqmodelInputError(
                        path, f"line {number}", f"POS {pos} must be >= 1 (VCF is 1-based)"
                    )
                ref, alt = ref.upper(), alt.upper()
                passed = keep_filtered or filter_text == "PASS" or filter_text == "."
                if (
                    passed
                    and len(alt) == 1
                    and len(ref) == 1
                    and ref in BASES
                    and alt in BASES
                    and ref != alt
                ):
                    calls = [(1, 0, ref, alt)]  # the common case
                else:
                    calls = _alleles(ref, alt.split(","), passed, skipped)
                    if not calls:
                        continue
                ac = an = None
                if "AC=" in info or "AN=" in info:
                    ac, an = _info_counts(path, number, info, alt.count(",") + 1)
                samples = fields[8].count("\t") if len(fields) > 8 else 0
                carriers = None
                if samples and (ac is None or None in ac):
                    carriers = _genotype_carriers(fields[8], [call[0] for call in calls])
                allele_genomes = an
                if an is None and samples and ac is not None:
                    allele_genomes = _called_alleles(fields[8])
                self.snvs += len(calls)
                start = pos - 1
                for index, offset, r, a in calls:
                    count = None if ac is None else ac[index - 1]
                    if count is not None:
                        genomes = allele_genomes
                    elif carriers is not None:
                        count, genomes = carriers[index], samples
                    else:
                        count, genomes = 1, an if an is not None else (samples or None)
                    yield Snv(chrom, start + offset, r, a, count, genomes, number)
        if number == 0:
            raise SeqmodelInputError(path, None, "empty file: not a VCF")
        reasons = ", ".join(f"{n} {why}" for why, n in sorted(skipped.items())) or "none"
        log.info("%s: %d SNVs read; alleles skipped: %s", path, self.snvs, reasons)

    def _header(self, number: int, text: str) -> None:
        columns = text.split("\t")
        if len(columns) < 8:
            raise SeqmodelInputError(
                self.path,
                f"line {number}",
                f"the #CHROM line has {len(columns)} tab-separated columns, expected >= 8 "
                f"({' '.join(FIXED_COLUMNS)} [FORMAT samples...])",
            )
        self.samples = columns[9:]


def _info_value(info: str, key: str) -> str | None:
    """The value of `key` ("AC=") in an INFO field, or None."""
    at = info.find(key)
    while at > 0 and info[at - 1] != ";":  # "MAC=" is not "AC="
        at = info.find(key, at + 1)
    if at < 0:
        return None
    end = info.find(";", at)
    return info[at + len(key) : end if end >= 0 else len(info)]


def _info_counts(
    path: Path, number: int, info: str, alleles: int
) -> tuple[list[int | None] | None, int | None]:
    """(`AC` per ALT allele or None, `AN` or None) of an INFO field."""
    an_text = _info_value(info, "AN=")
    if an_text is None:
        an = None
    elif an_text.isdigit() and an_text.isascii() and len(an_text) <= MAX_DIGITS:
        an = int(an_text)
    else:
        an = _count(path, number, "INFO AN", an_text)
    ac_text = _info_value(info, "AC=")
    if ac_text is None:
        return None, an
    if alleles == 1 and ac_text.isdigit() and ac_text.isascii() and len(ac_text) <= MAX_DIGITS:
        return [int(ac_text)], an  # the common case
    values = ac_text.split(",")
    if len(values) != alleles:
        raise SeqmodelInputError(
            path, f"line {number}", f"INFO AC has {len(values)} values for {alleles} ALT alleles"
        )
    return [_count(path, number, "INFO AC", value) for value in values], an


def _genotype_carriers(format_and_samples: str, indices: list[int]) -> dict[int, int] | None:
    """Samples whose GT holds each allele index, or None when FORMAT has no GT."""
    columns = format_and_samples.split("\t")
    keys = columns[0].split(":")
    if "GT" not in keys:
        return None
    at = keys.index("GT")
    wanted = {str(index): index for index in indices}
    counts = dict.fromkeys(indices, 0)
    for sample in columns[1:]:
        parts = sample.split(":", at + 1)
        if at >= len(parts):
            continue
        for allele in set(parts[at].replace("|", "/").split("/")):
            index = wanted.get(allele)
            if index is not None:
                counts[index] += 1
    return counts


def _called_alleles(format_and_samples: str) -> int | None:
    """Alleles called (not `.`) in the GT of every sample: the `AN` an `AC` counts against;
    None when FORMAT has no GT."""
    columns = format_and_samples.split("\t")
    keys = columns[0].split(":")
    if "GT" not in keys:
        return None
    at = keys.index("GT")
    called = 0
    for sample in columns[1:]:
        parts = sample.split(":", at + 1)
        if at < len(parts):
            called += sum(allele != "." for allele in parts[at].replace("|", "/").split("/"))
    return called


def read_vcf(path: str | os.PathLike, *, keep_filtered: bool = False) -> VcfReader:
    """The SNVs of a VCF: iterate the returned reader (its `skipped` Counter fills as it goes)."""
    return VcfReader(path, keep_filtered=keep_filtered)


def first_genomes(path: str | os.PathLike) -> int | None:
    """Genomes (`AN`, else the sample columns) of a VCF's first SNV; None for another format or
    when unknown."""
    if not is_vcf(path):
        return None
    snvs = iter(VcfReader(path))
    try:
        first = next(snvs, None)
    finally:
        snvs.close()
    return None if first is None else first.genomes


def write_vcf(
    out: str | os.PathLike | TextIO,
    snvs: Iterable[Snv | tuple],
    contigs: Mapping[str, int | None] | Iterable[str],
    source: str,
    *,
    genomes: int | None = None,
    ac_description: str = DEFAULT_AC,
    an_description: str = DEFAULT_AN,
    version: str = "4.2",
    info: Sequence[InfoField] = (),
    sort: bool = True,
) -> int:
    """Write SNVs as a VCF; returns the number of data lines.

    Parameters
    ----------
    out : a path (written atomically; `.gz` gives BGZF) or an open text stream.
    snvs : `Snv`s or `(chrom, pos 0-based, ref, alt[, carriers[, info]])` tuples; the carriers of
        repeated (site, ALT) rows are summed into one line (a row without carriers counts 1).
        A row's `info` (`KEY=value;...` of keys declared in `info` below; the first row's for
        repeated rows) is written after `AC` / `AN`.
    contigs : contig names, or names -> length (None: unknown), for the `##contig` lines;
        every SNV's chrom must be one of them.
    source : the `##source=` line.
    genomes : written as `AN` on every line (with its `##INFO` line) when given.
    info : the `##INFO` lines of the further INFO fields the rows carry.
    sort : False: one line per row, in the order given, streamed (the rows are not held in
        memory, repeated rows are not merged).
    """
    if version not in VERSIONS:
        raise ValueError(f"VCF version {version!r}: use one of {VERSIONS}")
    for field in info:
        if not INFO_ID.fullmatch(field.id) or field.id in ("AC", "AN"):
            raise ValueError(f"INFO ID {field.id!r}: not a VCF key, or one written already (AC, AN)")
        if field.type not in INFO_TYPES:
            raise ValueError(f"INFO {field.id} type {field.type!r}: use one of {INFO_TYPES}")
    if len({field.id for field in info}) != len(info):
        raise ValueError("INFO IDs repeat")
    lengths = dict(contigs) if isinstance(contigs, Mapping) else dict.fromkeys(contigs)
    lines = [f"##fileformat=VCFv{version}", f"##source={source}"]
    for chrom in sorted(lengths, key=str.encode):
        length = "" if lengths[chrom] is None else f",length={lengths[chrom]}"
        lines.append(f"##contig=<ID={chrom}{length}>")
    lines.append(f'##INFO=<ID=AC,Number=A,Type=Integer,Description="{ac_description}">')
    if genomes is not None:
        lines.append(f'##INFO=<ID=AN,Number=1,Type=Integer,Description="{an_description}">')
    lines += [field.header_line() for field in info]
    lines.append("\t".join(FIXED_COLUMNS))
    an = "" if genomes is None else f";AN={genomes}"
    rows = _checked_rows(snvs, lengths)
    if sort:
        carriers: Counter = Counter()
        extras: dict[tuple, str] = {}
        for key, count, extra in rows:
            carriers[key] += count
            if extra:
                extras.setdefault(key, extra)
        order = sorted(carriers, key=lambda k: (k[0].encode(), k[1], k[3], k[2]))
        texts = _sorted_texts(order, carriers, extras, an)
    else:
        texts = _streamed_texts(rows, an)
    if isinstance(out, (str, os.PathLike)):
        with atomic_text(out) as handle:
            return _write_texts(handle, lines, texts)
    return _write_texts(out, lines, texts)


def _checked_rows(snvs: Iterable[Snv | tuple], lengths: Mapping[str, int | None]) -> Iterator[tuple]:
    """((chrom, pos, ref, alt), carriers, info) of each row, checked."""
    for snv in snvs:
        extra = ""
        if isinstance(snv, Snv):
            key, count = (snv.chrom, snv.pos, snv.ref, snv.alt), snv.carriers
        else:
            key, count = (snv[0], int(snv[1]), snv[2], snv[3]), (int(snv[4]) if len(snv) > 4 else 1)
            if len(snv) > 5 and snv[5]:
                extra = snv[5]
                if "\t" in extra or "\n" in extra or " " in extra:
                    raise ValueError(f"INFO {extra[:40]!r} holds white space")
        if key[0] not in lengths:
            raise ValueError(f"SNV on {key[0]!r}, which is not among the contigs")
        if key[2] not in BASES or key[3] not in BASES or key[2] == key[3] or key[1] < 0:
            raise ValueError(f"not an SNV: {key}")
        yield key, count, extra


def _sorted_texts(
    order: list[tuple], carriers: Counter, extras: dict[tuple, str], an: str
) -> Iterator[tuple]:
    """(lines, count) of the sorted rows, `WRITE_BATCH` lines at a time."""
    for start in range(0, len(order), WRITE_BATCH):
        part = order[start : start + WRITE_BATCH]
        if extras:
            rows = ((key, carriers[key], extras.get(key, "")) for key in part)
            yield _lines(rows, an), len(part)
        else:
            yield (
                "".join(
                    f"{chrom}\t{pos + 1}\t.\t{ref}\t{alt}\t.\tPASS\tAC={carriers[chrom, pos, ref, alt]}{an}\n"
                    for chrom, pos, ref, alt in part
                ),
                len(part),
            )


def _streamed_texts(rows: Iterator[tuple], an: str) -> Iterator[tuple]:
    """(lines, count) of the rows in the order given, `WRITE_BATCH` lines at a time."""
    while batch := list(itertools.islice(rows, WRITE_BATCH)):
        yield _lines(batch, an), len(batch)


def _lines(rows: Iterable[tuple], an: str) -> str:
    return "".join(
        f"{chrom}\t{pos + 1}\t.\t{ref}\t{alt}\t.\tPASS\tAC={count}{an}{';' if extra else ''}{extra}\n"
        for (chrom, pos, ref, alt), count, extra in rows
    )


def _write_texts(handle, header: list[str], texts: Iterator[tuple]) -> int:
    handle.write("\n".join(header) + "\n")
    written = 0
    for text, count in texts:
        handle.write(text)
        written += count
    return written
