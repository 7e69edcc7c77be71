"""Regenerate the demo files in `data/` byte for byte from the shared source data.

Run from anywhere: `python scripts/make_demo_data.py [--source DIR]`. It copies the COSMIC
table and the JASPAR motifs, writes `ctcf_demo.fa.gz` (the CTCF peaks and chr20 background
without the records that overlap an earlier record), runs `seqmodel-simulate` on it and
prints the md5 of every file it wrote.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import os
import shutil
from pathlib import Path

from Bio import bgzf

from seqmodel.io.regions import REGION_ID
from seqmodel.simulate_cli import main as simulate_main

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "data"
COPIED = (
    "COSMIC_v3_SBS_GRCh37.tsv",
    "jaspar2024_selected.jaspar",
    "jaspar2024_selected.meme",
)
FASTA_SOURCE = "ctcf_peaks_vs_chr20_bg.fa.gz"
FASTA = DATA / "ctcf_demo.fa.gz"
SIMULATE = [
    "--fasta", "data/ctcf_demo.fa.gz",
    "--signatures", "data/COSMIC_v3_SBS_GRCh37.tsv",
    "--mix", "SBS1=0.1,SBS2=0.2,SBS3=0.3,SBS5=0.2,SBS13=0.2",
    "--mean-rate", "5e-4",
    "--genomes", "100",
    "--seed", "0",
    "--motifs", "data/jaspar2024_selected.jaspar",
    "--motif-id", "MA0139.1",
    "--motif-threshold", "12",
    "--motif-factor", "20",
    "--out-vcf", "data/ctcf_demo.mutations.vcf.gz",
    "--out-rate", "data/ctcf_demo.true_rate.bedgraph.gz",
    "--out-hits", "data/ctcf_demo.ctcf_hits.bed",
]  # fmt: skip


def write_fasta_without_overlaps(source: Path, target: Path) -> list[str]:
    """Copy FASTA records (text unchanged, BGZF-compressed) except any record whose
    `chrom:start-end` interval overlaps a record kept before it; return the dropped ids."""
    with gzip.open(source, "rt", encoding="ascii") as handle:
        blocks = handle.read().split("\n>")
    kept, dropped, spans = [], [], []
    for number, block in enumerate(blocks):
        text = block if number == 0 else ">" + block
        match = REGION_ID.match(text[1:].split(None, 1)[0])
        chrom, start, end = match["chrom"], int(match["start"]), int(match["end"])
        if any(c == chrom and s < end and start < e for c, s, e in spans):
            dropped.append(match.string)
            continue
        spans.append((chrom, start, end))
        kept.append(text.rstrip("\n") + "\n")
    writer = bgzf.BgzfWriter(target, "wb")
    writer.write("".join(kept).encode("ascii"))
    writer.close()
    return dropped


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--source",
        type=Path,
        default=ROOT.parent / "shared" / "data" / "demo",
        help="folder with the shared demo data (default ../shared/data/demo)",
    )
    source = parser.parse_args().source.resolve()
    os.chdir(ROOT)  # the simulator's paths are relative to the repository root
    DATA.mkdir(exist_ok=True)
    for name in COPIED:
        shutil.copyfile(source / name, DATA / name)
    dropped = write_fasta_without_overlaps(source / FASTA_SOURCE, FASTA)
    print(f"dropped {len(dropped)} overlapping records: {', '.join(dropped)}")
    print("seqmodel-simulate " + " ".join(SIMULATE))
    simulate_main(SIMULATE)
    for path in sorted(DATA.iterdir()):
        if path.name != "README.md":
            print(f"{hashlib.md5(path.read_bytes()).hexdigest()}  data/{path.name}")


if __name__ == "__main__":
    main()
