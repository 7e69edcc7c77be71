"""FASTA read throughput against storage latency: torch DataLoader workers vs the M:N runtime.

    python scripts/bench_storage.py            # latencies 0 1 5 20 50 ms, ~3 s per point (~2 min)
    python scripts/bench_storage.py --quick    # smoke test: 0 and 20 ms, short runs

A plain FASTA (one long record, 60-column lines) is served by a local HTTP server with byte
ranges (tests/range_server.py) that sleeps `latency` before every request. Each reader
tokenizes the file in 64 KiB ranges, one ranged GET per range:

- dataloader2 / dataloader8: a torch Dataset whose item is one range, read with its own HTTP
  connection per worker process (2 or 8 workers);
- runtime_fixed: `read_fasta_chunks(url, runtime=...)`, the I/O pool fixed at 1 worker;
- runtime: the same with the I/O pool free to grow (1 to 16 workers) while its reads block.

Throughput is bases per second over `--seconds` per point, after a warm-up of half that from
the first range on (worker processes started, the I/O pool grown): steady state. Prints a
table, writes docs/storage.png (when matplotlib is there) and ends with one line:
`latency_ms=20 runtime_keep=... dataloader2_keep=...`, keep being the throughput at 20 ms over
that at 0 ms.
"""

from __future__ import annotations

import argparse
import http.client
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import DataLoader, Dataset  # noqa: E402

from seqmodel.io import remote  # noqa: E402
from seqmodel.io.fasta import read_fasta_chunks, tokenize_sequence  # noqa: E402
from seqmodel.runtime import Runtime  # noqa: E402
from tests.range_server import RangeServer  # noqa: E402

RANGE_BYTES = 64 << 10
PREFETCH = 16  # ranges in flight for the runtime (the DataLoader keeps 2 per worker)


def write_fasta(path: Path, bases: int) -> None:
    rng = np.random.default_rng(0)
    seq = np.frombuffer(b"ACGT", dtype=np.uint8)[rng.integers(0, 4, bases)]
    lines = seq.reshape(-1, 60)
    body = np.hstack([lines, np.full((len(lines), 1), ord("\n"), dtype=np.uint8)])
    path.write_bytes(b">chrB\n" + body.tobytes())


class RangeDataset(Dataset):
    """Item i: the i-th 64 KiB range of the file, fetched with a ranged GET and tokenized."""

    def __init__(self, port: int, name: str, size: int):
        self.port, self.name, self.size = port, name, size
        self.connection: http.client.HTTPConnection | None = None

    def __len__(self) -> int:
        return 1 << 30  # items wrap around the file: the run is bounded by time

    def __getitem__(self, index: int) -> int:
        count = -(-self.size // RANGE_BYTES)
        lo = (index % count) * RANGE_BYTES
        hi = min(lo + RANGE_BYTES, self.size)
        if self.connection is None:  # one keep-alive connection per worker process
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        self.connection.request("GET", f"/{self.name}", headers={"Range": f"bytes={lo}-{hi - 1}"})
        reply = self.connection.getresponse()
        data = reply.read()
        if reply.status != 206 or len(data) != hi - lo:
            raise RuntimeError(f"bad reply {reply.status} for bytes {lo}-{hi}")
        return len(tokenize_sequence(np.frombuffer(data, dtype=np.uint8)))


class Clock:
    """Bases counted over `seconds`, after a warm-up of half that from the first item on (worker
    processes started, the I/O pool grown): steady-state throughput."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.first: float | None = None
        self.start: float | None = None
        self.bases = 0

    def add(self, bases: int) -> bool:
        """Count one item; True when the measuring time is over."""
        now = time.perf_counter()
        if self.first is None:
            self.first = now
        elif self.start is None and now - self.first >= self.seconds / 2:
            self.start = now
        elif self.start is not None:
            self.bases += bases
        return self.start is not None and now - self.start >= self.seconds

    def rate(self) -> float:
        return self.bases / (time.perf_counter() - self.start)


def bench_dataloader(server: RangeServer, name: str, size: int, workers: int, seconds: float) -> float:
    loader = DataLoader(
        RangeDataset(server.port, name, size), batch_size=None, num_workers=workers, persistent_workers=False
    )
    clock = Clock(seconds)
    for n in loader:
        if clock.add(int(n)):
            break
    del loader
    return clock.rate()


def bench_runtime(server: RangeServer, name: str, grow: bool, seconds: float) -> float:
    runtime = Runtime(cpu_workers=1, io_workers=1, max_io_workers=16 if grow else 1)
    clock = Clock(seconds)
    try:
        done = False
        while not done:
            chunks = read_fasta_chunks(server.url(name), RANGE_BYTES, runtime=runtime, prefetch=PREFETCH)
            for chunk in chunks:
                if done := clock.add(len(chunk)):
                    break
            chunks.close()
        return clock.rate()
    finally:
        runtime.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="a smoke test: two latencies, short runs")
    parser.add_argument("--seconds", type=float, default=None, help="measuring time per point")
    parser.add_argument("--plot", default=str(ROOT / "docs" / "storage.png"), help="figure ('' for none)")
    args = parser.parse_args()
    latencies = [0, 20] if args.quick else [0, 1, 5, 20, 50]
    seconds = args.seconds or (0.5 if args.quick else 2.0)
    torch.set_num_threads(1)
    remote.set_cache_dir(None)
    methods = ["dataloader2", "dataloader8", "runtime_fixed", "runtime"]
    results: dict[str, list[float]] = {m: [] for m in methods}
    with tempfile.TemporaryDirectory() as folder:
        name = "bench.fa"
        write_fasta(Path(folder) / name, (4 if args.quick else 16) * 60 * 16384)
        size = (Path(folder) / name).stat().st_size
        with RangeServer(folder) as server:
            for latency in latencies:
                server.latency = latency / 1e3
                results["dataloader2"].append(bench_dataloader(server, name, size, 2, seconds))
                results["dataloader8"].append(bench_dataloader(server, name, size, 8, seconds))
                results["runtime_fixed"].append(bench_runtime(server, name, False, seconds))
                results["runtime"].append(bench_runtime(server, name, True, seconds))
                row = "  ".join(f"{m}={results[m][-1] / 1e6:7.2f}" for m in methods)
                print(f"latency {latency:3d} ms  Mbases/s: {row}", flush=True)

    print("\n| latency (ms) | " + " | ".join(methods) + " |")
    print("|---:|" + "---:|" * len(methods))
    for i, latency in enumerate(latencies):
        cells = " | ".join(f"{results[m][i] / 1e6:.2f}" for m in methods)
        print(f"| {latency} | {cells} |")
    print("(Mbases/s; keep = throughput / throughput at 0 ms)")
    keep = {m: [v / results[m][0] for v in results[m]] for m in methods}
    if args.plot:
        plot(latencies, results, keep, Path(args.plot))
    at = latencies.index(20)
    runtime_keep, loader_keep = keep["runtime"][at], keep["dataloader2"][at]
    print(f"latency_ms=20 runtime_keep={runtime_keep:.2f} dataloader2_keep={loader_keep:.2f}")


def plot(latencies: list[int], results: dict, keep: dict, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no figure")
        return
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for method, values in results.items():
        left.plot(latencies, np.array(values) / 1e6, marker="o", label=method)
        right.plot(latencies, keep[method], marker="o", label=method)
    for axis in (left, right):
        axis.set_xscale("symlog", linthresh=1)
        axis.set_xlabel("latency per read (ms)")
        axis.grid(alpha=0.3)
    left.set_ylabel("Mbases/s")
    left.set_title("FASTA throughput over HTTP")
    right.set_ylabel("throughput / throughput at 0 ms")
    right.set_title("kept under latency")
    right.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"figure: {path}")


if __name__ == "__main__":
    main()
