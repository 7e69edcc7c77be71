"""The streaming FASTA parser: chunks, whole records and the one-array store agree for any chunking,
format and runtime; BGZF block indexes; the errors."""

from __future__ import annotations

import gzip
import importlib.util
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from Bio import bgzf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seqmodel.errors import SeqmodelInputError
from seqmodel.io import alphabet
from seqmodel.io.bgzf import bgzf_blocks, inflate_members
from seqmodel.io.fasta import (
    _PlainBlocks,
    _raw_blocks,
    fasta_window_tokens,
    load_fasta,
    load_fasta_tokens,
    read_fasta_chunks,
)
from seqmodel.io.genome import Genome
from seqmodel.io.remote import LocalReader
from seqmodel.runtime import Runtime
from tests.conftest import random_dna
from tests.range_server import RangeServer


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


def most_reads_at_once(runtime: Runtime, name: str) -> int:
    """The most `read <name>` tasks the runtime's tracer saw running at the same time."""
    edges = sorted(
        edge
        for _, task, _, _, start, end, *_ in runtime.tracer.spans
        if task.startswith(f"read {name} ")
        for edge in ((start, 1), (end, -1))
    )
    running = most = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    return most


@pytest.mark.parametrize("fmt", ["plain", "gzip"])
def test_read_ahead_deepens_while_reads_are_slow_and_chunks_stay_the_same(tmp_path, fmt):
    seq = random_dna(np.random.default_rng(2), 400_000)
    path = write_fasta(tmp_path / f"slow.{fmt}.fa", {"chr1": seq[:150_000], "chr2": seq[150_000:]}, fmt=fmt)
    local = list(read_fasta_chunks(path, chunk_bytes=8192))
    with RangeServer(tmp_path, latency=0.01) as server:
        with Runtime(cpu_workers=1, io_workers=1, max_io_workers=16, trace=True) as rt:
            chunks = list(read_fasta_chunks(server.url(path.name), chunk_bytes=8192, runtime=rt, prefetch=2))
            reads_at_once = most_reads_at_once(rt, path.name)
    where = [(c.record_id, c.offset, c.last) for c in chunks]
    assert where == [(c.record_id, c.offset, c.last) for c in local]
    assert all(np.array_equal(a.tokens, b.tokens) for a, b in zip(chunks, local, strict=True))
    if fmt == "plain":
        assert reads_at_once > 2  # deeper than prefetch=2: a URL starts at the read-ahead limit
    else:
        assert reads_at_once == 1  # a gzip stream is inflated in a chain, however slow


class SlowDisk(LocalReader):
    """A local file on a disk that answers each read after 10 ms (a network file system)."""

    def pread(self, size: int, offset: int) -> bytes:
        time.sleep(0.01)
        return super().pread(size, offset)


def test_a_local_files_read_ahead_doubles_while_the_consumer_waits(tmp_path):
    seq = random_dna(np.random.default_rng(3), 200_000)
    path = write_fasta(tmp_path / "nfs.fa", {"chr1": seq}, fmt="plain")
    with Runtime(cpu_workers=1, io_workers=1, max_io_workers=16, trace=True) as rt:
        blocks = list(_raw_blocks(_PlainBlocks(SlowDisk(path), 8192), rt, 2, 8192, path.name))
        reads_at_once = most_reads_at_once(rt, path.name)
    assert b"".join(blocks) == path.read_bytes()
    assert reads_at_once > 2  # it started 2 deep; a local disk that answers fast stays there


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


# --- fused window gathering: numba and numpy give the same tokens as slicing the records ----


def write_mixed_fasta(path: Path, records: dict[str, tuple[str, int]], crlf: bool = False) -> list[tuple]:
    """Records with their own line widths (CRLF line ends when asked), no newline at the very end;
    returns the .fai fields (name, length, offset, line bases, line bytes)."""
    end = b"\r\n" if crlf else b"\n"
    text, fai = b"", []
    for name, (seq, width) in records.items():
        text += f">{name}".encode() + end
        fai.append((name, len(seq), len(text), width, width + len(end)))
        text += end.join(seq[i : i + width].encode() for i in range(0, len(seq), width)) + end
    path.write_bytes(text[: -len(end)])
    return fai


@pytest.mark.parametrize("crlf", [False, True])
def test_fused_fasta_windows_equal_record_slices_with_numba_and_numpy(tmp_path, crlf):
    pytest.importorskip("numba")
    rng = np.random.default_rng(5)
    seqs = {
        "a": (random_dna(rng, 900).lower() + "NNNNRYKM" + random_dna(rng, 700), 60),
        "b": (random_dna(rng, 333), 7),
        "c": (random_dna(rng, 1001) + "nnnn" + random_dna(rng, 95), 61),
        "d": (random_dna(rng, 250), 250),  # one line; the file's last record, no final newline
    }
    fai = write_mixed_fasta(tmp_path / "x.fa", seqs, crlf)
    raw = np.memmap(tmp_path / "x.fa", dtype=np.uint8, mode="r")
    arrays = tuple(np.array([f[i] for f in fai], dtype=np.int64) for i in (2, 1, 3, 4))
    for window in (1, 50, 250):
        for seed in range(4):
            pick = np.random.default_rng(seed)
            records = pick.integers(0, len(fai), 300)
            starts = np.array([pick.integers(0, fai[r][1] - window + 1) for r in records])
            starts[:4] = [fai[r][1] - window for r in records[:4]]  # records' (and the file's) last bases
            expected = np.stack(
                [
                    alphabet.encode(seqs[fai[r][0]][0][s : s + window])
                    for r, s in zip(records, starts, strict=True)
                ]
            )
            for engine in ("numba", "numpy"):
                tokens, problem = fasta_window_tokens(raw, records, starts, arrays, window, engine)
                assert problem == -1, engine
                np.testing.assert_array_equal(
                    tokens, expected, err_msg=f"{engine} window {window} seed {seed}"
                )


def test_fused_fasta_windows_report_the_first_bad_window(tmp_path):
    pytest.importorskip("numba")
    fai = write_mixed_fasta(tmp_path / "x.fa", {"a": ("ACGT" * 30, 60), "b": ("ACGTXACGT" + "A" * 100, 60)})
    raw = np.memmap(tmp_path / "x.fa", dtype=np.uint8, mode="r")
    arrays = tuple(np.array([f[i] for f in fai], dtype=np.int64) for i in (2, 1, 3, 4))
    for engine in ("numba", "numpy"):
        cases = [
            ([0, 0, 1], [0, 100, 0], 2),  # byte X in window 2
            ([0, 0, 0], [0, 111, 5], 1),  # window 1 runs past its record
            ([0, 2], [0, 0], 1),  # no record 2
            ([0, 1, 0], [-1, 0, 0], 0),
        ]
        for records, starts, bad in cases:
            tokens, problem = fasta_window_tokens(
                raw, np.array(records), np.array(starts), arrays, 10, engine
            )
            assert problem == bad, (engine, records, starts)
            if bad == 2:
                assert tokens[2, 4] == alphabet.INVALID


@pytest.fixture(scope="module")
def bench_loader():
    path = Path(__file__).resolve().parents[1] / "scripts" / "bench_loader.py"
    spec = importlib.util.spec_from_file_location("bench_loader", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


def test_bench_fused_fasta_batches_equal_the_two_task_path(tmp_path, bench_loader):
    """The benchmark's fused pass (numba and numpy) gives the batches of its older read + tokenize."""
    pytest.importorskip("numba")
    plain = tmp_path / "genome.fa"
    records = bench_loader.write_plain(None, 250_000, plain, seed=3)
    for seed in (0, 1, 2):
        pairs, _ = bench_loader.window_batches(records, 1000, 64, seed)
        for engine in ("numba", "numpy"):
            with bench_loader.FastaWindows(plain, 1000, engine) as reader:
                rows = np.array([(reader.number[n], s) for n, s in pairs], dtype=np.int64)
                for i in range(0, len(pairs), 64):
                    old = reader.tokenize_rows(reader.read_rows(pairs[i : i + 64]))
                    np.testing.assert_array_equal(reader.tokens(rows[i : i + 64]), old)
                    np.testing.assert_array_equal(reader.tokens(pairs[i : i + 64]), old)
            with bench_loader.FastaWindows(plain, 1000, engine) as reader, pytest.raises(SeqmodelInputError):
                reader.tokens([(pairs[0][0], 10**9)])
