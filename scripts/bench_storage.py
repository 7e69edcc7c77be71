"""FASTA read throughput against storage latency: torch DataLoader workers vs the M:N runtime.

    python scripts/bench_storage.py            # latencies 0 1 5 20 50 ms, ~3 s per point (~2 min)
    python scripts/bench_storage.py --quick    # smoke test: 0 and 20 ms, short runs
    python scripts/bench_storage.py --megabases 64 --plot ''   # fewer re-opens of the file per point

A plain FASTA (one long record, 60-column lines) is served by a local HTTP server with byte
ranges (tests/range_server.py, in a child process of its own) that sleeps `latency` before
every request. Each reader tokenizes the file in 64 KiB ranges, one ranged GET per range:

- dataloader2 / dataloader8: a torch Dataset whose item is one range, read with its own HTTP
  connection per worker process (2 or 8 workers);
- runtime_fixed: `read_fasta_chunks(url, runtime=...)`, the I/O pool fixed at 1 worker;
- runtime: what a user gets by default, `Runtime(cpu_workers=1, io_workers=1)` (the I/O pool
  grows up to `MAX_IO_WORKERS` while its reads block) and `read_fasta_chunks`' default
  read-ahead, which deepens while reads are late.

Throughput is bases per second over `--seconds` per point, after a warm-up of half that from
the first range on (worker processes started, the I/O pool grown): steady state. Cores are
the CPU time the reader used over the same seconds, divided by them: this process's (its
threads, fsspec's event loop) plus its live child processes' (DataLoader workers) from
/proc, the server's excluded. Prints both tables, writes docs/storage.png (when matplotlib is
there) and ends with one line: `latency_ms=20 runtime_keep=... dataloader2_keep=...
runtime_cores=...`, keep being the throughput at 20 ms over that at 0 ms.
"""

from __future__ import annotations

import argparse
import http.client
import multiprocessing
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
CLOCK_TICK_S = 1 / os.sysconf("SC_CLK_TCK")


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


class StorageServer:
    """tests/range_server.py in a child process, so the CPU it takes is not counted as the
    reader's (nor does it hold the reader's GIL); `set_latency` changes its sleep."""

    def __init__(self, folder: str):
        self.pipe, child_end = multiprocessing.Pipe()
        # forked before this process starts any thread
        self.process = multiprocessing.get_context("fork").Process(
            target=_serve, args=(folder, child_end), daemon=True
        )
        self.process.start()
        self.port = self.pipe.recv()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def set_latency(self, seconds: float) -> None:
        self.pipe.send(seconds)
        self.pipe.recv()

    def stop(self) -> None:
        self.pipe.send(None)
        self.process.join(10)


def _serve(folder: str, pipe) -> None:
    with RangeServer(folder) as server:
        pipe.send(server.port)
        for latency in iter(pipe.recv, None):
            server.latency = latency
            pipe.send(latency)


def reader_cpu_s(server_pid: int) -> float:
    """CPU seconds used so far by this process and its live children, the server excepted."""
    total = time.process_time()
    me = str(os.getpid())
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):  # gone since the listing
            continue
        # fields[0] is the state: ppid, utime and stime are the 4th, 14th and 15th of the file
        if fields[1] == me and int(stat.parent.name) != server_pid:
            total += (int(fields[11]) + int(fields[12])) * CLOCK_TICK_S
    return total


class Clock:
    """Bases and reader CPU counted over `seconds`, after a warm-up of half that from the first
    item on (worker processes started, the I/O pool grown): steady-state throughput and cores."""

    def __init__(self, seconds: float, server_pid: int):
        self.seconds = seconds
        self.server_pid = server_pid
        self.first: float | None = None
        self.start: float | None = None
        self.cpu_start = 0.0
        self.bases = 0
        self.wall_s = 0.0
        self.cpu_s = 0.0

    def add(self, bases: int) -> bool:
        """Count one item; True when the measuring time is over (the totals are then set)."""
        now = time.perf_counter()
        if self.first is None:
            self.first = now
        elif self.start is None and now - self.first >= self.seconds / 2:
            self.start, self.cpu_start = now, reader_cpu_s(self.server_pid)
        elif self.start is not None:
            self.bases += bases
        if self.start is None or now - self.start < self.seconds:
            return False
        self.wall_s = time.perf_counter() - self.start
        self.cpu_s = reader_cpu_s(self.server_pid) - self.cpu_start
        return True

    def result(self) -> tuple[float, float]:
        """(bases per second, cores used)."""
        return self.bases / self.wall_s, self.cpu_s / self.wall_s


def bench_dataloader(server: StorageServer, name: str, size: int, workers: int, seconds: float):
    loader = DataLoader(
        RangeDataset(server.port, name, size), batch_size=None, num_workers=workers, persistent_workers=False
    )
    clock = Clock(seconds, server.process.pid)
    for n in loader:
        if clock.add(int(n)):
            break
    del loader
    return clock.result()


def bench_runtime(server: StorageServer, name: str, grow: bool, seconds: float):
    # grow: the library's default bound on the I/O pool
    runtime = Runtime(cpu_workers=1, io_workers=1, max_io_workers=None if grow else 1)
    clock = Clock(seconds, server.process.pid)
    try:
        done = False
        while not done:
            chunks = read_fasta_chunks(server.url(name), RANGE_BYTES, runtime=runtime)
            for chunk in chunks:
                if done := clock.add(len(chunk)):
                    break
            chunks.close()
        return clock.result()
    finally:
        runtime.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--quick", action="store_true", help="a smoke test: two latencies, short runs")
    parser.add_argument("--seconds", type=float, default=None, help="measuring time per point")
    parser.add_argument("--megabases", type=int, default=None, help="file size in Mb (16; 4 with --quick)")
    parser.add_argument("--plot", default=str(ROOT / "docs" / "storage.png"), help="figure ('' for none)")
    args = parser.parse_args()
    latencies = [0, 20] if args.quick else [0, 1, 5, 20, 50]
    seconds = args.seconds or (0.5 if args.quick else 2.0)
    torch.set_num_threads(1)
    remote.set_cache_dir(None)
    methods = ["dataloader2", "dataloader8", "runtime_fixed", "runtime"]
    results: dict[str, list[float]] = {m: [] for m in methods}
    cores: dict[str, list[float]] = {m: [] for m in methods}
    with tempfile.TemporaryDirectory() as folder:
        name = "bench.fa"
        megabases = args.megabases or (4 if args.quick else 16)
        write_fasta(Path(folder) / name, megabases * 60 * 16384)
        size = (Path(folder) / name).stat().st_size
        server = StorageServer(folder)
        try:
            for latency in latencies:
                server.set_latency(latency / 1e3)
                arms = {
                    "dataloader2": lambda: bench_dataloader(server, name, size, 2, seconds),
                    "dataloader8": lambda: bench_dataloader(server, name, size, 8, seconds),
                    "runtime_fixed": lambda: bench_runtime(server, name, False, seconds),
                    "runtime": lambda: bench_runtime(server, name, True, seconds),
                }
                for method, run in arms.items():
                    rate, used = run()
                    results[method].append(rate)
                    cores[method].append(used)
                row = "  ".join(f"{m}={results[m][-1] / 1e6:6.2f} ({cores[m][-1]:.2f})" for m in methods)
                print(f"latency {latency:3d} ms  Mbases/s (cores): {row}", flush=True)
        finally:
            server.stop()

    for title, table, scale in (("Mbases/s", results, 1e6), ("cores", cores, 1)):
        print(f"\n{title}\n| latency (ms) | " + " | ".join(methods) + " |")
        print("|---:|" + "---:|" * len(methods))
        for i, latency in enumerate(latencies):
            print(f"| {latency} | " + " | ".join(f"{table[m][i] / scale:.2f}" for m in methods) + " |")
    print("(keep = throughput / throughput at 0 ms; cores = reader CPU time / wall time)")
    keep = {m: [v / results[m][0] for v in results[m]] for m in methods}
    if args.plot:
        plot(latencies, results, keep, cores, Path(args.plot))
    at = latencies.index(20)
    print(
        f"latency_ms=20 runtime_keep={keep['runtime'][at]:.2f} dataloader2_keep={keep['dataloader2'][at]:.2f}"
        f" runtime_cores={cores['runtime'][at]:.2f}"
    )


def plot(latencies: list[int], results: dict, keep: dict, cores: dict, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no figure")
        return
    fig, (left, middle, right) = plt.subplots(1, 3, figsize=(15, 4))
    for method, values in results.items():
        left.plot(latencies, np.array(values) / 1e6, marker="o", label=method)
        middle.plot(latencies, keep[method], marker="o", label=method)
        right.plot(latencies, cores[method], marker="o", label=method)
    for axis in (left, middle, right):
        axis.set_xscale("symlog", linthresh=1)
        axis.set_xlabel("latency per read (ms)")
        axis.grid(alpha=0.3)
    left.set_ylabel("Mbases/s")
    left.set_title("FASTA throughput over HTTP")
    middle.set_ylabel("throughput / throughput at 0 ms")
    middle.set_title("kept under latency")
    middle.legend()
    right.set_ylabel("cores (reader CPU time / wall time)")
    right.set_title("CPU used")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"figure: {path}")


if __name__ == "__main__":
    main()
