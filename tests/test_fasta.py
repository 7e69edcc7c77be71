import gzip

import pytest

from seqmodel.errors import SeqmodelInputError
from seqmodel.io.fasta import load_fasta


def test_reads_every_record_with_fields_and_intervals(small_fasta):
    records = load_fasta(small_fasta)
    assert [r.id for r in records] == ["short", "exact", "long", "chr9:1000-1130"]
    assert [len(r) for r in records] == [17, 50, 177, 130]
    assert records[1].fields == {"label": "1"}
    assert records[3].genome_interval == ("chr9", 1000, 1130)
    assert records[0].genome_interval is None


def test_gzip_and_crlf_are_accepted(tmp_path):
    path = tmp_path / "a.fa.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(b">a\r\nACGT\r\nAC\r\n>b\r\nGG\r\n")
    records = load_fasta(path)
    assert [len(r) for r in records] == [6, 2]


@pytest.mark.parametrize(
    "content, expected",
    [
        (b"", "no FASTA records"),
        (b"\nACGT\n", "line 2: not FASTA"),
        (b">a\n>b\nACGT\n", "record 1 (a): header with no sequence"),
        (b">a\nACGT\n>a\nAC\n", "record 2 (a): duplicate record id"),
        (b">a\nAC\n>b\nACXT\n", "record 2 (b): character 'X' at position 3"),
        (b">a\nAC\xff\xfe\x00\n", "binary"),
    ],
)
def test_bad_fasta_error_names_file_and_record(tmp_path, content, expected):
    path = tmp_path / "bad.fa"
    path.write_bytes(content)
    with pytest.raises(SeqmodelInputError) as error:
        load_fasta(path)
    assert str(path) in str(error.value)
    assert expected in str(error.value)


def test_truncated_gzip_is_an_input_error(tmp_path):
    path = tmp_path / "t.fa.gz"
    data = gzip.compress(b">a\n" + b"ACGT" * 5000 + b"\n")
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(SeqmodelInputError, match="truncated"):
        load_fasta(path)


def test_directory_given_as_file(tmp_path):
    with pytest.raises(SeqmodelInputError, match="is a directory"):
        load_fasta(tmp_path)
