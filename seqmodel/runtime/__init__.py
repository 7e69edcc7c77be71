"""The M:N runtime: many small tasks on a few pinned OS threads. Knows nothing about DNA.

See `Runtime` for the entry point and docs/architecture.md for where the runtime sits.
"""

from seqmodel.runtime.affinity import (
    CorePlan,
    Topology,
    available_cpus,
    gpu_numa_node,
    plan_core_sets,
    read_topology,
)
from seqmodel.runtime.buffers import BufferSlot, PinnedBufferRing
from seqmodel.runtime.context import current_task
from seqmodel.runtime.pools import CpuPool, IoPool, PoolStats
from seqmodel.runtime.runtime import Runtime
from seqmodel.runtime.task import Task, TaskCancelled, TaskError
from seqmodel.runtime.trace import KindSummary, Tracer

__all__ = [
    "BufferSlot",
    "CorePlan",
    "CpuPool",
    "IoPool",
    "KindSummary",
    "PinnedBufferRing",
    "PoolStats",
    "Runtime",
    "Task",
    "TaskCancelled",
    "TaskError",
    "Topology",
    "Tracer",
    "available_cpus",
    "current_task",
    "gpu_numa_node",
    "plan_core_sets",
    "read_topology",
]
