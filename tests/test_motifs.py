from pathlib import Path

import numpy as np
import pytest

from seqmodel.errors import SeqmodelInputError
from seqmodel.io import alphabet
from seqmodel.io.motifs import Motif, read_motifs, select_motif

DATA = Path(__file__).resolve().parents[1] / "data"
JASPAR = DATA / "jaspar2024_selected.jaspar"
MEME = DATA / "jaspar2024_selected.meme"


@pytest.fixture(scope="module")
def ctcf():
    return select_motif(read_motifs(JASPAR), "MA0139.1", JASPAR).pwm()


def consensus(pwm) -> np.ndarray:
    return pwm.log_odds.argmax(axis=0).astype(np.uint8)


def naive_scores(log_odds: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    width = log_odds.shape[1]
    reverse = log_odds[::-1, ::-1]
    out = np.full((2, len(tokens) - width + 1), -np.inf)
    for i in range(out.shape[1]):
        window = tokens[i : i + width]
        if (window < 4).all():
            out[0, i] = sum(log_odds[b, j] for j, b in enumerate(window))
            out[1, i] = sum(reverse[b, j] for j, b in enumerate(window))
    return out


def test_reads_jaspar_and_meme_alike():
    jaspar, meme = read_motifs(JASPAR), read_motifs(MEME)
    assert [m.id for m in jaspar] == [m.id for m in meme]
    assert len(jaspar) == 14 and jaspar[0].name == "CTCF" and jaspar[0].width == 19
    # Same CTCF matrix: the MEME file's nsites (913) matches the JASPAR column totals.
    np.testing.assert_allclose(jaspar[0].pwm().log_odds, meme[0].pwm().log_odds, atol=0.01)


def test_log_odds_use_the_pseudocount_and_background():
    motif = Motif("m", "", np.array([[3.0], [1.0], [0.0], [0.0]]))
    log_odds = motif.pwm(pseudocount=0.8).log_odds[:, 0]
    expected = np.log2((np.array([3, 1, 0, 0]) + 0.2) / 4.8 / 0.25)
    np.testing.assert_allclose(log_odds, expected)


def test_vectorised_scores_match_a_plain_loop(ctcf):
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 4, 300).astype(np.uint8)
    tokens[100] = alphabet.N
    np.testing.assert_allclose(ctcf.scores(tokens), naive_scores(ctcf.log_odds, tokens))


def test_finds_a_planted_ctcf_site_on_either_strand(ctcf):
    rng = np.random.default_rng(1)
    tokens = rng.integers(0, 4, 400).astype(np.uint8)
    site = consensus(ctcf)
    tokens[50:69] = site
    tokens[250:269] = alphabet.reverse_complement(site)
    threshold = ctcf.threshold(0.95)
    hits = ctcf.hits(tokens, threshold)
    assert [(h.start, h.end, h.strand) for h in hits] == [(50, 69, "+"), (250, 269, "-")]
    assert hits[0].score == pytest.approx(ctcf.max_score)
    assert hits[1].score == pytest.approx(ctcf.max_score)
    mask = ctcf.hit_mask(tokens, threshold)
    assert np.flatnonzero(mask).tolist() == list(range(50, 69)) + list(range(250, 269))
    assert float(ctcf.best_score(tokens)) == pytest.approx(ctcf.max_score)


def test_a_window_with_n_is_never_a_hit(ctcf):
    tokens = consensus(ctcf).copy()
    tokens[9] = alphabet.N
    assert ctcf.hits(tokens, ctcf.min_score) == []
    assert float(ctcf.best_score(tokens)) == -np.inf


def test_best_score_per_sequence_of_a_batch(ctcf):
    rng = np.random.default_rng(2)
    batch = rng.integers(0, 4, (5, 120)).astype(np.uint8)
    batch[3, 10:29] = consensus(ctcf)
    best = ctcf.best_score(batch)
    assert best.shape == (5,)
    np.testing.assert_allclose(best, [float(ctcf.best_score(row)) for row in batch])
    assert int(np.argmax(best)) == 3
    assert float(ctcf.best_score(batch[0, :10])) == -np.inf


def test_relative_threshold_spans_min_to_max(ctcf):
    assert ctcf.threshold(0) == pytest.approx(ctcf.min_score)
    assert ctcf.threshold(1) == pytest.approx(ctcf.max_score)


@pytest.mark.parametrize(
    "text, expected",
    [
        (">m1 X\nA [1 2]\nC [1 2]\nG [1 2]\n", "line 5: motif m1: expected the T row"),
        (">m1 X\nA [1 2]\nC [1 x]\nG [1 2]\nT [1 2]\n", "line 3: motif m1: C row is not counts"),
        (">m1 X\nA [1 2]\nG [1 2]\nC [1 2]\nT [1 2]\n", "line 3: motif m1: row 'G', expected C"),
        (">m1 X\nA [1 2]\nC [1 2 3]\nG [1 2]\nT [1 2]\n", "line 3: motif m1: 3 columns"),
        (">m1 X\nA [1 0]\nC [1 0]\nG [1 0]\nT [1 0]\n", "motif m1: a column with no counts"),
        (">m1\nA 1\nC 1\nG 1\nT 1\n>m1\nA 1\nC 1\nG 1\nT 1\n", "motif m1: duplicate motif id"),
        ("A [1]\n", "not a motif file"),
        (
            "MEME version 4\n\nMOTIF m1\nletter-probability matrix: w= 2\n0.5 0.5 0 0\n0.5 0.6 0 0\n",
            "line 6: motif m1: expected 4 probabilities summing to 1",
        ),
        (
            "MEME version 4\n\nMOTIF m1\nletter-probability matrix: w= 3\n0.5 0.5 0 0\n\n",
            "line 6: motif m1: 1 matrix rows, expected 3",
        ),
        ("MEME version 4\nALPHABET= ACDEFGHIKLMNPQRSTVWY\n", "line 2: only the DNA alphabet"),
    ],
)
def test_bad_motif_file_error_names_file_and_line(tmp_path, text, expected):
    path = tmp_path / "bad.motifs"
    path.write_text(text)
    with pytest.raises(SeqmodelInputError, match="bad.motifs") as error:
        read_motifs(path)
    assert expected in str(error.value)


def test_unknown_motif_id_lists_the_ids():
    with pytest.raises(SeqmodelInputError, match="no motif with id 'MA9999.1' .ids: MA0139.1, "):
        select_motif(read_motifs(JASPAR), "MA9999.1", JASPAR)
