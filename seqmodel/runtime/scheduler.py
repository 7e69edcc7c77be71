"""The user-level scheduler: ready queues by priority, dependencies, priority inheritance.

One lock guards every task's scheduling state; each pool's workers sleep on a
condition over that lock and every wait re-checks its predicate, so a wakeup is
never lost or coalesced: a push is a count the workers drain, not a flag.
"""

from __future__ import annotations

import heapq
import inspect
import itertools
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from seqmodel.runtime.context import current_task, current_worker
from seqmodel.runtime.task import (
    CANCELLED,
    DONE,
    FAILED,
    PENDING,
    QUEUED,
    RUNNING,
    Task,
    TaskCancelled,
    TaskError,
    describe,
)

if TYPE_CHECKING:
    from seqmodel.runtime.pools import Worker

log = logging.getLogger(__name__)

URGENT = -math.inf  # what a thread outside the runtime lends the task it waits for
WAIT_SLICE_S = 0.2  # waits outside workers wake this often so Ctrl-C lands within it
YIELDED = "yielded"  # step outcome: a generator task yielded (payload: None, Task, [Task])


class ReadyQueue:
    """A pool's runnable tasks, most urgent first (priority, then submission order).

    Raising a queued task's priority pushes a fresh heap entry; the old one is
    recognised as stale (``task.entry is not entry``) and skipped on pop.
    """

    def __init__(self, lock: threading.Lock):
        self.heap: list[tuple[float, int, Task]] = []
        self.live = 0  # tasks in the queue, stale entries excluded
        self.cv = threading.Condition(lock)  # idle workers of this pool sleep here
        self.idle = 0
        # (the task it runs, the condition it sleeps on) of each worker blocked in result():
        # woken to help when a task at least as urgent as its own is pushed
        self.helpers: list[tuple[Task, threading.Condition]] = []

    def __len__(self) -> int:
        return self.live

    def push(self, task: Task) -> None:
        if task.entry is None:
            self.live += 1
        task.entry = (task.effective, task.seq, task)
        heapq.heappush(self.heap, task.entry)

    def peek(self) -> Task | None:
        heap = self.heap
        while heap:
            entry = heap[0]
            if entry[2].entry is entry:
                return entry[2]
            heapq.heappop(heap)
        return None

    def pop(self) -> Task | None:
        task = self.peek()
        if task is not None:
            heapq.heappop(self.heap)
            task.entry = None
            self.live -= 1
        return task

    def remove(self, task: Task) -> None:
        if task.entry is not None:
            task.entry = None
            self.live -= 1


class Scheduler:
    """Task states, ready queues and waits; the pools' workers drive it."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.done_cv = threading.Condition(self.lock)  # outside threads waiting for a task
        self.queues: dict[str, ReadyQueue] = {}
        self.workers: list[Worker] = []  # every pool's live workers
        self.exiting: list[Worker] = []  # workers that left their pool, threads maybe still ending
        self.closed = False
        self._live: set[Task] = set()  # unfinished tasks: close() cancels them
        self._seq = itertools.count()

    def add_queue(self, name: str) -> ReadyQueue:
        queue = self.queues[name] = ReadyQueue(self.lock)
        return queue

    def submit(
        self,
        fn: Callable[..., Any],
        args: tuple,
        pool: str,
        priority: float | None,
        name: str | None,
        context: dict[str, Any] | None,
        after: Iterable[Task],
    ) -> Task:
        if pool not in self.queues:
            raise ValueError(f"unknown pool {pool!r}, expected one of {sorted(self.queues)}")
        if priority is None:  # subtasks inherit the urgency of the task that submits them
            parent = current_task()
            priority = 0.0 if parent is None else parent.effective
        task = Task(
            self,
            fn,
            args,
            pool,
            priority,
            name or getattr(fn, "__name__", "task"),
            context or {},
            next(self._seq),
            inspect.isgeneratorfunction(fn),
        )
        finished: list[Task] = []
        with self.lock:
            if self.closed:
                raise RuntimeError(f"runtime is closed, cannot submit {describe(task)}")
            self._live.add(task)
            self._wait_for(task, tuple(after), False, finished)
        self.after_finish(finished)
        return task

    def settle(self, task: Task, kind: str, payload: Any, finished: list[Task]) -> None:
        """Record the outcome of one step of `task` (lock held)."""
        if kind is DONE:
            self._finish(task, DONE, payload, None, finished)
        elif kind is FAILED:
            self._finish(task, FAILED, None, TaskError.wrap(task, payload), finished)
        elif payload is None:
            self._enqueue(task, finished)
        elif isinstance(payload, Task):
            task.awaiting = payload
            self._wait_for(task, (payload,), True, finished)
        elif isinstance(payload, list | tuple) and all(isinstance(t, Task) for t in payload):
            task.awaiting = list(payload)
            self._wait_for(task, payload, True, finished)
        else:
            error = TypeError(f"a task may yield None, a Task or a list of Tasks, not {payload!r}")
            self._finish(task, FAILED, None, TaskError.wrap(task, error), finished)

    def wait(self, task: Task, timeout: float | None) -> None:
        """Block until `task` finishes; TimeoutError after `timeout` s.

        A worker of this runtime that waits inside a task runs other queued work meanwhile
        (`Worker.help_until`); any other thread sleeps, lending the task top urgency.
        """
        worker = current_worker()
        if worker is not None and worker.scheduler is self and worker.current is not None:
            worker.help_until(task, timeout)
            return
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.lock:
            if task.finished:
                return
            self._lend(task, URGENT)
            task.ext_waiters += 1
            try:
                while not task.finished:
                    self.done_cv.wait(self.wait_slice(task, deadline, timeout))
            finally:
                task.ext_waiters -= 1

    def cancel(self, task: Task) -> bool:
        finished: list[Task] = []
        with self.lock:
            if task.finished or task.state is RUNNING:
                return False
            error = TaskCancelled(f"{describe(task)}: cancelled", task.name, task.context)
            self._finish(task, CANCELLED, None, error, finished)
        self.after_finish(finished)
        return True

    def add_done_callback(self, task: Task, fn: Callable[[Task], None]) -> None:
        with self.lock:
            if not task.finished:
                task.callbacks.append(fn)
                return
        fn(task)

    def close(self) -> None:
        """Refuse new work, cancel every task not running, wake every worker."""
        finished: list[Task] = []
        with self.lock:
            if self.closed:
                return
            self.closed = True
            for task in sorted(self._live, key=lambda t: t.seq):
                if task.state is not RUNNING:
                    error = TaskCancelled(f"{describe(task)}: runtime closed", task.name, task.context)
                    self._finish(task, CANCELLED, None, error, finished)
            for queue in self.queues.values():
                queue.cv.notify_all()
        self.after_finish(finished)

    def after_finish(self, finished: list[Task]) -> None:
        """Run done-callbacks and close cancelled generators, outside the lock."""
        for task in finished:
            if task.gen is not None:
                try:
                    task.gen.close()
                except Exception:
                    log.exception("closing %s", describe(task))
                task.gen = None
            callbacks, task.callbacks = task.callbacks, []
            for fn in callbacks:
                try:
                    fn(task)
                except Exception:
                    log.exception("done-callback of %s", describe(task))

    # --- lock held from here on ---

    def take(self, queue: ReadyQueue, limit: float = math.inf) -> Task | None:
        """Pop `queue`'s most urgent task, if its priority is `limit` or more urgent, as RUNNING."""
        task = queue.peek()
        if task is None or task.effective > limit:
            return None
        queue.pop()
        task.state = RUNNING
        return task

    def block_on(self, task: Task, waiting: Task, queue: ReadyQueue, cv: threading.Condition) -> None:
        """`waiting`, running on a worker of `queue` that sleeps on `cv`, now waits for `task`.

        `task` and what it waits for inherit the priority of `waiting`; `cv` is notified when
        `task` finishes and when `queue` gets work at least as urgent as `waiting`.
        """
        self._lend(task, waiting.effective)
        waiting.blockers = (task,)
        task.waiters.append(cv)
        queue.helpers.append((waiting, cv))

    def unblock(self, task: Task, waiting: Task, queue: ReadyQueue, cv: threading.Condition) -> None:
        """Undo `block_on`."""
        queue.helpers.remove((waiting, cv))
        task.waiters.remove(cv)
        waiting.blockers = ()

    def wait_slice(self, task: Task, deadline: float | None, timeout: float | None) -> float:
        """How long one sleep of a wait for `task` may last; TimeoutError past `deadline`."""
        if deadline is None:
            return WAIT_SLICE_S
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(
                f"waited {timeout} s for {describe(task)} ({task.state}); {self._snapshot_locked()}"
            )
        return min(left, WAIT_SLICE_S)

    def _wait_for(self, task: Task, deps: Iterable[Task], parked: bool, finished: list[Task]) -> None:
        pending = tuple(d for d in deps if not d.finished)
        if not parked:
            failed = next((d for d in deps if d.finished and d.error is not None), None)
            if failed is not None:
                self._finish(task, *self._dependency_failure(task, failed), finished)
                return
        if not pending:
            self._enqueue(task, finished)
            return
        task.state = PENDING
        task.parked = parked
        task.deps_left = len(pending)
        task.blockers = pending
        for dep in pending:
            dep.dependents.append(task)
            self._lend(dep, task.effective)

    def _enqueue(self, task: Task, finished: list[Task]) -> None:
        if self.closed:
            error = TaskCancelled(f"{describe(task)}: runtime closed", task.name, task.context)
            self._finish(task, CANCELLED, None, error, finished)
            return
        task.state = QUEUED
        task.blockers = ()
        queue = self.queues[task.pool]
        queue.push(task)
        self._wake(queue, task)

    def _wake(self, queue: ReadyQueue, task: Task) -> None:
        if queue.idle:
            queue.cv.notify()
        for waiting, cv in queue.helpers:
            if task.effective <= waiting.effective:
                cv.notify()

    def _lend(self, task: Task, priority: float) -> None:
        """Priority inheritance: `task` and everything it waits for get at least `priority`."""
        stack = [task]
        while stack:
            t = stack.pop()
            if t.finished or t.effective <= priority:
                continue
            t.effective = priority
            if t.entry is not None:
                queue = self.queues[t.pool]
                queue.push(t)
                self._wake(queue, t)
            stack.extend(t.blockers)

    def _finish(
        self, task: Task, state: str, value: Any, error: TaskError | None, finished: list[Task]
    ) -> None:
        stack = [(task, state, value, error)]
        while stack:
            t, state, value, error = stack.pop()
            if t.finished:
                continue
            self.queues[t.pool].remove(t)
            t.state, t.value, t.error = state, value, error
            t.finished = True
            t.blockers = ()
            t.fn = t.args = None  # a finished task must not keep its inputs alive
            self._live.discard(t)
            for cv in t.waiters:
                cv.notify()
            if t.ext_waiters:
                self.done_cv.notify_all()
            finished.append(t)
            dependents, t.dependents = t.dependents, []
            for d in dependents:
                if d.state is not PENDING:
                    continue
                if error is not None and not d.parked:
                    stack.append((d, *self._dependency_failure(d, t)))
                    continue
                d.deps_left -= 1
                if d.deps_left == 0:
                    self._enqueue(d, finished)

    @staticmethod
    def _dependency_failure(task: Task, dep: Task) -> tuple[str, None, TaskError]:
        if isinstance(dep.error, TaskCancelled):
            message = f"{describe(task)}: dependency {dep.name} was cancelled"
            error: TaskError = TaskCancelled(message, task.name, task.context)
            state = CANCELLED
        else:
            error = TaskError(f"{describe(task)}: dependency failed: {dep.error}", task.name, task.context)
            state = FAILED
        error.__cause__ = dep.error
        return state, None, error

    def _snapshot_locked(self) -> str:
        running = [f"{w.name}: {describe(w.current)}" for w in self.workers if w.current]
        queued = [f"{name}={len(q)}" for name, q in self.queues.items()]
        return f"running [{'; '.join(running)}], queued [{' '.join(queued)}]"
