"""The k-mer context baselines and the PWM scan."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from seqmodel.baselines import (
    KmerMotifRateModel,
    KmerRateModel,
    count_kmers,
    inner_code,
    kmer_codes,
    pwm_sequence_scores,
    pwm_threshold,
)
from seqmodel.io import alphabet
from seqmodel.io.motifs import read_motifs, select_motif

JASPAR = Path(__file__).resolve().parents[1] / "data" / "jaspar2024_selected.jaspar"


@given(st.text(alphabet="ACGTN", min_size=0, max_size=40), st.sampled_from([1, 3, 5, 7]))
def test_codes_are_strand_symmetric(seq, k):
    tokens = alphabet.encode(seq)
    forward = kmer_codes(tokens, k)
    reverse = kmer_codes(alphabet.reverse_complement(tokens), k)
    np.testing.assert_array_equal(forward, reverse[::-1])


def test_codes_read_the_pyrimidine_strand_and_mark_incomplete_contexts():
    tokens = alphabet.encode("ACGTNAC")
    codes = kmer_codes(tokens, 3)
    # ACG (centre C): 0*16 + 1*4 + 2; CGT has centre G: read as its reverse complement ACG.
    assert codes.tolist() == [-1, 6, 6, -1, -1, -1, -1]
    assert inner_code(np.array([int("0123012", 4)]), 7).tolist() == [int("12301", 4)]


def planted(rng: np.random.Generator, length: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random sequence whose mutation probability depends on the 3-mer only: 0.3 at [CT]CG (CpG
    on the pyrimidine strand, i.e. the C of a CG), 0.02 elsewhere."""
    tokens = rng.integers(0, 4, length).astype(np.uint8)
    codes = kmer_codes(tokens, 3)
    cpg = (codes >= 0) & (codes % 4 == alphabet.G) & ((codes // 4) % 4 == alphabet.C)
    rate = np.where(cpg, 0.3, 0.02)
    return tokens, (rng.random(length) < rate).astype(np.float32), rate


def test_three_mer_model_recovers_a_planted_context_rate():
    rng = np.random.default_rng(0)
    tokens, targets, rate = planted(rng, 200_000)
    model = KmerRateModel.fit([tokens], [targets], 3)
    test_tokens, _, test_rate = planted(rng, 20_000)
    predicted = model.predict(test_tokens)
    inside = np.isfinite(predicted)
    assert np.abs(predicted[inside] - test_rate[inside]).max() < 0.03
    # A 7-mer model sees the same signal, through more (sparser) contexts.
    seven = KmerRateModel.fit([tokens], [targets], 7).predict(test_tokens)
    assert np.corrcoef(seven[inside], test_rate[inside])[0, 1] > 0.9


def test_bases_next_to_n_or_an_end_take_the_inner_kmer_and_n_gets_nan():
    rng = np.random.default_rng(1)
    tokens, targets, _ = planted(rng, 50_000)
    model = KmerRateModel.fit([tokens], [targets], 5)
    record = alphabet.encode("ACGTTNACCGTA")
    predicted = model.predict(record)
    assert np.isnan(predicted[5]) and np.isfinite(np.delete(predicted, 5)).all()
    # Position 1 (C of ACG...) has no full 5-mer: it takes its 3-mer rate.
    three = model.rates[3][kmer_codes(record, 3)[1]]
    assert predicted[1] == pytest.approx(three)


def test_unseen_contexts_fall_back_to_the_inner_rate():
    tokens = alphabet.encode("ACGTACGTACGT" * 50)
    model = KmerRateModel.fit([tokens], [np.zeros(len(tokens))], 5, prior_strength=10)
    unseen = int(kmer_codes(alphabet.encode("TTCTT"), 5)[2])
    assert model.rates[5][unseen] == pytest.approx(model.rates[3][inner_code(np.array([unseen]), 5)[0]])


def test_pwm_scan_ranks_a_planted_site_first():
    pwm = select_motif(read_motifs(JASPAR), "MA0139.1", JASPAR).pwm()
    rng = np.random.default_rng(2)
    site = pwm.log_odds.argmax(axis=0).astype(np.uint8)
    records = [rng.integers(0, 4, 200).astype(np.uint8) for _ in range(5)]
    records[3][50 : 50 + pwm.width] = alphabet.reverse_complement(site)
    records.append(alphabet.encode("ACGN"))
    scores = pwm_sequence_scores(records, pwm)
    assert scores.argmax() == 3 and scores[3] == pytest.approx(pwm.max_score)
    assert scores[-1] == pwm.min_score


def test_kmer_model_on_carrier_counts_estimates_the_per_genome_rate():
    rng = np.random.default_rng(3)
    tokens, _, rate = planted(rng, 200_000)
    rate = rate / 20  # per genome: 0.015 at CpG, 0.001 elsewhere
    carriers = rng.binomial(50, rate)
    model = KmerRateModel.fit([tokens], [carriers], 3, trials=50)
    predicted = model.predict(tokens)
    inside = kmer_codes(tokens, 3) >= 0
    # About 300 carriers per non-CpG 3-mer: each rate is known to ~6 %.
    np.testing.assert_allclose(predicted[inside], rate[inside], rtol=0.2)
    assert np.abs(predicted[inside] / rate[inside] - 1).mean() < 0.06


def test_shrinkage_strength_zero_keeps_raw_rates_and_unseen_contexts_take_the_prior():
    tokens = alphabet.encode("ACGTACGTACGT" * 50)
    targets = np.zeros(len(tokens))
    targets[::7] = 1
    counts = count_kmers([tokens], [targets], 5)
    raw = KmerRateModel.from_counts(counts, 0.0)
    seen = counts.bases[5] > 0
    np.testing.assert_allclose(raw.rates[5][seen], counts.events[5][seen] / counts.bases[5][seen])
    unseen = int(kmer_codes(alphabet.encode("TTCTT"), 5)[2])
    assert raw.rates[5][unseen] == pytest.approx(raw.rates[3][inner_code(np.array([unseen]), 5)[0]])
    assert np.isfinite(raw.rates[5]).all()


def motif_data(seed: int, length: int, factor: float, genomes: int):
    """Random sequence with 3-mer rates (log-normal around 5e-4) and every 400th base starting
    a 15-base "hit" whose rate is `factor` times higher; carriers of `genomes` genomes."""
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, 4, length).astype(np.uint8)
    context_rate = rng.lognormal(np.log(5e-4), 0.6, 64)
    codes = kmer_codes(tokens, 3)
    rate = np.where(codes >= 0, context_rate[np.maximum(codes, 0)], 5e-4)
    hits = np.zeros(length, dtype=bool)
    for start in range(50, length - 50, 400):
        hits[start : start + 15] = True
    rate = np.where(hits, rate * factor, rate)
    return tokens, hits, rate, rng.binomial(genomes, rate)


@pytest.mark.parametrize("presence", [False, True])
def test_kmer3_motif_glm_recovers_a_planted_motif_factor(presence):
    tokens, hits, rate, carriers = motif_data(4, 300_000, 6.0, 100)
    targets = (carriers > 0).astype(np.float32) if presence else carriers
    model = KmerMotifRateModel.fit([tokens], [targets], [hits], genomes=100, presence=presence)
    # About 11,000 hit bases with ~0.3 carriers each: the factor is known to a few per cent.
    assert model.factor == pytest.approx(6.0, rel=0.08)
    predicted = model.predict(tokens, hits)
    np.testing.assert_allclose(predicted[100:-100], rate[100:-100], rtol=0.25)
    assert np.corrcoef(np.log(predicted[100:-100]), np.log(rate[100:-100]))[0, 1] > 0.98
    # No motif effect planted: the factor comes out near 1.
    tokens, hits, _, carriers = motif_data(5, 300_000, 1.0, 100)
    flat = KmerMotifRateModel.fit([tokens], [carriers], [hits], genomes=100)
    assert flat.factor == pytest.approx(1.0, abs=0.1)
    assert np.isnan(model.predict(alphabet.encode("ACNGT"), np.zeros(5, bool))[2])


def test_pwm_threshold_reads_scores_and_percentages():
    pwm = select_motif(read_motifs(JASPAR), "MA0139.1", JASPAR).pwm()
    assert pwm_threshold("12", pwm) == 12.0 and pwm_threshold(12, pwm) == 12.0
    assert pwm_threshold("85%", pwm) == pytest.approx(pwm.threshold(0.85))
    with pytest.raises(ValueError, match="'high' is not a log2-odds score"):
        pwm_threshold("high", pwm)
