"""The BED and bedGraph readers (`seqmodel.io.bed`) and the two small tables (`seqmodel.io.tables`)."""

from __future__ import annotations

import gzip

import pytest

from seqmodel.errors import SeqmodelInputError
from seqmodel.io.bed import BedGraphRow, BedInterval, read_bed, read_bedgraph
from seqmodel.io.tables import CallsReader, LabelRow, read_labels
from seqmodel.io.vcf import Snv


def test_bed_skips_headers_keeps_names_and_lines(tmp_path):
    path = tmp_path / "r.bed.gz"
    path.write_bytes(
        gzip.compress(
            b"browser position chr1:1-100\r\ntrack name=peaks\r\n# comment\r\n\r\n"
            b"chr1\t0\t10\tpeak one\t900\t+\r\nchr2\t5\t6\r\nchr2\t7\t9\t \r\n"
        )
    )
    assert list(read_bed(path)) == [
        BedInterval("chr1", 0, 10, "peak one", 5),
        BedInterval("chr2", 5, 6, None, 6),
        BedInterval("chr2", 7, 9, None, 7),
    ]


@pytest.mark.parametrize(
    "line, message",
    [
        ("chr1\t5", "line 2: expected >= 3 tab-separated BED columns, got 2"),
        ("chr1 5 6", "line 2: expected >= 3 tab-separated BED columns, got 1"),
        ("chr1\tfive\t6", "line 2: start 'five' is not an integer"),
        ("chr1\t5\t6.5", "line 2: end '6.5' is not an integer"),
        ("chr1\t-1\t6", r"line 2: need 0 <= start < end \(BED is 0-based half-open\), got -1-6"),
        ("chr1\t6\t6", "line 2: need 0 <= start < end"),
        ("\t1\t6", "line 2: chrom is empty"),
    ],
)
def test_bed_errors_name_the_line(tmp_path, line, message):
    path = tmp_path / "r.bed"
    path.write_text(f"chr1\t0\t1\n{line}\n")
    with pytest.raises(SeqmodelInputError, match=message):
        list(read_bed(path))


def test_bedgraph_rows_and_errors(tmp_path):
    path = tmp_path / "t.bedgraph"
    path.write_text("track type=bedGraph\nchr1\t0\t5\t0.25\nchr1\t5\t6\t-1e-3\n")
    assert list(read_bedgraph(path)) == [
        BedGraphRow("chr1", 0, 5, 0.25, 2),
        BedGraphRow("chr1", 5, 6, -0.001, 3),
    ]
    path.write_text("chr1\t0\t5\n")
    with pytest.raises(SeqmodelInputError, match="line 1: expected 4 tab-separated bedGraph columns"):
        list(read_bedgraph(path))
    path.write_text("chr1\t0\t5\thigh\n")
    with pytest.raises(SeqmodelInputError, match="line 1: value 'high' is not a number"):
        list(read_bedgraph(path))
    path.write_bytes(b"chr1\t0\t5\t1\nchr1\t5\t6\t\xe9\n")
    with pytest.raises(SeqmodelInputError, match="line 2: not UTF-8 text"):
        list(read_bedgraph(path))


def test_labels_as_tsv_or_bed(tmp_path):
    path = tmp_path / "labels.tsv"
    path.write_text("id\tlabel\nr1\tctcf \n# note\nr2\tbg\n")
    assert list(read_labels(path)) == [LabelRow("r1", "ctcf", 2), LabelRow("r2", "bg", 4)]
    path.write_text("r1\tctcf\nr2\tbg\textra\n")
    with pytest.raises(SeqmodelInputError, match="line 2: expected 'id<TAB>label'"):
        list(read_labels(path))
    path.write_text("chr1\t10\t20\tctcf\nchr1\t30\t40\tbg\n")
    assert list(read_labels(path)) == [LabelRow("chr1:10-20", "ctcf", 1), LabelRow("chr1:30-40", "bg", 2)]
    path.write_text("chr1\t10\t20\tctcf\nchr1\t40\t30\tbg\n")
    with pytest.raises(SeqmodelInputError, match="line 2: need 0 <= start < end"):
        list(read_labels(path))


def test_calls_table(tmp_path):
    path = tmp_path / "calls.tsv"
    path.write_text(
        "sample\tchrom\tpos_1based\tref\talt\nS1\tchr1\t5\ta\tG\nS2\tchr1\t6\tAT\tA\nS3\tchr2\t1\tN\tC\n"
    )
    reader = CallsReader(path)
    assert list(reader) == [Snv("chr1", 4, "A", "G", 1, None, 2)]
    assert reader.skipped == {"not a single-base substitution": 1, "N or missing allele": 1}
    path.write_text("chrom\tpos\tref\n")
    with pytest.raises(SeqmodelInputError, match="line 1: no 'alt' column in the header"):
        list(CallsReader(path))
    path.write_text("chrom\tpos\tref\talt\nchr1\t0\tA\tC\n")
    with pytest.raises(SeqmodelInputError, match="line 2: position 0 must be >= 1"):
        list(CallsReader(path))
