"""CPU topology and the per-worker core sets the runtime pins its threads to.

`plan_core_sets` is a pure function of a `Topology`, so the placement policy is
tested on fake machines; `read_topology` fills a `Topology` from `/sys` and the
CPUs this process may use (`os.sched_getaffinity(0)`, never `os.cpu_count()`).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

# PCI class codes (top 16 bits of the 24-bit class) of display and 3D controllers: GPUs.
_GPU_PCI_CLASSES = (0x0300, 0x0302)


@dataclass(frozen=True)
class Topology:
    """What the placement policy needs to know about a machine.

    cpus: CPU ids this process may run on.
    nodes: NUMA node id -> CPU ids of that node (all of them, allowed or not).
    gpu_node: NUMA node of the GPU this process feeds, None when unknown.
    """

    cpus: frozenset[int]
    nodes: dict[int, frozenset[int]] = field(default_factory=dict)
    gpu_node: int | None = None


@dataclass(frozen=True)
class CorePlan:
    """Core sets per worker: `cpu[i]` for thinker i, `io[j]` for caller j."""

    cpu: list[frozenset[int]]
    io: list[frozenset[int]]


def plan_core_sets(topology: Topology, cpu_workers: int, io_workers: int) -> CorePlan:
    """Give each CPU worker one core and each I/O worker a shared set.

    Cores come from the GPU's NUMA node when it is known and this process may use
    some of its CPUs, else from every allowed CPU. Thinkers get one core each, in
    node-major order, wrapping around when there are more thinkers than cores;
    callers mostly sleep in system calls, so they share the whole set and the
    kernel places them wherever a core is free.
    """
    if not topology.cpus:
        raise ValueError("topology has no usable CPUs")
    near = topology.cpus & topology.nodes.get(topology.gpu_node, frozenset())
    usable = near or topology.cpus
    order: list[int] = []
    for node in sorted(topology.nodes):
        order.extend(sorted(usable & topology.nodes[node]))
    order.extend(sorted(usable - set(order)))
    cpu = [frozenset({order[i % len(order)]}) for i in range(cpu_workers)]
    return CorePlan(cpu=cpu, io=[usable] * io_workers)


def parse_cpulist(text: str) -> frozenset[int]:
    """Parse a kernel CPU list such as ``0-3,8,10-11`` (an empty string is no CPUs)."""
    cpus: set[int] = set()
    for part in text.strip().split(","):
        if not part:
            continue
        lo, _, hi = part.partition("-")
        cpus.update(range(int(lo), int(hi or lo) + 1))
    return frozenset(cpus)


def read_numa_nodes(sys_root: str | os.PathLike = "/sys") -> dict[int, frozenset[int]]:
    """NUMA node id -> CPU ids, from ``<sys_root>/devices/system/node/node*/cpulist``."""
    nodes = {}
    for path in Path(sys_root, "devices/system/node").glob("node[0-9]*/cpulist"):
        nodes[int(path.parent.name[4:])] = parse_cpulist(path.read_text())
    return nodes


def gpu_numa_node(pci_address: str | None = None, sys_root: str | os.PathLike = "/sys") -> int | None:
    """NUMA node of a GPU from ``/sys/bus/pci/devices/*/numa_node``.

    pci_address: the GPU's PCI address (``0000:3b:00.0``, any case). Without it the
    node is returned only when every GPU on the machine reports the same node.
    Returns None where the kernel does not know (-1) or there is no GPU.
    """
    devices = Path(sys_root, "bus/pci/devices")
    if pci_address is not None:
        paths = [devices / pci_address.lower()]
    else:
        paths = [d for d in devices.glob("*") if _pci_class(d) in _GPU_PCI_CLASSES]
    found = {_read_int(d / "numa_node") for d in paths}
    found.discard(None)
    found.discard(-1)
    return found.pop() if len(found) == 1 else None


def read_topology(gpu_pci_address: str | None = None, sys_root: str | os.PathLike = "/sys") -> Topology:
    """The running machine's topology as this process sees it."""
    return Topology(
        cpus=frozenset(os.sched_getaffinity(0)),
        nodes=read_numa_nodes(sys_root),
        gpu_node=gpu_numa_node(gpu_pci_address, sys_root),
    )


def available_cpus(cgroup_root: str | os.PathLike = "/sys/fs/cgroup") -> int:
    """How many CPUs this process can keep busy: its affinity mask, capped by a cgroup quota."""
    count = len(os.sched_getaffinity(0))
    root = Path(cgroup_root)
    quota = period = None
    try:  # cgroup v2: "<quota|max> <period>"
        q, p = (root / "cpu.max").read_text().split()
        quota, period = (None if q == "max" else int(q)), int(p)
    except (OSError, ValueError):
        quota, period = (
            _read_int(root / "cpu/cpu.cfs_quota_us"),
            _read_int(root / "cpu/cpu.cfs_period_us"),
        )
    if quota is not None and quota > 0 and period:
        count = min(count, max(1, math.ceil(quota / period)))
    return count


def pin_current_thread(cpus: frozenset[int]) -> None:
    """Restrict the calling thread (not the process: pid 0 is this thread) to `cpus`."""
    os.sched_setaffinity(0, cpus)


def _pci_class(device: Path) -> int | None:
    value = _read_int(device / "class", base=16)
    return None if value is None else value >> 8


def _read_int(path: Path, base: int = 10) -> int | None:
    try:
        return int(path.read_text().strip(), base)
    except (OSError, ValueError):
        return None
