"""Likelihood and weighted ranking metrics against brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from seqmodel.metrics import (
    RankedScores,
    auroc,
    average_precision,
    binomial_deviance,
    binomial_log_likelihood,
    log_pearson,
    pearson,
)


def test_binomial_log_likelihood_and_deviance_match_scipy():
    rng = np.random.default_rng(0)
    n = rng.integers(1, 200, 500)
    p = rng.uniform(1e-4, 0.3, 500)
    k = rng.binomial(n, p)
    np.testing.assert_allclose(binomial_log_likelihood(k, n, p), stats.binom.logpmf(k, n, p), rtol=1e-10)
    # Deviance = 2 (log L at the saturated p = k / n - log L at p), item by item.
    saturated = stats.binom.logpmf(k, n, k / n)
    expected = 2 * (saturated - stats.binom.logpmf(k, n, p))
    np.testing.assert_allclose(binomial_deviance(k, n, p), expected, rtol=1e-9, atol=1e-9)
    # A scalar number of trials, and the k = 0 and k = n ends.
    edges = np.array([0, 100])
    np.testing.assert_allclose(
        binomial_deviance(edges, 100, np.array([0.01, 0.9])),
        [-2 * 100 * math.log(0.99), -2 * 100 * math.log(0.9)],
    )
    assert (binomial_deviance(k, n, p) >= 0).all()


def test_deviance_is_smallest_at_the_true_probability():
    rng = np.random.default_rng(1)
    p = rng.uniform(1e-3, 1e-2, 50_000)
    k = rng.binomial(100, p)
    true = binomial_deviance(k, 100, p).sum()
    assert true < binomial_deviance(k, 100, 2 * p).sum()
    assert true < binomial_deviance(k, 100, p / 2).sum()
    assert true < binomial_deviance(k, 100, np.full_like(p, p.mean())).sum()


def test_a_zero_prediction_at_an_event_costs_a_large_finite_deviance():
    value = binomial_deviance(np.array([1]), 10, np.array([0.0]))[0]
    assert math.isfinite(value) and value > 40


@pytest.mark.parametrize("seed", range(3))
def test_ranking_with_group_weights_equals_the_data_with_groups_repeated(seed):
    rng = np.random.default_rng(seed)
    scores = np.round(rng.random(300) * 8)  # ties
    labels = rng.random(300) < 0.1 + 0.05 * scores
    groups = rng.integers(0, 12, 300)
    weights = rng.integers(0, 4, 12).astype(float)
    ranked = RankedScores(scores, labels, groups)
    repeat = np.repeat(np.arange(300), weights[groups].astype(int))
    assert ranked.auroc(weights) == pytest.approx(auroc(scores[repeat], labels[repeat]), abs=1e-12)
    assert ranked.average_precision(weights) == pytest.approx(
        average_precision(scores[repeat], labels[repeat]), abs=1e-12
    )
    assert ranked.auroc() == pytest.approx(auroc(scores, labels), abs=1e-12)
    assert math.isnan(RankedScores(scores, labels, groups).auroc(np.zeros(12)))


def test_auroc_matches_the_rank_sum_formula():
    rng = np.random.default_rng(4)
    scores, labels = np.round(rng.random(1000) * 20), rng.random(1000) < 0.2
    ranks = stats.rankdata(scores)
    positives, negatives = labels.sum(), (~labels).sum()
    expected = (ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives)
    assert auroc(scores, labels) == pytest.approx(expected, abs=1e-12)


def test_log_pearson_uses_positive_pairs_only():
    x = np.array([1e-4, 1e-3, 1e-2, 0.0, 1e-1])
    y = np.array([2e-4, 2e-3, 2e-2, 5.0, 2e-1])
    assert log_pearson(x, y) == pytest.approx(1.0)
    assert pearson(x, y) < 0.5
    assert math.isnan(log_pearson(np.zeros(4), np.ones(4)))
