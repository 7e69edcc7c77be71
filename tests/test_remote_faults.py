"""A store that drops the connection mid-read, over a real local HTTP server: a dropped read is
sent again and gives the file's bytes; one that keeps dropping is one line naming the URL and
the byte range; nothing half-read reaches the range cache or a prediction's output."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from seqmodel.config import DEMO_DATA_DIR
from seqmodel.errors import SeqmodelInputError
from seqmodel.io import remote
from seqmodel.io.fasta import load_fasta_tokens
from tests.range_server import BodyCut, RangeServer

FASTA = DEMO_DATA_DIR / "ctcf_demo.fa.gz"
CUT_AFTER = 1000  # reads up to this long are never cut: headers and indexes still open
HEAD = remote.HEAD_BYTES  # reads past the file's head: each one its own request
WINDOW = 40
MODEL = {
    "trunk": {"hidden_size": 4, "conv_channels": 4, "conv_kernel": 5, "conv_layers": 1, "num_layers": 1},
    "per_base_head": {"hidden": 4},
    "pooled_head": {"hidden": 4, "pooling": "attention"},
}


@pytest.fixture(autouse=True)
def no_range_cache():
    """Reads go to the server unless a test sets a cache (and none outlives the test)."""
    remote.set_cache_dir(None)
    yield
    remote.set_cache_dir(None)


@pytest.fixture
def folder(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    rng = np.random.default_rng(0)
    (served / "x.bin").write_bytes(rng.integers(0, 256, HEAD + 50_000, dtype=np.uint8).tobytes())
    (served / "x.fa.gz").write_bytes(FASTA.read_bytes())
    return served


@pytest.fixture
def server(folder):
    with RangeServer(folder) as running:
        yield running


@pytest.mark.parametrize("declare_length", [True, False], ids=["length-mismatch", "short-body"])
def test_a_dropped_read_is_sent_again_and_gives_the_file_bytes(server, folder, declare_length):
    server.cut = BodyCut(after=CUT_AFTER, times=2, declare_length=declare_length)
    with remote.open_reader(server.url("x.bin")) as reader:
        assert reader.read_all() == (folder / "x.bin").read_bytes()
    assert server.cuts == 2


def test_fasta_tokens_over_a_dropping_connection_equal_the_local_file(server):
    server.cut = BodyCut(after=CUT_AFTER, times=3)
    tokens = load_fasta_tokens(server.url("x.fa.gz"))
    local = load_fasta_tokens(FASTA)
    assert tokens.ids == local.ids and np.array_equal(tokens.tokens, local.tokens)
    assert server.cuts == 3


@pytest.mark.parametrize("declare_length", [True, False], ids=["length-mismatch", "short-body"])
def test_a_read_that_keeps_dropping_is_one_line_naming_the_url_and_range(server, declare_length):
    url = server.url("x.bin")
    server.cut = BodyCut(after=CUT_AFTER, declare_length=declare_length)
    with remote.open_reader(url) as reader, pytest.raises(SeqmodelInputError) as caught:
        reader.pread(20_000, HEAD + 5_000)
    message = str(caught.value)
    assert caught.value.path == url
    assert message.startswith(
        f"{url}:bytes {HEAD + 5000}-{HEAD + 25000}: cannot read in {remote.READ_ATTEMPTS} attempts ("
    )
    assert "\n" not in message
    if not declare_length:
        assert message.endswith("(the connection closed after 1000 of 20000 bytes)")
    assert server.cuts == remote.READ_ATTEMPTS


def test_a_file_gone_between_reads_is_not_sent_again(server, folder):
    url = server.url("x.bin")
    with remote.open_reader(url) as reader:
        (folder / "x.bin").unlink()
        before = server.requests
        with pytest.raises(SeqmodelInputError) as caught:
            reader.pread(100, HEAD)
    assert str(caught.value) == f"{url}:bytes {HEAD}-{HEAD + 100}: gone since it was opened"
    assert server.requests - before == 1


def test_a_failed_read_leaves_nothing_in_the_range_cache(server, folder, tmp_path):
    cache = tmp_path / "cache"
    remote.set_cache_dir(cache)
    server.cut = BodyCut(after=CUT_AFTER)
    with remote.open_reader(server.url("x.bin")) as reader:
        with pytest.raises(SeqmodelInputError):
            reader.pread(20_000, HEAD)
        assert not [path for path in cache.rglob("*") if path.is_file()]

        server.cut = None
        assert reader.pread(20_000, HEAD) == (folder / "x.bin").read_bytes()[HEAD : HEAD + 20_000]
    assert [path.name for path in cache.rglob("*") if path.is_file()] == [f"{HEAD}-{HEAD + 20000}"]


def test_predict_on_a_url_that_keeps_dropping_exits_with_one_line_and_no_output(
    server, folder, tmp_path, save_untrained_checkpoint
):
    fasta = folder / "plain.fa"
    sequence = "".join(np.random.default_rng(1).choice(list("ACGT"), 20_000))
    fasta.write_text(">a\n" + "\n".join(sequence[i : i + 80] for i in range(0, len(sequence), 80)) + "\n")
    checkpoint = save_untrained_checkpoint(tmp_path / "tiny.ckpt", MODEL, WINDOW, ["bg", "peak"])
    out = tmp_path / "out"
    out.mkdir()
    url = server.url("plain.fa")
    server.cut = BodyCut(after=CUT_AFTER)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "seqmodel.predict",
            f"ckpt_path={checkpoint}",
            f"input={url}",
            f"output={out / 'risk.bedgraph'}",
            f"hydra.run.dir={tmp_path / 'hydra'}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2, result.stderr[-3000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {url}:bytes "), result.stderr[-3000:]
    assert "cannot read in" in lines[0]
    assert server.cuts >= remote.READ_ATTEMPTS
    assert list(out.iterdir()) == []


@pytest.fixture
def short_timeout(monkeypatch):
    """A store silent for 0.3 s counts as stalled (60 s by default)."""
    monkeypatch.setattr(remote, "READ_TIMEOUT_S", 0.3)


def test_a_stalled_read_is_dropped_and_sent_again(server, folder, short_timeout):
    server.cut = BodyCut(after=CUT_AFTER, times=1, stall=3.0)
    with remote.open_reader(server.url("x.bin")) as reader:
        assert reader.pread(20_000, HEAD) == (folder / "x.bin").read_bytes()[HEAD : HEAD + 20_000]
    assert server.cuts == 1


def test_a_read_that_keeps_stalling_is_one_line_not_a_hang(server, short_timeout):
    url = server.url("x.bin")
    server.cut = BodyCut(after=CUT_AFTER, stall=3.0)
    with remote.open_reader(url) as reader, pytest.raises(SeqmodelInputError) as caught:
        reader.pread(20_000, HEAD)
    assert str(caught.value) == (
        f"{url}:bytes {HEAD}-{HEAD + 20000}: cannot read in {remote.READ_ATTEMPTS} attempts "
        "(nothing received for 0.3 s)"
    )
    assert server.cuts == remote.READ_ATTEMPTS
