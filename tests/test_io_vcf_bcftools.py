"""bcftools as the oracle of the VCF reader: on files with each feature, the reader's SNVs, their
alleles and their carriers equal what `bcftools norm -m-` then `bcftools view -v snps` report.

bcftools calls an allele an SNP when REF and ALT have the same length and differ at one base
(`CA>TA` is C>T), and it keeps N and IUPAC codes; the reader's policy (see `seqmodel.io.vcf`)
reports the one differing base and leaves out anything that is not A/C/G/T. The oracle's rows
are reduced the same way before comparing. Carriers: bcftools' split `AC`, else the samples
whose split genotype holds the ALT (`bcftools norm -m-` recodes the other ALTs to 0), else 1.
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import pytest
from Bio import bgzf

from seqmodel.io.vcf import VcfReader

pytestmark = pytest.mark.skipif(
    shutil.which("bcftools") is None, reason="bcftools is not on PATH (apt-get install bcftools)"
)

HEADER = (
    "##fileformat=VCFv4.2\n"
    "##source=oracle test, with a comma\n"
    '##INFO=<ID=AC,Number=A,Type=Integer,Description="Allele count, one per ALT">\n'
    '##INFO=<ID=AN,Number=1,Type=Integer,Description="Allele number">\n'
    '##INFO=<ID=NOTE,Number=1,Type=String,Description="Free text, UTF-8">\n'
    '##FILTER=<ID=q10,Description="Quality below 10">\n'
    '##FORMAT=<ID=GT,Number=1,Type=String,Description="Genotype">\n'
    '##FORMAT=<ID=DP,Number=1,Type=Integer,Description="Depth">\n'
    "##contig=<ID=chr1,length=100000>\n"
    "##contig=<ID=chr2>\n"
)
SITES = "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"
SAMPLES = SITES + "\tFORMAT\tS1\tS2\tS3"
BASES = set("ACGT")

CASES = {
    "snvs": (SITES, ["chr1\t5\trs1\tA\tG\t30\tPASS\t.", "chr2\t7\t.\tc\tt\t.\t.\tNOTE=très"]),
    "multiallelic_ac": (SITES, ["chr1\t10\t.\tA\tC,G,T\t.\tPASS\tAC=3,4,5;AN=20"]),
    "padded_multiallelic": (
        SITES,
        ["chr1\t20\t.\tACGT\tA,ACGA\t.\tPASS\tAC=1,2", "chr1\t30\t.\tCA\tC,TA,CAA\t.\tPASS\tAC=5,6,7"],
    ),
    "indels_and_mnps": (
        SITES,
        [
            "chr1\t40\t.\tAC\tTG\t.\tPASS\t.",
            "chr1\t50\t.\tA\tATTT\t.\tPASS\t.",
            "chr1\t60\t.\tAC\tAT\t.\tPASS\t.",
        ],
    ),
    "symbolic_star_breakend_missing": (
        SITES,
        [
            "chr1\t70\t.\tA\tC,*,<NON_REF>\t.\tPASS\tAC=1,2,3",
            "chr1\t80\t.\tA\t<DEL>\t.\tPASS\t.",
            "chr1\t90\t.\tG\tG]chr1:5]\t.\tPASS\t.",
            "chr1\t100\t.\tA\t.\t.\tPASS\t.",
        ],
    ),
    "n_and_iupac": (
        SITES,
        [
            "chr1\t110\t.\tN\tA\t.\tPASS\t.",
            "chr1\t120\t.\tR\tA\t.\tPASS\t.",
            "chr1\t130\t.\tA\tN\t.\tPASS\t.",
        ],
    ),
    "filtered": (SITES, ["chr1\t140\t.\tA\tC\t.\tq10\t.", "chr1\t150\t.\tA\tT,G\t.\tq10\tAC=1,1"]),
    "genotypes": (
        SAMPLES,
        [
            "chr1\t160\t.\tA\tC\t.\tPASS\t.\tGT:DP\t0/1:3\t1|1\t./.",
            "chr1\t170\t.\tG\tT,C\t.\tPASS\t.\tGT\t1/2\t2|2\t.",
            "chr1\t180\t.\tT\tA\t.\tPASS\t.\tGT:DP\t1\t0:4\t./.:.",
            "chr1\t190\t.\tCA\tC,TA\t.\tPASS\t.\tGT\t1/2\t0/2\t2",
            "chr1\t200\t.\tG\tA\t.\tPASS\tAC=9;AN=6\tGT\t0/1\t0/0\t0/0",
            "chr2\t10\t.\tT\tC\t.\tPASS\t.\tDP\t5\t6\t7",
        ],
    ),
}


def bcftools(*args: str, stdin: bytes | None = None) -> bytes:
    return subprocess.run(["bcftools", *args], input=stdin, capture_output=True, check=True).stdout


def oracle(path: Path, pass_only: bool) -> list[tuple[str, int, str, str, int]]:
    """(chrom, 1-based pos, ref, alt, carriers) of bcftools' SNPs, reduced to the reader's policy."""
    split = bcftools("norm", "-m-", "-Ou", str(path))
    snps = bcftools("view", "-v", "snps", *(["-f", ".,PASS"] if pass_only else []), "-Ou", "-", stdin=split)
    table = bcftools("query", "-f", r"%CHROM\t%POS\t%REF\t%ALT\t%INFO/AC\t[%GT,]\n", "-", stdin=snps)
    rows = []
    for line in table.decode().splitlines():
        chrom, pos, ref, alt, ac, genotypes = line.split("\t")
        ref, alt = ref.upper(), alt.upper()
        differ = [i for i, (r, a) in enumerate(zip(ref, alt, strict=True)) if r != a]
        assert len(differ) == 1, line
        offset = differ[0]
        if ref[offset] not in BASES or alt[offset] not in BASES:
            continue
        if ac != ".":
            carriers = int(ac)
        elif genotypes and set(genotypes.rstrip(",").split(",")) != {"."}:
            # (bcftools prints "." for every sample of a record whose FORMAT has no GT.)
            calls = [gt.replace("|", "/").split("/") for gt in genotypes.rstrip(",").split(",")]
            carriers = sum("1" in alleles for alleles in calls)
        else:
            carriers = 1
        rows.append((chrom, int(pos) + offset, ref[offset], alt[offset], carriers))
    return sorted(rows)


def reader(path: Path, keep_filtered: bool) -> list[tuple[str, int, str, str, int]]:
    return sorted(
        (s.chrom, s.pos + 1, s.ref, s.alt, s.carriers) for s in VcfReader(path, keep_filtered=keep_filtered)
    )


def write_case(folder: Path, name: str, compress: str | None) -> Path:
    columns, rows = CASES[name]
    data = (HEADER + columns + "\n" + "".join(row + "\n" for row in rows)).encode()
    path = folder / f"{name}.vcf{'.gz' if compress else ''}"
    if compress == "bgzf":
        with open(path, "wb") as raw:
            writer = bgzf.BgzfWriter(fileobj=raw, mode="wb")
            writer.write(data)
            writer.close()
    else:
        path.write_bytes(gzip.compress(data) if compress == "gzip" else data)
    return path


@pytest.mark.parametrize("name", list(CASES))
def test_reader_snvs_equal_bcftools(tmp_path, name):
    path = write_case(tmp_path, name, None)
    assert reader(path, keep_filtered=False) == oracle(path, pass_only=True)
    assert reader(path, keep_filtered=True) == oracle(path, pass_only=False)


@pytest.mark.parametrize("compress", ["gzip", "bgzf"])
def test_reader_snvs_equal_bcftools_on_compressed_files(tmp_path, compress):
    path = write_case(tmp_path, "genotypes", compress)
    expected = oracle(path, pass_only=True)
    assert reader(path, keep_filtered=False) == expected and len(expected) == 7


def test_the_oracle_sees_every_kind_of_allele(tmp_path):
    # Guard against a vacuous comparison: the cases hold SNVs of every source the policy names.
    everything = [row for name in CASES for row in oracle(write_case(tmp_path, name, None), pass_only=False)]
    assert len(everything) == 19
    assert ("chr1", 23, "T", "A", 2) in everything  # ACGT>ACGA: T>A, AC split with the allele
    assert ("chr1", 30, "C", "T", 6) in everything  # CA>TA: C>T
    assert ("chr1", 170, "G", "C", 2) in everything  # carriers from split genotypes
