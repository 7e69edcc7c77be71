"""Loader benchmark: shuffled 1000-bp windows, batch 64, four ways, in interleaved rounds.

    python scripts/bench_loader.py                # GRCh37 chr20 when ../shared/data/genome has it
    python scripts/bench_loader.py --bases 20000000 --seconds 3      # quick

(a) torch DataLoader, map-style (one window per item, read from the FASTA), 2 workers;
(b) the same DataLoader with 0 workers; (c) the M:N runtime reading windows straight from
the FASTA: one CPU task per group of batches, each batch one fused pass over the memory map
(check, gather, skip line ends, look up; numba, or numpy without it: `--engine`), or with
`--fasta-path split` the older I/O task (gather the lines) + CPU task (cut, look up);
(d) the runtime gathering windows from the token cache (a memory-mapped, tokenized copy).

Every path reads the same windows in the same order (checked: their first batches are
equal). The source (BGZF, gzip or plain) is first rewritten as a plain 60-column FASTA
with a `.fai` in the work folder, so all paths read the same file from the page cache.
Figures move a lot between runs on a shared machine, so every path runs `--rounds` times
(a, b, c, d, a, b, ...) and the medians are printed, per path: MB/s of bases, CPU-s per GB
(process CPU, DataLoader workers included), that CPU cost as a ratio to (b)'s in the same
round, time to the first batch, main-thread CPU µs per batch, MB/s as a ratio to (a)'s in the
same round. The last line is machine-readable: ``fasta_vs_dataloader=<c/a> cache_vs_dataloader=<d/a>
cpu_s_per_gb=<worse of c, d> fasta_cpu_vs_dataloader0=<c/b> cache_cpu_vs_dataloader0=<d/b>``.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import count
from pathlib import Path

import numpy as np
import torch
from numpy.lib.stride_tricks import as_strided

from seqmodel.data.token_cache import open_token_cache
from seqmodel.errors import SeqmodelInputError, require_file
from seqmodel.io import alphabet
from seqmodel.io.bgzf import GZIP_MAGIC
from seqmodel.io.fasta import (
    ENGINES,
    fasta_window_tokens,
    lookup,
    read_fasta_chunks,
    window_engine,
)
from seqmodel.io.genome import FaiEntry, read_fai
from seqmodel.runtime import Runtime, available_cpus

REPO = Path(__file__).resolve().parents[1]
GENOME = REPO.parent / "shared" / "data" / "genome" / "GRCh37_chr20.fa.gz"
WIDTH = 60


@dataclass
class Result:
    name: str
    batches: int
    bases: int
    wall_s: float
    cpu_s: float
    first_ms: float
    main_us: float
    head: list[np.ndarray]

    @property
    def mb_s(self) -> float:
        return self.bases / self.wall_s / 1e6

    @property
    def cpu_s_per_gb(self) -> float:
        return self.cpu_s / (self.bases / 1e9)


@dataclass
class WindowRows:
    """Raw FASTA bases of a batch of windows, grouped by line layout (what `read_rows` gives).

    groups: (row numbers in the batch, `(b, lines * line_bases)` uint8 bytes of the lines
    holding each window, line ends left out, and the column `(b,)` of its first base there).
    """

    size: int
    groups: list[tuple[np.ndarray, np.ndarray, np.ndarray]]


class FastaWindows:
    """Fixed-length windows read straight from an uncompressed FASTA with a `.fai` index.

    The file is memory-mapped. `read_rows` (an I/O task: it may fault pages in) copies,
    per window, the bases of the lines holding it (a strided view skips the line ends),
    all windows in one gather; `tokenize_rows` (a CPU task) cuts each window at its column
    and looks the bytes up: a few numpy calls per batch, each releasing the GIL.
    """

    def __init__(self, path: str | os.PathLike, window: int, engine: str = "auto"):
        self.engine = engine
        self.path = require_file(path, "FASTA")
        with open(self.path, "rb") as handle:
            if handle.read(2) == GZIP_MAGIC:
                raise SeqmodelInputError(self.path, None, "windows need an uncompressed FASTA")
        fai = Path(f"{self.path}.fai")
        if not fai.is_file():
            raise SeqmodelInputError(fai, None, "FASTA index not found (samtools faidx)")
        self.index: dict[str, FaiEntry] = read_fai(fai)
        self.names = list(self.index)
        self.window = window
        self.raw = np.memmap(self.path, dtype=np.uint8, mode="r")
        self._views: dict[tuple[int, int, int], np.ndarray] = {}
        entries = list(self.index.values())
        self.number = {name: i for i, name in enumerate(self.names)}
        self.offset = np.array([e.offset for e in entries], dtype=np.int64)
        self.length = np.array([e.length for e in entries], dtype=np.int64)
        self.line_bases = np.array([e.line_bases for e in entries], dtype=np.int64)
        self.line_bytes = np.array([e.line_bytes for e in entries], dtype=np.int64)
        self.fai = (self.offset, self.length, self.line_bases, self.line_bytes)
        self.uniform = len(set(zip(self.line_bases.tolist(), self.line_bytes.tolist(), strict=True))) == 1

    def close(self) -> None:
        self.raw, self._views = None, {}

    def __enter__(self) -> FastaWindows:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def byte_range(self, name: str, start: int) -> tuple[int, int]:
        """File bytes `[lo, hi)` of bases `[start, start + window)` of record `name`."""
        entry = self.index[name]
        end = start + self.window
        if not 0 <= start < end <= entry.length:
            raise SeqmodelInputError(self.path, name, f"window {start}-{end} outside the record")
        lo = entry.offset + (start // entry.line_bases) * entry.line_bytes + start % entry.line_bases
        last = end - 1
        hi = entry.offset + (last // entry.line_bases) * entry.line_bytes + last % entry.line_bases + 1
        return lo, hi

    def locate(self, windows: Sequence[tuple[str, int]] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Record numbers and starts `(B,)` of windows, checked to lie inside their records.

        windows: `(name, start)` pairs, or a `(B, 2)` int array of (record number, start).
        """
        if isinstance(windows, np.ndarray):
            records, starts = windows[:, 0].astype(np.int64), windows[:, 1].astype(np.int64)
            if len(records) and not 0 <= records.min() <= records.max() < len(self.names):
                raise SeqmodelInputError(self.path, None, f"record numbers outside [0, {len(self.names)})")
        else:
            try:
                records = np.array([self.number[name] for name, _ in windows], dtype=np.int64)
            except KeyError as error:
                raise SeqmodelInputError(self.path, None, f"no record {error.args[0]!r}") from None
            starts = np.array([start for _, start in windows], dtype=np.int64)
        outside = (starts < 0) | (starts + self.window > self.length[records])
        if outside.any():
            i = int(np.flatnonzero(outside)[0])
            message = f"window {starts[i]}-{starts[i] + self.window} outside the record"
            raise SeqmodelInputError(self.path, self.names[records[i]], message)
        return records, starts

    def read_rows(self, windows: Sequence[tuple[str, int]]) -> WindowRows:
        """The raw lines holding each window (an I/O task)."""
        records, starts = self.locate(windows)
        groups = []
        if self.uniform:  # one line layout in the whole file (the usual case)
            layouts = [(int(self.line_bases[0]), int(self.line_bytes[0]), None)]
        else:
            pairs = np.stack([self.line_bases[records], self.line_bytes[records]], axis=1)
            layouts = [
                (lb, lbytes, np.flatnonzero((pairs[:, 0] == lb) & (pairs[:, 1] == lbytes)))
                for lb, lbytes in np.unique(pairs, axis=0).tolist()
            ]
        for line_bases, line_bytes, rows in layouts:
            rows = np.arange(len(records)) if rows is None else rows
            rec, start = records[rows], starts[rows]
            lines = (self.window + line_bases - 1) // line_bases + 1  # most lines a window touches
            lo = self.offset[rec] + start // line_bases * line_bytes
            reach = (lines - 1) * line_bytes + line_bases  # bytes from a first line's start to the last base
            inside = lo + reach <= len(self.raw)
            view = self._views.get((lines, line_bases, line_bytes))
            if view is None:  # at every file offset: `lines` lines of `line_bases` bytes (no copy)
                shape = (len(self.raw) - reach + 1, lines, line_bases)
                view = as_strided(self.raw, shape, (1, line_bytes, 1), writeable=False)
                self._views[(lines, line_bases, line_bytes)] = view
            if inside.all():
                bases = view[lo]  # one gather for all rows, line ends already left out
            else:  # the file's last lines: pad past its end
                bases = np.full((len(rows), lines, line_bases), ord("N"), dtype=np.uint8)
                bases[inside] = view[lo[inside]]
                for row in np.flatnonzero(~inside):
                    for line in range(lines):
                        text = self.raw[lo[row] + line * line_bytes :][:line_bases]
                        bases[row, line, : len(text)] = text
            groups.append((rows, bases.reshape(len(rows), -1), start % line_bases))
        return WindowRows(len(windows), groups)

    def tokenize_rows(self, rows: WindowRows) -> np.ndarray:
        """`(B, window)` uint8 token ids of the windows (a CPU task)."""
        out = None if len(rows.groups) == 1 else np.empty((rows.size, self.window), dtype=np.uint8)
        for numbers, bases, columns in rows.groups:
            b, n = bases.shape
            starts = as_strided(bases, (b, n - self.window + 1, self.window), (n, 1, 1), writeable=False)
            picked = starts[np.arange(b), columns]
            tokens = lookup(alphabet.ENCODE_LUT, picked)
            self._check(tokens, picked, numbers)
            if out is None:  # one layout: the rows are the batch, in order
                return tokens
            out[numbers] = tokens
        return out if out is not None else np.empty((0, self.window), dtype=np.uint8)

    def _check(self, tokens: np.ndarray, picked: np.ndarray, numbers: np.ndarray) -> None:
        """Raise naming the first window with a byte outside the alphabet (INVALID tokens)."""
        if int(tokens.max(initial=0)) > alphabet.N:
            row = int(np.flatnonzero((tokens > alphabet.N).any(axis=1))[0])
            bad = int(np.flatnonzero(tokens[row] > alphabet.N)[0])
            byte = chr(picked[row, bad])
            message = f"byte {byte!r} is not a DNA/IUPAC code (or the .fai does not match the file)"
            raise SeqmodelInputError(self.path, f"window {int(numbers[row])}", message)

    def tokens(self, windows: Sequence[tuple[str, int]] | np.ndarray) -> np.ndarray:
        """`(B, window)` uint8 token ids of the windows in one fused pass (a CPU task).

        Check, gather from the map, skip line ends, look up: `fasta_window_tokens` (numba
        when available, else the numpy gather/cut/lookup of `read_rows` + `tokenize_rows`).
        """
        if isinstance(windows, np.ndarray):
            records, starts = windows[:, 0], windows[:, 1]
        else:
            records, starts = self.locate(windows)
        tokens, problem = fasta_window_tokens(
            self.raw, records, starts, self.fai, self.window, self.engine, self._views
        )
        if problem >= 0:  # the reference path names the window, record and byte
            self.tokenize_rows(self.read_rows(windows))
            raise AssertionError(f"window {problem}: the fused pass and the reference disagree")
        return tokens

    def batches_task(
        self, runtime: Runtime
    ) -> Callable[[Sequence[Sequence[tuple[str, int]] | np.ndarray]], Iterator]:
        """A generator task for `Runtime.ordered_map` over groups of batches.

        Each group is one I/O task reading every batch's rows, then tokenizing on the CPU
        task: one hand-off between the pools per group, not per batch (on a small machine
        the hand-offs, not the numpy work, dominate). Returns the `(B, window)` token arrays.
        """

        def batches(group: Sequence[Sequence[tuple[str, int]] | np.ndarray]):
            first = group[0]
            name, start = first[0]
            name = self.names[name] if isinstance(first, np.ndarray) else name
            label = f"read {name}:{start}-{start + self.window} +{sum(map(len, group)) - 1} windows"
            rows = yield runtime.submit(lambda: [self.read_rows(b) for b in group], pool="io", name=label)
            return [self.tokenize_rows(r) for r in rows]

        return batches


def write_plain(source: Path | None, bases: int, out: Path, seed: int) -> list[tuple[str, int]]:
    """A 60-column FASTA (+ .fai) of at most `bases` bases: from `source`, else random DNA."""
    records: list[tuple[str, int]] = []
    fai = []
    with open(out, "wb") as handle:

        def write(name: str, chunks: Iterable[np.ndarray]) -> None:
            header = f">{name}\n".encode()
            handle.write(header)
            offset, length, pending = handle.tell(), 0, b""
            for tokens in chunks:
                text = pending + alphabet.DECODE_LUT[tokens].tobytes()
                full = len(text) // WIDTH * WIDTH
                lines = np.frombuffer(text[:full], np.uint8).reshape(-1, WIDTH)
                handle.write(np.hstack([lines, np.full((len(lines), 1), 10, np.uint8)]).tobytes())
                pending = text[full:]
                length += len(tokens)
            if pending:
                handle.write(pending + b"\n")
            records.append((name, length))
            fai.append(f"{name}\t{length}\t{offset}\t{WIDTH}\t{WIDTH + 1}\n")

        if source is None:
            rng = np.random.default_rng(seed)
            left, index = bases, 0
            while left > 0:
                n = min(left, 10_000_000)
                write(f"synthetic{index}", (rng.integers(0, 4, n, dtype=np.uint8),))
                left, index = left - n, index + 1
        else:
            left = bases
            current: str | None = None
            pieces: list[np.ndarray] = []
            for chunk in read_fasta_chunks(source):
                if left <= 0:
                    break
                current = chunk.record_id
                pieces.append(chunk.tokens[:left])
                left -= len(pieces[-1])
                if chunk.last or left <= 0:
                    write(current, pieces)
                    pieces = []
    Path(f"{out}.fai").write_text("".join(fai))
    return records


def window_batches(records: list[tuple[str, int]], window: int, batch: int, seed: int):
    """Shuffled non-overlapping windows inside the records: [(name, start)] and flat starts."""
    names, starts, flat = [], [], []
    offset = 0
    for name, length in records:
        s = np.arange(0, length - window + 1, window)
        names += [name] * len(s)
        starts.append(s)
        flat.append(s + offset)
        offset += length
    order = np.random.default_rng(seed).permutation(len(names))
    starts_all, flat_all = np.concatenate(starts)[order], np.concatenate(flat)[order]
    pairs = [(names[i], int(s)) for i, s in zip(order, starts_all, strict=True)]
    n = len(pairs) // batch * batch
    return pairs[:n], flat_all[:n]


class WindowDataset(torch.utils.data.Dataset):
    """Map-style: item i is window i (cycling), read from the FASTA and tokenized."""

    def __init__(self, path: Path, pairs: list[tuple[str, int]], window: int, items: int):
        self.path, self.pairs, self.window, self.items = path, pairs, window, items
        self.reader = FastaWindows(path, window)  # for its .fai arithmetic
        self.fd: int | None = None

    def __len__(self) -> int:
        return self.items

    def __getitem__(self, index: int) -> torch.Tensor:
        if self.fd is None:  # opened in each worker process
            self.fd = os.open(self.path, os.O_RDONLY)
        name, start = self.pairs[index % len(self.pairs)]
        lo, hi = self.reader.byte_range(name, start)
        raw = os.pread(self.fd, hi - lo, lo).replace(b"\n", b"")
        return torch.from_numpy(alphabet.ENCODE_LUT[np.frombuffer(raw, np.uint8)])


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def measure(
    name: str, make: Callable[[], Iterator[torch.Tensor]], seconds: float, max_batches: int
) -> Result:
    head: list[np.ndarray] = []
    count = bases = 0
    cpu0, main0, t0 = cpu_seconds(), time.thread_time(), time.perf_counter()
    first = None
    iterator = make()
    for batch in iterator:
        if first is None:
            first = time.perf_counter() - t0
        if len(head) < 3:
            head.append(batch.numpy().copy())
        count += 1
        bases += batch.numel()
        if count >= max_batches or time.perf_counter() - t0 >= seconds:
            break
    del iterator  # DataLoader workers are joined here, so their CPU time is counted
    import gc

    gc.collect()
    wall = time.perf_counter() - t0
    main = time.thread_time() - main0
    return Result(
        name, count, bases, wall, cpu_seconds() - cpu0, 1e3 * (first or 0.0), 1e6 * main / count, head
    )


def summarize(rounds: list[list[Result]]) -> list[dict]:
    """Per path, medians over the rounds of its figures, and of its per-round ratios: MB/s to
    path (a)'s and CPU-s/GB to path (b)'s in the same round (rounds are interleaved, so a
    ratio compares runs seconds apart, under the same load)."""
    rows = []
    for i, name in enumerate(r.name for r in rounds[0]):
        runs = [results[i] for results in rounds]
        rows.append(
            {
                "name": name,
                "batches": float(np.median([r.batches for r in runs])),
                "mb_s": float(np.median([r.mb_s for r in runs])),
                "cpu_s_per_gb": float(np.median([r.cpu_s_per_gb for r in runs])),
                "first_ms": float(np.median([r.first_ms for r in runs])),
                "main_us": float(np.median([r.main_us for r in runs])),
                "vs_a": float(np.median([res[i].mb_s / res[0].mb_s for res in rounds])),
                "cpu_vs_b": float(np.median([res[i].cpu_s_per_gb / res[1].cpu_s_per_gb for res in rounds])),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--fasta", type=Path, default=GENOME if GENOME.is_file() else None)
    parser.add_argument("--bases", type=int, default=70_000_000, help="at most this many bases of the source")
    parser.add_argument("--seconds", type=float, default=4.0, help="per path, at most")
    parser.add_argument("--max-batches", type=int, default=20_000, help="per path, at most")
    parser.add_argument("--window", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--cpu-workers",
        type=int,
        default=None,
        help="runtime thinkers (default: usable CPUs - 1, at least 1)",
    )
    parser.add_argument("--io-workers", type=int, default=1)
    parser.add_argument("--prefetch", type=int, default=4, help="runtime tasks in flight")
    # A task should hold ~100 µs or more of work, and hand-offs between threads cost ~10-20 µs
    # each on a small VM: a FASTA batch is ~100 µs (2 hand-offs), a cached one ~20 µs (1).
    parser.add_argument("--fasta-batches-per-task", type=int, default=8, help="(c): batches per task")
    parser.add_argument("--cache-batches-per-task", type=int, default=8, help="(d): batches per task")
    parser.add_argument("--dataloader-workers", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=None, help="kept when given (reused next run)")
    parser.add_argument("--trace", type=Path, default=None, help="Chrome trace of the runtime paths")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of every path (medians)")
    parser.add_argument(
        "--fasta-path",
        choices=("fused", "split"),
        default="fused",
        help="(c): one fused CPU task per group (default), or the older I/O read + CPU tokenize",
    )
    parser.add_argument("--engine", choices=ENGINES, default="auto", help="(c) fused pass: numba or numpy")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench_loader."))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        plain = workdir / "genome.fa"
        t = time.perf_counter()
        if not (plain.is_file() and Path(f"{plain}.fai").is_file()):
            write_plain(args.fasta, args.bases, plain, args.seed)
        records = [
            (f[0], int(f[1]))
            for f in (line.split("\t") for line in Path(f"{plain}.fai").read_text().splitlines())
        ]
        size, seconds = plain.stat().st_size / 1e6, time.perf_counter() - t
        print(f"source: {args.fasta or 'generated'}; plain copy {size:.0f} MB in {seconds:.1f} s")
        pairs, flat = window_batches(records, args.window, args.batch_size, args.seed)
        per_batch = args.batch_size
        batches = len(pairs) // per_batch
        print(f"{len(pairs)} shuffled {args.window}-bp windows = {batches} batches of {per_batch}")

        def cycle_batches(items):
            index = 0
            while True:
                yield items[index % batches * per_batch : (index % batches + 1) * per_batch]
                index += 1

        t = time.perf_counter()
        workers = args.cpu_workers or max(1, available_cpus() - 1)  # a core stays with the consumer
        rt = Runtime(cpu_workers=workers, io_workers=args.io_workers, trace=args.trace is not None)
        startup_ms = 1e3 * (time.perf_counter() - t)
        try:
            t = time.perf_counter()
            cache = open_token_cache(plain, workdir / "cache", runtime=rt)
            cache_s = time.perf_counter() - t
            print(
                f"runtime: {rt.cpu.size} CPU + {rt.io.size} I/O workers, started in {startup_ms:.2f} ms; "
                f"token cache {len(cache.tokens) / 1e6:.0f} Mb ready in {cache_s:.2f} s (built once); "
                f"batches per task: {args.fasta_batches_per_task} (c), {args.cache_batches_per_task} (d); "
                f"{args.prefetch} tasks in flight"
            )
            items = args.max_batches * per_batch

            def dataloader(workers: int) -> Callable[[], Iterator[torch.Tensor]]:
                def make():
                    dataset = WindowDataset(plain, pairs, args.window, items)
                    loader = torch.utils.data.DataLoader(dataset, batch_size=per_batch, num_workers=workers)
                    return iter(loader)

                return make

            reader = FastaWindows(plain, args.window, args.engine)
            fasta_batches = reader.batches_task(rt)
            number = {name: i for i, name in enumerate(reader.names)}
            rows = np.array([(number[name], start) for name, start in pairs], dtype=np.int64)

            def from_fasta():
                batch_rows = cycle_batches(rows)
                k = args.fasta_batches_per_task
                groups = ([next(batch_rows) for _ in range(k)] for _ in count())
                if args.fasta_path == "fused":  # one CPU task per group: gather, cut, look up
                    task = lambda group: [reader.tokens(b) for b in group]  # noqa: E731
                else:  # an I/O task reads the lines, a CPU task cuts and looks up
                    task = fasta_batches
                for group in rt.ordered_map(task, groups, prefetch=args.prefetch, name="tokenize batches"):
                    for tokens in group:
                        yield torch.from_numpy(tokens)

            def from_cache():
                for tokens in rt.ordered_map(
                    lambda starts: cache.windows(starts, args.window),
                    cycle_batches(flat),
                    prefetch=args.prefetch,
                    name="gather batch",
                    chunksize=args.cache_batches_per_task,
                ):
                    yield torch.from_numpy(tokens)

            paths = [
                (f"(a) DataLoader, {args.dataloader_workers} workers", dataloader(args.dataloader_workers)),
                ("(b) DataLoader, 0 workers", dataloader(0)),
                ("(c) runtime, from FASTA", lambda: from_fasta()),
                ("(d) runtime, token cache", lambda: from_cache()),
            ]
            t = time.perf_counter()
            reader.tokens(rows[:per_batch])  # numba compiles (or loads its disk cache) here, not timed
            kernel = window_engine(args.engine)
            print(
                f"(c): {args.fasta_path} path, {kernel} kernel, ready in {time.perf_counter() - t:.2f} s; "
                f"{args.rounds} interleaved rounds of every path, medians reported"
            )
            rounds = []
            for index in range(args.rounds):
                rounds.append([measure(name, make, args.seconds, args.max_batches) for name, make in paths])
                speeds = ", ".join(f"{r.name[:3]} {r.mb_s:.0f} MB/s" for r in rounds[-1])
                print(f"round {index + 1}: {speeds}")
            reader.close()
            if args.trace is not None and rt.tracer is not None:
                rt.tracer.write_chrome_trace(args.trace)
                print(f"trace: {args.trace}\n{rt.tracer.format_summary()}")
        finally:
            rt.close()

        for results in rounds:
            for r in results[1:]:
                for x, y in zip(results[0].head, r.head, strict=False):
                    if not np.array_equal(x, y):
                        sys.exit(f"{r.name}: batches differ from {results[0].name}")
        summary = summarize(rounds)
        print(
            f"\nmedians of {len(rounds)} rounds:\n{'path':<28}{'batches':>8}{'MB/s':>9}{'CPU-s/GB':>10}"
            f"{'CPU/(b)':>9}{'first ms':>10}{'main µs/b':>11}{'vs (a)':>8}"
        )
        for row in summary:
            print(
                f"{row['name']:<28}{row['batches']:>8.0f}{row['mb_s']:>9.0f}{row['cpu_s_per_gb']:>10.2f}"
                f"{row['cpu_vs_b']:>9.3f}{row['first_ms']:>10.1f}{row['main_us']:>11.0f}{row['vs_a']:>7.1f}x"
            )
        fasta, cached = summary[2], summary[3]
        print(
            f"fasta_vs_dataloader={fasta['vs_a']:.1f} cache_vs_dataloader={cached['vs_a']:.1f} "
            f"cpu_s_per_gb={max(fasta['cpu_s_per_gb'], cached['cpu_s_per_gb']):.2f} "
            f"fasta_cpu_vs_dataloader0={fasta['cpu_vs_b']:.3f} "
            f"cache_cpu_vs_dataloader0={cached['cpu_vs_b']:.3f}"
        )
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
