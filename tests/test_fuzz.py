"""Whatever the bytes, the readers either parse or raise the package's input error."""

from __future__ import annotations

import gzip
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seqmodel.data.targets import mutation_targets, track_values
from seqmodel.errors import SeqmodelInputError
from seqmodel.io.alphabet import encode
from seqmodel.io.fasta import FastaRecord, load_fasta, read_fasta_chunks

FASTA_PIECES = st.lists(
    st.sampled_from(
        [
            b">",
            b">r1",
            b">r2 label=1",
            b"\n",
            b"\r\n",
            b"ACGT",
            b"acgtn",
            b"RYK",
            b"X",
            b" ",
            b"\x00",
            b"\xff",
        ]
    ),
    max_size=30,
).map(b"".join)
MUTATION_PIECES = st.tuples(
    st.sampled_from(
        [b"", b"##fileformat=VCFv4.2\n", b"##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\n"]
    ),
    st.lists(
        st.sampled_from(
            [
                b"#",
                b"r1",
                b"r2",
                b"chrZ",
                b"\t",
                b"\n",
                b"1",
                b"0",
                b"-3",
                b"5",
                b"A",
                b"C",
                b"AC=2",
                b",",
                b".",
                b"x",
                b"\xff",
            ]
        ),
        max_size=40,
    ),
).map(lambda parts: parts[0] + b"".join(parts[1]))
RECORDS = [FastaRecord("r1", "r1", encode("ACGTACGTAC"), 0), FastaRecord("r2", "r2", encode("GGGTTTAAAC"), 1)]


def write(content: bytes, name: str, compress: bool = False) -> Path:
    path = Path(tempfile.mkdtemp()) / name
    path.write_bytes(gzip.compress(content) if compress else content)
    return path


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(FASTA_PIECES, st.binary(max_size=200)), st.booleans())
def test_fasta_readers_parse_or_raise_input_error(content, compress):
    path = write(content, "x.fa.gz" if compress else "x.fa", compress)
    parsed = []
    for read in (load_fasta, lambda p: list(read_fasta_chunks(p))):
        try:
            parsed.append(read(path))
        except SeqmodelInputError:
            parsed.append(None)
    records, chunks = parsed
    # Both readers accept the same files, with the same sequences.
    assert (records is None) == (chunks is None)
    if records is not None:
        joined: dict[str, list] = {}
        for chunk in chunks:
            joined.setdefault(chunk.record_id, []).extend(chunk.tokens.tolist())
        assert {r.id: r.tokens.tolist() for r in records} == joined


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(MUTATION_PIECES, st.binary(max_size=200)),
    st.sampled_from(["m.vcf", "m.bed", "m.bedgraph", "m.txt"]),
)
def test_mutation_and_track_readers_parse_or_raise_input_error(content, name):
    path = write(content, name)
    try:
        if name == "m.bedgraph":
            track_values(path, RECORDS)
        else:
            mutation_targets(path, RECORDS)
    except SeqmodelInputError:
        pass
