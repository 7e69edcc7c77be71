"""The simple methods the model is measured against.

- `KmerRateModel`: the per-base mutation rate of the k-mer centred on each base (3-, 5-, 7-mer),
  counted on training data: rate = mutated bases in that context / bases in that context, or
  on carrier counts of N genomes, carriers / (N x bases): the per-genome rate.
  Contexts are strand-collapsed (a k-mer whose centre is A or G is read as its reverse
  complement). Rare contexts are shrunk towards the rate of their inner (k-2)-mer, and a
  base whose k-mer runs into N or a record end takes the longest complete inner k-mer.
- `KmerMotifRateModel` (`kmer3_pwm`): the 3-mer rate times a fitted factor inside the hits of a
  known motif (PWM), a binomial GLM fitted by maximum likelihood.
- `pwm_sequence_scores`: the best PWM hit score of each sequence (both strands), the usual
  motif-scan baseline for a sequence label.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import optimize

from seqmodel.io import alphabet
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
class KmerCounts:
    """Per odd j up to `k`: `events[j]`, `bases[j]` `(4**j,)` summed per strand-collapsed j-mer;
    `trials` the trials per base (genomes) the events are out of."""

    k: int
    events: dict[int, np.ndarray]
    bases: dict[int, np.ndarray]
    trials: float


def count_kmers(
    tokens: Sequence[np.ndarray], targets: Sequence[np.ndarray], k: int, trials: float = 1
) -> KmerCounts:
    """Count events and bases per context over records (`(L,)` tokens, `(L,)` targets).

    With `trials` 1 a target is "mutated" (>= 0.5) or not; with `trials` N it is the number of
    carriers of N genomes at that base.
    """
    sizes = list(range(1, k + 1, 2))
    events = {j: np.zeros(4**j) for j in sizes}
    bases = {j: np.zeros(4**j) for j in sizes}
    for record_tokens, record_targets in zip(tokens, targets, strict=True):
        target = np.asarray(record_targets, dtype=np.float64)
        if trials == 1:
            target = (target >= 0.5).astype(np.float64)
        for j in sizes:
            codes = kmer_codes(record_tokens, j)
            known = codes >= 0
            events[j] += np.bincount(codes[known], weights=target[known], minlength=4**j)
            bases[j] += np.bincount(codes[known], minlength=4**j)
    return KmerCounts(k, events, bases, float(trials))


@dataclass(frozen=True)
class KmerRateModel:
    """`rates[j]` `(4**j,)`: the smoothed mutation rate of each j-mer, for odd j up to `k`
    (the probability per base and per trial: per genome when fitted on carrier counts)."""

    k: int
    rates: dict[int, np.ndarray]

    @classmethod
    def fit(
        cls,
        tokens: Sequence[np.ndarray],
        targets: Sequence[np.ndarray],
        k: int,
        prior_strength: float = DEFAULT_PRIOR_STRENGTH,
        trials: float = 1,
    ) -> KmerRateModel:
        """Fit on records: `(L,)` tokens and `(L,)` targets (0/1 with `trials` 1, else carriers
        out of `trials` genomes); see `from_counts`."""
        return cls.from_counts(count_kmers(tokens, targets, k, trials), prior_strength)

    @classmethod
    def from_counts(cls, counts: KmerCounts, prior_strength: float = DEFAULT_PRIOR_STRENGTH) -> KmerRateModel:
        """rate_j(c) = (events_j(c) / trials + s * rate_{j-2}(inner c)) / (bases_j(c) + s),
        s = `prior_strength`; the 1-mer rate shrinks towards the overall rate the same way (a
        context never seen takes its prior whatever s)."""
        if counts.bases[1].sum() == 0:
            raise ValueError("no A/C/G/T base to fit the k-mer model on")
        s = float(prior_strength)

        def shrink(j: int, prior: np.ndarray | float) -> np.ndarray:
            numerator = counts.events[j] / counts.trials + s * prior
            denominator = counts.bases[j] + s
            fallback = np.broadcast_to(prior, denominator.shape).astype(np.float64)
            return np.divide(numerator, denominator, out=fallback.copy(), where=denominator > 0)

        overall = counts.events[1].sum() / counts.trials / counts.bases[1].sum()
        rates = {1: shrink(1, overall)}
        for j in range(3, counts.k + 1, 2):
            rates[j] = shrink(j, rates[j - 2][inner_code(np.arange(4**j), j)])
        return cls(counts.k, rates)

    def predict(self, tokens: np.ndarray) -> np.ndarray:
        """Rate `(L,)` float32 of each base of one record; NaN at N."""
        out = np.full(len(tokens), np.nan, dtype=np.float32)
        for j in range(1, self.k + 1, 2):
            codes = kmer_codes(tokens, j)
            known = codes >= 0
            out[known] = self.rates[j][codes[known]]
        return out


# --- the 3-mer x motif model -----------------------------------------------------------------------

MOTIF_CONTEXTS = 4**3 + 4  # the strand-collapsed 3-mers, then the 1-mers of bases without a full 3-mer
RATE_CAP = 1 - 1e-9


def motif_model_contexts(tokens: np.ndarray) -> np.ndarray:
    """`(L,)` context of each base for `KmerMotifRateModel`: its 3-mer code, or 64 + its 1-mer
    code where the 3-mer runs into N or a record end; -1 at N."""
    three, one = kmer_codes(tokens, 3), kmer_codes(tokens, 1)
    return np.where(three >= 0, three, np.where(one >= 0, 4**3 + one, -1))


def pwm_threshold(value: str | float, pwm: PositionWeightMatrix) -> float:
    """A hit threshold: a log2-odds score (`12`) or a share of the PWM's score range (`85%`)."""
    text = str(value).strip()
    try:
        if text.endswith("%"):
            relative = float(text[:-1]) / 100
            if not 0 <= relative <= 1:
                raise ValueError
            return pwm.threshold(relative)
        number = float(text)
        if not np.isfinite(number):
            raise ValueError
        return number
    except ValueError:
        raise ValueError(f"{text!r} is not a log2-odds score or a percentage 0-100%") from None


@dataclass(frozen=True)
class KmerMotifRateModel:
    """rate = r(3-mer) x exp(`beta` x [base inside a motif hit]): the 3-mer context rate and one
    multiplicative motif factor, fitted jointly by maximum likelihood (a binomial GLM with a log
    link, the class of model `seqmodel-simulate` draws from with `--motifs`).

    `log_rates` `(MOTIF_CONTEXTS,)` per context of `motif_model_contexts`. The likelihood of a
    base is Binomial(`genomes`, rate) of its carriers, or with `presence` (data that only say
    whether >= 1 genome carries a mutation) Bernoulli(1 - (1 - rate)^genomes).
    """

    log_rates: np.ndarray
    beta: float
    genomes: int
    presence: bool

    @property
    def factor(self) -> float:
        """The fitted rate multiplier inside motif hits, exp(beta)."""
        return float(np.exp(self.beta))

    @classmethod
    def fit(
        cls,
        tokens: Sequence[np.ndarray],
        targets: Sequence[np.ndarray],
        hits: Sequence[np.ndarray],
        genomes: int,
        presence: bool = False,
    ) -> KmerMotifRateModel:
        """Fit on records: `(L,)` tokens, targets (carriers of `genomes`, or 0/1 with `presence`)
        and hit masks (True inside a motif hit)."""
        cells = 2 * MOTIF_CONTEXTS
        bases, events = np.zeros(cells), np.zeros(cells)
        for record_tokens, record_targets, record_hits in zip(tokens, targets, hits, strict=True):
            contexts = motif_model_contexts(record_tokens)
            known = contexts >= 0
            cell = 2 * contexts[known] + np.asarray(record_hits, dtype=bool)[known]
            target = np.asarray(record_targets, dtype=np.float64)[known]
            if presence:
                target = (target >= 0.5).astype(np.float64)
            bases += np.bincount(cell, minlength=cells)
            events += np.bincount(cell, weights=target, minlength=cells)
        if bases.sum() == 0:
            raise ValueError("no A/C/G/T base to fit the 3-mer x motif model on")
        n = float(genomes)
        trials = bases if presence else n * bases

        def as_rate(fraction: np.ndarray) -> np.ndarray:
            # A per-base fraction of "mutated" (presence) or of carriers per genome, as a rate.
            return -np.expm1(np.log1p(-np.minimum(fraction, RATE_CAP)) / n) if presence else fraction

        overall = as_rate(np.array(events.sum() / trials.sum()))
        per_context = bases.reshape(-1, 2).sum(axis=1)
        smoothed = (events.reshape(-1, 2).sum(axis=1) + 0.5) / (trials.reshape(-1, 2).sum(axis=1) + 1)
        start = np.log(np.where(per_context > 0, as_rate(smoothed), overall).clip(1e-12, RATE_CAP))
        hit = np.tile([0.0, 1.0], MOTIF_CONTEXTS)
        context = np.repeat(np.arange(MOTIF_CONTEXTS), 2)
        scale = max(events.sum(), 1.0)

        def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
            eta = np.minimum(theta[context] + theta[-1] * hit, np.log(RATE_CAP))
            p = np.exp(eta)
            log_miss = np.log1p(-p)  # log(1 - p)
            if presence:
                log_none = n * log_miss  # log P(no genome carries a mutation)
                log_some = np.log(-np.expm1(log_none))
                loglik = events * log_some + (bases - events) * log_none
                # d/d eta: events N p (1-p)^(N-1) / (1 - (1-p)^N) - (bases - events) N p / (1 - p)
                some_share = np.exp((n - 1) * log_miss - log_some)
                gradient = events * n * p * some_share - (bases - events) * n * p / (1 - p)
            else:
                loglik = events * eta + (trials - events) * log_miss
                gradient = events - (trials - events) * p / (1 - p)
            grad = np.zeros_like(theta)
            np.add.at(grad, context, gradient)
            grad[-1] = (gradient * hit).sum()
            return -float(loglik.sum()) / scale, -grad / scale

        bounds = [(-40.0, 0.0)] * MOTIF_CONTEXTS + [(-20.0, 20.0)]
        result = optimize.minimize(
            objective,
            np.append(start, 0.0),
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": 5000, "ftol": 1e-14, "gtol": 1e-10},
        )
        return cls(result.x[:-1].copy(), float(result.x[-1]), int(genomes), presence)

    def predict(self, tokens: np.ndarray, hits: np.ndarray) -> np.ndarray:
        """Rate `(L,)` float64 (per genome) of each base of one record; NaN at N."""
        contexts = motif_model_contexts(tokens)
        known = contexts >= 0
        out = np.full(len(tokens), np.nan)
        eta = self.log_rates[contexts[known]] + self.beta * np.asarray(hits, dtype=bool)[known]
        out[known] = np.exp(np.minimum(eta, np.log(RATE_CAP)))
        return out


def pwm_sequence_scores(tokens: Sequence[np.ndarray], pwm: PositionWeightMatrix) -> np.ndarray:
    """`(R,)` best log2-odds hit score of each record on either strand; a record with no full
    window free of N scores the PWM's minimum."""
    scores = np.array([pwm.best_score(np.asarray(t)) for t in tokens], dtype=np.float64)
    return np.where(np.isfinite(scores), scores, pwm.min_score)
