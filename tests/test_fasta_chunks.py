"""The streaming FASTA parser: chunks, whole records and the one-array store agree for any chunking,
format and runtime; BGZF block indexes; the errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from Bio import bgzf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seqmodel.errors import SeqmodelInputError
from seqmodel.io import alphabet
from seqmodel.io.bgzf import bgzf_blocks, inflate_members
from seqmodel.io.fasta import load_fasta, load_fasta_tokens, read_fasta_chunks
from seqmodel.io.genome import Genome
from seqmodel.runtime import Runtime
from tests.conftest import random_dna


@pytest.fixture(scope="module")
def runtime():
    with Runtime(cpu_workers=2, io_workers=1) as rt:
        yield rt


def write_fasta(path: Path, records: dict[str, str], width: int = 60, fmt: str = "plain", crlf=False) -> Path:
    end = "\r\n" if crlf else "\n"
    text = "".join(
        f">{header}{end}" + "".join(seq[i : i + width] + end for i in range(0, len(seq), width))
        for header, seq in records.items()
    ).encode()
    if fmt == "gzip":
        path.write_bytes(gzip.compress(text))
    elif fmt == "bgzf":
        with bgzf.BgzfWriter(path, "wb") as handle:
            handle.write(text)
    else:
        path.write_bytes(text)
    return path


def joined(chunks) -> dict[str, np.ndarray]:
    records: dict[str, list[np.ndarray]] = {}
    for chunk in chunks:
        parts = records.setdefault(chunk.record_id, [])
        assert chunk.offset == sum(len(p) for p in parts) and len(chunk) > 0
        parts.append(chunk.tokens)
        if chunk.last:
            records[chunk.record_id] = np.concatenate(parts)
    return records


RECORDS = st.dictionaries(
    st.text("abcdefgh", min_size=1, max_size=6),
    st.text("ACGTNacgtRY", min_size=1, max_size=400),
    min_size=1,
    max_size=6,
)


def expected_tokens(records: dict[str, str]) -> dict[str, np.ndarray]:
    return {header.split()[0]: alphabet.encode(seq) for header, seq in records.items()}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    RECORDS,
    st.integers(1, 80),
    st.integers(1, 300),
    st.sampled_from(["plain", "gzip", "bgzf"]),
    st.booleans(),
)
def test_chunks_records_and_store_hold_the_sequences(
    tmp_path, runtime, records, width, chunk_bytes, fmt, crlf
):
    records = {f"{k} label=1": v for k, v in records.items()}
    path = write_fasta(tmp_path / f"x.{fmt}.fa", records, width, fmt, crlf)
    expected = expected_tokens(records)
    for rt in (None, runtime):
        for got in (
            joined(read_fasta_chunks(path, chunk_bytes, runtime=rt, prefetch=3)),
            {r.id: r.tokens for r in load_fasta(path, runtime=rt)},
        ):
            assert list(got) == list(expected)
            for key in expected:
                np.testing.assert_array_equal(got[key], expected[key])
        store = load_fasta_tokens(path, runtime=rt, chunk_bytes=chunk_bytes)
        assert store.ids == list(expected)
        np.testing.assert_array_equal(store.tokens, np.concatenate(list(expected.values())))
        assert store.lengths.tolist() == [len(t) for t in expected.values()]
        assert [r.fields for r in store.records()] == [{"label": "1"}] * len(expected)
        assert store.descriptions == list(records)


def test_one_long_line_streams_in_bounded_chunks(tmp_path, runtime):
    seq = random_dna(np.random.default_rng(1), 50_000)
    path = write_fasta(tmp_path / "long.fa", {"chr1 note": seq}, width=10**6)
    chunks = list(read_fasta_chunks(path, chunk_bytes=4096, runtime=runtime))
    assert len(chunks) > 10 and max(len(c) for c in chunks) <= 4096
    assert chunks[-1].last and not any(c.last for c in chunks[:-1])
    assert chunks[0].description == "chr1 note"
    np.testing.assert_array_equal(np.concatenate([c.tokens for c in chunks]), alphabet.encode(seq))


def test_bgzf_blocks_are_found_with_and_without_gzi(tmp_path, runtime, caplog):
    seq = random_dna(np.random.default_rng(2), 300_000)
    path = write_fasta(tmp_path / "g.fa.gz", {"a": seq, "b": seq[:1000]}, fmt="bgzf")
    walked = bgzf_blocks(path)
    assert walked is not None and len(walked) > 3 and walked[0].tolist() == [0, 0]
    raw = path.read_bytes()
    for (lo, out), (hi, next_out) in zip(walked, walked[1:], strict=False):
        assert len(inflate_members(raw[lo:hi])) == next_out - out  # uncompressed offsets are right
    assert bgzf_blocks(write_fasta(tmp_path / "p.fa.gz", {"a": "ACGT"}, fmt="gzip")) is None
    assert bgzf_blocks(write_fasta(tmp_path / "p.fa", {"a": "ACGT"})) is None

    gzi = tmp_path / "g.fa.gz.gzi"  # as bgzip -r writes it: the count, then every block but the first
    gzi.write_bytes(np.concatenate([[len(walked) - 1], walked[1:].ravel()]).astype("<u8").tobytes())
    np.testing.assert_array_equal(bgzf_blocks(path), walked)
    got = joined(read_fasta_chunks(path, chunk_bytes=20_000, runtime=runtime))
    np.testing.assert_array_equal(got["a"], alphabet.encode(seq))
    Path(f"{path}.fai").write_text(f"a\t300000\t3\t60\t61\nb\t1000\t{3 + 305_000 + 3}\t60\t61\n")
    np.testing.assert_array_equal(Genome(path).fetch("b", 10, 990), alphabet.encode(seq[10:990]))

    stale = walked[1:].copy()
    stale[-1, 0] += 7  # a block start that is no block start
    gzi.write_bytes(np.concatenate([[len(stale)], stale.ravel()]).astype("<u8").tobytes())
    for read in (bgzf_blocks, Genome, lambda p: list(read_fasta_chunks(p))):
        with pytest.raises(SeqmodelInputError, match=r"g.fa.gz.gzi: does not match its BGZF file"):
            read(path)
    gzi.write_bytes(b"\x01" * 12)
    with pytest.raises(SeqmodelInputError, match="not a BGZF index"):
        bgzf_blocks(path)

    assert "truncated" not in caplog.text
    cut = write_fasta(tmp_path / "cut.fa.gz", {"a": seq}, fmt="bgzf")
    cut.write_bytes(raw[: int(walked[3, 0])])  # cut at a block boundary: inflates cleanly
    assert len(joined(read_fasta_chunks(cut))["a"]) < len(seq)
    assert "cut.fa.gz: BGZF file without its end-of-file block; it may be truncated" in caplog.text


@pytest.mark.parametrize("fmt", ["plain", "gzip", "bgzf"])
@pytest.mark.parametrize("use_runtime", [False, True])
def test_bad_base_error_names_file_record_and_position_like_read_fasta(tmp_path, runtime, fmt, use_runtime):
    records = {f"r{i}": random_dna(np.random.default_rng(i), 300) for i in range(5)}
    records["r3"] = records["r3"][:123] + "X" + records["r3"][124:]
    path = write_fasta(tmp_path / f"bad.{fmt}", records, fmt=fmt)
    with pytest.raises(SeqmodelInputError) as expected:
        load_fasta(path)
    with pytest.raises(SeqmodelInputError) as got:
        list(read_fasta_chunks(path, chunk_bytes=256, runtime=runtime if use_runtime else None))
    assert (
        str(got.value)
        == str(expected.value)
        == f"{path}:record 4 (r3): character 'X' at position 124 is not a DNA/IUPAC code"
    )


@pytest.mark.parametrize(
    "text, message",
    [
        (b">a\nACGT\n>a\nACGT\n", "record 2 (a): duplicate record id 'a'"),
        (b">a\nACGT\n>b\n>c\nAC\n", "record 2 (b): header with no sequence"),
        (b"ACGT\n>a\nAC\n", "line 1: not FASTA: expected a '>' header line"),
        (b"\n \nACGT\n>a\nAC\n", "line 3: not FASTA: expected a '>' header line"),
        (b"\n\n", "no FASTA records"),
        (b">\nACGT\n", "record 1 (no id): header has no sequence id"),
        (b">a\nAC>GT\n", "record 1 (a): character '>' at position 3 is not a DNA/IUPAC code"),
        (
            b">a\nAC\xff\xfe\n",
            "record 1 (a): not a text FASTA file (binary content: byte 0xff at position 3)",
        ),
        (b">a\xe9\nAC\n", "byte 0: not a text FASTA file (binary content)"),
        (bytes(range(256)) * 2, "byte 0: not a text FASTA file (binary content)"),
    ],
)
def test_malformed_fasta_errors_name_the_record_whatever_the_chunking(tmp_path, runtime, text, message):
    path = tmp_path / "m.fa"
    path.write_bytes(text)
    errors = set()
    for rt in (None, runtime):
        for chunk_bytes in (3, 1 << 20):
            with pytest.raises(SeqmodelInputError) as got:
                load_fasta_tokens(path, runtime=rt, chunk_bytes=chunk_bytes)
            errors.add(str(got.value))
    assert len(errors) == 1 and message in errors.pop()


def test_truncated_gzip_is_an_input_error_from_the_read_task(tmp_path, runtime):
    seq = random_dna(np.random.default_rng(3), 100_000)
    path = write_fasta(tmp_path / "t.fa.gz", {"a": seq}, fmt="gzip")
    path.write_bytes(path.read_bytes()[:-5000])
    for rt in (None, runtime):
        with pytest.raises(SeqmodelInputError, match="corrupt or truncated gzip"):
            list(read_fasta_chunks(path, chunk_bytes=8192, runtime=rt))
