"""scripts/bench_crossover.py: the quick sweep runs and its results are complete and consistent.

No wall-clock bound is asserted: the machine may be shared and slow.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys

import numpy as np
import pytest

from tests.conftest import PROJECT_ROOT


@pytest.fixture(scope="module")
def bench():
    path = PROJECT_ROOT / "scripts" / "bench_crossover.py"
    spec = importlib.util.spec_from_file_location("bench_crossover", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


@pytest.fixture(scope="module")
def quick(bench):
    return bench.run_benchmark(quick=True, seconds=0.05, keep_tasks=True, log=None)


def test_every_model_and_beta_once(bench, quick):
    betas = quick["config"]["betas"]
    assert betas == list(bench.QUICK_BETAS)
    keys = sorted((r["model"], r["beta"]) for r in quick["results"])
    assert keys == sorted((m, b) for m in bench.MODELS for b in betas)


def test_every_submitted_task_completes(quick):
    n = quick["config"]["tasks_per_run"]
    assert n >= 1
    for row in quick["results"]:
        assert row["n_submitted"] == n
        assert row["n_completed"] == n, (row["model"], row["beta"])
        assert all(math.isfinite(t) for t in row["tasks"]["end"])


def test_latency_covers_the_task_itself(quick):
    task_s = quick["config"]["task_ms"] / 1000
    for row in quick["results"]:
        tasks = {k: np.asarray(v) for k, v in row["tasks"].items()}
        where = (row["model"], row["beta"])
        latency = tasks["end"] - tasks["release"]
        assert (tasks["start"] >= tasks["release"]).all(), where  # open loop: never early
        assert (tasks["sleep_s"] >= row["beta"] * task_s - 1e-4).all(), where  # it really blocked
        assert (tasks["cpu_s"] > 0).all() or row["beta"] == 1, where  # it really computed
        assert (latency >= tasks["sleep_s"] + tasks["compute_s"] - 1e-6).all(), where
        assert (latency >= tasks["sleep_s"] + tasks["cpu_s"] - 1e-3).all(), where
        assert 0 < row["p50_latency_s"] <= row["p99_latency_s"] <= row["max_latency_s"]
        assert row["max_latency_s"] == pytest.approx(latency.max())


def test_rates_and_model(quick):
    cfg = quick["config"]
    assert cfg["rate_per_s"] == pytest.approx(cfg["load"] / (cfg["task_ms"] / 1000))
    for row in quick["results"]:
        assert row["throughput"] > 0
        assert 0 < row["expected_throughput"] <= cfg["rate_per_s"] + 1e-9
        assert row["peak_threads"] >= 1
    assert set(quick["calibration"]["overhead_s"]) == {"1:1", "M:1", "M:N"}
    cross = quick["crossover"]
    for key in ("measured", "expected"):
        assert cross[key] is None or 0 <= cross[key] <= max(cfg["betas"])
    json.dumps({**quick, "results": [{k: v for k, v in r.items() if k != "tasks"} for r in quick["results"]]})


def test_crossover_interpolation(bench):
    assert bench.crossover([0.0, 0.1, 0.2], [-2.0, -1.0, 1.0]) == pytest.approx(0.15)
    assert bench.crossover([0.0, 0.5], [0.0, 3.0]) == 0.0  # ahead (or even) from the start
    assert bench.crossover([0.0, 0.5], [-1.0, -0.5]) is None


def test_analytic_model(bench):
    model = bench.Model(0.01, 150.0, 2, 2, 8, {"1:1": 0.0, "M:1": 0.0, "M:N": 0.0})
    assert model.capacity("M:1", 0.0) == pytest.approx(100.0)
    assert model.capacity("M:1", 0.9) == pytest.approx(100.0)  # one thread: 1/T whatever beta
    assert model.capacity("M:N", 0.5) == pytest.approx(400.0)  # two cores, half the time each
    assert model.capacity("M:N", 0.95) == pytest.approx(8 / 0.0095)  # the I/O pool's bound
    assert model.throughput("M:N", 0.5) == 150.0  # never above the offered load
