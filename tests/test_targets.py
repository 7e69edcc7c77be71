import numpy as np
import pytest

from seqmodel.data import alphabet
from seqmodel.io.fasta import load_fasta
from seqmodel.data.labels import sequence_labels
from seqmodel.data.targets import mutation_targets, track_values
from seqmodel.errors import SeqmodelInputError


def vcf(tmp_path, rows):
    path = tmp_path / "m.vcf"
    path.write_text(
        "##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\n"
        + "".join("\t".join(map(str, row)) + "\n" for row in rows)
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
                ("short", 5, ".", ref_short, "A"),
                ("chr9", 1010, ".", ref_region, "A"),
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
        (("short", 3), "line 3: expected >= 5"),
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
