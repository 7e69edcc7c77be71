"""Single-base substitutions (SNVs) from a VCF or a TSV of calls, and an SNV VCF writer.

Positions in both inputs are 1-based (VCF `POS`; the TSV's `pos` / `pos_1based` column);
`Snv.pos` is 0-based. A TSV has a header naming its columns: `chrom`, `pos` (or
`pos_1based`, `position`), `ref`, `alt`, and optionally `sample`.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from seqmodel.io.fasta import open_text
from seqmodel.errors import SeqmodelInputError, require_file

BASES = set("ACGT")
TSV_COLUMNS = {
    "chrom": ("chrom", "chr", "chromosome", "#chrom"),
    "pos": ("pos", "pos_1based", "position"),
    "ref": ("ref",),
    "alt": ("alt",),
}


@dataclass(frozen=True)
class Snv:
    """One call: `pos` 0-based; `ref`, `alt` uppercase bases; `where` the file line."""

    chrom: str
    pos: int
    ref: str
    alt: str
    where: str


def _is_vcf(path: Path, first_line: str) -> bool:
    return path.name.endswith((".vcf", ".vcf.gz")) or first_line.startswith("##fileformat=VCF")


def _position(path: Path, where: str, text: str) -> int:
    try:
        pos = int(text)
    except ValueError:
        raise SeqmodelInputError(path, where, f"position {text!r} is not an integer") from None
    if pos < 1:
        raise SeqmodelInputError(path, where, f"position {pos} must be >= 1 (1-based)")
    return pos - 1


def _tsv_columns(path: Path, header: list[str]) -> dict[str, int]:
    names = [name.strip().lower() for name in header]
    columns = {}
    for key, aliases in TSV_COLUMNS.items():
        found = [names.index(alias) for alias in aliases if alias in names]
        if not found:
            raise SeqmodelInputError(
                path,
                "line 1",
                f"no {key!r} column in the header (need chrom, pos or pos_1based, ref, alt; got {header})",
            )
        columns[key] = found[0]
    return columns


def read_snvs(path: str | os.PathLike) -> tuple[list[Snv], Counter]:
    """Every SNV of a VCF or TSV file, and the count of calls skipped, by reason.

    Multi-allelic VCF lines give one SNV per ALT. Indels, symbolic alleles and N alleles are
    skipped (and counted); malformed lines raise SeqmodelInputError naming file and line.
    """
    path = require_file(path, "mutations file")
    snvs: list[Snv] = []
    skipped: Counter = Counter()
    with open_text(path) as handle:
        lines = handle.read().splitlines()
    first = next((line for line in lines if line.strip()), "")
    vcf = _is_vcf(path, first)
    columns: dict[str, int] | None = None
    for number, line in enumerate(lines, start=1):
        if not line.strip() or (vcf and line.startswith("#")):
            continue
        fields = line.split("\t")
        where = f"line {number}"
        if not vcf and columns is None:
            columns = _tsv_columns(path, fields)
            continue
        if vcf:
            if len(fields) < 5:
                raise SeqmodelInputError(path, where, f"expected >= 5 VCF columns, got {len(fields)}")
            chrom, pos_text, ref, alts = fields[0], fields[1], fields[3], fields[4].split(",")
        else:
            if len(fields) <= max(columns.values()):
                raise SeqmodelInputError(path, where, f"{len(fields)} columns, fewer than the header")
            chrom, pos_text = fields[columns["chrom"]], fields[columns["pos"]]
            ref, alts = fields[columns["ref"]], [fields[columns["alt"]]]
        pos = _position(path, where, pos_text)
        ref = ref.strip().upper()
        for alt in (a.strip().upper() for a in alts):
            if len(ref) != 1 or len(alt) != 1:
                skipped["not a single-base substitution"] += 1
            elif ref not in BASES | {"N"} or alt not in BASES | {"N", "*", "."}:
                raise SeqmodelInputError(path, where, f"REF {ref!r} / ALT {alt!r} are not bases")
            elif ref == "N" or alt not in BASES:
                skipped["N or missing allele"] += 1
            elif ref == alt:
                raise SeqmodelInputError(path, where, f"ALT {alt} equals REF")
            else:
                snvs.append(Snv(chrom, pos, ref, alt, where))
    if not vcf and columns is None:
        raise SeqmodelInputError(path, None, "empty file: expected a header line then one call per line")
    return snvs, skipped


def snv_vcf_text(snvs: Iterable[tuple[str, int, str, str]], contigs: Sequence[str], source: str) -> str:
    """VCF 4.2 of `(chrom, pos 0-based, ref, alt)` calls: one line per distinct (site, alt) with
    `INFO=AC=<number of calls>`, sorted by contig name (byte order), POS, ALT."""
    counts = Counter(snvs)
    lines = ["##fileformat=VCFv4.2", f"##source={source}"]
    lines += [f"##contig=<ID={chrom}>" for chrom in sorted(contigs, key=str.encode)]
    lines += [
        '##INFO=<ID=AC,Number=A,Type=Integer,Description="Input calls (samples) with this ALT">',
        "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO",
    ]
    for (chrom, pos, ref, alt), count in sorted(counts.items(), key=lambda i: (i[0][0].encode(), *i[0][1:])):
        lines.append(f"{chrom}\t{pos + 1}\t.\t{ref}\t{alt}\t.\tPASS\tAC={count}")
    return "\n".join(lines) + "\n"


def vcf_allele_number(path: str | os.PathLike) -> int | None:
    """`AN` (genomes, one allele each in `seqmodel-simulate` output) of a VCF's first data line,
    or None when the file is not a VCF or the line has no `AN`."""
    path = Path(path)
    if not path.name.endswith((".vcf", ".vcf.gz")):
        return None
    with open_text(path) as handle:
        for line in handle:
            if line.startswith("#") or not line.strip():
                continue
            fields = line.rstrip("\n").split("\t")
            info = (
                dict(item.split("=", 1) for item in fields[7].split(";") if "=" in item)
                if len(fields) > 7
                else {}
            )
            return int(info["AN"]) if info.get("AN", "").isdigit() else None
    return None
