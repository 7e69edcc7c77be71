"""What the calling thread is in the runtime: which worker it is, and the task it runs.

A thread-local set once by each worker thread as it starts; every other thread sees None.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from seqmodel.runtime.pools import Worker
    from seqmodel.runtime.task import Task

_local = threading.local()


def bind_worker(worker: Worker) -> None:
    """Mark the calling thread as `worker`'s thread (called once, on that thread)."""
    _local.worker = worker


def current_worker() -> Worker | None:
    """The runtime worker this thread is, None on any other thread."""
    return getattr(_local, "worker", None)


def current_task() -> Task | None:
    """The task running on this thread, None outside the runtime's workers."""
    worker = getattr(_local, "worker", None)
    return None if worker is None else worker.current
