"""Structured lifetime: close joins every thread, Ctrl-C stops promptly, waits never hang."""

from __future__ import annotations

import _thread
import threading
import time

import pytest

from seqmodel.runtime import Runtime, TaskCancelled

TIMEOUT = 10.0


def test_close_joins_all_threads():
    before = set(threading.enumerate())
    rt = Runtime(cpu_workers=2, io_workers=1, max_io_workers=3)
    for task in [rt.submit(time.sleep, 0.003, pool="io") for _ in range(60)]:
        task.result(TIMEOUT)  # I/O-heavy: the I/O pool may have grown
    started = threading.Event()

    def busy() -> None:
        started.set()
        time.sleep(0.05)

    def parked():
        yield rt.submit(time.sleep, 0.05, pool="io")

    running = rt.submit(busy)
    assert started.wait(TIMEOUT)
    queued = [rt.submit(time.sleep, 0.05) for _ in range(10)]
    pending = rt.submit(lambda: None, after=[queued[-1]])
    generator = rt.submit(parked, pool="io")
    assert len(set(threading.enumerate()) - before) == 2 + rt.io.size
    rt.close(timeout=TIMEOUT)
    assert set(threading.enumerate()) == before
    assert running.result(0) is None  # running work finished
    for task in [queued[-1], pending, generator]:
        with pytest.raises(TaskCancelled):
            task.result(0)
    with pytest.raises(RuntimeError, match="closed"):
        rt.submit(time.sleep, 0)
    rt.close()  # idempotent

    with pytest.raises(ZeroDivisionError), Runtime(cpu_workers=1, io_workers=1) as rt:
        rt.submit(time.sleep, 1.0)
        raise ZeroDivisionError  # an error in the with-block also joins everything
    assert set(threading.enumerate()) == before


def test_keyboard_interrupt_stops_within_seconds():
    before = set(threading.enumerate())
    interrupted_at: list[float] = []

    def press_ctrl_c() -> None:
        time.sleep(0.3)
        interrupted_at.append(time.monotonic())
        _thread.interrupt_main()

    ctrl_c = threading.Thread(target=press_ctrl_c)
    with pytest.raises(KeyboardInterrupt), Runtime(cpu_workers=2, io_workers=1) as rt:
        ctrl_c.start()
        for _ in rt.ordered_map(time.sleep, [0.05] * 1000, prefetch=4):
            pass  # 25 s of work unless interrupted
    stopped = time.monotonic() - interrupted_at[0]
    ctrl_c.join(TIMEOUT)
    assert stopped < 3.0
    assert set(threading.enumerate()) == before


def test_wait_timeout_names_the_task_and_what_runs():
    started, release = threading.Event(), threading.Event()

    def read() -> None:
        started.set()
        release.wait(TIMEOUT)

    with Runtime(cpu_workers=1, io_workers=1) as rt:
        rt.submit(read, pool="io", name="read stuck.fa", context={"file": "stuck.fa"})
        assert started.wait(TIMEOUT)
        waiting = rt.submit(lambda: None, pool="io", name="tokenize 7")
        try:
            with pytest.raises(TimeoutError) as caught:
                waiting.result(timeout=0.2)
        finally:
            release.set()
    message = str(caught.value)
    assert "tokenize 7" in message and "io-0: read stuck.fa [file=stuck.fa]" in message
