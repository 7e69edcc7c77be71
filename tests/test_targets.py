import numpy as np
import pytest

from seqmodel.data.labels import sequence_labels
from seqmodel.data.targets import mutation_counts, mutation_targets, track_values
from seqmodel.errors import SeqmodelInputError
from seqmodel.io import alphabet
from seqmodel.io.fasta import load_fasta


def vcf(tmp_path, rows, name="m.vcf"):
    """A VCF of `rows` (CHROM POS ID REF ALT [INFO]; QUAL and FILTER are filled in)."""
    path = tmp_path / name
    lines = [
        "\t".join(map(str, row[:5] + (".", "PASS", row[5] if len(row) > 5 else ".")))
        if len(row) >= 5
        else "\t".join(map(str, row))
        for row in rows
    ]
    path.write_text(
        "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\n"
        + "".join(line + "\n" for line in lines)
    )
    return path


def test_vcf_is_one_based_and_lifts_genome_coordinates(small_fasta, tmp_path):
    records = load_fasta(small_fasta)
    short, region = records[0], records[3]
    ref_short = alphabet.decode(short.tokens[4:5])
    ref_region = alphabet.decode(region.tokens[9:10])
    # POS 5 of record "short" is offset 4; chr9 POS 1010 is 0-based 1009, offset 9 in chr9:1000-1130.
    targets = mutation_targets(
        vcf(
            tmp_path,
            [
                ("short", 5, ".", ref_short, "C" if ref_short == "A" else "A"),
                ("chr9", 1010, ".", ref_region, "C" if ref_region == "A" else "A"),
                ("chr1", 5, ".", "A", "C"),
            ],
        ),
        records,
    )
    assert np.flatnonzero(targets[0]).tolist() == [4]
    assert np.flatnonzero(targets[3]).tolist() == [9]
    assert targets[1].sum() == 0


def test_bed_is_zero_based_half_open(small_fasta, tmp_path):
    records = load_fasta(small_fasta)
    path = tmp_path / "m.bed"
    path.write_text("exact\t3\t6\nchr9\t1128\t1135\n")
    targets = mutation_targets(path, records)
    assert np.flatnonzero(targets[1]).tolist() == [3, 4, 5]
    assert np.flatnonzero(targets[3]).tolist() == [128, 129]


def test_ref_mismatch_names_the_line(small_fasta, tmp_path):
    records = load_fasta(small_fasta)
    wrong = "C" if alphabet.decode(records[0].tokens[0:1]) != "C" else "G"
    path = vcf(tmp_path, [("short", 1, ".", wrong, "T")])
    with pytest.raises(SeqmodelInputError, match=r"m.vcf:line 3: REF"):
        mutation_targets(path, records)


@pytest.mark.parametrize(
    "row, message",
    [
        (("short", 0, ".", "A", "C"), "line 3: POS 0 must be >= 1"),
        (("short", "x", ".", "A", "C"), "line 3: POS 'x' is not an integer"),
        (("short", 18, ".", "A", "C"), "line 3: position 18 is past the end of short"),
        (("short", 3), "line 3: expected >= 8 tab-separated VCF columns"),
        (("chrZ", 3, ".", "A", "C"), "no site falls on any FASTA record"),
    ],
)
def test_malformed_vcf_lines(small_fasta, tmp_path, row, message):
    with pytest.raises(SeqmodelInputError, match=message):
        mutation_targets(vcf(tmp_path, [row]), load_fasta(small_fasta))


def test_bedgraph_track_fills_values_and_leaves_nan(small_fasta, tmp_path):
    records = load_fasta(small_fasta)
    path = tmp_path / "r.bedgraph"
    path.write_text("track type=bedGraph\nshort\t0\t2\t0.5\nshort\t2\t3\t0.25\n")
    values = track_values(path, records)
    assert values[0][:3].tolist() == [0.5, 0.5, 0.25]
    assert np.isnan(values[0][3:]).all() and np.isnan(values[1]).all()


def test_labels_from_headers_and_tsv(small_fasta, tmp_path):
    records = load_fasta(small_fasta)
    ids, classes = sequence_labels(records, small_fasta)
    assert ids.tolist() == [0, 1, 1, 0] and classes == ["0", "1"]
    tsv = tmp_path / "labels.tsv"
    tsv.write_text("id\tlabel\nshort\tbg\nexact\tctcf\nlong\tctcf\nchr9:1000-1130\tbg\n")
    ids, classes = sequence_labels(records, small_fasta, tsv)
    assert classes == ["bg", "ctcf"] and ids.tolist() == [0, 1, 1, 0]


def test_label_errors(small_fasta, tmp_path):
    records = load_fasta(small_fasta)
    tsv = tmp_path / "labels.tsv"
    tsv.write_text("short\tbg\nexact\tctcf\n")
    with pytest.raises(SeqmodelInputError, match=r"record 3 \(long\): missing sequence label"):
        sequence_labels(records, small_fasta, tsv)
    tsv.write_text("short\tbg\nexact\t1\nlong\tbg\nchr9:1000-1130\tbg\n")
    with pytest.raises(SeqmodelInputError, match="line 2: mixed label types"):
        sequence_labels(records, small_fasta, tsv)
    tsv.write_text("short\tbg\nexact\tzzz\nlong\tbg\nchr9:1000-1130\tbg\n")
    with pytest.raises(SeqmodelInputError, match="line 2: unknown class 'zzz'"):
        sequence_labels(records, small_fasta, tsv, classes=["bg", "ctcf"])


def test_vcf_targets_are_snvs_only_and_counts_sum_carriers(small_fasta, tmp_path):
    records = load_fasta(small_fasta)
    seq = alphabet.decode(records[1].tokens)  # "exact", 50 bases
    alt = {base: "A" if base != "A" else "C" for base in "ACGT"}
    path = vcf(
        tmp_path,
        [
            ("exact", 3, ".", seq[2], alt[seq[2]], "AC=4;AN=10"),
            ("exact", 3, ".", seq[2], alt[seq[2]], "AC=2;AN=10"),  # the same site again: adds up
            ("exact", 6, ".", seq[5:9], seq[5]),  # a deletion: not a target
            ("exact", 11, ".", seq[10], f"{alt[seq[10]]},<NON_REF>", "AC=3,7;AN=10"),
            ("exact", 21, ".", seq[20], alt[seq[20]]),  # no AC, no genotypes: 1
        ],
        name="calls.txt",  # read as a VCF by its first line
    )
    targets = mutation_targets(path, records)
    assert np.flatnonzero(targets[1]).tolist() == [2, 10, 20]
    counts, genomes = mutation_counts(path, records)
    assert counts[1].dtype == np.float32 and genomes == 10
    assert {int(i): float(counts[1][i]) for i in np.flatnonzero(counts[1])} == {2: 6.0, 10: 3.0, 20: 1.0}
    assert all(c.sum() == 0 for i, c in enumerate(counts) if i != 1)


def test_bed_counts_add_one_per_interval_and_have_no_genomes(small_fasta, tmp_path):
    records = load_fasta(small_fasta)
    path = tmp_path / "m.bed"
    path.write_text("track name=x\nexact\t3\t6\nexact\t4\t5\n")
    counts, genomes = mutation_counts(path, records)
    assert counts[1][2:7].tolist() == [0, 1, 2, 1, 0] and genomes is None


def test_a_vcf_name_without_the_vcf_header_is_an_error_not_a_bed(small_fasta, tmp_path):
    path = tmp_path / "m.vcf"
    path.write_text("short\t5\t.\tA\tC\t.\tPASS\t.\n")
    with pytest.raises(SeqmodelInputError, match=r"m.vcf:line 1: not a VCF"):
        mutation_targets(path, load_fasta(small_fasta))


def test_labels_from_a_bed_with_labels(small_fasta, tmp_path):
    records = load_fasta(small_fasta)
    bed = tmp_path / "labels.bed"
    # A BED row labels the record whose id is its interval, `chrom:start-end`.
    bed.write_text("# peaks\nchr9\t1000\t1130\tctcf\nchr9\t0\t10\tbg\n")
    ids, classes = sequence_labels(records[3:], small_fasta, bed)
    assert ids.tolist() == [0] and classes == ["ctcf"]
    with pytest.raises(SeqmodelInputError, match=r"record 1 \(short\): missing sequence label"):
        sequence_labels(records, small_fasta, bed)
    bed.write_text("chr9\t1000\t1130\tctcf\nchr9\t1\t2\n")
    with pytest.raises(SeqmodelInputError, match=r"labels.bed:line 2: expected a label in the 4th column"):
        sequence_labels(records, small_fasta, bed)
    bed.write_text("chr9\tx\t1130\tbg\n")
    with pytest.raises(SeqmodelInputError, match=r"labels.bed:line 1: start 'x' is not an integer"):
        sequence_labels(records, small_fasta, bed)
