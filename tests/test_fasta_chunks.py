"""Streaming FASTA chunks: equal to the whole-file reader for any chunking, format and runtime."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from Bio import bgzf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seqmodel.data import alphabet
from seqmodel.io.fasta import load_fasta
from seqmodel.io.fasta_chunks import FastaWindows, bgzf_block_starts, read_fasta_chunks
from seqmodel.errors import SeqmodelInputError
from seqmodel.runtime import Runtime
from tests.conftest import random_dna

TIMEOUT = 30.0


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


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    RECORDS,
    st.integers(1, 80),
    st.integers(1, 300),
    st.sampled_from(["plain", "gzip", "bgzf"]),
    st.booleans(),
)
def test_chunks_equal_the_whole_file_reader(tmp_path, runtime, records, width, chunk_bytes, fmt, crlf):
    path = write_fasta(
        tmp_path / f"x.{fmt}.fa", {f"{k} label=1": v for k, v in records.items()}, width, fmt, crlf
    )
    expected = {r.id: r.tokens for r in load_fasta(path)}
    for got in (
        joined(read_fasta_chunks(path, chunk_bytes)),
        joined(read_fasta_chunks(path, chunk_bytes, runtime=runtime, prefetch=3)),
    ):
        assert list(got) == list(expected)
        for key in expected:
            np.testing.assert_array_equal(got[key], expected[key])


def test_one_long_line_streams_in_bounded_chunks(tmp_path, runtime):
    seq = random_dna(np.random.default_rng(1), 50_000)
    path = write_fasta(tmp_path / "long.fa", {"chr1 note": seq}, width=10**6)
    chunks = list(read_fasta_chunks(path, chunk_bytes=4096, runtime=runtime))
    assert len(chunks) > 10 and max(len(c) for c in chunks) <= 4096
    assert chunks[-1].last and not any(c.last for c in chunks[:-1])
    assert chunks[0].description == "chr1 note"
    np.testing.assert_array_equal(np.concatenate([c.tokens for c in chunks]), alphabet.encode(seq))


def test_bgzf_blocks_are_found_with_and_without_gzi(tmp_path, runtime):
    seq = random_dna(np.random.default_rng(2), 300_000)
    path = write_fasta(tmp_path / "g.fa.gz", {"a": seq, "b": seq[:1000]}, fmt="bgzf")
    starts = bgzf_block_starts(path)
    assert starts is not None and len(starts) > 3 and starts[0] == 0
    assert bgzf_block_starts(write_fasta(tmp_path / "p.fa.gz", {"a": "ACGT"}, fmt="gzip")) is None
    got = joined(read_fasta_chunks(path, chunk_bytes=20_000, runtime=runtime))
    np.testing.assert_array_equal(got["a"], alphabet.encode(seq))


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
        (b"\n\n", "no FASTA records"),
        (b">\nACGT\n", "record 1 (no id): header has no sequence id"),
        (b">a\nAC>GT\n", "record 1 (a): character '>' at position 3 is not a DNA/IUPAC code"),
    ],
)
def test_malformed_fasta_errors_match_read_fasta(tmp_path, runtime, text, message):
    path = tmp_path / "m.fa"
    path.write_bytes(text)
    with pytest.raises(SeqmodelInputError) as expected:
        load_fasta(path)
    for rt in (None, runtime):
        with pytest.raises(SeqmodelInputError) as got:
            list(read_fasta_chunks(path, chunk_bytes=3, runtime=rt))
        assert message in str(got.value) and str(got.value) == str(expected.value)


def test_truncated_gzip_is_an_input_error_from_the_read_task(tmp_path, runtime):
    seq = random_dna(np.random.default_rng(3), 100_000)
    path = write_fasta(tmp_path / "t.fa.gz", {"a": seq}, fmt="gzip")
    path.write_bytes(path.read_bytes()[:-5000])
    for rt in (None, runtime):
        with pytest.raises(SeqmodelInputError, match="corrupt or truncated gzip"):
            list(read_fasta_chunks(path, chunk_bytes=8192, runtime=rt))


def test_windows_read_straight_from_an_indexed_fasta(tmp_path, runtime):
    records = {
        "chr1": random_dna(np.random.default_rng(4), 5000),
        "chr2": random_dna(np.random.default_rng(5), 3000),
    }
    path = write_fasta(tmp_path / "w.fa", records, width=60)
    offset, lines = 0, []
    for name, seq in records.items():
        offset += len(f">{name}\n")
        lines.append(f"{name}\t{len(seq)}\t{offset}\t60\t61\n")
        offset += len(seq) + -(-len(seq) // 60)
    Path(f"{path}.fai").write_text("".join(lines))
    windows = [("chr1", 0), ("chr2", 2000), ("chr1", 4000), ("chr1", 59), ("chr2", 61)]
    with FastaWindows(path, window=1000) as reader:
        tokens = reader.tokenize_rows(reader.read_rows(windows))
        groups = [[windows, windows[::-1]], [np.array([(0, 10), (1, 1999)])]]
        done = runtime.ordered_map(reader.batches_task(runtime), groups, timeout=TIMEOUT)
        batches = [batch for group in done for batch in group]
    for row, (name, start) in enumerate(windows):
        np.testing.assert_array_equal(tokens[row], alphabet.encode(records[name][start : start + 1000]))
    np.testing.assert_array_equal(batches[0], tokens)
    np.testing.assert_array_equal(batches[1], tokens[::-1])
    np.testing.assert_array_equal(batches[2][1], alphabet.encode(records["chr2"][1999:2999]))
    with pytest.raises(SeqmodelInputError, match="window 2500-3500 outside the record"):
        reader.read_rows([("chr2", 2500)])
