"""seqmodel-prepare: genome access, regional splits, REF checks and background sampling."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from Bio import bgzf

from seqmodel.data.splits import block_splits, check_disjoint
from seqmodel.errors import SeqmodelInputError
from seqmodel.io import alphabet
from seqmodel.io.fasta import load_fasta
from seqmodel.io.genome import Genome, chrom_key
from seqmodel.prepare import gc_fraction, main, prepare

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
LINE = 60


def write_genome(folder: Path, chroms: dict[str, str], kind: str) -> Path:
    """A genome FASTA as `plain`, `bgzf` (with .fai and .gzi) or `gzip` (no index)."""
    text, fai, offset = "", [], 0
    for name, seq in chroms.items():
        header = f">{name} test\n"
        body = "".join(seq[i : i + LINE] + "\n" for i in range(0, len(seq), LINE))
        fai.append(f"{name}\t{len(seq)}\t{offset + len(header)}\t{LINE}\t{LINE + 1}\n")
        text += header + body
        offset += len(header) + len(body)
    if kind == "plain":
        path = folder / "genome.fa"
        path.write_text(text)
    elif kind == "gzip":
        path = folder / "genome.fa.gz"
        path.write_bytes(gzip.compress(text.encode()))
        return path
    else:
        path = folder / "genome.fa.gz"
        writer = bgzf.BgzfWriter(path, "wb")
        # Small blocks, so that a chromosome starts inside a block and spans several.
        for i in range(0, len(text), 1000):
            writer.write(text[i : i + 1000].encode())
            writer.flush()
        writer.close()
        with open(path, "rb") as handle:
            blocks = [(start, data_start) for start, _, data_start, _ in bgzf.BgzfBlocks(handle)][1:]
        np.array([len(blocks), *np.ravel(blocks)], dtype="<u8").tofile(f"{path}.gzi")
    Path(f"{path}.fai").write_text("".join(fai))
    return path


def random_seq(rng: np.random.Generator, length: int, gc: float = 0.5) -> str:
    p = [(1 - gc) / 2, gc / 2, gc / 2, (1 - gc) / 2]
    return "".join(rng.choice(list("ACGT"), size=length, p=p))


@pytest.fixture
def chroms() -> dict[str, str]:
    rng = np.random.default_rng(0)
    return {
        "chr1": random_seq(rng, 12_000) + "N" * 2000 + random_seq(rng, 6_000, gc=0.7),
        "chr2": random_seq(rng, 9_000, gc=0.35),
    }


@pytest.fixture
def genome_path(tmp_path, chroms) -> Path:
    return write_genome(tmp_path, chroms, "bgzf")


@pytest.mark.parametrize("kind", ["plain", "bgzf", "gzip"])
def test_indexed_and_streamed_genomes_read_the_same(tmp_path, chroms, kind):
    genome = Genome(write_genome(tmp_path, chroms, kind))
    assert (genome.index is None) == (kind == "gzip")
    for name, seq in chroms.items():
        assert alphabet.decode(genome.sequence(name)) == seq
    assert alphabet.decode(genome.fetch("chr2", 8990, 9000)) == chroms["chr2"][8990:]


def test_chromosome_names_match_with_or_without_chr_prefix(genome_path, chroms):
    genome = Genome(genome_path)
    assert genome.resolve("1") == "chr1" and genome.resolve("chr2") == "chr2"
    assert genome.resolve("3") is None
    assert chrom_key("chrM") == chrom_key("MT") == "MT"
    with pytest.raises(SeqmodelInputError, match="outside the chromosome"):
        genome.fetch("2", 8000, 9001)


def test_stale_index_is_an_error(tmp_path, chroms):
    path = write_genome(tmp_path, chroms, "plain")
    Path(f"{path}.fai").write_text("chr1\t20000\t5\t60\t61\n")
    with pytest.raises(SeqmodelInputError, match="rebuild it"):
        Genome(path).sequence("chr1")


def read_splits(folder: Path) -> list[dict[str, str]]:
    lines = (folder / "splits.tsv").read_text().splitlines()
    header = lines[0].split("\t")
    return [dict(zip(header, line.split("\t"), strict=True)) for line in lines[1:]]


def test_tiles_are_split_by_genome_block_and_splits_do_not_overlap(genome_path, tmp_path, capsys):
    out = tmp_path / "out"
    main(
        [
            "--genome",
            str(genome_path),
            "--tile",
            "chr1",
            "--tile",
            "chr2:0-9000",
            "--tile-size",
            "500",
            "--split-block",
            "3000",
            "--val-fraction",
            "0.2",
            "--test-fraction",
            "0.2",
            "--out",
            str(out),
        ]
    )
    rows = read_splits(out)
    # chr1 has 40 windows, 4 of them all N (left out); chr2 has 18.
    assert len(rows) == 36 + 18
    block_split: dict[tuple[str, int], str] = {}
    for row in rows:
        assert block_split.setdefault((row["chrom"], int(row["start"]) // 3000), row["split"]) == row["split"]
    assert {row["split"] for row in rows} == {"train", "val", "test"}
    for split in ("train", "val", "test"):
        records = load_fasta(out / f"{split}.fa.gz")
        assert [r.id for r in records] == [row["id"] for row in rows if row["split"] == split]
        assert all(r.fields["split"] == split for r in records)
    assert "splits do not overlap (checked)" in capsys.readouterr().out


def test_check_disjoint_names_the_overlapping_records():
    check_disjoint({"train": [("chr1", 0, 100, "a")], "test": [("1", 100, 200, "b")]})
    with pytest.raises(SeqmodelInputError, match="test record b overlaps train record a"):
        check_disjoint(
            {"train": [("chr1", 0, 100, "a"), ("chr1", 500, 600, "c")], "test": [("1", 99, 200, "b")]}
        )


def test_block_splits_keep_whole_blocks_and_need_a_training_block():
    intervals = [("1", start, start + 10, f"r{start}") for start in range(0, 10_000, 100)]
    splits = block_splits(intervals, 1000, 0.2, 0.2, seed=3)
    assert [splits.count(s) for s in ("train", "val", "test")] == [60, 20, 20]
    assert all(len(set(splits[i : i + 10])) == 1 for i in range(0, 100, 10))
    assert block_splits(intervals[:1], 1000, 0.1, 0.1, seed=0) == ["train"]
    with pytest.raises(SeqmodelInputError, match="no block left for training"):
        block_splits([("1", 0, 10, "a"), ("2", 0, 10, "b")], 1000, 0.4, 0.5, seed=0)


def write_calls(path: Path, calls: list[tuple[str, int, str, str]]) -> Path:
    path.write_text(
        "chrom\tpos_1based\tsample\tref\talt\n"
        + "".join(f"{chrom}\t{pos}\tS{i}\t{ref}\t{alt}\n" for i, (chrom, pos, ref, alt) in enumerate(calls))
    )
    return path


def test_mutations_are_ref_checked_and_kept_inside_regions_in_region_names(
    genome_path, chroms, tmp_path, capsys
):
    bed = tmp_path / "regions.bed"
    bed.write_text("1\t100\t600\tA\n2\t1000\t1500\tB\n")
    seq = chroms["chr1"]
    calls = [("chr1", 201, seq[200], "T" if seq[200] != "T" else "A")] * 2  # two samples, one site
    calls += [("chr1", 5001, seq[5000], "T" if seq[5000] != "T" else "A")]  # outside the regions
    calls += [("chr1", 300 + i, seq[299 + i], "C" if seq[299 + i] != "C" else "G") for i in range(200)]
    wrong = "A" if seq[400] != "A" else "C"
    calls += [("1", 401, wrong, "G" if wrong != "G" else "T")]
    tsv = write_calls(tmp_path / "calls.tsv", calls)
    out = tmp_path / "out"
    main(
        [
            "--genome",
            str(genome_path),
            "--regions",
            str(bed),
            "--mutations",
            str(tsv),
            "--val-fraction",
            "0",
            "--test-fraction",
            "0.4",
            "--split-block",
            "1000",
            "--out",
            str(out),
        ]
    )
    report = capsys.readouterr().out
    assert "REF checked against the genome for 204: 203 match, 1 differ" in report
    assert (out / "ref_mismatches.tsv").read_text().splitlines()[1].startswith(f"1\t401\t{wrong}\t{seq[400]}")
    vcf = [
        line.rstrip("\n").split("\t") for line in gzip.open(out / "mutations.vcf.gz", "rt") if line[0] != "#"
    ]
    assert len(vcf) == 201 and {row[0] for row in vcf} == {"chr1"}
    assert vcf[0][1:5] == ["201", ".", seq[200], calls[0][3]] and vcf[0][7] == "AC=2"
    assert [r.id for r in load_fasta(out / "regions.fa.gz")] == ["chr1:100-600", "chr2:1000-1500"]
    assert [r.fields["label"] for r in load_fasta(out / "regions.fa.gz")] == ["A", "B"]


def test_too_many_ref_mismatches_stop_with_one_line_and_no_output(genome_path, chroms, tmp_path, capsys):
    seq = chroms["chr2"]
    calls = [
        ("2", 100 + i, "A" if seq[99 + i] != "A" else "C", "G" if seq[99 + i] != "G" else "T")
        for i in range(10)
    ]
    tsv = write_calls(tmp_path / "calls.tsv", calls)
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        main(["--genome", str(genome_path), "--tile", "chr2", "--mutations", str(tsv), "--out", str(out)])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "10 of 10 REF alleles differ from the genome" in error
    assert "calls.tsv:line 2" in error
    assert not list(out.iterdir())


def test_gc_matched_background_matches_gc_and_avoids_peaks(genome_path, tmp_path):
    genome = Genome(genome_path)
    peaks = tmp_path / "peaks.bed"
    peaks.write_text("chr1\t15000\t15200\n1\t16000\t16200\nchr2\t400\t600\n")
    out = tmp_path / "out"
    prepare(
        [
            "--genome",
            str(genome_path),
            "--peaks",
            str(peaks),
            "--background-per-peak",
            "3",
            "--gc-tolerance",
            "0.05",
            "--val-fraction",
            "0",
            "--test-fraction",
            "0.3",
            "--out",
            str(out),
        ]
    )
    records = load_fasta(out / "regions.fa.gz")
    peak_gc = {r.id: gc_fraction(r.tokens) for r in records if r.fields["label"] == "1"}
    background = [r for r in records if r.fields["label"] == "0"]
    assert len(peak_gc) == 3 and len(background) == 9
    assert all((r.tokens < alphabet.N).all() and len(r) == 200 for r in background)
    # Each background window's G+C lies within tolerance of some peak's (they are drawn per peak).
    assert all(min(abs(gc_fraction(r.tokens) - g) for g in peak_gc.values()) <= 0.05 for r in background)
    for r in background:
        chrom, start, end = r.genome_interval
        assert (genome.fetch(chrom, start, end) == r.tokens).all()
    check_disjoint(
        {
            "peak": [(*r.genome_interval, r.id) for r in records if r.fields["label"] == "1"],
            "background": [(*r.genome_interval, r.id) for r in background],
        }
    )


def test_sequences_keep_their_words_and_overlapping_records_are_dropped(tmp_path, capsys):
    rng = np.random.default_rng(2)
    fasta = tmp_path / "in.fa"
    fasta.write_text(
        f">chr3:0-50 peak label=1\n{random_seq(rng, 50)}\n>chr3:40-90 bg label=0\n{random_seq(rng, 50)}\n"
        f">contig7 label=0\n{random_seq(rng, 30)}\n>chr4:0-20 label=1\n{random_seq(rng, 20)}\n"
    )
    out = tmp_path / "out"
    main(["--sequences", str(fasta), "--val-fraction", "0", "--test-fraction", "0.3", "--out", str(out)])
    assert "dropped 1 records overlapping an earlier one: chr3:40-90" in capsys.readouterr().out
    records = load_fasta(out / "regions.fa.gz")
    assert [r.id for r in records] == ["chr3:0-50", "contig7", "chr4:0-20"]
    assert records[0].description.startswith("chr3:0-50 peak label=1 split=")


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (["--tile", "chr9"], "chromosome 'chr9' is not in"),
        (["--tile", "chr2:0-99999"], "must lie inside chr2"),
        (["--regions", "BED"], "not inside chr1"),
    ],
)
def test_bad_input_is_one_line(genome_path, tmp_path, capsys, arguments, expected):
    (tmp_path / "bad.bed").write_text("chr1\t100\t999999\n")
    arguments = [str(tmp_path / "bad.bed") if a == "BED" else a for a in arguments]
    with pytest.raises(SystemExit) as exit_info:
        main(["--genome", str(genome_path), *arguments, "--out", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and expected in error


@pytest.mark.skipif(not (SHARED / "genome").is_dir(), reason="needs ../shared/data (GRCh37 chr20, BRCA SNVs)")
def test_real_brca_snvs_match_grch37_chr20(tmp_path, capsys):
    out = tmp_path / "out"
    main(
        [
            "--genome",
            str(SHARED / "genome" / "GRCh37_chr20.fa.gz"),
            "--tile",
            "20:53800000-53900000",
            "--mutations",
            str(SHARED / "bench" / "brca100_chr20_snvs.tsv.gz"),
            "--out",
            str(out),
        ]
    )
    report = capsys.readouterr().out
    assert "11413 SNVs read; REF checked against the genome for 11413: 11413 match, 0 differ" in report
    # The 68 SNVs of the demo slice, at 63 distinct (site, alt) pairs in this file.
    calls = sum(
        int(line.rsplit("AC=", 1)[1])
        for line in gzip.open(out / "mutations.vcf.gz", "rt")
        if not line.startswith("#")
    )
    assert calls == 68


def write_vcf_gz(path: Path, rows: list[str]) -> Path:
    """A BGZF VCF of `rows` (whatever the file name)."""
    text = (
        "##fileformat=VCFv4.2\n##contig=<ID=chr2>\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
        + "".join(row + "\n" for row in rows)
    )
    writer = bgzf.BgzfWriter(path, "wb")
    writer.write(text.encode())
    writer.close()
    return path


def test_a_vcf_is_read_by_content_whatever_its_name(genome_path, chroms, tmp_path, capsys):
    seq = chroms["chr2"]
    alt = {base: "A" if base != "A" else "G" for base in "ACGT"}
    rows = [
        f"chr2\t{p}\t.\t{seq[p - 1]}\t{alt[seq[p - 1]]}\t.\tPASS\tAC={p % 3 + 1};AN=50" for p in (10, 20, 30)
    ]
    rows += [f"chr2\t40\t.\t{seq[39:42]}\t{seq[39]}\t.\tPASS\tAC=1;AN=50"]  # a deletion: skipped
    calls = write_vcf_gz(tmp_path / "calls.txt.gz", rows)
    out = tmp_path / "out"
    main(["--genome", str(genome_path), "--tile", "chr2:0-1000", "--tile-size", "500"]
         + ["--mutations", str(calls), "--out", str(out)])  # fmt: skip
    assert "mutations: 3 SNVs read, 1 skipped (indel)" in capsys.readouterr().out
    lines = [line for line in gzip.open(out / "mutations.vcf.gz", "rt") if not line.startswith("#")]
    # The carriers (AC) and genomes (AN) of the input travel to the output.
    assert [line.split("\t")[7].strip() for line in lines] == ["AC=2;AN=50", "AC=3;AN=50", "AC=1;AN=50"]


def test_a_truncated_vcf_gz_stops_with_one_line_and_exit_2(genome_path, chroms, tmp_path, capsys):
    seq = chroms["chr2"]
    rows = [
        f"chr2\t{p}\t.\t{seq[p - 1]}\t{'A' if seq[p - 1] != 'A' else 'C'}\t.\tPASS\tN={p}"
        for p in range(1, 9000)
    ]
    whole = write_vcf_gz(tmp_path / "whole.vcf.gz", rows).read_bytes()
    cut = tmp_path / "cut.vcf.gz"
    cut.write_bytes(whole[: len(whole) // 2])
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        main(["--genome", str(genome_path), "--tile", "chr2", "--mutations", str(cut), "--out", str(out)])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and error.startswith(f"error: {cut}:line ")
    assert error.endswith("the gzip data ends early: the file is truncated")
    assert not out.exists() or not list(out.iterdir())
