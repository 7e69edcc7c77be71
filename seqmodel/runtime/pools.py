"""Worker threads and the two pools: `CpuPool` (thinkers) and `IoPool` (callers).

M OS threads run N tasks. Each worker pins itself to its cores, takes the most
urgent task of its pool, runs one step of it and reports the outcome; a worker whose
task waits on another runs queued work meanwhile (`Worker.help_until`). Every step
is timed in wall and thread CPU time, so each pool knows its blocked share, and the
I/O pool grows with a blocked backlog and shrinks when its extra workers sit idle.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

from seqmodel.runtime.affinity import pin_current_thread
from seqmodel.runtime.context import bind_worker
from seqmodel.runtime.scheduler import YIELDED, Scheduler
from seqmodel.runtime.task import DONE, FAILED, Task
from seqmodel.runtime.trace import Tracer, off_cpu_share, profiler_range, set_os_thread_name

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PoolStats:
    """A pool's totals since start. wall_s, cpu_s: time inside tasks (self time)."""

    size: int
    tasks: int
    wall_s: float
    cpu_s: float

    @property
    def blocked_share(self) -> float:
        """Share of task wall time spent off-CPU."""
        return off_cpu_share(self.wall_s, self.cpu_s)


def execute(task: Task) -> tuple[str, Any]:
    """Run one step of `task`; never raises: (DONE, value), (FAILED, exc) or (YIELDED, x)."""
    profiled = profiler_range(task.name)
    if profiled is None:
        return _step(task)
    with profiled:
        return _step(task)


def _step(task: Task) -> tuple[str, Any]:
    if task.gen is None and not task.is_generator:
        try:
            return DONE, task.fn(*task.args)
        except BaseException as error:
            return FAILED, error
    try:
        if task.gen is None:
            task.gen = task.fn(*task.args)
            out = next(task.gen)
        elif task.awaiting is None:
            out = next(task.gen)
        else:
            awaiting, task.awaiting = task.awaiting, None
            tasks = awaiting if isinstance(awaiting, list) else [awaiting]
            error = next((t.error for t in tasks if t.error is not None), None)
            if error is not None:
                out = task.gen.throw(error)
            elif isinstance(awaiting, list):
                out = task.gen.send([t.value for t in tasks])
            else:
                out = task.gen.send(awaiting.value)
    except StopIteration as stop:
        return DONE, stop.value
    except BaseException as error:
        return FAILED, error
    return YIELDED, out


class Worker:
    """One OS thread of a pool."""

    def __init__(self, pool: WorkerPool, index: int, cpus: frozenset[int] | None):
        self.pool = pool
        self.scheduler = pool.scheduler
        self.queue = pool.queue
        self.index = index  # unique among the pool's live workers; the first `initial_size` stay
        self.name = f"{pool.name}-{index}"
        self.cpus = cpus
        self._help_cv = threading.Condition(self.scheduler.lock)  # wakes it in help_until
        self.current: Task | None = None
        self.native_id: int | None = None
        self.thread = threading.Thread(target=self._main, name=self.name, daemon=True)
        self._started = threading.Event()
        self._start_error: OSError | None = None
        self._nested: list[list[int]] = []  # [wall, cpu] ns of tasks run inside the running one
        self._schedstat: int | None = None  # fd of this thread's /proc schedstat
        self.growth_window = [0, 0, 0, 0]  # steps, wall ns, cpu ns, run-queue ns at its start

    def start(self) -> None:
        self.thread.start()
        self._started.wait()
        if self._start_error is not None:
            self.thread.join()
            raise RuntimeError(
                f"{self.name} could not pin to CPUs {sorted(self.cpus or ())}"
            ) from self._start_error

    def run_queue_ns(self) -> int:
        """Time this thread spent runnable but waiting for a CPU, in ns (0 where unknown)."""
        if self._schedstat is None:
            return 0
        try:  # "<on-cpu ns> <run-queue ns> <timeslices>"
            return int(os.pread(self._schedstat, 64, 0).split()[1])
        except (OSError, ValueError, IndexError):
            return 0

    def _main(self) -> None:
        self.native_id = threading.get_native_id()
        try:
            if self.cpus is not None:
                pin_current_thread(self.cpus)
        except OSError as error:
            self._start_error = error
            self._started.set()
            return
        bind_worker(self)
        if self.pool.tracer is not None:
            self.pool.tracer.add_thread(self.native_id, self.name)
            set_os_thread_name(self.name)
        try:
            self._schedstat = os.open(f"/proc/self/task/{self.native_id}/schedstat", os.O_RDONLY)
        except OSError:
            pass
        self.growth_window[3] = self.run_queue_ns()
        self._started.set()
        try:
            self._loop()
        finally:
            if self._schedstat is not None:
                os.close(self._schedstat)

    def _loop(self) -> None:
        scheduler, queue, pool = self.scheduler, self.queue, self.pool
        # a worker the pool grew leaves once it has found no work for this long
        idle_exit_s = pool.idle_exit_s if self.index >= pool.initial_size else None
        while True:
            with scheduler.lock:
                idle_since = time.monotonic()
                while True:
                    if scheduler.closed:
                        return
                    task = scheduler.take(queue)
                    if task is not None:
                        break
                    wait_s = None
                    if idle_exit_s is not None:
                        wait_s = idle_since + idle_exit_s - time.monotonic()
                        if wait_s <= 0:
                            pool.retire(self)
                            return
                    queue.idle += 1
                    try:
                        queue.cv.wait(wait_s)
                    finally:
                        queue.idle -= 1
            self.run(task)

    def help_until(self, task: Task, timeout: float | None = None) -> None:
        """Wait, inside the running task, for `task` to finish; run queued work meanwhile.

        The waiting task lends `task` its priority, and this worker runs tasks of its own
        queue that are at least as urgent as the waiting one (the awaited task and its
        dependencies are, after lending), so a blocked worker never parks work that only
        it could run. TimeoutError after `timeout` s.
        """
        scheduler = self.scheduler
        deadline = None if timeout is None else time.monotonic() + timeout
        waiting = self.current
        with scheduler.lock:
            if task.finished:
                return
            scheduler.block_on(task, waiting, self.queue, self._help_cv)
            try:
                while not task.finished:
                    other = scheduler.take(self.queue, waiting.effective)
                    if other is None:
                        self._help_cv.wait(scheduler.wait_slice(task, deadline, timeout))
                        continue
                    scheduler.lock.release()
                    try:
                        self.run(other)
                    finally:
                        scheduler.lock.acquire()
            finally:
                scheduler.unblock(task, waiting, self.queue, self._help_cv)

    def run(self, task: Task) -> None:
        """Run one step of `task` here and settle it (the task is already RUNNING)."""
        tracer = self.pool.tracer
        previous = self.current
        self.current = task
        self.thread.name = task.name
        if tracer is not None:
            set_os_thread_name(task.name)
        self._nested.append([0, 0])
        start, cpu_start = time.perf_counter_ns(), time.thread_time_ns()
        kind, payload = execute(task)
        end, cpu_end = time.perf_counter_ns(), time.thread_time_ns()
        nested_wall, nested_cpu = self._nested.pop()
        if self._nested:  # we ran inside a task that waited: it must not count our time
            self._nested[-1][0] += end - start
            self._nested[-1][1] += cpu_end - cpu_start
        wall, cpu = end - start - nested_wall, cpu_end - cpu_start - nested_cpu
        self.current = previous
        self.thread.name = self.name if previous is None else previous.name
        if tracer is not None:
            set_os_thread_name(self.thread.name)
            tracer.record(task, self.native_id, start, end, wall, cpu)
        finished: list[Task] = []
        with self.scheduler.lock:
            self.scheduler.settle(task, kind, payload, finished)
            grow_by = self.pool.account(self, wall, cpu)
        self.scheduler.after_finish(finished)
        if grow_by:
            self.pool.grow(grow_by)


class WorkerPool:
    """A named ready queue and the team of workers that drains it.

    idle_exit_s: how long a worker beyond the first `initial_size` waits for work before it
    exits; None (fixed pools): workers stay until close.
    """

    idle_exit_s: float | None = None

    def __init__(
        self,
        scheduler: Scheduler,
        name: str,
        size: int,
        core_sets: list[frozenset[int]] | None,
        tracer: Tracer | None,
    ):
        if size < 1:
            raise ValueError(f"pool {name!r} needs at least one worker, got {size}")
        self.scheduler = scheduler
        self.name = name
        self.queue = scheduler.add_queue(name)
        self.tracer = tracer
        self.core_sets = core_sets
        self.workers: list[Worker] = []
        self.initial_size = size
        self._tasks = 0
        self._wall_ns = 0
        self._cpu_ns = 0

    @property
    def size(self) -> int:
        return len(self.workers)

    def start(self) -> None:
        for _ in range(self.initial_size):
            self._add_worker()

    def stats(self) -> PoolStats:
        with self.scheduler.lock:
            return PoolStats(self.size, self._tasks, self._wall_ns / 1e9, self._cpu_ns / 1e9)

    def account(self, worker: Worker, wall_ns: int, cpu_ns: int) -> int:
        """Add one step's times (lock held); returns how many workers the caller should add."""
        self._tasks += 1
        self._wall_ns += wall_ns
        self._cpu_ns += cpu_ns
        return 0

    def grow(self, count: int) -> None:
        """Add `count` workers; fixed-size pools never ask for any."""
        for _ in range(count):
            self._add_worker()

    def retire(self, worker: Worker) -> None:
        """Take `worker`, whose thread is about to end, out of the pool (lock held)."""
        scheduler = self.scheduler
        self.workers.remove(worker)
        scheduler.workers.remove(worker)
        scheduler.exiting = [w for w in scheduler.exiting if w.thread.is_alive()]
        scheduler.exiting.append(worker)

    def _add_worker(self) -> None:
        with self.scheduler.lock:
            if self.scheduler.closed:
                return
            taken = {w.index for w in self.workers}
            index = next(i for i in range(len(self.workers) + 1) if i not in taken)
            cpus = None if self.core_sets is None else self.core_sets[index % len(self.core_sets)]
            worker = Worker(self, index, cpus)
            self.workers.append(worker)
            self.scheduler.workers.append(worker)
        try:
            worker.start()
        except RuntimeError:
            with self.scheduler.lock:
                self.workers.remove(worker)
                self.scheduler.workers.remove(worker)
            raise


class CpuPool(WorkerPool):
    """Thinkers: parsing, tokenization, batch assembly. Fixed size, one core each when pinned."""


class IoPool(WorkerPool):
    """Callers: reads, decompression, anything that may block.

    Grows with its backlog: after every `window_steps` steps of one of its workers, if
    waiting took more than `grow_above` of that worker's task time and tasks are queued
    beyond the idle workers, it adds one worker per such task at once, up to `max_size`.
    Waiting is net of run-queue time: wall - thread CPU - time runnable but without a
    CPU (/proc schedstat), share = waiting / (waiting + CPU). More threads help a pool
    whose threads wait on I/O; they only slow one starved of CPU, which plain wall vs
    CPU time would mistake for blocked. Waiting for the GIL still counts as waiting, so
    pure-Python work on several callers can look blocked. Shrinks when the backlog is
    gone: a worker beyond the initial `size` that finds no work for `idle_exit_s` s exits.
    """

    def __init__(
        self,
        scheduler: Scheduler,
        name: str,
        size: int,
        max_size: int,
        core_sets: list[frozenset[int]] | None,
        tracer: Tracer | None,
        grow_above: float = 0.6,
        window_steps: int = 4,
        idle_exit_s: float = 5.0,
    ):
        super().__init__(scheduler, name, size, core_sets, tracer)
        self.max_size = max(size, max_size)
        self.grow_above = grow_above
        self.window_steps = window_steps
        self.idle_exit_s = idle_exit_s
        self._growing = 0  # workers promised by `account` and not yet started

    def account(self, worker: Worker, wall_ns: int, cpu_ns: int) -> int:
        super().account(worker, wall_ns, cpu_ns)
        window = worker.growth_window
        window[0] += 1
        window[1] += wall_ns
        window[2] += cpu_ns
        if window[0] < self.window_steps:
            return 0
        run_queue = worker.run_queue_ns()
        waiting = max(0, window[1] - window[2] - (run_queue - window[3]))
        blocked = waiting / max(waiting + window[2], 1)  # of the time it had a CPU or needed none
        worker.growth_window = [0, 0, 0, run_queue]
        if blocked <= self.grow_above:
            return 0
        backlog = len(self.queue) - self.queue.idle - self._growing
        count = max(0, min(backlog, self.max_size - self.size - self._growing))
        self._growing += count
        return count

    def grow(self, count: int) -> None:
        try:
            super().grow(count)
        except RuntimeError:  # runs on a worker: a failed start must not kill it
            log.exception("could not grow %s", self.name)
        finally:
            with self.scheduler.lock:
                self._growing -= count
