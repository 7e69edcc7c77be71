"""`Runtime`: the M:N runtime's front door, a context manager owning both pools.

    with Runtime(cpu_workers=2, io_workers=2) as rt:
        for batch in rt.ordered_map(make_batch, range(n_batches), prefetch=4):
            ...

Nothing outlives the ``with``: leaving it cancels queued work, lets running
steps finish and joins every worker thread.
"""

from __future__ import annotations

import inspect
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

from seqmodel.runtime.affinity import available_cpus, plan_core_sets, read_topology
from seqmodel.runtime.pools import CpuPool, IoPool, PoolStats, WorkerPool
from seqmodel.runtime.scheduler import Scheduler
from seqmodel.runtime.task import Task, describe
from seqmodel.runtime.trace import Tracer

T = TypeVar("T")
R = TypeVar("R")

# Callers the I/O pool may grow to by default: 64 reads in flight, ~200 MB/s of 64 KiB
# ranges at 20 ms each. A caller waiting on I/O costs a stack, no CPU; extra ones exit idle.
MAX_IO_WORKERS = 64


def _chunks(items: Iterable[T], size: int) -> Iterator[list[T]]:
    chunk: list[T] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _over_chunk(fn: Callable[[T], R]) -> Callable[[list[T]], Any]:
    """``fn`` mapped over a list of items in one task; a generator task stays one."""
    if inspect.isgeneratorfunction(fn):

        def run_generators(items: list[T]):
            out = []
            for item in items:
                out.append((yield from fn(item)))
            return out

        return run_generators

    def run(items: list[T]) -> list[R]:
        return [fn(item) for item in items]

    return run


def _discard_result(discard: Callable[[R], None]) -> Callable[[Task[R]], None]:
    def callback(task: Task[R]) -> None:
        if task.error is None:
            discard(task.value)

    return callback


class Runtime:
    """M pinned OS threads in two pools running N prioritized tasks.

    cpu_workers: thinkers; default: the CPUs this process may use (affinity, cgroup quota).
    io_workers, max_io_workers: callers at start, and the most the I/O pool grows to
        (default `MAX_IO_WORKERS`) while its tasks are mostly blocked and queue up.
    io_idle_exit_s: a caller beyond `io_workers` exits after this long without work.
    grow_above: the blocked share beyond which the I/O pool may grow (see `IoPool`).
    pin_cores: pin each worker to cores (see `plan_core_sets`), near the GPU at
        `gpu_pci_address` when /sys knows its NUMA node.
    trace: record every task step (`tracer`: Chrome trace JSON, per-kind summary).
    """

    def __init__(
        self,
        cpu_workers: int | None = None,
        io_workers: int = 2,
        max_io_workers: int | None = None,
        *,
        pin_cores: bool = False,
        gpu_pci_address: str | None = None,
        trace: bool = False,
        grow_above: float = 0.6,
        io_idle_exit_s: float = 5.0,
    ):
        cpu_workers = available_cpus() if cpu_workers is None else cpu_workers
        max_io_workers = max(io_workers, MAX_IO_WORKERS if max_io_workers is None else max_io_workers)
        self.scheduler = Scheduler()
        self.tracer = Tracer() if trace else None
        cpu_cores = io_cores = None
        if pin_cores:
            plan = plan_core_sets(read_topology(gpu_pci_address), cpu_workers, max_io_workers)
            cpu_cores, io_cores = plan.cpu, plan.io
        self.cpu = CpuPool(self.scheduler, "cpu", cpu_workers, cpu_cores, self.tracer)
        self.io = IoPool(
            self.scheduler,
            "io",
            io_workers,
            max_io_workers,
            io_cores,
            self.tracer,
            grow_above=grow_above,
            idle_exit_s=io_idle_exit_s,
        )
        self.pools: dict[str, WorkerPool] = {"cpu": self.cpu, "io": self.io}
        try:
            for pool in self.pools.values():
                pool.start()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Runtime:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def submit(
        self,
        fn: Callable[..., T],
        *args: Any,
        pool: str = "cpu",
        priority: float | None = None,
        name: str | None = None,
        context: dict[str, Any] | None = None,
        after: Iterable[Task] = (),
    ) -> Task[T]:
        """Schedule ``fn(*args)`` on `pool` ("cpu" or "io") and return its Task.

        priority: lower runs first; default: the submitting task's, else 0.
        name: shown in traces, thread names and errors (``read 20:1000-2000``).
        context: what errors should name (``{"file": ..., "record": ..., "offset": ...}``).
        after: tasks that must succeed first; if one fails this one fails without running.
        A generator function gives its worker back at each ``yield`` (see `task`).
        """
        return self.scheduler.submit(fn, args, pool, priority, name, context, after)

    def ordered_map(
        self,
        fn: Callable[[T], R],
        items: Iterable[T],
        *,
        prefetch: int = 4,
        pool: str = "cpu",
        priority: float = 0.0,
        name: str | None = None,
        context: dict[str, Any] | None = None,
        timeout: float | None = None,
        discard: Callable[[R], None] | None = None,
        start: int = 0,
        chunksize: int = 1,
    ) -> Iterator[R]:
        """Yield ``fn(item)`` for each item, in item order, at most `prefetch` tasks in flight.

        Item i runs as task ``"{name} {start + i}"`` with priority ``priority + i``, so
        the result needed next is the most urgent. A failed item raises its TaskError
        here, when its turn comes. timeout: per result, in s. Closing the iterator
        early cancels what has not started; `discard` gets results that finish unread.
        start: the number of the first item in task names and contexts (a resumed epoch).
        chunksize: items per task (task ``"{name} {first}-{last}"``), to spread the fixed
        cost of a task (~10 µs) over work items shorter than ~100 µs.
        """
        if prefetch < 1:
            raise ValueError(f"prefetch must be at least 1, got {prefetch}")
        if chunksize < 1:
            raise ValueError(f"chunksize must be at least 1, got {chunksize}")
        label = name or getattr(fn, "__name__", "item")
        work: Callable[[Any], Any] = fn if chunksize == 1 else _over_chunk(fn)
        source = enumerate(items if chunksize == 1 else _chunks(items, chunksize))
        inflight: deque[Task[Any]] = deque()

        def submit_next() -> None:
            nxt = next(source, None)
            if nxt is not None:
                index, item = nxt
                first = start + index * chunksize
                numbers = f"{first}" if chunksize == 1 else f"{first}-{first + len(item) - 1}"
                inflight.append(
                    self.submit(
                        work,
                        item,
                        pool=pool,
                        priority=priority + index,
                        name=f"{label} {numbers}",
                        context={**(context or {}), "index": first},
                    )
                )

        if discard is not None and chunksize > 1:
            discard_one = discard

            def discard(values: list[R]) -> None:
                for value in values:
                    discard_one(value)

        try:
            for _ in range(prefetch):
                submit_next()
            while inflight:
                value = inflight[0].result(timeout)
                inflight.popleft()
                submit_next()
                if chunksize == 1:
                    yield value
                else:
                    yield from value
        finally:
            for task in inflight:
                if not task.cancel() and discard is not None:
                    task.add_done_callback(_discard_result(discard))

    def stats(self) -> dict[str, PoolStats]:
        """Per pool: size, tasks, wall and CPU time in tasks, blocked share."""
        return {name: pool.stats() for name, pool in self.pools.items()}

    def close(self, timeout: float = 10.0) -> None:
        """Cancel queued work, let running steps finish, join every worker.

        Raises RuntimeError naming the tasks still running after `timeout` s
        (their threads are daemons, so the process can still exit).
        """
        self.scheduler.close()
        deadline = time.monotonic() + timeout
        me = threading.current_thread()
        stuck = []
        for worker in [*self.scheduler.workers, *self.scheduler.exiting]:
            if worker.thread is me or worker.thread.ident is None:  # ourselves, or never started
                continue
            worker.thread.join(max(0.0, deadline - time.monotonic()))
            if worker.thread.is_alive():
                stuck.append(f"{worker.name}: {describe(worker.current) if worker.current else 'idle'}")
        if stuck:
            raise RuntimeError(f"workers still busy {timeout} s after close: {'; '.join(stuck)}")
