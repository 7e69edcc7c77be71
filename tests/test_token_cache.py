"""The token cache: built once per source file, memory-mapped, equal to the parsed FASTA."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import numpy as np
import pytest

from seqmodel.data.dataset import load_dataset
from seqmodel.data.token_cache import cache_directory, open_token_cache
from seqmodel.errors import SeqmodelInputError
from seqmodel.io.fasta import load_fasta
from seqmodel.runtime import Runtime
from tests.conftest import TINY_MODEL, random_dna
from tests.test_fasta_chunks import write_fasta


@pytest.mark.parametrize("fmt", ["plain", "gzip", "bgzf"])
def test_cache_holds_the_parsed_tokens_and_is_built_once(tmp_path, fmt):
    rng = np.random.default_rng(0)
    records = {f"r{i} label={i % 2}": random_dna(rng, int(rng.integers(1, 3000))) for i in range(30)}
    path = write_fasta(tmp_path / f"x.{fmt}", records, fmt=fmt)
    with Runtime(cpu_workers=2, io_workers=1) as rt:
        cache = open_token_cache(path, tmp_path / "cache", runtime=rt, chunk_bytes=4096)
    assert isinstance(cache.tokens, np.memmap) and not cache.tokens.flags.writeable
    expected = load_fasta(path)
    assert cache.ids == [r.id for r in expected]
    for i, record in enumerate(expected):
        np.testing.assert_array_equal(cache.record(i), record.tokens)
    assert [r.fields for r in cache.records()] == [r.fields for r in expected]

    starts = np.array([0, 5, int(cache.offsets[3]) + 2])
    np.testing.assert_array_equal(cache.windows(starts, 100)[2], cache.tokens[starts[2] : starts[2] + 100])

    built = os.stat(cache.directory / "tokens.u8").st_mtime_ns
    again = open_token_cache(path, tmp_path / "cache")  # no runtime needed: nothing to build
    assert again.directory == cache.directory and os.stat(again.directory / "tokens.u8").st_mtime_ns == built

    os.utime(path, ns=(built + 10**9, built + 10**9))  # an edited source gets a new cache
    assert cache_directory(path, tmp_path / "cache") != cache.directory


def test_concurrent_openers_build_one_cache(tmp_path):
    path = write_fasta(tmp_path / "c.fa", {"a": random_dna(np.random.default_rng(1), 20000), "b": "ACGT"})
    caches, errors = [], []

    def open_it():
        try:
            caches.append(open_token_cache(path, tmp_path / "cache", chunk_bytes=1000))
        except Exception as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and len({c.directory for c in caches}) == 1
    assert [p.name for p in (tmp_path / "cache").iterdir() if not p.name.endswith(".lock")] == [
        caches[0].directory.name
    ]


def test_dataset_from_the_cache_equals_the_parsed_dataset(tmp_path, small_fasta):
    parsed = load_dataset(small_fasta)
    with Runtime(cpu_workers=1, io_workers=1) as rt:
        cached = load_dataset(small_fasta, token_cache=tmp_path / "cache", runtime=rt)
    assert cached.ids == parsed.ids and cached.classes == parsed.classes
    np.testing.assert_array_equal(cached.tokens, parsed.tokens)
    np.testing.assert_array_equal(cached.offsets, parsed.offsets)
    np.testing.assert_array_equal(cached.labels, parsed.labels)


def test_bad_base_inside_a_cache_task_exits_with_one_line(tmp_path):
    rng = np.random.default_rng(2)
    records = {f"r{i}": random_dna(rng, 250) for i in range(12)}
    records["r7"] = records["r7"][:40] + "Z" + records["r7"][41:]
    fasta = write_fasta(tmp_path / "bad.fa", records)
    with pytest.raises(SeqmodelInputError) as expected:
        load_fasta(fasta)
    with Runtime(cpu_workers=1, io_workers=1) as rt, pytest.raises(SeqmodelInputError) as got:
        open_token_cache(fasta, tmp_path / "c", runtime=rt)
    assert str(got.value) == str(expected.value)
    assert "cache bad.fa" in str(got.value.__cause__)  # it came out of the cache-building task

    command = [
        sys.executable, "-m", "seqmodel.train", f"hydra.run.dir={tmp_path / 'run'}", *TINY_MODEL,
        f"data.fasta={fasta}", "data.mutations=null", "data.true_rate=null",
        f"data.token_cache={tmp_path / 'cache'}", "logger=none", "trainer.max_epochs=1",
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == f"error: {expected.value}"
    assert "Traceback" not in result.stderr
