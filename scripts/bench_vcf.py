"""Speed of the VCF reader against `bcftools view -H file | wc -l` on the same BGZF file.

Writes a VCF of `--lines` SNV lines (`INFO=AC=..;AN=..`, the package's writer, BGZF) to a
temporary folder, then times one pass of `seqmodel.io.vcf.VcfReader` and one of bcftools, and
prints one line with both rates and their ratio.

    python scripts/bench_vcf.py [--lines 1000000]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from seqmodel.io.vcf import VcfReader, write_vcf  # noqa: E402

BASES = "ACGT"


def write_file(path: Path, lines: int) -> None:
    chroms = [f"chr{i}" for i in range(1, 23)]
    per_chrom = -(-lines // len(chroms))
    rows = (
        (
            chroms[i // per_chrom],
            (i % per_chrom) * 7,
            BASES[i % 4],
            BASES[(i + 1 + i // 4 % 3) % 4],
            i % 9 + 1,
        )
        for i in range(lines)
    )
    write_vcf(path, rows, {chrom: per_chrom * 7 for chrom in chroms}, "bench_vcf", genomes=200)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lines", type=int, default=1_000_000, help="data lines of the VCF (default 1000000)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "bench.vcf.gz"
        write_file(path, args.lines)
        start = time.perf_counter()
        snvs = sum(1 for _ in VcfReader(path))
        reader_s = time.perf_counter() - start
        line = f"reader: {snvs:,} SNVs in {reader_s:.2f} s ({snvs / reader_s:,.0f} SNVs/s)"
        if shutil.which("bcftools") is None:
            print(line + "; bcftools not on PATH, no comparison")
            return
        start = time.perf_counter()
        counted = subprocess.run(
            f"bcftools view -H {path} | wc -l", shell=True, check=True, capture_output=True, text=True
        ).stdout
        bcftools_s = time.perf_counter() - start
        records = int(counted)
        print(
            f"{line}; bcftools view -H | wc -l: {records:,} records in {bcftools_s:.2f} s "
            f"({records / bcftools_s:,.0f}/s); reader time / bcftools time = {reader_s / bcftools_s:.1f} "
            f"({path.stat().st_size / 1e6:.1f} MB BGZF)"
        )


if __name__ == "__main__":
    main()
