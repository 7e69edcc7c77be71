"""Crossover benchmark: 1:1 vs M:1 vs M:N threading at a fixed offered load, sweeping the blocked share.

    python scripts/bench_crossover.py --plot docs/crossover.png --out-json crossover.json
    python scripts/bench_crossover.py --quick                  # a few betas, short (the test's mode)
    python scripts/bench_crossover.py --work python            # CPU part holds the GIL

Every task lasts T: it blocks for beta*T (a real ``time.sleep``), then computes for
(1-beta)*T of thread CPU time (numpy ufunc calls, which release the GIL, or a pure-Python
loop, which holds it; calibrated against ``time.thread_time`` before each beta). Tasks arrive
open loop: task i is released at t0 + i/rate whatever happened before, and its latency is
measured from that scheduled instant to the end of its compute part, so a model that falls
behind pays for its backlog. Three executions of the same tasks:

  1:1  a new OS thread per task, started at its release;
  M:1  one OS thread running the tasks in turn (its sleep blocks everything behind it);
  M:N  the seqmodel runtime: the blocking part as an I/O-pool task, the compute part as a
       CPU-pool task that runs ``after`` it.

Per model and beta: throughput (tasks / (last completion - t0)), p50 / p99 latency, peak
thread count, CPU the process got (cores' worth), and the throughput the analytic model
below expects. The crossover beta* is
where M:N's throughput overtakes M:1's (linear interpolation between swept betas).

Analytic model (per task resource demands, one bottleneck wins): c cores usable by the CPU
part (the process's CPUs for GIL-free work, 1 for work that holds the GIL), per-task
overheads o (measured at start with empty tasks, closed loop), W = the I/O pool's maximum:

  M:1  mu = 1 / (T + o_m1)                                    one thread does everything
  1:1  mu = min(1/o_11, c / ((1-beta)T + o_11))                 thread starts are serial
  M:N  mu = min(1/o_mn, min(c, cpu_workers) / ((1-beta)T + o_mn), W / (beta T))

and the expected throughput is min(rate, mu). Assumptions: the machine is ours (no other
load), sleeps last what they ask, overheads hold the GIL (serial) and add to the CPU part.

The last line printed is ``crossover_beta_measured=... crossover_beta_expected=...``
("none" when M:N never overtakes M:1 in the swept range).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

try:  # run as a script from the repository root or from scripts/
    from seqmodel.runtime import Runtime, available_cpus
except ModuleNotFoundError:  # pragma: no cover - only without an installed package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from seqmodel.runtime import Runtime, available_cpus

MODELS = ("1:1", "M:1", "M:N")
FULL_BETAS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95)
QUICK_BETAS = (0.0, 0.5, 0.9)
WAIT_S = 120.0  # longest any run may take to drain before it counts as hung


# --- the CPU part ---------------------------------------------------------------------------------


class CpuWork:
    """Burns a requested amount of thread CPU time with real work.

    numpy: ``np.sin`` over a 2048-element float64 array per unit (the ufunc loop releases the
    GIL, so units on different threads overlap); python: 200 iterations of a plain loop per
    unit (holds the GIL). `units_per_cpu_s` comes from `calibrate`.
    """

    def __init__(self, kind: str):
        if kind not in ("numpy", "python"):
            raise ValueError(f"work must be 'numpy' or 'python', got {kind!r}")
        self.kind = kind
        self.units_per_cpu_s = 0.0
        self._a = np.random.default_rng(0).random(2048)

    @property
    def releases_gil(self) -> bool:
        return self.kind == "numpy"

    def units(self, n: int) -> None:
        if self.kind == "numpy":
            a, out = self._a, np.empty_like(self._a)  # per call: threads never share an output
            for _ in range(n):
                np.sin(a, out=out)
        else:
            x = 0
            for k in range(200 * n):
                x += k
            self._sink = x

    def calibrate(self, rounds: int = 5, round_cpu_s: float = 0.04) -> float:
        """Median units per thread-CPU second over `rounds` short rounds."""
        self.units(50)  # warm up
        rates = []
        for _ in range(rounds):
            n, used = 16, 0.0
            while used < round_cpu_s:  # grow the round until it is long enough to time
                n *= 2
                start = time.thread_time()
                self.units(n)
                used = time.thread_time() - start
            rates.append(n / used)
        self.units_per_cpu_s = float(np.median(rates))
        return self.units_per_cpu_s

    def run(self, cpu_s: float) -> None:
        if cpu_s > 0:
            self.units(max(1, round(cpu_s * self.units_per_cpu_s)))

    def parallel_speedup(self, threads: int, cpu_s: float = 0.15) -> float:
        """Work done per wall second by `threads` threads at once, relative to one thread."""
        n = max(1, round(cpu_s * self.units_per_cpu_s))
        start = time.perf_counter()
        self.units(n)
        one = time.perf_counter() - start
        team = [threading.Thread(target=self.units, args=(n,)) for _ in range(threads)]
        start = time.perf_counter()
        for t in team:
            t.start()
        for t in team:
            t.join()
        many = time.perf_counter() - start
        return threads * one / many


# --- one run: a model at one beta -----------------------------------------------------------------


@dataclass
class Records:
    """Per task times, perf_counter seconds; filled by whichever thread runs the part."""

    n: int
    start: list[float] = field(init=False)
    end: list[float] = field(init=False)
    sleep_s: list[float] = field(init=False)  # measured wall time of the blocking part
    compute_s: list[float] = field(init=False)  # measured wall time of the compute part
    cpu_s: list[float] = field(init=False)  # thread CPU time of the compute part
    peak_threads: int = 0
    io_pool_size: int | None = None  # M:N: the I/O pool's size at the end of the run

    def __post_init__(self) -> None:
        for name in ("start", "end", "sleep_s", "compute_s", "cpu_s"):
            setattr(self, name, [math.nan] * self.n)


class Job:
    """The task of the benchmark, as two parts so the M:N runtime can place them on its two pools."""

    def __init__(self, rec: Records, work: CpuWork, block_s: float, cpu_s: float):
        self.rec, self.work, self.block_s, self.cpu_s = rec, work, block_s, cpu_s

    def block(self, i: int) -> None:
        rec = self.rec
        start = time.perf_counter()
        rec.start[i] = start
        threads = threading.active_count()
        if threads > rec.peak_threads:
            rec.peak_threads = threads
        if self.block_s > 0:
            time.sleep(self.block_s)
        rec.sleep_s[i] = time.perf_counter() - start

    def compute(self, i: int) -> None:
        rec = self.rec
        start, cpu = time.perf_counter(), time.thread_time()
        self.work.run(self.cpu_s)
        rec.cpu_s[i] = time.thread_time() - cpu
        end = time.perf_counter()
        rec.compute_s[i] = end - start
        rec.end[i] = end

    def whole(self, i: int) -> None:
        self.block(i)
        self.compute(i)


def release_open_loop(n: int, rate: float, release: Callable[[int], None], lead_s: float = 0.02) -> float:
    """Call ``release(i)`` at t0 + i/rate (never early; late when the caller lags); return t0."""
    t0 = time.perf_counter() + lead_s
    for i in range(n):
        delay = t0 + i / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        release(i)
    return t0


def run_one_to_one(job: Job, n: int, rate: float, **_: object) -> float:
    threads: list[threading.Thread] = []

    def release(i: int) -> None:
        thread = threading.Thread(target=job.whole, args=(i,), name=f"task {i}")
        thread.start()
        threads.append(thread)

    t0 = release_open_loop(n, rate, release)
    for thread in threads:
        thread.join(WAIT_S)
        if thread.is_alive():
            raise RuntimeError(f"1:1: {thread.name} still running after {WAIT_S} s")
    return t0


def run_many_to_one(job: Job, n: int, rate: float, **_: object) -> float:
    inbox: queue.SimpleQueue[int | None] = queue.SimpleQueue()

    def loop() -> None:  # the one OS thread: tasks run in turn, a blocking call blocks them all
        while (i := inbox.get()) is not None:
            job.whole(i)

    runner = threading.Thread(target=loop, name="M:1 loop")
    runner.start()
    t0 = release_open_loop(n, rate, inbox.put)
    inbox.put(None)
    runner.join(WAIT_S)
    if runner.is_alive():
        raise RuntimeError(f"M:1: loop still running after {WAIT_S} s")
    return t0


def run_many_to_many(
    job: Job, n: int, rate: float, *, cpu_workers: int, io_workers: int, max_io_workers: int, **_: object
) -> float:
    with Runtime(cpu_workers=cpu_workers, io_workers=io_workers, max_io_workers=max_io_workers) as rt:
        done = []

        def release(i: int) -> None:
            read = rt.submit(job.block, i, pool="io", name=f"block {i}")
            done.append(rt.submit(job.compute, i, pool="cpu", name=f"compute {i}", after=(read,)))

        t0 = release_open_loop(n, rate, release)
        for task in done:
            task.result(WAIT_S)
        job.rec.io_pool_size = rt.io.size
    return t0


RUNNERS: dict[str, Callable[..., float]] = {
    "1:1": run_one_to_one,
    "M:1": run_many_to_one,
    "M:N": run_many_to_many,
}


def measure_overheads(n: int, runtime_kw: dict[str, int], repeats: int = 1) -> dict[str, float]:
    """Seconds per empty task (no sleep, no compute) for each model, all released at once (median)."""
    work = CpuWork("python")
    out: dict[str, list[float]] = {model: [] for model in MODELS}
    for _ in range(repeats):
        for model in MODELS:
            rec = Records(n)
            job = Job(rec, work, 0.0, 0.0)
            gc.collect()
            t0 = RUNNERS[model](job, n, math.inf, **runtime_kw)  # rate inf: every release is due at t0
            out[model].append((max(rec.end) - t0) / n)
    return {model: float(np.median(times)) for model, times in out.items()}


# --- the analytic model ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Model:
    task_s: float
    rate: float
    cores: int  # usable by the CPU part: 1 when it holds the GIL
    cpu_workers: int
    max_io_workers: int
    overhead_s: dict[str, float]

    def capacity(self, model: str, beta: float) -> float:
        cpu = (1 - beta) * self.task_s
        o = self.overhead_s[model]
        serial = 1 / o if o > 0 else math.inf  # the GIL-holding part of each task, one at a time
        if model == "M:1":
            return 1 / (self.task_s + o)
        if model == "1:1":
            return min(serial, self.cores / (cpu + o))
        io = self.max_io_workers / (beta * self.task_s) if beta > 0 else math.inf
        return min(serial, min(self.cores, self.cpu_workers) / (cpu + o), io)

    def throughput(self, model: str, beta: float) -> float:
        return min(self.rate, self.capacity(model, beta))


def crossover(betas: list[float], ahead: list[float]) -> float | None:
    """First beta where ``ahead`` (M:N minus M:1 throughput) turns >= 0, interpolated; None if never."""
    for k, (beta, d) in enumerate(zip(betas, ahead, strict=True)):
        if d >= 0:
            if k == 0:
                return float(beta)
            b0, d0 = betas[k - 1], ahead[k - 1]
            return float(b0 + (beta - b0) * (-d0) / (d - d0))
    return None


# --- the sweep ------------------------------------------------------------------------------------


def summarize(model: str, beta: float, rec: Records, t0: float, task_s: float, rate: float) -> dict:
    release = t0 + np.arange(rec.n) / rate
    end = np.asarray(rec.end)
    latency = end - release
    completed = int(np.isfinite(end).sum())
    target_cpu = (1 - beta) * task_s
    cpu = np.asarray(rec.cpu_s)
    return {
        "model": model,
        "beta": beta,
        "n_submitted": rec.n,
        "n_completed": completed,
        "throughput": float(completed / (np.nanmax(end) - t0)),
        "p50_latency_s": float(np.nanpercentile(latency, 50)),
        "p99_latency_s": float(np.nanpercentile(latency, 99)),
        "max_latency_s": float(np.nanmax(latency)),
        "min_latency_s": float(np.nanmin(latency)),
        "cpu_vs_target": float(np.nanmean(cpu) / target_cpu) if target_cpu > 0 else None,
        "peak_threads": rec.peak_threads,
        "io_pool_size": rec.io_pool_size,
    }


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Collect once, then exempt what is alive (numpy, torch, ...) from the collector meanwhile.

    Otherwise a full collection scanning that heap (~0.3 s with torch loaded) lands in a run.
    """
    gc.collect()
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def run_benchmark(
    *,
    quick: bool = False,
    work: str = "numpy",
    task_ms: float = 5.0,
    load: float = 1.5,
    seconds: float | None = None,
    betas: tuple[float, ...] | None = None,
    cpu_workers: int | None = None,
    io_workers: int = 2,
    max_io_workers: int = 8,
    keep_tasks: bool = False,
    log: Callable[[str], None] | None = print,
) -> dict:
    """Run the sweep; return config, calibration, one row per (model, beta) and the crossover.

    load: offered load as rate x T (1.5: one thread is 50 % overloaded, two cores at 75 %).
    keep_tasks: add each row's per-task arrays (release, start, end, sleep_s, compute_s, cpu_s).
    """
    say = log or (lambda _: None)
    betas = tuple(betas or (QUICK_BETAS if quick else FULL_BETAS))
    seconds = seconds if seconds is not None else (0.2 if quick else 2.0)
    task_s = task_ms / 1000
    rate = load / task_s
    n = max(1, round(rate * seconds))
    cores = available_cpus()
    cpu_workers = cpu_workers or cores
    runtime_kw = {"cpu_workers": cpu_workers, "io_workers": io_workers, "max_io_workers": max_io_workers}

    load_before = os.getloadavg()[0]
    with frozen_heap():
        cpu_work = CpuWork(work)
        units = cpu_work.calibrate(rounds=3, round_cpu_s=0.01) if quick else cpu_work.calibrate()
        speedup = cpu_work.parallel_speedup(cores, 0.03 if quick else 0.15)
        overhead = measure_overheads(50 if quick else 1000, runtime_kw, 1 if quick else 3)
        model_cores = cores if cpu_work.releases_gil else 1
        model = Model(task_s, rate, model_cores, cpu_workers, max_io_workers, overhead)
        say(
            f"work={work} ({'releases' if cpu_work.releases_gil else 'holds'} the GIL, "
            f"{units:.0f} units/CPU-s, {cores}-thread speedup {speedup:.2f}x)  T={task_ms:g} ms  "
            f"rate={rate:.0f}/s (load {load:g})  {n} tasks per run  cores={cores}  "
            f"overhead/task: " + " ".join(f"{m} {o * 1e6:.0f} us" for m, o in overhead.items())
        )

        rows = []
        for k, beta in enumerate(betas):
            if k:  # follow drifts of the shared machine's speed
                cpu_work.calibrate(rounds=3, round_cpu_s=0.01 if quick else 0.02)
            # a different model goes first at each beta: a drifting machine favours none of them
            for name in MODELS[k % 3 :] + MODELS[: k % 3]:
                rec = Records(n)
                job = Job(rec, cpu_work, beta * task_s, (1 - beta) * task_s)
                gc.collect()
                cpu0 = time.process_time()
                t0 = RUNNERS[name](job, n, rate, **runtime_kw)
                row = summarize(name, beta, rec, t0, task_s, rate)
                # cores' worth of CPU the whole process got while the run lasted
                row["process_cores"] = float((time.process_time() - cpu0) / (np.nanmax(rec.end) - t0))
                row["expected_throughput"] = model.throughput(name, beta)
                if keep_tasks:
                    row["tasks"] = {
                        "release": (t0 + np.arange(n) / rate).tolist(),
                        **{k: getattr(rec, k) for k in ("start", "end", "sleep_s", "compute_s", "cpu_s")},
                    }
                rows.append(row)
            say(format_rows([r for r in rows if r["beta"] == beta], header=k == 0))

    def tput(name: str) -> list[float]:
        return [next(r["throughput"] for r in rows if r["model"] == name and r["beta"] == b) for b in betas]

    measured = crossover(list(betas), [a - b for a, b in zip(tput("M:N"), tput("M:1"), strict=True)])
    grid = np.linspace(0.0, max(betas), 1 + round(max(betas) * 1000)).tolist()
    expected = crossover(grid, [model.throughput("M:N", b) - model.throughput("M:1", b) for b in grid])
    return {
        "config": {
            "work": work,
            "task_ms": task_ms,
            "load": load,
            "rate_per_s": rate,
            "seconds": seconds,
            "tasks_per_run": n,
            "betas": list(betas),
            "cores": cores,
            **runtime_kw,
            "loadavg_1min_before": load_before,
            "loadavg_1min_after": os.getloadavg()[0],
        },
        "calibration": {
            "units_per_cpu_s": units,
            "parallel_speedup": speedup,
            "overhead_s": overhead,
            "model_cores": model.cores,
        },
        "results": rows,
        "crossover": {
            "measured": measured,
            "expected": expected,
            "mn_ahead_at_first_beta": bool(measured == betas[0]),
        },
    }


# --- output ---------------------------------------------------------------------------------------


# (heading, row key, format) of the per-model column groups of both tables
COLUMNS = (
    ("tput/s", "throughput", "{:.0f}"),
    ("expect", "expected_throughput", "{:.0f}"),
    ("p99 ms", "p99_latency_s", "{:.0f}"),
    ("threads", "peak_threads", "{}"),
    ("cores", "process_cores", "{:.2f}"),
)


def _cell(row: dict, key: str, fmt: str) -> str:
    value = row[key]
    return fmt.format(value * 1e3 if key.endswith("_s") else value)


def format_rows(rows: list[dict], header: bool = False) -> str:
    """One console line per beta: each column group has 1:1, M:1, M:N."""
    by = {r["model"]: r for r in rows}
    lines = []
    if header:
        models = " ".join(f"{m:>5}" for m in MODELS)
        groups = " | ".join(f"{h:<7} {models}" for h, _, _ in COLUMNS)
        lines.append(f"{'beta':>5} | {groups} | M:N cpu/target io-pool")
    cpu = by["M:N"]["cpu_vs_target"]
    lines.append(
        f"{rows[0]['beta']:5.2f} | "
        + " | ".join(f"{'':7} " + " ".join(f"{_cell(by[m], k, f):>5}" for m in MODELS) for _, k, f in COLUMNS)
        + f" | {'-' if cpu is None else f'{cpu:.2f}':>14} {by['M:N']['io_pool_size']!s:>7}"
    )
    return "\n".join(lines)


def markdown_table(result: dict) -> str:
    """The sweep as a Markdown table (for docs/performance.md); cells read 1:1 / M:1 / M:N."""
    heads = ["throughput /s", "expected /s", "p99 latency ms", "peak threads", "process cores"]
    lines = ["| β | " + " | ".join(heads) + " | M:N I/O pool |", "|" + "---|" * (len(heads) + 2)]
    for beta in result["config"]["betas"]:
        by = {r["model"]: r for r in result["results"] if r["beta"] == beta}
        cells = [" / ".join(_cell(by[m], k, f) for m in MODELS) for _, k, f in COLUMNS]
        lines.append(f"| {beta:.2f} | " + " | ".join(cells) + f" | {by['M:N']['io_pool_size']} |")
    return "\n".join(lines)


def fmt_beta(beta: float | None) -> str:
    return "none" if beta is None else f"{beta:.3f}"


def plot(result: dict, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("--plot needs matplotlib: pip install matplotlib (or the 'plot' extra)", file=sys.stderr)
        raise SystemExit(2) from None
    cfg, rows = result["config"], result["results"]
    betas = cfg["betas"]
    colors = {"1:1": "tab:orange", "M:1": "tab:blue", "M:N": "tab:green"}
    fig, (ax_t, ax_l) = plt.subplots(1, 2, figsize=(11, 4.2))
    for m in MODELS:
        mine = [next(r for r in rows if r["model"] == m and r["beta"] == b) for b in betas]
        ax_t.plot(betas, [r["throughput"] for r in mine], "o-", color=colors[m], label=f"{m} measured")
        ax_t.plot(betas, [r["expected_throughput"] for r in mine], "--", color=colors[m], alpha=0.6,
                  label=f"{m} model")  # fmt: skip
        ax_l.plot(betas, [r["p99_latency_s"] * 1e3 for r in mine], "o-", color=colors[m], label=m)
    ax_t.axhline(cfg["rate_per_s"], color="grey", lw=0.8, ls=":", label="offered load")
    cross = result["crossover"]
    if cross["measured"] is not None:
        ax_t.axvline(cross["measured"], color="black", lw=0.8, label=f"β* measured {cross['measured']:.2f}")
    if cross["expected"] is not None:
        ax_t.axvline(cross["expected"], color="black", lw=0.8, ls="--",
                     label=f"β* expected {cross['expected']:.2f}")  # fmt: skip
    ax_t.set(xlabel="blocked share β", ylabel="throughput (tasks/s)", ylim=(0, cfg["rate_per_s"] * 1.15))
    ax_t.set_title(f"T={cfg['task_ms']:g} ms, {cfg['work']} work, rate {cfg['rate_per_s']:.0f}/s")
    ax_t.legend(fontsize=7, ncol=2, loc="lower right")
    ax_l.set(xlabel="blocked share β", ylabel="p99 latency (ms, release to completion)", yscale="log")
    ax_l.axhline(cfg["task_ms"], color="grey", lw=0.8, ls=":", label="T")
    ax_l.set_title(f"{cfg['cores']} cores (shared machine)")
    ax_l.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="betas 0, 0.5, 0.9 and 0.2 s of arrivals each")
    parser.add_argument(
        "--work",
        choices=("numpy", "python"),
        default="numpy",
        help="CPU part: numpy ufuncs (release the GIL) or a pure-Python loop (holds it)",
    )
    parser.add_argument("--task-ms", type=float, default=5.0, help="T, one task's blocked + CPU time")
    parser.add_argument("--load", type=float, default=1.5, help="offered load, rate x T")
    parser.add_argument("--seconds", type=float, help="arrivals per run, in s (default 2, quick 0.2)")
    parser.add_argument("--betas", help="comma-separated blocked shares (default 0, 0.1, ..., 0.9, 0.95)")
    parser.add_argument("--cpu-workers", type=int, help="M:N CPU pool size (default: usable CPUs)")
    parser.add_argument("--io-workers", type=int, default=2, help="M:N I/O pool size at start")
    parser.add_argument("--max-io-workers", type=int, default=8, help="the most the I/O pool grows to")
    parser.add_argument("--out-json", type=Path, help="write config, calibration and rows as JSON")
    parser.add_argument("--plot", type=Path, help="write a throughput / p99 latency plot (needs matplotlib)")
    args = parser.parse_args(argv)
    betas = tuple(float(b) for b in args.betas.split(",")) if args.betas else None
    if args.plot is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            parser.error("--plot needs matplotlib: pip install matplotlib (or the 'plot' extra)")
    result = run_benchmark(
        quick=args.quick,
        work=args.work,
        task_ms=args.task_ms,
        load=args.load,
        seconds=args.seconds,
        betas=betas,
        cpu_workers=args.cpu_workers,
        io_workers=args.io_workers,
        max_io_workers=args.max_io_workers,
    )
    if args.out_json is not None:
        args.out_json.parent.mkdir(parents=True, exist_ok=True)
        args.out_json.write_text(json.dumps(result, indent=1) + "\n")
    if args.plot is not None:
        plot(result, args.plot)
    cross = result["crossover"]
    print(
        f"crossover_beta_measured={fmt_beta(cross['measured'])} "
        f"crossover_beta_expected={fmt_beta(cross['expected'])}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
