"""Inputs at URLs: ranged reads over a real local HTTP server (with latency) give what local files give."""

from __future__ import annotations

import shutil
import time
import urllib.error
import urllib.request
from itertools import islice
from pathlib import Path

import numpy as np
import pytest

from seqmodel.config import DEMO_DATA_DIR
from seqmodel.data.datamodule import SeqDataModule
from seqmodel.data.token_cache import open_token_cache
from seqmodel.errors import SeqmodelInputError
from seqmodel.io import remote
from seqmodel.io.bgzf import bgzf_blocks
from seqmodel.io.fasta import load_fasta_tokens, read_fasta_chunks
from seqmodel.io.genome import Genome
from seqmodel.runtime import Runtime
from tests.range_server import RangeServer
from tests.test_predict import read_bedgraph, run_predict

FASTA = DEMO_DATA_DIR / "ctcf_demo.fa.gz"
MUTATIONS = DEMO_DATA_DIR / "ctcf_demo.mutations.vcf.gz"


def write_gzi(path: Path) -> None:
    """A samtools-style `.gzi` beside a BGZF file (its first block, 0 / 0, left out)."""
    rows = bgzf_blocks(path)[1:].astype("<u8")
    (Path(f"{path}.gzi")).write_bytes(np.array([len(rows)], dtype="<u8").tobytes() + rows.tobytes())


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("served")
    shutil.copy(FASTA, folder / "x.fa.gz")
    shutil.copy(MUTATIONS, folder / "x.vcf.gz")
    write_gzi(folder / "x.fa.gz")
    with RangeServer(folder, latency=0.002) as server:
        yield server, folder
    remote.set_cache_dir(None)


def test_server_answers_ranges_and_404(served):
    server, folder = served
    request = urllib.request.Request(server.url("x.fa.gz"), headers={"Range": "bytes=10-19"})
    with urllib.request.urlopen(request, timeout=10) as reply:
        assert reply.status == 206 and reply.read() == (folder / "x.fa.gz").read_bytes()[10:20]
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(server.url("missing.fa"), timeout=10)


def test_latency_is_a_real_sleep_before_every_request(tmp_path):
    head = remote.HEAD_BYTES  # reads past the file's head: each one its own request
    (tmp_path / "x.bin").write_bytes(bytes(head + 5000))
    latency = 0.05
    with RangeServer(tmp_path, latency=latency) as server:
        with remote.open_reader(server.url("x.bin")) as reader:
            start = time.monotonic()
            for offset in range(head, head + 5000, 1000):
                reader.pread(1000, offset)
            elapsed = time.monotonic() - start
        assert server.requests == server.sleeps >= 6  # the size check, then five ranged reads
        assert server.shortest_sleep >= latency
        assert elapsed >= 5 * latency

        server.latency = 0.0  # the benchmark changes it between runs
        with urllib.request.urlopen(server.url("x.bin"), timeout=10) as reply:
            assert reply.read() == bytes(head + 5000)
        assert server.requests == server.sleeps + 1


def test_a_small_fasta_over_http_costs_two_requests(tmp_path):
    """At 20 ms a round trip, every request an open makes is felt: the size, then one read
    of the file's head serves the format check and the first block."""
    (tmp_path / "small.fa").write_text(">a\nACGT\n>b\nGGNN\n")
    with RangeServer(tmp_path) as server:
        chunks = list(read_fasta_chunks(server.url("small.fa")))
        assert [c.record_id for c in chunks] == ["a", "b"]
        assert server.requests == 2


def test_fasta_blocks_over_http_equal_the_local_file(served):
    server, _ = served
    runtime = Runtime(cpu_workers=1, io_workers=1, max_io_workers=4, trace=True)
    try:
        before = server.requests
        chunks = list(read_fasta_chunks(server.url("x.fa.gz"), chunk_bytes=8192, runtime=runtime, prefetch=8))
        assert server.requests - before < 40  # one ranged read per block group, a few HEADs
        local = list(read_fasta_chunks(FASTA, chunk_bytes=8192))
        where = [(c.record_id, c.offset, c.last) for c in chunks]
        assert where == [(c.record_id, c.offset, c.last) for c in local]
        assert all(np.array_equal(a.tokens, b.tokens) for a, b in zip(chunks, local, strict=True))
        pools = {span[2] for span in runtime.tracer.spans if span[1].startswith("read x.fa.gz")}
        assert pools == {"io"}  # the ranged reads ran on the I/O workers
    finally:
        runtime.close()


def test_training_batches_from_a_url_equal_those_from_the_local_files(served, tmp_path):
    server, _ = served
    batches = {}
    for kind, fasta, mutations in (
        ("local", str(FASTA), str(MUTATIONS)),
        ("url", server.url("x.fa.gz"), server.url("x.vcf.gz")),
    ):
        datamodule = SeqDataModule(
            fasta=fasta, mutations=mutations, batch_size=64, cpu_workers=1, cache_dir=str(tmp_path / "cache")
        )
        try:
            datamodule.setup("fit")
            batches[kind] = [b.tensors() for b in islice(iter(datamodule.train_dataloader()), 3)]
        finally:
            datamodule.teardown("fit")
    assert len(batches["url"]) == 3
    for a, b in zip(batches["local"], batches["url"], strict=True):
        for key in a:
            np.testing.assert_array_equal(a[key].numpy(), b[key].numpy(), err_msg=key)

    # The cache holds the ranges: reading the URL again sends no ranged GET, only the size checks.
    assert any((tmp_path / "cache").rglob("*-*"))
    remote.set_cache_dir(tmp_path / "cache")
    before = server.requests
    store = load_fasta_tokens(server.url("x.fa.gz"))
    assert np.array_equal(store.tokens, load_fasta_tokens(FASTA).tokens)
    assert server.requests - before <= 6


def test_token_cache_of_a_url_equals_the_local_one_and_is_built_once(served, tmp_path):
    server, folder = served
    remote.set_cache_dir(None)
    url = server.url("x.fa.gz")
    cached = open_token_cache(url, tmp_path / "tokens")
    local = open_token_cache(FASTA, tmp_path / "tokens")
    assert cached.directory != local.directory and cached.directory.name.startswith("x.fa.gz.")
    assert np.array_equal(np.asarray(cached.tokens), np.asarray(local.tokens))
    assert cached.ids == local.ids
    # Opened again: the cache is found by the URL's size and version, no range is read.
    before = server.requests
    assert open_token_cache(url, tmp_path / "tokens").directory == cached.directory
    assert server.requests - before <= 2


def test_a_missing_url_is_one_line_naming_it(served):
    server, _ = served
    url = server.url("nope.fa.gz")
    with pytest.raises(SeqmodelInputError) as caught:
        load_fasta_tokens(url)
    assert caught.value.path == url and str(caught.value) == f"{url}: input file not found"


def test_indexed_genome_over_http(served, tmp_path):
    server, folder = served
    genome = folder / "g.fa"
    genome.write_text(">chr1\n" + "ACGT" * 30 + "\n>chr2\n" + "\n".join(["GGCCA" * 12] * 3) + "\n")
    (folder / "g.fa.fai").write_text("chr1\t120\t6\t120\t121\nchr2\t180\t133\t60\t61\n")
    remote_genome, local = Genome(server.url("g.fa")), Genome(genome)
    assert remote_genome.index is not None
    np.testing.assert_array_equal(remote_genome.fetch("2", 5, 70), local.fetch("chr2", 5, 70))


def test_predict_from_a_url_equals_the_local_input(served, tmp_path, tiny_checkpoint):
    server, _ = served
    outputs = {}
    for kind, source in (("local", str(FASTA)), ("url", server.url("x.fa.gz"))):
        output = tmp_path / f"{kind}.bedgraph"
        result = run_predict(
            tmp_path / kind, f"ckpt_path={tiny_checkpoint}", f"input={source}", f"output={output}"
        )
        assert result.returncode == 0, result.stderr[-2000:]
        outputs[kind] = read_bedgraph(output)
    assert outputs["url"] == outputs["local"] and outputs["local"]
