"""Ranking, correlation, likelihood and calibration metrics over whole evaluation sets (numpy).

Every function returns NaN where the metric is undefined (one class only, a constant input,
fewer than 3 points) rather than raising, so a table can show it as missing.

Ranking metrics take optional weights per genome block (`RankedScores`), which is how the
paired block bootstrap (`block_bootstrap`) recomputes them on a resample without sorting again.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from scipy import sparse, special, stats


class RankedScores:
    """Scores sorted once, with their labels counted per tie block and per group.

    `scores`, `labels` `(N,)`; `groups` `(N,)` non-negative int ids (genome blocks), or None
    (one group). `auroc(weights)` and `average_precision(weights)` give the metric of the data
    in which every member of group g appears `weights[g]` times (a bootstrap resample), in
    O(N) without sorting again; without weights, each member once.
    """

    def __init__(self, scores: np.ndarray, labels: np.ndarray, groups: np.ndarray | None = None):
        scores = np.asarray(scores, dtype=np.float64)
        labels = np.asarray(labels, dtype=bool)
        groups = np.zeros(len(scores), dtype=np.int64) if groups is None else np.asarray(groups, np.int64)
        order = np.argsort(-scores, kind="stable")
        ordered = scores[order]
        # Tie block of each sorted item: blocks in decreasing score order.
        tie = np.concatenate([[0], np.cumsum(np.diff(ordered) != 0)]) if len(ordered) else ordered
        self.num_groups = int(groups.max()) + 1 if len(groups) else 1
        shape = (int(tie[-1]) + 1 if len(tie) else 0, self.num_groups)
        positive = labels[order]
        self.positives = self._count(tie[positive], groups[order][positive], shape)
        self.negatives = self._count(tie[~positive], groups[order][~positive], shape)

    @staticmethod
    def _count(rows: np.ndarray, columns: np.ndarray, shape: tuple[int, int]) -> sparse.csr_array:
        ones = np.ones(len(rows), dtype=np.float64)
        return sparse.csr_array(sparse.coo_array((ones, (rows.astype(np.int64), columns)), shape=shape))

    def _blocks(self, weights: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """(positives, negatives) `(blocks,)` per tie block, in decreasing score order."""
        w = np.ones(self.num_groups) if weights is None else np.asarray(weights, dtype=np.float64)
        return self.positives @ w, self.negatives @ w

    def auroc(self, weights: np.ndarray | None = None) -> float:
        """P(score of a positive > score of a negative), ties count 1/2."""
        pos, neg = self._blocks(weights)
        total_pos, total_neg = pos.sum(), neg.sum()
        if total_pos <= 0 or total_neg <= 0:
            return math.nan
        below = total_neg - np.cumsum(neg)  # negatives scored lower than each block
        return float((pos * (below + neg / 2)).sum() / (total_pos * total_neg))

    def average_precision(self, weights: np.ndarray | None = None) -> float:
        """Average precision, tied scores taken in random order (see `average_precision`)."""
        inside, neg = self._blocks(weights)
        positives = inside.sum()
        if positives <= 0:
            return math.nan
        size = inside + neg
        ends = np.cumsum(size)
        before = ends - size  # items ranked above the block
        above = np.cumsum(inside) - inside  # positives ranked above the block
        # For the block's j-th item (j = 1..size), given it is positive: E[precision] =
        # (above + 1 + (j - 1)(inside - 1)/(size - 1)) / (before + j); summed over j with harmonic sums.
        harmonic = special.digamma(before + size + 1) - special.digamma(before + 1)
        share = np.where(size > 1, (inside - 1) / np.maximum(size - 1, 1), 0.0)
        fraction = np.divide(inside, size, out=np.zeros_like(size), where=size > 0)
        expected = fraction * ((above + 1) * harmonic + share * (size - (before + 1) * harmonic))
        return float(expected.sum() / positives)


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties count 1/2."""
    return RankedScores(scores, labels).auroc()


def auroc_standard_error(area: float, positives: int, negatives: int) -> float:
    """Standard error of an AUROC (Hanley & McNeil 1982)."""
    if math.isnan(area) or positives == 0 or negatives == 0:
        return math.nan
    q1, q2 = area / (2 - area), 2 * area**2 / (1 + area)
    variance = (area * (1 - area) + (positives - 1) * (q1 - area**2) + (negatives - 1) * (q2 - area**2)) / (
        positives * negatives
    )
    return float(math.sqrt(max(variance, 0.0)))


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the precision-recall curve as average precision: the mean, over positives, of
    the precision at their rank.

    Tied scores are taken in random order and the result is the expectation over that order
    (McSherry & Najork, ECIR 2008), as AUROC counts a tie as 1/2. Without ties this is
    scikit-learn's average precision; with ties, scikit-learn (and torchmetrics) give each tied
    block the precision at its end, which under-rates scores that take few values (a 3-mer
    model, the true rate of a trinucleotide simulation).
    """
    return RankedScores(scores, labels).average_precision()


def _paired(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    return x, y


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation over the pairs where both are finite."""
    pair = _paired(x, y)
    return math.nan if pair is None else float(np.corrcoef(*pair)[0, 1])


def log_pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson correlation of log(x) with log(y), over the pairs where both are positive."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    keep = (x > 0) & (y > 0)
    return pearson(np.log(x[keep]), np.log(y[keep]))


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rank correlation over the pairs where both are finite."""
    pair = _paired(x, y)
    return math.nan if pair is None else float(stats.spearmanr(*pair).statistic)


def grouped_correlation(
    groups: np.ndarray, observed: np.ndarray, predicted: np.ndarray, min_size: int = 1
) -> float:
    """Pearson, over groups of at least `min_size` members, of the mean observed value with
    the mean predicted value (MuRaL's k-mer and regional correlations).

    `groups` `(N,)` non-negative int ids; `observed`, `predicted` `(N,)`.
    """
    groups = np.asarray(groups, dtype=np.int64)
    size = np.bincount(groups)
    keep = size >= max(min_size, 1)
    mean_observed = np.bincount(groups, weights=observed)[keep] / size[keep]
    mean_predicted = np.bincount(groups, weights=predicted)[keep] / size[keep]
    return pearson(mean_observed, mean_predicted)


# --- likelihood -----------------------------------------------------------------------------------

PROBABILITY_FLOOR = 1e-12  # predicted probabilities are clipped to [floor, 1 - floor]


def _clip(probability: np.ndarray) -> np.ndarray:
    return np.clip(np.asarray(probability, dtype=np.float64), PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR)


def binomial_log_likelihood(
    events: np.ndarray, trials: np.ndarray | float, probability: np.ndarray
) -> np.ndarray:
    """Per-item log P(`events` | Binomial(`trials`, `probability`)), the binomial coefficient
    included; `probability` clipped to [PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR]."""
    k = np.asarray(events, dtype=np.float64)
    n = np.broadcast_to(np.asarray(trials, dtype=np.float64), k.shape)
    p = _clip(probability)
    coefficient = special.gammaln(n + 1) - special.gammaln(k + 1) - special.gammaln(n - k + 1)
    return coefficient + special.xlogy(k, p) + special.xlog1py(n - k, -p)


def binomial_deviance(events: np.ndarray, trials: np.ndarray | float, probability: np.ndarray) -> np.ndarray:
    """Per-item binomial deviance, 2 (log L(saturated) - log L(model)):
    2 [k log(k / (n p)) + (n - k) log((n - k) / (n (1 - p)))], 0 log 0 = 0.

    `events` k, `trials` n (a number or per item), `probability` p per item, clipped to
    [PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR] so that a zero prediction at an event costs a
    large finite amount rather than infinity. Summed over items it is the model's deviance;
    differences between models on the same items are likelihood-ratio statistics.
    """
    k = np.asarray(events, dtype=np.float64)
    n = np.broadcast_to(np.asarray(trials, dtype=np.float64), k.shape)
    p = _clip(probability)
    with np.errstate(divide="ignore", invalid="ignore"):
        hit = special.xlogy(k, np.where(k > 0, k / (n * p), 1.0))
        miss = special.xlogy(n - k, np.where(n - k > 0, (n - k) / (n * (1 - p)), 1.0))
    return 2 * (hit + miss)


# --- calibration ----------------------------------------------------------------------------------


def poisson_interval(observed: np.ndarray | float, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Exact (Garwood) two-sided interval for the mean of a Poisson count `observed`:
    chi2((1 - level) / 2; 2k) / 2 to chi2((1 + level) / 2; 2k + 2) / 2, lower 0 at k = 0."""
    k = np.asarray(observed, dtype=np.float64)
    alpha = 1 - level
    with np.errstate(invalid="ignore"):
        lower = np.where(k > 0, stats.chi2.ppf(alpha / 2, 2 * np.maximum(k, 1e-300)) / 2, 0.0)
    upper = stats.chi2.ppf(1 - alpha / 2, 2 * k + 2) / 2
    return lower, upper


def quantile_bins(values: np.ndarray, bins: int) -> np.ndarray:
    """`(N,)` bin id 0..bins-1 of each value: equal-count bins of the values sorted (ties are
    kept in input order, so a value shared by many items may span two bins)."""
    values = np.asarray(values, dtype=np.float64)
    bins = max(1, min(int(bins), len(values)))
    order = np.argsort(values, kind="stable")
    ids = np.empty(len(values), dtype=np.int64)
    ids[order] = (np.arange(len(values)) * bins) // max(len(values), 1)
    return ids


def calibration_table(
    rate: np.ndarray, expected: np.ndarray, observed: np.ndarray, bins: int = 20, level: float = 0.95
) -> list[dict]:
    """Observed against expected counts in equal-count bins of the predicted `rate`.

    `rate` `(N,)` orders the items into bins and is summarised per bin; `expected` `(N,)` the
    predicted count of each item (e.g. p * N genomes); `observed` `(N,)` the count seen. Per
    bin: items, rate min / mean / max, expected and observed sums, the exact Poisson interval of
    the observed sum at `level`, and observed / expected with that interval divided by the
    expected sum (None where nothing is expected).
    """
    rate = np.asarray(rate, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    observed = np.asarray(observed, dtype=np.float64)
    if len(rate) == 0:
        return []
    ids = quantile_bins(rate, bins)
    count = np.bincount(ids)
    sum_expected = np.bincount(ids, weights=expected)
    sum_observed = np.bincount(ids, weights=observed)
    sum_rate = np.bincount(ids, weights=rate)
    low, high = poisson_interval(sum_observed, level)
    rows = []
    for b in range(len(count)):
        inside = rate[ids == b]
        e = float(sum_expected[b])
        rows.append(
            {
                "bin": b,
                "bases": int(count[b]),
                "rate_min": float(inside.min()),
                "rate_mean": float(sum_rate[b] / count[b]),
                "rate_max": float(inside.max()),
                "expected": e,
                "observed": float(sum_observed[b]),
                "observed_low": float(low[b]),
                "observed_high": float(high[b]),
                "ratio": float(sum_observed[b] / e) if e > 0 else None,
                "ratio_low": float(low[b] / e) if e > 0 else None,
                "ratio_high": float(high[b] / e) if e > 0 else None,
            }
        )
    return rows


def calibration_summary(table: list[dict]) -> dict[str, float | None]:
    """Overall observed / expected of a calibration table, and the share of its bins whose
    Poisson interval of the observed count holds the expected count."""
    expected = sum(row["expected"] for row in table)
    observed = sum(row["observed"] for row in table)
    covered = [row["observed_low"] <= row["expected"] <= row["observed_high"] for row in table]
    return {
        "observed_expected_ratio": observed / expected if expected > 0 else None,
        "calibration_bins_covered": float(np.mean(covered)) if covered else None,
    }


# --- bootstrap ------------------------------------------------------------------------------------


def block_bootstrap(
    statistic: Callable[[np.ndarray], np.ndarray | float],
    num_blocks: int,
    replicates: int = 200,
    seed: int = 0,
) -> np.ndarray:
    """Statistics of block-bootstrap resamples: `(replicates, ...)`.

    Each replicate draws `num_blocks` blocks with replacement and calls `statistic` with the
    number of times each block was drawn, `(num_blocks,)` float64 (0 for blocks left out), the
    same draw for everything the statistic computes, so differences it returns are paired.
    """
    if num_blocks < 1:
        raise ValueError("the bootstrap needs at least one block")
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(replicates):
        draws = rng.integers(0, num_blocks, num_blocks)
        values.append(np.asarray(statistic(np.bincount(draws, minlength=num_blocks).astype(np.float64))))
    return np.stack(values) if values else np.zeros((0,))


def bootstrap_interval(values: np.ndarray, level: float = 0.95) -> dict[str, float | int | None]:
    """Mean and percentile interval at `level` of bootstrap replicates `(R,)`; replicates where
    the statistic is undefined (NaN) are left out and counted."""
    values = np.asarray(values, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if len(finite) == 0:
        return {"mean": None, "ci95_low": None, "ci95_high": None, "replicates": 0}
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(finite, [tail, 100 - tail])
    return {
        "mean": float(finite.mean()),
        "ci95_low": float(low),
        "ci95_high": float(high),
        "replicates": int(len(finite)),
    }
