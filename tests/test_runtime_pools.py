"""Pools: blocking work isolated in callers, M threads for N tasks, pinning, I/O pool growth and shrinking."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import threading
import time

from seqmodel.runtime import Runtime, plan_core_sets, read_topology
from seqmodel.runtime.affinity import parse_cpulist, pin_current_thread

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


def wait_for(condition, timeout: float = TIMEOUT) -> bool:
    """Poll `condition` until it holds; False if it still does not after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_blocked_backlog_grows_io_pool_at_once_up_to_max():
    with Runtime(cpu_workers=1, io_workers=1, max_io_workers=8) as rt:
        tasks = [rt.submit(time.sleep, 0.02, pool="io") for _ in range(40)]
        # the first decision, 4 steps in, sees 36 queued: all 7 missing workers start together
        assert wait_for(lambda: rt.io.size == 8)
        assert sum(not t.done() for t in tasks) > 8  # grown while the backlog was still there
        for task in tasks:
            task.result(TIMEOUT)
        assert rt.io.size == 8


def test_io_pool_grows_no_further_than_its_backlog():
    with Runtime(cpu_workers=1, io_workers=1, max_io_workers=64) as rt:
        for task in [rt.submit(time.sleep, 0.02, pool="io") for _ in range(12)]:
            task.result(TIMEOUT)
        assert 1 < rt.io.size <= 12


def test_cpu_starved_io_pool_with_a_backlog_does_not_grow():
    # Three busy processes share one core with the caller: its tasks take ~4x their CPU time
    # in wall time, but waiting for a CPU is run-queue time, which more threads cannot cure.
    cpu = min(os.sched_getaffinity(0))
    hog = f"import os; os.sched_setaffinity(0, {{{cpu}}}); print(flush=True)\nwhile True: pass"
    hogs = [subprocess.Popen([sys.executable, "-c", hog], stdout=subprocess.PIPE) for _ in range(3)]
    try:
        for process in hogs:
            process.stdout.readline()  # pinned and spinning

        def starved() -> None:
            pin_current_thread(frozenset({cpu}))
            spin(0.002)

        with Runtime(cpu_workers=1, io_workers=1, max_io_workers=8) as rt:
            for task in [rt.submit(starved, pool="io") for _ in range(60)]:
                task.result(TIMEOUT)
            assert rt.stats()["io"].blocked_share > 0.6  # wall vs CPU alone would have grown it
            assert rt.io.size == 1
    finally:
        for process in hogs:
            process.kill()
            process.wait()


def test_grown_workers_exit_when_idle_and_the_pool_grows_again():
    before = set(threading.enumerate())
    rt = Runtime(cpu_workers=1, io_workers=2, max_io_workers=8, io_idle_exit_s=0.2)
    try:
        for round_ in range(2):
            for task in [rt.submit(time.sleep, 0.02, pool="io") for _ in range(40)]:
                task.result(TIMEOUT)
            assert rt.io.size > 2, f"round {round_}: no growth"
            assert len({w.name for w in rt.io.workers}) == rt.io.size  # names stay unique
            assert wait_for(lambda: rt.io.size == 2)
            assert [w.index for w in rt.io.workers] == [0, 1]  # the first workers stay
            assert wait_for(lambda: len(set(threading.enumerate()) - before) == 1 + 2)
            assert set(rt.scheduler.workers) == set(rt.cpu.workers + rt.io.workers)
    finally:
        rt.close(timeout=TIMEOUT)
    assert set(threading.enumerate()) == before
