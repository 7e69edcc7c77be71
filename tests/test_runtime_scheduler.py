"""Scheduling: priorities and inheritance, wakeups, errors, chunking, determinism."""

from __future__ import annotations

import queue
import random
import threading
import time
from collections import Counter

import pytest

from seqmodel.runtime import Runtime, TaskError, current_task

TIMEOUT = 10.0  # every wait in these tests is bounded: a bug fails, it never hangs


def gate(rt: Runtime, pool: str) -> threading.Event:
    """Occupy every worker of `pool` until the returned event is set."""
    opened, running = threading.Event(), threading.Semaphore(0)

    def hold() -> None:
        running.release()
        opened.wait(TIMEOUT)

    for _ in range(rt.pools[pool].size):
        rt.submit(hold, pool=pool, priority=-1, name=f"gate {pool}")
    for _ in range(rt.pools[pool].size):
        assert running.acquire(timeout=TIMEOUT)
    return opened


def spin(cpu_seconds: float) -> None:
    end = time.thread_time() + cpu_seconds
    while time.thread_time() < end:
        pass


def test_urgent_batch_and_dependency_finish_before_low_priority_flood():
    order: list[str] = []
    with Runtime(cpu_workers=1, io_workers=1, max_io_workers=1) as rt:
        cpu_gate, io_gate = gate(rt, "cpu"), gate(rt, "io")
        flood = [rt.submit(order.append, f"io flood {i}", pool="io", priority=100) for i in range(20)]
        flood += [rt.submit(order.append, f"cpu flood {i}", priority=100) for i in range(20)]
        # The read was prefetched long ago at low priority: behind the whole flood.
        read = rt.submit(order.append, "read", pool="io", priority=100)
        batch = rt.submit(order.append, "batch", priority=0, after=[read])
        assert read.effective == 0  # inherited from the batch that depends on it
        io_gate.set()
        read.result(TIMEOUT)
        cpu_gate.set()
        batch.result(TIMEOUT)
        for task in flood:
            task.result(TIMEOUT)
    io_order = [x for x in order if x.startswith("io") or x == "read"]
    cpu_order = [x for x in order if x.startswith("cpu") or x == "batch"]
    assert io_order[0] == "read"
    assert cpu_order[0] == "batch"


def test_waiting_consumer_lends_its_priority():
    order: list[str] = []
    with Runtime(cpu_workers=1, io_workers=1) as rt:
        opened = gate(rt, "cpu")
        flood = [rt.submit(order.append, f"flood {i}", priority=100) for i in range(20)]
        wanted = rt.submit(order.append, "wanted", priority=100)

        def open_once_lent() -> None:
            deadline = time.monotonic() + TIMEOUT
            while wanted.effective == 100 and time.monotonic() < deadline:
                time.sleep(0.001)
            opened.set()

        opener = threading.Thread(target=open_once_lent)
        opener.start()
        wanted.result(TIMEOUT)
        opener.join(TIMEOUT)
        for task in flood:
            task.result(TIMEOUT)
    assert order[0] == "wanted"


def test_stress_every_completion_observed_exactly_once():
    producers, per_producer = 4, 250
    callbacks: Counter = Counter()
    results: Counter = Counter()
    counts_lock = threading.Lock()
    handoff: queue.SimpleQueue = queue.SimpleQueue()
    all_tasks = []

    def count(counter: Counter, key: object) -> None:
        with counts_lock:
            counter[key] += 1

    with Runtime(cpu_workers=2, io_workers=2, max_io_workers=3) as rt:

        def via_generator(key):
            value = yield rt.submit(lambda: key, pool="io")
            yield
            return value

        def produce(p: int) -> None:
            previous = None
            for i in range(per_producer):
                key = (p, i)
                kind = i % 4
                if kind == 0:
                    task = rt.submit(lambda k=key: k)
                elif kind == 1:
                    task = rt.submit(lambda k=key: k, pool="io")
                elif kind == 2:
                    task = rt.submit(lambda k=key: k, after=[previous])
                else:
                    task = rt.submit(via_generator, key)
                task.add_done_callback(lambda t: count(callbacks, t.value))
                handoff.put(task)
                all_tasks.append(task)
                previous = task

        def consume() -> None:
            while (task := handoff.get(timeout=TIMEOUT)) is not None:
                count(results, task.result(TIMEOUT))

        threads = [threading.Thread(target=produce, args=(p,)) for p in range(producers)]
        threads += [threading.Thread(target=consume) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads[:producers]:
            t.join(TIMEOUT)
        for _ in range(4):
            handoff.put(None)
        for t in threads[producers:]:
            t.join(TIMEOUT)
        assert not any(t.is_alive() for t in threads)
    expected = {(p, i) for p in range(producers) for i in range(per_producer)}
    assert len(all_tasks) == len(expected)
    assert set(callbacks) == expected and set(callbacks.values()) == {1}
    assert set(results) == expected and set(results.values()) == {1}


def test_error_names_context_other_results_unaffected():
    def read(i: int) -> int:
        if i == 3:
            raise ValueError("unexpected character '>' in sequence")
        return i

    with Runtime(cpu_workers=2, io_workers=1) as rt:
        reads = [
            rt.submit(
                read,
                i,
                pool="io",
                name=f"read chr{i}:{i * 1000}-{i * 1000 + 500}",
                context={"file": "genome.fa", "record": f"chr{i}", "offset": i * 1000},
            )
            for i in range(6)
        ]
        batches = [
            rt.submit(lambda r=r: r.result() * 10, name=f"assemble batch {i}", after=[r])
            for i, r in enumerate(reads)
        ]
        for i, batch in enumerate(batches):
            if i == 3:
                with pytest.raises(TaskError) as caught:
                    batch.result(TIMEOUT)
                message = str(caught.value)
                assert "assemble batch 3" in message
                assert "file=genome.fa" in message and "record=chr3" in message
                assert "offset=3000" in message
                assert isinstance(caught.value.original, ValueError)
            else:
                assert batch.result(TIMEOUT) == i * 10

        def make_batch(i):  # the error crosses a parked generator, then the ordered stream
            return (yield reads[i]) * 10

        stream = rt.ordered_map(make_batch, range(6), prefetch=2, name="batch", timeout=TIMEOUT)
        assert [next(stream) for _ in range(3)] == [0, 10, 20]
        with pytest.raises(TaskError, match=r"batch 3 \[index=3\].*record=chr3"):
            next(stream)


@pytest.mark.parametrize("split", ["chunks", "yield points"])
def test_huge_job_does_not_delay_small_batches(split: str):
    log: list[tuple[str, int]] = []
    n_chunks = 60

    def chunk(lo: int, hi: int) -> int:
        log.append(("chunk", lo))
        spin(0.002)
        return hi - lo

    def huge_generator():
        total = 0
        for lo in range(n_chunks):
            total += chunk(lo, lo + 1)
            yield  # a cooperative yield point between chunks
        return total

    with Runtime(cpu_workers=1, io_workers=1) as rt:
        if split == "chunks":  # one task per chunk, as the FASTA reader splits a chromosome
            parts = [rt.submit(chunk, lo, lo + 1, priority=10, name=f"huge {lo}") for lo in range(n_chunks)]
            huge = rt.submit(lambda: sum(p.result() for p in parts), priority=10, name="huge", after=parts)
        else:
            huge = rt.submit(huge_generator, priority=10, name="huge")
        deadline = time.monotonic() + TIMEOUT
        while len(log) < 3 and time.monotonic() < deadline:
            time.sleep(0.001)
        for j in range(5):
            log.append(("submit", j))
            rt.submit(log.append, ("small", j), priority=0, name=f"batch {j}").result(TIMEOUT)
        assert huge.result(TIMEOUT) == n_chunks
    for j in range(5):
        between = log[log.index(("submit", j)) : log.index(("small", j))]
        assert sum(1 for kind, _ in between if kind == "chunk") <= 1  # only the one in progress
    assert log[-1][0] == "chunk"  # the small batches did not wait for the huge job


def test_ordered_results_identical_with_1_and_4_workers():
    def run(workers: int) -> list:
        with Runtime(cpu_workers=workers, io_workers=2) as rt:

            def read(i: int) -> int:
                time.sleep(random.random() * 0.002)  # jitter: completion order varies
                return i * 7

            def make_batch(i: int):
                raw = yield [rt.submit(read, i, pool="io"), rt.submit(read, i + 1, pool="io")]
                rng = random.Random(i)
                time.sleep(rng.random() * 0.001)
                return [raw, rng.random()]

            return list(rt.ordered_map(make_batch, range(120), prefetch=8, timeout=TIMEOUT))

    one, four = run(1), run(4)
    assert one == four
    assert [batch[0] for batch in one] == [[i * 7, (i + 1) * 7] for i in range(120)]


def test_task_waiting_on_subtask_never_parks_work_only_it_could_run():
    with Runtime(cpu_workers=1, io_workers=1) as rt:

        def middle(i: int) -> int:  # blocks the only CPU worker on CPU subtasks
            return rt.submit(lambda: i).result(TIMEOUT) + 1

        def top() -> int:
            read = rt.submit(lambda: 100, pool="io")
            double = rt.submit(lambda: read.result() * 2, after=[read])  # queued while we wait
            return double.result(TIMEOUT) + sum(rt.submit(middle, i).result(TIMEOUT) for i in range(3))

        assert rt.submit(top).result(TIMEOUT) == 200 + 1 + 2 + 3


def test_worker_blocked_in_result_runs_urgent_work_submitted_meanwhile():
    release = threading.Event()
    with Runtime(cpu_workers=1, io_workers=1) as rt:
        try:
            read = rt.submit(release.wait, TIMEOUT, pool="io", priority=10, name="read slow")
            waiting = rt.submit(lambda: read.result(TIMEOUT), priority=5, name="batch 0")
            deadline = time.monotonic() + TIMEOUT
            while read.effective != 5 and time.monotonic() < deadline:  # lent once the batch waits
                time.sleep(0.001)
            assert read.effective == 5
            urgent = rt.submit(lambda: "urgent", priority=1, name="batch urgent")
            lazy = rt.submit(lambda: "lazy", priority=9, name="batch lazy")
            assert urgent.result(TIMEOUT) == "urgent"  # ran on the only CPU worker, which waits
            assert not lazy.done()  # less urgent than the waiting batch: it stays queued
        finally:
            release.set()
        assert waiting.result(TIMEOUT) is True
        assert lazy.result(TIMEOUT) == "lazy"


def test_wait_inside_a_task_times_out_and_names_what_it_waited_for():
    release = threading.Event()
    with Runtime(cpu_workers=1, io_workers=1) as rt:
        try:
            stuck = rt.submit(release.wait, TIMEOUT, pool="io", name="read stuck.fa")
            waiter = rt.submit(lambda: stuck.result(timeout=0.2), name="tokenize 3")
            with pytest.raises(TaskError) as caught:
                waiter.result(TIMEOUT)
        finally:
            release.set()
        assert isinstance(caught.value.original, TimeoutError)
        assert "tokenize 3" in str(caught.value) and "read stuck.fa" in str(caught.value)
        assert rt.submit(lambda: "still runs").result(TIMEOUT) == "still runs"


def test_current_task_is_the_running_task_and_subtasks_inherit_its_priority():
    with Runtime(cpu_workers=1, io_workers=1) as rt:
        assert current_task() is None
        task = rt.submit(current_task, name="who")
        assert task.result(TIMEOUT) is task

        children: queue.SimpleQueue = queue.SimpleQueue()
        rt.submit(lambda: children.put(rt.submit(current_task, pool="io")), priority=7)  # nobody waits on it
        child = children.get(timeout=TIMEOUT)
        assert child.priority == 7
        assert child.result(TIMEOUT) is child


def test_ordered_map_keeps_at_most_prefetch_in_flight():
    started: list[int] = []
    with Runtime(cpu_workers=2, io_workers=1) as rt:
        for j, value in enumerate(rt.ordered_map(started.append, range(50), prefetch=3)):
            assert value is None
            assert max(started) <= j + 3  # items after j + prefetch wait for the consumer
            time.sleep(0.001)  # a slow consumer: producers must not run ahead
    assert sorted(started) == list(range(50))


def test_closing_ordered_map_early_cancels_and_discards():
    discarded: list[int] = []
    started: list[int] = []
    with Runtime(cpu_workers=1, io_workers=1) as rt:

        def work(i: int) -> int:
            started.append(i)
            time.sleep(0.005)
            return i

        stream = rt.ordered_map(work, range(100), prefetch=4, discard=discarded.append)
        assert next(stream) == 0
        stream.close()
        rt.submit(lambda: None, priority=1000).result(TIMEOUT)  # drain what was running
    assert len(started) <= 5  # at most prefetch + 1 ever started
    assert sorted(discarded) == sorted(started)[1:]  # all that ran but was not read


def test_ordered_map_chunksize_runs_several_items_per_task_in_order():
    with Runtime(cpu_workers=2, io_workers=1, trace=True) as rt:
        assert list(rt.ordered_map(lambda x: x * x, range(10), prefetch=2, chunksize=4, name="sq")) == [
            x * x for x in range(10)
        ]

        def fetch_then_square(x: int):  # a generator task: its I/O subtask parks it, not a thread
            value = yield rt.submit(lambda: x, pool="io", name=f"read {x}")
            return value * value

        got = list(rt.ordered_map(fetch_then_square, range(7), chunksize=3, start=5, name="gen"))
        assert got == [x * x for x in range(7)]
        names = {span[1] for span in rt.tracer.spans}
    assert {"sq 0-3", "sq 4-7", "sq 8-9", "gen 5-7", "gen 8-10", "gen 11-11"} <= names
    with Runtime(cpu_workers=1, io_workers=1) as rt, pytest.raises(ValueError, match="chunksize"):
        next(rt.ordered_map(abs, [1], chunksize=0))
