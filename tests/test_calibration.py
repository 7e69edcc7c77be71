"""Calibration tables (observed / expected with exact Poisson intervals) and the block bootstrap,
on cases with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from seqmodel.metrics import (
    block_bootstrap,
    bootstrap_interval,
    calibration_summary,
    calibration_table,
    poisson_interval,
    quantile_bins,
)

GENOMES = 100


def simulated(seed: int, bases: int = 200_000) -> tuple[np.ndarray, np.ndarray]:
    """Per-genome rates spread over two decades and carriers k ~ Binomial(100, p)."""
    rng = np.random.default_rng(seed)
    rate = np.exp(rng.uniform(np.log(1e-4), np.log(1e-2), bases))
    return rate, rng.binomial(GENOMES, rate)


def test_poisson_interval_is_the_exact_garwood_interval():
    low, high = poisson_interval(np.array([0, 1, 10, 100]))
    assert low[0] == 0 and high[0] == pytest.approx(3.6889, abs=1e-4)
    assert (low[1], high[1]) == pytest.approx((0.0253, 5.5716), abs=1e-4)
    assert (low[2], high[2]) == pytest.approx((4.7954, 18.3904), abs=1e-4)
    # Coverage: the interval of a Poisson(5) draw holds 5 at least 95 % of the time.
    draws = np.random.default_rng(0).poisson(5.0, 20_000)
    low, high = poisson_interval(draws)
    assert ((low <= 5) & (5 <= high)).mean() >= 0.95


def test_quantile_bins_have_equal_counts():
    ids = quantile_bins(np.random.default_rng(1).random(1000), 20)
    assert np.bincount(ids).tolist() == [50] * 20
    assert quantile_bins(np.arange(5.0), 20).tolist() == [0, 1, 2, 3, 4]


def test_a_calibrated_rate_has_observed_over_expected_near_one():
    rate, carriers = simulated(2)
    table = calibration_table(rate, GENOMES * rate, carriers, bins=20)
    assert len(table) == 20 and sum(row["bases"] for row in table) == len(rate)
    # Bins follow the predicted rate upwards.
    means = [row["rate_mean"] for row in table]
    assert means == sorted(means)
    covered = [row["observed_low"] <= row["expected"] <= row["observed_high"] for row in table]
    assert sum(covered) >= 17  # 95 % intervals: 19 of 20 expected
    for row in table:
        assert row["ratio_low"] <= 1.0 + 0.15 and row["ratio_high"] >= 1.0 - 0.15
        assert row["ratio"] == pytest.approx(1.0, abs=0.15)
        assert row["expected"] == pytest.approx(GENOMES * rate[quantile_bins(rate, 20) == row["bin"]].sum())
    summary = calibration_summary(table)
    assert summary["observed_expected_ratio"] == pytest.approx(1.0, abs=0.02)
    assert summary["calibration_bins_covered"] >= 0.85


def test_a_rate_twice_too_high_has_observed_over_expected_near_half():
    rate, carriers = simulated(3)
    table = calibration_table(2 * rate, GENOMES * 2 * rate, carriers, bins=20)
    for row in table:
        assert row["ratio"] == pytest.approx(0.5, abs=0.15)
        assert row["ratio_high"] < 1.0  # every bin shows the miscalibration
    assert sum(row["ratio_low"] <= 0.5 <= row["ratio_high"] for row in table) >= 17
    assert calibration_summary(table)["observed_expected_ratio"] == pytest.approx(0.5, abs=0.01)
    assert calibration_summary(table)["calibration_bins_covered"] == 0.0


def test_bins_with_nothing_expected_have_no_ratio():
    table = calibration_table(np.zeros(10), np.zeros(10), np.zeros(10), bins=2)
    assert [row["ratio"] for row in table] == [None, None]
    assert calibration_summary(table)["observed_expected_ratio"] is None


def paired_blocks(seed: int, blocks: int, per_block: int = 20):
    """Two paired measurements per item, x ~ N(1, 1) and y = x + N(0.3, 1) - 0.3 + e; the true
    difference of means E[y] - E[x] is 0.3. Items come in blocks that share a block effect."""
    rng = np.random.default_rng(seed)
    block = np.repeat(np.arange(blocks), per_block)
    shared = rng.normal(0, 1, blocks)[block]
    x = 1 + shared + rng.normal(0, 1, len(block))
    y = x + 0.3 + rng.normal(0, 1, len(block)) + 0.5 * shared
    return block, x, y


def difference_of_means(block: np.ndarray, x: np.ndarray, y: np.ndarray):
    size = np.bincount(block).astype(float)
    sum_x, sum_y = np.bincount(block, weights=x), np.bincount(block, weights=y)

    def statistic(weights: np.ndarray) -> float:
        return float((weights @ sum_y - weights @ sum_x) / (weights @ size))

    return statistic


def test_block_bootstrap_interval_covers_a_known_difference_and_shrinks_with_n():
    widths, covered = [], 0
    for seed in range(40):
        block, x, y = paired_blocks(seed, 50)
        values = block_bootstrap(difference_of_means(block, x, y), 50, replicates=200, seed=seed)
        interval = bootstrap_interval(values)
        covered += interval["ci95_low"] <= 0.3 <= interval["ci95_high"]
        widths.append(interval["ci95_high"] - interval["ci95_low"])
    # 95 % intervals: 38 of 40 expected; fewer than 34 would happen with probability < 0.5 %.
    assert covered >= 34
    block, x, y = paired_blocks(100, 800)
    big = bootstrap_interval(block_bootstrap(difference_of_means(block, x, y), 800, replicates=200, seed=1))
    # 16x the blocks: the interval is about 4x narrower.
    assert (big["ci95_high"] - big["ci95_low"]) == pytest.approx(np.mean(widths) / 4, rel=0.3)
    assert big["ci95_low"] <= 0.3 <= big["ci95_high"] and big["replicates"] == 200


def test_block_bootstrap_matches_the_standard_error_of_block_means():
    rng = np.random.default_rng(7)
    means = rng.normal(2.0, 1.5, 400)
    values = block_bootstrap(lambda w: float(w @ means / w.sum()), 400, replicates=2000, seed=3)
    assert values.std() == pytest.approx(means.std() / np.sqrt(400), rel=0.1)
    assert values.mean() == pytest.approx(means.mean(), abs=0.02)
    # The same seed gives the same replicates.
    again = block_bootstrap(lambda w: float(w @ means / w.sum()), 400, replicates=2000, seed=3)
    np.testing.assert_array_equal(values, again)


def test_bootstrap_interval_leaves_out_undefined_replicates():
    summary = bootstrap_interval(np.array([np.nan, 1.0, 2.0, 3.0]))
    assert summary["replicates"] == 3 and summary["mean"] == pytest.approx(2.0)
    assert bootstrap_interval(np.array([np.nan]))["mean"] is None
    assert stats.norm.ppf(0.975) > 1.9  # the percentile interval is two-sided at 95 %
