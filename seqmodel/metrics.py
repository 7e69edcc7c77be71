"""Ranking and correlation metrics over whole evaluation sets (numpy, ties handled).

Every function returns NaN where the metric is undefined (one class only, a constant input,
fewer than 3 points) rather than raising, so a table can show it as missing.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special, stats


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties count 1/2."""
    labels = np.asarray(labels, dtype=bool)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        return math.nan
    ranks = stats.rankdata(scores)
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


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
    labels = np.asarray(labels, dtype=bool)
    positives = int(labels.sum())
    if positives == 0:
        return math.nan
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-scores, kind="stable")
    ordered, hits = scores[order], labels[order].astype(np.float64)
    ends = np.flatnonzero(np.append(np.diff(ordered) != 0, True)) + 1  # one past each tied block
    before = np.concatenate([[0], ends[:-1]])  # items ranked above the block
    size = (ends - before).astype(np.float64)
    inside = np.add.reduceat(hits, before)  # positives in the block
    above = np.concatenate([[0.0], np.cumsum(inside)[:-1]])  # positives ranked above the block
    # For the block's j-th item (j = 1..size), given it is positive: E[precision] =
    # (above + 1 + (j - 1)(inside - 1)/(size - 1)) / (before + j); summed over j with harmonic sums.
    harmonic = special.digamma(before + size + 1) - special.digamma(before + 1)
    share = np.where(size > 1, (inside - 1) / np.maximum(size - 1, 1), 0.0)
    expected = (inside / size) * ((above + 1) * harmonic + share * (size - (before + 1) * harmonic))
    return float(expected.sum() / positives)


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
