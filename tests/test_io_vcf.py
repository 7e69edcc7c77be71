"""The VCF reader and writer (`seqmodel.io.vcf`) on real files: what they accept, what they skip
and count, their one-line errors, and the BGZF output that `tabix` indexes."""

from __future__ import annotations

import gzip
import logging
import shutil
import subprocess
from collections import Counter
from pathlib import Path

import pytest
from Bio import bgzf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seqmodel.errors import SeqmodelInputError
from seqmodel.io.bgzf import is_bgzf_header
from seqmodel.io.text import BGZF_EOF
from seqmodel.io.vcf import Snv, VcfReader, first_genomes, is_vcf, read_vcf, write_vcf

HEADER = (
    "##fileformat=VCFv4.2\n"
    '##INFO=<ID=AC,Number=A,Type=Integer,Description="Allele count, one per ALT">\n'
    '##INFO=<ID=AN,Number=1,Type=Integer,Description="Allele number">\n'
    '##FILTER=<ID=q10,Description="Quality below 10, or \\"low\\"">\n'
    "##contig=<ID=chr1,length=1000>\n"
)
COLUMNS = "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"


def write(path: Path, text: str | bytes, compress: str | None = None) -> Path:
    """`text` at `path`: plain, or compressed as "gzip" or "bgzf"."""
    data = text.encode() if isinstance(text, str) else text
    if compress == "gzip":
        data = gzip.compress(data)
    elif compress == "bgzf":
        with open(path, "wb") as raw:
            writer = bgzf.BgzfWriter(fileobj=raw, mode="wb")
            writer.write(data)
            writer.close()
        return path
    path.write_bytes(data)
    return path


def vcf(tmp_path: Path, rows: list[str], columns: str = COLUMNS, name: str = "x.vcf", **kwargs) -> Path:
    return write(tmp_path / name, HEADER + columns + "\n" + "".join(row + "\n" for row in rows), **kwargs)


def read(path: Path, **kwargs) -> tuple[list[tuple], Counter]:
    """(chrom, pos 0-based, ref, alt, carriers, genomes) of each SNV, and the skip counts."""
    reader = VcfReader(path, **kwargs)
    snvs = [(s.chrom, s.pos, s.ref, s.alt, s.carriers, s.genomes) for s in reader]
    return snvs, reader.skipped


def test_meta_lines_undeclared_contigs_and_dots_are_accepted(tmp_path):
    path = vcf(
        tmp_path,
        [
            "chr1\t5\trs1\tA\tG\t.\t.\t.",
            "chr7\t3\t.\tC\tT\t50\tPASS\tDB;X=a,b",  # no ##contig line for chr7
        ],
    )
    snvs, skipped = read(path)
    assert snvs == [("chr1", 4, "A", "G", 1, None), ("chr7", 2, "C", "T", 1, None)]
    assert skipped == Counter()


def test_the_snv_dataclass_is_frozen_and_keeps_its_line(tmp_path):
    path = vcf(tmp_path, ["chr1\t5\t.\tA\tG\t.\tPASS\tAC=2;AN=9"])
    (snv,) = list(read_vcf(path))
    assert snv == Snv("chr1", 4, "A", "G", 2, 9, 7)
    with pytest.raises(AttributeError):
        snv.pos = 3


def test_genotypes_count_carriers_per_alt_and_samples_are_the_genomes(tmp_path):
    columns = COLUMNS + "\tFORMAT\tS1\tS2\tS3\tS4\tS5"
    path = vcf(
        tmp_path,
        [
            # Per-sample fields differ from FORMAT's list (trailing ones dropped).
            "chr1\t10\t.\tA\tC\t.\tPASS\t.\tGT:AD:DP\t0/1:3,4:7\t1|1\t./.:.:.\t.\t0",
            # Multi-allelic: each ALT counts the samples holding its allele index.
            "chr1\t20\t.\tG\tT,C\t.\tPASS\t.\tGT\t1/2\t2|2\t1\t0/0\t2/.",
            # AC wins over genotypes and counts against the called alleles (6 here, no AN);
            # a `.` AC value falls back to the genotypes, counted against the samples.
            "chr1\t30\t.\tT\tA,G\t.\tPASS\tAC=4,.\tGT\t1/2\t0|2\t.\t0\t0",
            # GT carriers are samples: AN (alleles) is not their denominator.
            "chr1\t35\t.\tT\tA\t.\tPASS\tAN=10\tGT\t0/1\t1/1\t0/0\t0/0\t0/0",
            # FORMAT without GT: one carrier per line.
            "chr1\t40\t.\tC\tG\t.\tPASS\t.\tDP\t3\t4\t5\t6\t7",
            "chr1\t50\t.\tC\tG\t.\tPASS\tAN=9\t.\t.\t.\t.\t.\t.",
        ],
        columns=columns,
    )
    reader = VcfReader(path)
    snvs = [(s.pos + 1, s.alt, s.carriers, s.genomes) for s in reader]
    assert reader.samples == ["S1", "S2", "S3", "S4", "S5"]
    assert snvs == [
        (10, "C", 2, 5),
        (20, "T", 2, 5),
        (20, "C", 3, 5),
        (30, "A", 4, 6),
        (30, "G", 2, 5),
        (35, "A", 2, 5),
        (40, "G", 1, 5),
        (50, "G", 1, 9),
    ]


def test_ac_and_an_give_carriers_and_genomes_split_with_the_alleles(tmp_path):
    path = vcf(
        tmp_path, ["chr1\t8\t.\tG\tA,T\t.\tPASS\tDP=4;AC=3,5;AN=100", "chr1\t9\t.\tG\tA\t.\tPASS\tMAC=4"]
    )
    snvs, _ = read(path)
    assert snvs == [
        ("chr1", 7, "G", "A", 3, 100),
        ("chr1", 7, "G", "T", 5, 100),
        ("chr1", 8, "G", "A", 1, None),
    ]
    assert first_genomes(path) == 100


def test_crlf_line_ends_and_utf8_in_header_and_info(tmp_path):
    text = (
        "##fileformat=VCFv4.3\r\n##source=séquenceur ✓\r\n"
        '##INFO=<ID=NOTE,Number=1,Type=String,Description="Remarque, naïve">\r\n'
        + COLUMNS
        + "\r\nchr1\t2\t.\tA\tT\t.\tPASS\tNOTE=très_bien\r\n"
    )
    snvs, _ = read(write(tmp_path / "crlf.vcf", text))
    assert snvs == [("chr1", 1, "A", "T", 1, None)]


def test_a_line_that_is_not_utf8_is_an_error_naming_it(tmp_path):
    path = write(
        tmp_path / "bad.vcf", (HEADER + COLUMNS + "\n").encode() + b"chr1\t2\t.\tA\tT\t.\tPASS\tX=\xff\n"
    )
    with pytest.raises(SeqmodelInputError) as error:
        list(VcfReader(path))
    assert str(error.value) == f"{path}:line 7: not UTF-8 text (byte 0xff at column 23)"


@pytest.mark.parametrize("compress", ["gzip", "bgzf"])
def test_a_truncated_vcf_gz_is_a_one_line_error_naming_file_and_line(tmp_path, compress):
    rows = [f"chr1\t{i + 1}\t.\tA\tC\t.\tPASS\tAC={i}" for i in range(20_000)]
    whole = vcf(tmp_path, rows, name="whole.vcf.gz", compress=compress).read_bytes()
    path = write(tmp_path / "cut.vcf.gz", whole[: len(whole) // 2])
    with pytest.raises(SeqmodelInputError) as error:
        list(VcfReader(path))
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"{path}:line ")
    assert message.endswith("the gzip data ends early: the file is truncated")


def test_corrupt_gzip_data_is_an_error(tmp_path):
    rows = [f"chr1\t{i + 1}\t.\tA\tC\t.\tPASS\tAC={i}" for i in range(5000)]
    data = bytearray(gzip.compress((HEADER + COLUMNS + "\n" + "\n".join(rows) + "\n").encode()))
    data[len(data) // 2 : len(data) // 2 + 8] = b"\x00" * 8
    path = write(tmp_path / "corrupt.vcf.gz", bytes(data))
    with pytest.raises(SeqmodelInputError, match=r"corrupt.vcf.gz:line \d+: "):
        list(VcfReader(path))


@pytest.mark.parametrize("compress", [None, "gzip", "bgzf"])
def test_a_vcf_is_recognised_by_content_under_any_name(tmp_path, compress):
    path = vcf(tmp_path, ["chr1\t2\t.\tA\tT\t.\tPASS\t."], name="calls.txt.gz", compress=compress)
    assert is_vcf(path)
    assert read(path)[0] == [("chr1", 1, "A", "T", 1, None)]
    bed = write(tmp_path / "sites.vcf", "chr1\t1\t2\n")
    assert not is_vcf(bed)


def test_reading_streams(tmp_path):
    # The first SNV comes out before the reader reaches the bad line at the end.
    rows = [f"chr1\t{i + 1}\t.\tA\tC\t.\tPASS\t." for i in range(50_000)] + ["chr1\tbad"]
    snvs = iter(VcfReader(vcf(tmp_path, rows, name="big.vcf.gz", compress="bgzf")))
    assert next(snvs).pos == 0
    with pytest.raises(SeqmodelInputError, match=r"big.vcf.gz:line 50007: expected >= 8"):
        list(snvs)


@pytest.mark.parametrize(
    "text, message",
    [
        ("chr1\t5\t.\tA\tC\t.\tPASS", "line 7: expected >= 8 tab-separated VCF columns"),
        ("chr1 5 . A C . PASS .", "line 7: expected >= 8 tab-separated VCF columns"),
        ("chr1\tx\t.\tA\tC\t.\tPASS\t.", "line 7: POS 'x' is not an integer"),
        ("chr1\t1.5\t.\tA\tC\t.\tPASS\t.", "line 7: POS '1.5' is not an integer"),
        ("chr1\t0\t.\tA\tC\t.\tPASS\t.", "line 7: POS 0 must be >= 1"),
        ("chr1\t" + "9" * 5000 + "\t.\tA\tC\t.\tPASS\t.", "line 7: POS 9+... is too large"),
        ("chr1\t-4\t.\tA\tC\t.\tPASS\t.", "line 7: POS -4 must be >= 1"),
        ("\t4\t.\tA\tC\t.\tPASS\t.", "line 7: CHROM is empty"),
        ("chr1\t4\t.\tA\tC,G\t.\tPASS\tAC=1", "line 7: INFO AC has 1 values for 2 ALT alleles"),
        ("chr1\t4\t.\tA\tC\t.\tPASS\tAC=x", "line 7: INFO AC 'x' is not a count"),
        ("chr1\t4\t.\tA\tC\t.\tPASS\tAN=-2", "line 7: INFO AN '-2' is not a count"),
    ],
)
def test_malformed_records_are_one_line_errors_naming_the_line(tmp_path, text, message):
    with pytest.raises(SeqmodelInputError, match=message):
        list(VcfReader(vcf(tmp_path, [text])))


@pytest.mark.parametrize(
    "text, message",
    [
        ("", "empty file: not a VCF"),
        (
            "chr1\t5\t.\tA\tC\t.\tPASS\t.\n",
            "line 1: not a VCF: the first line must be '##fileformat=VCFv4.x'",
        ),
        ("##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\n", "line 2: the #CHROM line has 5"),
    ],
)
def test_files_that_are_not_vcf_are_errors(tmp_path, text, message):
    with pytest.raises(SeqmodelInputError, match=message):
        list(VcfReader(write(tmp_path / "x.vcf", text)))


def test_non_snv_alleles_are_skipped_and_counted_by_reason(tmp_path, caplog):
    rows = [
        "chr1\t10\t.\tACGT\tA\t.\tPASS\t.",  # indel (a deletion: not four marked bases)
        "chr1\t11\t.\tA\tATT\t.\tPASS\t.",  # indel
        "chr1\t12\t.\tA\t.\t.\tPASS\t.",  # ALT=.
        "chr1\t13\t.\tA\tC,G\t.\tPASS\tAC=1,2",  # multi-allelic: two SNVs
        "chr1\t14\t.\tA\tC,*\t.\tPASS\t.",  # an SNV and a * allele
        "chr1\t15\t.\tA\t<NON_REF>\t.\tPASS\t.",  # symbolic
        "chr1\t16\t.\tA\t<DEL>,<*>\t.\tPASS\t.",  # symbolic x2
        "chr1\t17\t.\tAC\tTG\t.\tPASS\t.",  # MNP
        "chr1\t18\t.\ta\tg\t.\tPASS\t.",  # lowercase: an SNV
        "chr1\t19\t.\tR\tA\t.\tPASS\t.",  # IUPAC REF
        "chr1\t20\t.\tN\tA\t.\tPASS\t.",  # N REF
        "chr1\t21\t.\tA\tN\t.\tPASS\t.",  # N ALT
        "chr1\t22\t.\tG\tG]chr1:5]\t.\tPASS\t.",  # breakend
        "chr1\t23\t.\tG\t.G\t.\tPASS\t.",  # single breakend
        "chr1\t24\t.\tT\tT\t.\tPASS\t.",  # ALT equals REF
        "chr1\t25\t.\tCA\tC,TA\t.\tPASS\tAC=4,6",  # padded multi-allelic: an indel and the SNV C>T
        "chr1\t27\t.\tACGT\tACGA\t.\tPASS\t.",  # equal lengths, one base differs: T>A at 30
        "chr1\t40\t.\tC\tA\t.\tq10\t.",  # filtered
    ]
    path = vcf(tmp_path, rows)
    with caplog.at_level(logging.INFO, logger="seqmodel.io.vcf"):
        snvs, skipped = read(path)
    assert [(pos + 1, ref, alt, carriers) for _, pos, ref, alt, carriers, _ in snvs] == [
        (13, "A", "C", 1),
        (13, "A", "G", 2),
        (14, "A", "C", 1),
        (18, "A", "G", 1),
        (25, "C", "T", 6),
        (30, "T", "A", 1),
    ]
    assert skipped == {
        "indel": 3,
        "ALT=.": 1,
        "* allele": 1,
        "symbolic": 3,
        "MNP": 1,
        "IUPAC/N REF": 2,
        "IUPAC/N ALT": 1,
        "breakend": 2,
        "ALT equals REF": 1,
        "filtered": 1,
    }
    assert (
        f"{path}: 6 SNVs read; alleles skipped: 1 * allele, 1 ALT equals REF, 1 ALT=., 1 IUPAC/N ALT, "
        "2 IUPAC/N REF, 1 MNP, 2 breakend, 1 filtered, 3 indel, 3 symbolic"
    ) in caplog.text


def test_filter_keeps_pass_and_dot_unless_asked_for_all(tmp_path):
    path = vcf(
        tmp_path,
        [
            "chr1\t1\t.\tA\tC\t.\tPASS\t.",
            "chr1\t2\t.\tA\tC\t.\t.\t.",
            "chr1\t3\t.\tA\tC,G\t.\tq10\t.",
            "chr1\t4\t.\tA\tC\t.\tq10;LowQual\t.",
        ],
    )
    kept, skipped = read(path)
    assert [s[1] for s in kept] == [0, 1] and skipped == {"filtered": 3}
    everything, skipped = read(path, keep_filtered=True)
    assert [s[1] for s in everything] == [0, 1, 2, 2, 3] and skipped == Counter()


def test_first_genomes_is_none_for_other_formats_and_unknown_counts(tmp_path):
    assert first_genomes(write(tmp_path / "m.bed", "chr1\t1\t2\n")) is None
    assert first_genomes(vcf(tmp_path, ["chr1\t1\t.\tA\tC\t.\tPASS\t."])) is None
    assert (
        first_genomes(vcf(tmp_path, ["chr1\t1\t.\tAT\tA\t.\tPASS\tAN=3", "chr1\t5\t.\tA\tC\t.\tPASS\tAN=8"]))
        == 8
    )


@pytest.mark.parametrize("name", ["out.vcf", "out.vcf.gz"])
def test_writer_round_trip(tmp_path, name):
    rows = [
        ("chr2", 9, "A", "C", 2),
        ("chr10", 4, "G", "T"),
        ("chr2", 9, "A", "C", 3),  # the same (site, ALT) again: carriers add up
        ("chr2", 9, "A", "G", 1),
        Snv("chr2", 0, "T", "A", 5),
    ]
    path = tmp_path / name
    assert write_vcf(path, rows, {"chr2": 100, "chr10": None}, "test run", genomes=12) == 4
    text = gzip.open(path, "rt").read() if name.endswith(".gz") else path.read_text()
    assert text.splitlines()[:7] == [
        "##fileformat=VCFv4.2",
        "##source=test run",
        "##contig=<ID=chr10>",
        "##contig=<ID=chr2,length=100>",
        '##INFO=<ID=AC,Number=A,Type=Integer,Description="Carriers of the ALT allele">',
        '##INFO=<ID=AN,Number=1,Type=Integer,Description="Genomes">',
        COLUMNS,
    ]
    snvs = list(VcfReader(path))
    # Sorted by contig name in byte order ("chr10" < "chr2"), then POS, then ALT.
    assert [(s.chrom, s.pos, s.ref, s.alt, s.carriers, s.genomes) for s in snvs] == [
        ("chr10", 4, "G", "T", 1, 12),
        ("chr2", 0, "T", "A", 5, 12),
        ("chr2", 9, "A", "C", 5, 12),
        ("chr2", 9, "A", "G", 1, 12),
    ]
    write_vcf(tmp_path / "v43.vcf", rows, ["chr2", "chr10"], "x", version="4.3")
    assert (tmp_path / "v43.vcf").read_text().startswith("##fileformat=VCFv4.3\n")
    assert "AN=" not in (tmp_path / "v43.vcf").read_text()


def test_writer_rejects_what_is_not_an_snv_on_a_listed_contig(tmp_path):
    with pytest.raises(ValueError, match="not among the contigs"):
        write_vcf(tmp_path / "o.vcf", [("chr3", 1, "A", "C")], ["chr1"], "x")
    with pytest.raises(ValueError, match="not an SNV"):
        write_vcf(tmp_path / "o.vcf", [("chr1", 1, "A", "A")], ["chr1"], "x")
    assert not (tmp_path / "o.vcf").exists()


def test_vcf_gz_output_is_bgzf_and_tabix_indexes_it(tmp_path):
    path = tmp_path / "out.vcf.gz"
    rows = [("chr1", i * 2, "A", "G", i % 5 + 1) for i in range(60_000)]  # several BGZF blocks
    write_vcf(path, rows, {"chr1": 200_000}, "test", genomes=10)
    data = path.read_bytes()
    assert is_bgzf_header(data[:18]) and data.endswith(BGZF_EOF)
    assert len(list(VcfReader(path))) == 60_000
    if shutil.which("tabix") is None:
        pytest.skip("tabix is not on PATH (apt-get install tabix): BGZF checked, indexing not")
    subprocess.run(["tabix", "-p", "vcf", str(path)], check=True, capture_output=True)
    assert Path(f"{path}.tbi").exists()
    found = subprocess.run(
        ["tabix", str(path), "chr1:100001-100003"], check=True, capture_output=True, text=True
    ).stdout
    assert found == "chr1\t100001\t.\tA\tG\t.\tPASS\tAC=1;AN=10\nchr1\t100003\t.\tA\tG\t.\tPASS\tAC=2;AN=10\n"


VALID = (
    HEADER
    + COLUMNS
    + "\tFORMAT\tS1\tS2\n"
    + "chr1\t5\t.\tA\tG,T\t.\tPASS\tAC=1,1;AN=4\tGT:DP\t0/1:3\t2|0\n"
    + "chr1\t9\t.\tCA\tC,TA\t20\tq10\t.\tGT\t1/2\t.\n"
    + "chr2\t3\t.\tg\t<NON_REF>\t.\t.\t.\tGT\t./.\t0\n"
).encode()


def _parse_or_input_error(path: Path) -> None:
    try:
        for keep_filtered in (False, True):
            list(VcfReader(path, keep_filtered=keep_filtered))
    except SeqmodelInputError as error:
        assert "\n" not in str(error)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300), st.sampled_from([None, "gzip", "bgzf"]))
def test_arbitrary_bytes_parse_or_raise_input_error(tmp_path_factory, content, compress):
    folder = tmp_path_factory.mktemp("fuzz")
    _parse_or_input_error(write(folder / "f.vcf", content, compress))
    _parse_or_input_error(write(folder / "g.vcf", b"##fileformat=VCFv4.2\n" + content, compress))


MUTATION = st.tuples(
    st.integers(min_value=0, max_value=len(VALID) - 1),
    st.sampled_from(["replace", "insert", "delete"]),
    st.sampled_from(list(b"\t\n\r,.;:/|=-0123456789ACGTN<>*[]#") + [0x00, 0xC3, 0xE9, 0xFF]),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(MUTATION, min_size=1, max_size=8), st.sampled_from([None, "gzip", "bgzf"]), st.floats(0, 1))
def test_mutated_valid_vcf_parses_or_raises_input_error(tmp_path_factory, mutations, compress, keep):
    data = bytearray(VALID)
    for at, how, byte in mutations:
        at = min(at, len(data) - 1)
        if how == "replace":
            data[at] = byte
        elif how == "insert":
            data.insert(at, byte)
        elif len(data) > 1:
            del data[at]
    folder = tmp_path_factory.mktemp("fuzz")
    path = write(folder / "m.vcf.gz", bytes(data), compress)
    if compress is not None and keep < 1:  # also cut the compressed stream short
        path.write_bytes(path.read_bytes()[: int(len(path.read_bytes()) * keep)])
    _parse_or_input_error(path)


def test_a_bgzf_file_without_its_end_block_is_read_with_a_warning(tmp_path, caplog):
    data = vcf(tmp_path, ["chr1\t2\t.\tA\tT\t.\tPASS\t."], name="whole.vcf.gz", compress="bgzf").read_bytes()
    assert data.endswith(BGZF_EOF)
    path = write(tmp_path / "cut.vcf.gz", data[: -len(BGZF_EOF)])  # cut at a block boundary
    with caplog.at_level(logging.WARNING, logger="seqmodel.io.text"):
        assert len(list(VcfReader(path))) == 1
    assert f"{path}: BGZF file without its end-of-file block; it may be truncated" in caplog.text
