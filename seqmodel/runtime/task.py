"""The unit of work: a `Task` is a future that also carries its scheduling state.

A task is a plain function or a generator function. A generator task gives its
worker back at each ``yield``: a bare ``yield`` is a cooperative yield point (more
urgent work runs first), ``x = yield task`` or ``xs = yield [tasks]`` parks it until
those tasks finish without holding a thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from seqmodel.runtime.scheduler import Scheduler

T = TypeVar("T")

# States. PENDING: waits for dependencies (``after=`` or a ``yield``); QUEUED: ready, in
# its pool's queue; RUNNING: on a worker; the last three are final.
PENDING = "pending"
QUEUED = "queued"
RUNNING = "running"
DONE = "done"
FAILED = "failed"
CANCELLED = "cancelled"


class TaskError(Exception):
    """A task raised: names the task and its context; the original is ``__cause__``."""

    def __init__(self, message: str, task_name: str, context: Mapping[str, Any]):
        super().__init__(message)
        self.task_name = task_name
        self.context = dict(context)

    @property
    def original(self) -> BaseException:
        """The first exception in the chain that is not a TaskError (the root cause)."""
        error: BaseException = self
        while isinstance(error, TaskError) and error.__cause__ is not None:
            error = error.__cause__
        return error

    @classmethod
    def wrap(cls, task: Task, error: BaseException) -> TaskError:
        """The error `task` fails with when its own code raised `error`."""
        detail = str(error) if isinstance(error, TaskError) else f"{type(error).__name__}: {error}"
        wrapped = cls(f"{describe(task)}: {detail}", task.name, task.context)
        wrapped.__cause__ = error
        return wrapped


class TaskCancelled(TaskError):
    """The task was cancelled before it ran to completion (runtime closed, or cancel())."""


def describe(task: Task) -> str:
    """``name [key=value ...]``: how errors and timeouts name a task."""
    if not task.context:
        return task.name
    return f"{task.name} [{' '.join(f'{k}={v}' for k, v in task.context.items())}]"


class Task(Generic[T]):
    """A submitted unit of work and, once it has run, its outcome.

    Created by `Runtime.submit`; read it with `result`, `exception`, `done`,
    `add_done_callback`; stop it before it runs with `cancel`.
    """

    __slots__ = (
        "fn", "args", "pool", "priority", "effective", "name", "context", "seq",
        "is_generator", "state", "finished", "value", "error", "entry", "deps_left", "parked",
        "blockers", "dependents", "waiters", "ext_waiters", "callbacks", "gen", "awaiting",
        "scheduler",
    )  # fmt: skip

    def __init__(
        self,
        scheduler: Scheduler,
        fn: Callable[..., Any],
        args: tuple,
        pool: str,
        priority: float,
        name: str,
        context: dict[str, Any],
        seq: int,
        is_generator: bool,
    ):
        self.scheduler = scheduler
        self.fn, self.args = fn, args
        self.pool = pool
        self.priority = priority  # as submitted; lower is more urgent
        self.effective = priority  # after inheritance from waiters
        self.name = name
        self.context = context  # file / record / offset ...: named by errors
        self.seq = seq  # FIFO among equal priorities
        self.is_generator = is_generator
        self.state = PENDING
        self.finished = False
        self.value: Any = None
        self.error: TaskError | None = None
        self.entry: tuple | None = None  # live entry in its pool's heap
        self.deps_left = 0
        self.parked = False  # PENDING on a ``yield`` (errors resume it) or on ``after=``
        self.blockers: tuple[Task, ...] = ()  # what it waits for: priority flows there
        self.dependents: list[Task] = []
        self.waiters: list[threading.Condition] = []  # workers blocked in result()
        self.ext_waiters = 0  # non-worker threads blocked in result()
        self.callbacks: list[Callable[[Task], None]] = []
        self.gen: Any = None
        self.awaiting: Task | list[Task] | None = None

    def result(self, timeout: float | None = None) -> T:
        """Wait for the task (at most `timeout` s) and return its value.

        Raises TaskError (the task's exception as ``__cause__``), TaskCancelled, or
        TimeoutError. Waiting lends the task this caller's priority.
        """
        if not self.finished:
            self.scheduler.wait(self, timeout)
        if self.error is not None:
            raise self.error
        return self.value

    def exception(self, timeout: float | None = None) -> TaskError | None:
        """Wait like `result` and return the task's error, None when it succeeded."""
        if not self.finished:
            self.scheduler.wait(self, timeout)
        return self.error

    def done(self) -> bool:
        """True once the task has succeeded, failed or been cancelled."""
        return self.finished

    def cancel(self) -> bool:
        """Cancel the task if it is not running or finished; True when it was cancelled."""
        return self.scheduler.cancel(self)

    def add_done_callback(self, fn: Callable[[Task], None]) -> None:
        """Call ``fn(task)`` once when it finishes (now, on this thread, if it already has)."""
        self.scheduler.add_done_callback(self, fn)

    def __repr__(self) -> str:
        return f"<Task {self.name!r} {self.pool} {self.state} priority={self.effective}>"
