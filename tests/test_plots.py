"""Figures of seqmodel.plots: each makes a PNG (skipped without matplotlib, the plot extra)."""

from __future__ import annotations

import numpy as np
import pytest

from seqmodel.errors import ParameterError, SeqmodelInputError
from seqmodel.io import alphabet
from seqmodel.io.fasta import FastaRecord

pytest.importorskip("matplotlib")

from seqmodel import plots  # noqa: E402

PNG = b"\x89PNG\r\n\x1a\n"


def saved(figure, path) -> bytes:
    plots.save_png(figure, path, dpi=40)
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]  # no temporary left
    return path.read_bytes()


def test_contribution_logo_heatmap_and_both(tmp_path):
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 5, 30)
    onehot = np.eye(5, 4)[tokens]
    hypothetical = rng.normal(size=(30, 4))
    contribution = np.where(tokens < alphabet.N, (hypothetical * onehot).sum(1), np.nan)
    heights = onehot * np.nan_to_num(contribution)[:, None]
    assert saved(plots.logo_figure(heights, start=100, title="logo"), tmp_path / "logo.png").startswith(PNG)
    figure = plots.ism_heatmap_figure(hypothetical, start=100, onehot=onehot)
    assert saved(figure, tmp_path / "heat.png").startswith(PNG)
    figure = plots.explanation_figure(contribution, hypothetical, onehot, start=100, title="both")
    assert saved(figure, tmp_path / "both.png").startswith(PNG)


def test_logo_stacks_letters_by_sign():
    figure = plots.logo_figure(np.array([[0.5, 0.0, -0.25, 0.0], [0.0, 0.0, 0.0, 0.0]]))
    axis = figure.axes[0]
    assert len(axis.patches) == 2  # one letter per non-zero value
    tops = sorted(
        (patch.get_path().vertices[:, 1].min(), patch.get_path().vertices[:, 1].max())
        for patch in axis.patches
    )
    assert tops[0] == pytest.approx((-0.25, 0.0), abs=1e-9) and tops[1] == pytest.approx((0.0, 0.5), abs=1e-9)


def test_reliability_plot(tmp_path):
    expected = np.array([0.5, 2.0, 8.0, 30.0])
    observed = np.array([0.0, 3.0, 7.0, 33.0])
    lower, upper = np.maximum(observed - 2 * np.sqrt(observed + 1), 0), observed + 2 * np.sqrt(observed + 1)
    figure = plots.reliability_figure(expected, observed, lower, upper)
    assert saved(figure, tmp_path / "calibration.png").startswith(PNG)
    with pytest.raises(ParameterError):
        plots.reliability_figure(expected, observed[:2], lower, upper)


class FixedPredictor:
    """predict_record -> the record's position index as its rate."""

    def predict_record(self, tokens):
        return np.arange(len(tokens), dtype=np.float32) + 1, np.array([0.5, 0.5])


def test_rate_track_of_a_region(tmp_path):
    tokens = np.zeros(50, dtype=np.uint8)
    records = [
        FastaRecord("chr1:100-150", "chr1:100-150", tokens, 0),
        FastaRecord("chr1:150-200", "chr1:150-200", tokens, 1),
    ]
    truth = [np.full(50, 0.1), np.full(50, 0.2)]
    hits = [np.zeros(50), np.r_[np.zeros(10), np.ones(5), np.zeros(35)]]
    track = plots.region_rate_track(
        "chr1:140-170", records, FixedPredictor(), truth=truth, mutated=hits, hits=hits
    )
    assert track.start == 140 and len(track.model) == 30
    np.testing.assert_array_equal(track.model, np.r_[np.arange(41, 51), np.arange(1, 21)])
    np.testing.assert_array_equal(track.truth, np.r_[np.full(10, 0.1), np.full(20, 0.2)])
    figure = plots.rate_track_figure([track, track])
    assert saved(figure, tmp_path / "track.png").startswith(PNG)
    with pytest.raises(ParameterError, match="no record"):
        plots.region_rate_track("chr2:0-10", records, FixedPredictor())
    with pytest.raises(ParameterError, match="not chrom:start-end"):
        plots.region_rate_track("chr1", records, FixedPredictor())


def test_save_png_refuses_other_names(tmp_path):
    figure = plots.reliability_figure([1.0], [1.0], [0.5], [2.0])
    with pytest.raises(SeqmodelInputError, match="PNG"):
        plots.save_png(figure, tmp_path / "figure.pdf")
    with pytest.raises(SeqmodelInputError, match="does not exist"):
        plots.save_png(figure, tmp_path / "missing" / "figure.png")
