"""The simple methods the model is measured against.

- `KmerRateModel`: the per-base mutation rate of the k-mer centred on each base (3-, 5-, 7-mer),
  counted on training data: rate = mutated bases in that context / bases in that context.
  Contexts are strand-collapsed (a k-mer whose centre is A or G is read as its reverse
  complement). Rare contexts are shrunk towards the rate of their inner (k-2)-mer, and a
  base whose k-mer runs into N or a record end takes the longest complete inner k-mer.
- `pwm_sequence_scores`: the best PWM hit score of each sequence (both strands), the usual
  motif-scan baseline for a sequence label.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from seqmodel.data import alphabet
from seqmodel.io.motifs import PositionWeightMatrix

DEFAULT_PRIOR_STRENGTH = 10.0


def kmer_codes(tokens: np.ndarray, k: int) -> np.ndarray:
    """Code of the strand-collapsed k-mer centred on each base.

    Parameters
    ----------
    tokens : `(L,)` token ids.
    k : odd k-mer length.

    Returns
    -------
    `(L,)` int64 in `[0, 4**k)` (base-4 digits, first base most significant, read on the strand
    where the centre is C or T), or -1 where the k-mer holds an N or runs past an end.
    """
    if k < 1 or k % 2 == 0:
        raise ValueError(f"k must be odd and >= 1, got {k}")
    tokens = np.asarray(tokens)
    codes = np.full(len(tokens), -1, dtype=np.int64)
    if len(tokens) < k:
        return codes
    windows = sliding_window_view(tokens, k).astype(np.int64)
    valid = (windows < alphabet.N).all(axis=1)
    windows = np.minimum(windows, alphabet.T)
    powers = 4 ** np.arange(k - 1, -1, -1, dtype=np.int64)
    forward = windows @ powers
    reverse = (alphabet.T - windows[:, ::-1]) @ powers  # A<->T, C<->G is 3 - token
    centre = windows[:, k // 2]
    purine = (centre == alphabet.A) | (centre == alphabet.G)
    half = k // 2
    codes[half : len(tokens) - half] = np.where(valid, np.where(purine, reverse, forward), -1)
    return codes


def inner_code(codes: np.ndarray, k: int) -> np.ndarray:
    """The code of the (k-2)-mer inside each k-mer code (first and last base dropped)."""
    return (codes % 4 ** (k - 1)) // 4


@dataclass(frozen=True)
class KmerRateModel:
    """`rates[j]` `(4**j,)`: the smoothed mutation rate of each j-mer, for odd j up to `k`."""

    k: int
    rates: dict[int, np.ndarray]

    @classmethod
    def fit(
        cls,
        tokens: Sequence[np.ndarray],
        targets: Sequence[np.ndarray],
        k: int,
        prior_strength: float = DEFAULT_PRIOR_STRENGTH,
    ) -> KmerRateModel:
        """Count mutated and total bases per context over records (`(L,)` tokens, `(L,)` 0/1 targets).

        rate_j(c) = (mutated_j(c) + s * rate_{j-2}(inner c)) / (bases_j(c) + s), s = `prior_strength`;
        the 1-mer rate shrinks towards the overall rate the same way.
        """
        sizes = list(range(1, k + 1, 2))
        mutated = {j: np.zeros(4**j) for j in sizes}
        total = {j: np.zeros(4**j) for j in sizes}
        for record_tokens, record_targets in zip(tokens, targets, strict=True):
            target = (np.asarray(record_targets) >= 0.5).astype(np.float64)
            for j in sizes:
                codes = kmer_codes(record_tokens, j)
                known = codes >= 0
                mutated[j] += np.bincount(codes[known], weights=target[known], minlength=4**j)
                total[j] += np.bincount(codes[known], minlength=4**j)
        if total[1].sum() == 0:
            raise ValueError("no A/C/G/T base to fit the k-mer model on")
        overall = mutated[1].sum() / total[1].sum()
        rates = {1: (mutated[1] + prior_strength * overall) / (total[1] + prior_strength)}
        for j in sizes[1:]:
            prior = rates[j - 2][inner_code(np.arange(4**j), j)]
            rates[j] = (mutated[j] + prior_strength * prior) / (total[j] + prior_strength)
        return cls(k, rates)

    def predict(self, tokens: np.ndarray) -> np.ndarray:
        """Rate `(L,)` float32 of each base of one record; NaN at N."""
        out = np.full(len(tokens), np.nan, dtype=np.float32)
        for j in range(1, self.k + 1, 2):
            codes = kmer_codes(tokens, j)
            known = codes >= 0
            out[known] = self.rates[j][codes[known]]
        return out


def pwm_sequence_scores(tokens: Sequence[np.ndarray], pwm: PositionWeightMatrix) -> np.ndarray:
    """`(R,)` best log2-odds hit score of each record on either strand; a record with no full
    window free of N scores the PWM's minimum."""
    scores = np.array([pwm.best_score(np.asarray(t)) for t in tokens], dtype=np.float64)
    return np.where(np.isfinite(scores), scores, pwm.min_score)
