"""Pools: blocking work isolated in callers, M threads for N tasks, pinning, I/O pool growth."""

from __future__ import annotations

import errno
import os
import threading
import time

from seqmodel.runtime import Runtime, plan_core_sets, read_topology
from seqmodel.runtime.affinity import parse_cpulist

TIMEOUT = 10.0


def spin(cpu_seconds: float) -> None:
    end = time.thread_time() + cpu_seconds
    while time.thread_time() < end:
        pass


def open_fifo_writer(path: os.PathLike, timeout: float) -> int:
    """Open a FIFO for writing once a reader has it open (ENXIO until then)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as error:
            if error.errno != errno.ENXIO or time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def test_blocking_reader_does_not_stop_tokenization(tmp_path):
    fifo = tmp_path / "reads.fifo"
    os.mkfifo(fifo)

    def read_fifo() -> bytes:
        with open(fifo, "rb") as f:  # blocks until a writer appears
            return f.read()

    def tokenize(i: int) -> bytes:
        return (b"ACGTN" * 200)[i:].translate(bytes.maketrans(b"ACGTN", b"\0\1\2\3\4"))

    with Runtime(cpu_workers=1, io_workers=1, max_io_workers=1) as rt:
        reader = rt.submit(read_fifo, pool="io", name="read fifo")
        try:
            tokens = [rt.submit(tokenize, i, name=f"tokenize {i}") for i in range(50)]
            assert [t.result(TIMEOUT) for t in tokens] == [tokenize(i) for i in range(50)]
            assert not reader.done()
        finally:
            fd = open_fifo_writer(fifo, TIMEOUT)
            os.write(fd, b"ACGT")
            os.close(fd)
        assert reader.result(TIMEOUT) == b"ACGT"


def test_10k_tasks_run_on_m_threads():
    before = threading.active_count()
    worker_ids: set[int] = set()
    peak = 0

    def job(i: int) -> int:
        worker_ids.add(threading.get_native_id())
        return i

    with Runtime(cpu_workers=2, io_workers=2, max_io_workers=2) as rt:
        tasks = [rt.submit(job, i, pool="io" if i % 2 else "cpu") for i in range(10_000)]
        for task in tasks:
            peak = max(peak, threading.active_count())
            task.result(TIMEOUT)
        assert threading.active_count() == before + 4
    assert peak <= before + 4
    assert len(worker_ids) <= 4 and threading.get_native_id() not in worker_ids


def test_workers_pinned_per_proc_status():
    allowed = os.sched_getaffinity(0)

    def allowed_list(tid: int) -> frozenset[int]:
        for line in open(f"/proc/self/task/{tid}/status"):
            if line.startswith("Cpus_allowed_list:"):
                return parse_cpulist(line.split(":", 1)[1])
        raise AssertionError("no Cpus_allowed_list")

    with Runtime(cpu_workers=2, io_workers=1, pin_cores=True) as rt:
        plan = plan_core_sets(read_topology(), 2, rt.io.max_size)
        assert [w.cpus for w in rt.cpu.workers] == plan.cpu
        for worker in rt.cpu.workers + rt.io.workers:
            assert allowed_list(worker.native_id) == worker.cpus
            assert worker.cpus <= allowed
        seen = {frozenset(rt.submit(os.sched_getaffinity, 0).result(TIMEOUT)) for _ in range(20)}
        assert seen <= set(plan.cpu)
    assert os.sched_getaffinity(0) == allowed  # only the workers were pinned


def test_io_heavy_load_grows_io_pool_cpu_heavy_does_not():
    with Runtime(cpu_workers=1, io_workers=1, max_io_workers=4) as rt:
        for task in [rt.submit(time.sleep, 0.004, pool="io") for _ in range(80)]:
            task.result(TIMEOUT)
        assert 1 < rt.io.size <= 4
        assert rt.stats()["io"].blocked_share > 0.6

    with Runtime(cpu_workers=1, io_workers=1, max_io_workers=4) as rt:
        for task in [rt.submit(spin, 0.002, pool="io") for _ in range(80)]:
            task.result(TIMEOUT)
        assert rt.io.size == 1
