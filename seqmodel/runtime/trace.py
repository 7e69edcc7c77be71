"""Per-task attribution: which task ran on which worker, when, and how much CPU it used.

A profiler sees only threads; the `Tracer` sees tasks. It writes Chrome trace JSON
(open in https://ui.perfetto.dev or chrome://tracing) and sums time per task kind
(the first word of the task name: ``read``, ``tokenize``, ``assemble``).
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
import threading
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from seqmodel.runtime.task import Task

_PR_SET_NAME = 15
try:
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux: names stay Python-only
    _prctl = None


def set_os_thread_name(name: str) -> None:
    """Name the calling OS thread (first 15 bytes) so top, perf and py-spy show it."""
    if _prctl is not None:
        _prctl(_PR_SET_NAME, name.encode()[:15], 0, 0, 0)


def profiler_range(name: str) -> AbstractContextManager | None:
    """A `torch.profiler.record_function` range while a torch profiler is recording, else None.

    Only looks at torch if something else imported it; the check costs ~0.2 µs,
    an idle record_function ~7 µs, so the range is skipped when nobody records.
    Torch's profiler sees worker threads only with
    ``experimental_config=_ExperimentalConfig(profile_all_threads=True)``.
    """
    torch = sys.modules.get("torch")
    # The process-wide flag: the C++ one (_profiler_enabled) is per thread and stays False
    # in our workers even when a profile(..., profile_all_threads=True) records them.
    if torch is None or not getattr(torch.autograd.profiler, "_is_profiler_enabled", True):
        return None
    return torch.profiler.record_function(name)


def off_cpu_share(wall_s: float, cpu_s: float) -> float:
    """Share of `wall_s` not spent on a CPU (waiting on I/O, locks, the GIL or a run queue)."""
    return 0.0 if wall_s <= 0 else max(0.0, 1.0 - cpu_s / wall_s)


@dataclass(frozen=True)
class KindSummary:
    """Totals for one task kind. wall_s, cpu_s: self time (nested tasks excluded)."""

    count: int
    wall_s: float
    cpu_s: float

    @property
    def blocked_share(self) -> float:
        """Share of wall time off-CPU (waiting on I/O, locks, the GIL or a run queue)."""
        return off_cpu_share(self.wall_s, self.cpu_s)


class Tracer:
    """Collects one span per task step; cheap enough (a tuple append) to leave on."""

    def __init__(self) -> None:
        self.origin_ns = time.perf_counter_ns()
        self.spans: list[tuple] = []  # (seq, name, pool, tid, start, end, self wall, self cpu, ctx)
        self.threads: dict[int, str] = {}
        self._lock = threading.Lock()

    def add_thread(self, tid: int, name: str) -> None:
        with self._lock:
            self.threads[tid] = name

    def record(self, task: Task, tid: int, start_ns: int, end_ns: int, wall_ns: int, cpu_ns: int) -> None:
        self.spans.append(
            (task.seq, task.name, task.pool, tid, start_ns, end_ns, wall_ns, cpu_ns, task.context)
        )

    def chrome_trace(self) -> dict[str, Any]:
        """Trace Event Format: one complete ("X") event per step, one track per worker."""
        pid = os.getpid()
        events: list[dict[str, Any]] = [
            {
                "name": "process_name",
                "ph": "M",
                "pid": pid,
                "tid": 0,
                "args": {"name": "seqmodel runtime"},
            }
        ]
        for tid, name in sorted(self.threads.items()):
            events.append({"name": "thread_name", "ph": "M", "pid": pid, "tid": tid, "args": {"name": name}})
        for _, name, pool, tid, start, end, wall, cpu, context in list(self.spans):
            args = {"self_wall_ms": wall / 1e6, "self_cpu_ms": cpu / 1e6}
            args.update((k, str(v)) for k, v in context.items())
            events.append(
                {
                    "name": name,
                    "cat": pool,
                    "ph": "X",
                    "pid": pid,
                    "tid": tid,
                    "ts": (start - self.origin_ns) / 1e3,
                    "dur": (end - start) / 1e3,
                    "args": args,
                }
            )
        return {"traceEvents": events, "displayTimeUnit": "ms"}

    def write_chrome_trace(self, path: str | os.PathLike) -> None:
        with open(path, "w") as f:
            json.dump(self.chrome_trace(), f)

    def mark(self) -> int:
        """A position in the record: `summary(since=mark)` covers only what ran after it."""
        return len(self.spans)

    def summary(self, since: int = 0) -> dict[str, KindSummary]:
        """Per task kind: tasks (not steps) counted once, self wall and CPU time summed.

        since: a `mark()`, to summarise one epoch rather than the whole run.
        """
        seen: dict[str, set[int]] = {}
        wall: dict[str, int] = {}
        cpu: dict[str, int] = {}
        for seq, name, _, _, _, _, w, c, _ in self.spans[since:]:
            kind = name.split(" ", 1)[0]
            seen.setdefault(kind, set()).add(seq)
            wall[kind] = wall.get(kind, 0) + w
            cpu[kind] = cpu.get(kind, 0) + c
        return {k: KindSummary(len(seen[k]), wall[k] / 1e9, cpu[k] / 1e9) for k in sorted(seen)}

    def format_summary(self, since: int = 0) -> str:
        """The summary as a fixed-width table, one line per kind."""
        lines = [f"{'kind':<16}{'count':>8}{'wall s':>10}{'cpu s':>10}{'blocked':>9}"]
        for kind, s in self.summary(since).items():
            lines.append(f"{kind:<16}{s.count:>8}{s.wall_s:>10.3f}{s.cpu_s:>10.3f}{s.blocked_share:>9.0%}")
        return "\n".join(lines)
