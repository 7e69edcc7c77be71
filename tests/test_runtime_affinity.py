"""Placement policy on fake machines, and reading /sys and cgroup files from fake trees."""

from __future__ import annotations

import os

from hypothesis import given
from hypothesis import strategies as st

from seqmodel.runtime import Topology, available_cpus, gpu_numa_node, plan_core_sets
from seqmodel.runtime.affinity import parse_cpulist, read_numa_nodes

TWO_NODES = {0: frozenset(range(0, 8)), 1: frozenset(range(8, 16))}


def test_topology_to_core_sets_fake_numa():
    # GPU on node 1: thinkers get node-1 cores, one each; callers share node 1.
    plan = plan_core_sets(Topology(frozenset(range(16)), TWO_NODES, gpu_node=1), 3, 2)
    assert plan.cpu == [{8}, {9}, {10}]
    assert plan.io == [frozenset(range(8, 16))] * 2

    # No GPU node known: node-major order over every allowed CPU.
    plan = plan_core_sets(Topology(frozenset(range(16)), TWO_NODES), 3, 1)
    assert plan.cpu == [{0}, {1}, {2}]
    assert plan.io == [frozenset(range(16))]

    # A container allowed only node-0 CPUs: the GPU's node is out of reach, use what we may;
    # more thinkers than cores wrap around.
    plan = plan_core_sets(Topology(frozenset({2, 3}), TWO_NODES, gpu_node=1), 3, 1)
    assert plan.cpu == [{2}, {3}, {2}]
    assert plan.io == [frozenset({2, 3})]

    # Allowed CPUs span both nodes, the GPU sits on node 0: stay on node 0.
    plan = plan_core_sets(Topology(frozenset({6, 7, 8, 9}), TWO_NODES, gpu_node=0), 2, 1)
    assert plan.cpu == [{6}, {7}] and plan.io == [frozenset({6, 7})]

    # No NUMA information at all.
    plan = plan_core_sets(Topology(frozenset({0, 1})), 2, 1)
    assert plan.cpu == [{0}, {1}] and plan.io == [frozenset({0, 1})]


@st.composite
def topologies(draw) -> Topology:
    n_cpus = draw(st.integers(1, 64))
    per_node = draw(st.integers(1, n_cpus))
    nodes = {
        n: frozenset(range(lo, min(lo + per_node, n_cpus))) for n, lo in enumerate(range(0, n_cpus, per_node))
    }
    cpus = frozenset(draw(st.sets(st.integers(0, n_cpus - 1), min_size=1)))
    gpu_node = draw(st.one_of(st.none(), st.integers(-1, len(nodes))))
    return Topology(cpus, nodes, gpu_node)


@given(topologies(), st.integers(0, 40), st.integers(0, 8))
def test_core_sets_are_allowed_and_near_the_gpu_when_possible(topology, n_cpu, n_io):
    plan = plan_core_sets(topology, n_cpu, n_io)
    assert len(plan.cpu) == n_cpu and len(plan.io) == n_io
    assert all(len(cores) == 1 and cores <= topology.cpus for cores in plan.cpu)
    assert all(cores and cores <= topology.cpus for cores in plan.io)
    near = topology.cpus & topology.nodes.get(topology.gpu_node, frozenset())
    if near:
        assert all(cores <= near for cores in plan.cpu + plan.io)
    if n_cpu <= len(near or topology.cpus):
        assert len(set(plan.cpu)) == n_cpu  # no two thinkers share a core while cores remain


def test_parse_cpulist():
    assert parse_cpulist("0-3,8,10-11\n") == {0, 1, 2, 3, 8, 10, 11}
    assert parse_cpulist("") == frozenset()


def write(path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_gpu_numa_node_and_nodes_from_fake_sys(tmp_path):
    write(tmp_path / "devices/system/node/node0/cpulist", "0-3\n")
    write(tmp_path / "devices/system/node/node1/cpulist", "4-7\n")
    pci = tmp_path / "bus/pci/devices"
    write(pci / "0000:00:1f.6/class", "0x020000\n")  # a network card on node 0
    write(pci / "0000:00:1f.6/numa_node", "0\n")
    write(pci / "0000:3b:00.0/class", "0x030200\n")  # a 3D controller (GPU) on node 1
    write(pci / "0000:3b:00.0/numa_node", "1\n")
    assert read_numa_nodes(tmp_path) == {0: frozenset(range(4)), 1: frozenset(range(4, 8))}
    assert gpu_numa_node(sys_root=tmp_path) == 1
    assert gpu_numa_node("0000:3B:00.0", sys_root=tmp_path) == 1

    write(pci / "0000:af:00.0/class", "0x030000\n")  # a second GPU, on node 0
    write(pci / "0000:af:00.0/numa_node", "0\n")
    assert gpu_numa_node(sys_root=tmp_path) is None  # which one is ours? unknown
    assert gpu_numa_node("0000:af:00.0", sys_root=tmp_path) == 0

    write(pci / "0000:af:00.0/numa_node", "-1\n")  # the kernel does not know
    assert gpu_numa_node("0000:af:00.0", sys_root=tmp_path) is None
    assert gpu_numa_node("0000:ff:00.0", sys_root=tmp_path) is None


def test_available_cpus_honours_affinity_and_cgroup_quota(tmp_path):
    allowed = len(os.sched_getaffinity(0))
    assert available_cpus(tmp_path) == allowed  # no cgroup files
    write(tmp_path / "cpu.max", "max 100000\n")
    assert available_cpus(tmp_path) == allowed
    write(tmp_path / "cpu.max", "50000 100000\n")  # half a CPU still runs one thread
    assert available_cpus(tmp_path) == 1
    (tmp_path / "cpu.max").unlink()
    write(tmp_path / "cpu/cpu.cfs_quota_us", "100000\n")  # cgroup v1
    write(tmp_path / "cpu/cpu.cfs_period_us", "100000\n")
    assert available_cpus(tmp_path) == 1
