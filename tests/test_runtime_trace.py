"""Per-task tracing: Chrome trace JSON names tasks on their workers, and the times add up."""

from __future__ import annotations

import json
import threading
import time

import pytest

from seqmodel.runtime import Runtime

TIMEOUT = 10.0


def test_trace_names_tasks_and_times_add_up(tmp_path):
    def read(i: int) -> str:
        time.sleep(0.005)  # blocked, not computing
        return threading.current_thread().name

    def tokenize(i: int) -> str:
        end = time.thread_time() + 0.002
        while time.thread_time() < end:
            pass
        return threading.current_thread().name

    start = time.perf_counter()
    with Runtime(cpu_workers=2, io_workers=1, max_io_workers=1, trace=True) as rt:
        reads = [
            rt.submit(
                read,
                i,
                pool="io",
                name=f"read chr1:{i * 1000}-{i * 1000 + 1000}",
                context={"file": "genome.fa"},
            )
            for i in range(6)
        ]
        tokens = [rt.submit(tokenize, i, name=f"tokenize {i}", after=[r]) for i, r in enumerate(reads)]
        for task in reads + tokens:
            assert task.result(TIMEOUT) == task.name  # the thread is named for its task
        worker_names = {w.native_id: w.name for w in rt.cpu.workers + rt.io.workers}
        path = tmp_path / "trace.json"
        rt.tracer.write_chrome_trace(path)
        summary = rt.tracer.summary()
        table = rt.tracer.format_summary()
    elapsed_us = (time.perf_counter() - start) * 1e6

    events = json.loads(path.read_text())["traceEvents"]
    spans = [e for e in events if e["ph"] == "X"]
    names = {e["tid"]: e["args"]["name"] for e in events if e["name"] == "thread_name"}
    assert names == worker_names
    assert sorted(e["name"] for e in spans) == sorted(t.name for t in reads + tokens)
    for e in spans:
        pool = "io" if e["name"].startswith("read") else "cpu"
        assert e["cat"] == pool and names[e["tid"]].startswith(pool)
        assert e["args"]["self_cpu_ms"] <= e["args"]["self_wall_ms"] + 0.05
        assert abs(e["args"]["self_wall_ms"] - e["dur"] / 1e3) < 1e-3  # no nested tasks here
        if pool == "io":
            assert e["dur"] >= 5000 and e["args"]["file"] == "genome.fa"
    for tid in names:  # one track per worker: its spans never overlap and fit in the run
        track = sorted((e["ts"], e["ts"] + e["dur"]) for e in spans if e["tid"] == tid)
        assert all(end <= nxt + 1e-3 for (_, end), (nxt, _) in zip(track, track[1:], strict=False))
        assert sum(end - ts for ts, end in track) <= elapsed_us

    assert {k: s.count for k, s in summary.items()} == {"read": 6, "tokenize": 6}
    for kind, s in summary.items():
        kind_spans = [e for e in spans if e["name"].startswith(kind)]
        assert abs(s.wall_s - sum(e["dur"] for e in kind_spans) / 1e6) < 1e-6 * len(kind_spans)
        assert s.cpu_s <= s.wall_s
    assert summary["read"].blocked_share > 0.5
    assert table.splitlines()[0].split() == ["kind", "count", "wall", "s", "cpu", "s", "blocked"]


def test_torch_profiler_sees_task_names():
    torch = pytest.importorskip("torch")
    from torch._C._profiler import _ExperimentalConfig

    all_threads = _ExperimentalConfig(profile_all_threads=True)
    activities = [torch.profiler.ProfilerActivity.CPU]
    with Runtime(cpu_workers=2, io_workers=1) as rt:
        with torch.profiler.profile(activities=activities, experimental_config=all_threads) as prof:
            for i in range(3):
                rt.submit(lambda: torch.ones(8).sum(), name=f"assemble batch {i}").result(TIMEOUT)
    names = {event.name for event in prof.events()}
    assert {f"assemble batch {i}" for i in range(3)} <= names
