"""Figures: a region's rate track, a contribution logo, an ISM heatmap, a reliability plot.

matplotlib is the optional `plot` extra (`pip install 'seqmodel[plot]'`), imported only when a
figure is made. Every function takes arrays and returns a `matplotlib.figure.Figure` (built
without pyplot, so no display or global backend is involved); `save_png` writes one
atomically. Positions on the x axis are 0-based (`start` is the position of index 0).

- `rate_track_figure`: the model's per-base rate against the true rate and the observed
  mutations, motif hits shaded (one row per region; `region_rate_track` builds a row from a
  checkpoint's predictor and per-record tracks);
- `logo_figure`: a sequence logo of contributions (letters drawn as glyph outlines, height =
  contribution, negative below the axis);
- `ism_heatmap_figure`: an `(L, 4)` matrix (ISM or hypothetical contributions) as a 4 x L heatmap;
- `explanation_figure`: the logo above the heatmap (what `seqmodel-explain plot=` draws);
- `reliability_figure`: observed against predicted per bin of a calibration table, with
  intervals (the arrays of `metrics.calibration_table`: expected, observed, lower, upper).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seqmodel.errors import ParameterError, SeqmodelInputError
from seqmodel.io.figures import write_png
from seqmodel.io.regions import parse_region

PLOT_HINT = "pip install 'seqmodel[plot]'"
BASE_COLOURS = ("#109648", "#255c99", "#f7b32b", "#d62839")  # A, C, G, T
TRUTH_COLOUR, MODEL_COLOUR, MUTATION_COLOUR, HIT_COLOUR = "black", "#2a6fdb", "#c0392b", "#f3c96b"


def require_matplotlib():
    """matplotlib's Figure class, or a one-line error saying how to install the extra."""
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise SeqmodelInputError(None, None, f"figures need matplotlib: {PLOT_HINT}") from None
    return Figure


def save_png(figure, path: str | os.PathLike, dpi: int = 130) -> Path:
    """Write `figure` to `path` (.png) atomically."""
    return write_png(figure, path, dpi)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of each run of True in `mask`."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], np.asarray(mask, dtype=np.int8), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


# --- the rate track ---------------------------------------------------------------------------


@dataclass
class RateTrack:
    """One region's per-base arrays `(n,)` (NaN where unknown) for `rate_track_figure`.

    model: the predicted rate; truth: the true rate; mutated: observed mutations (> 0.5: a
    mutation); hits: motif hits (> 0.5: inside a hit). Only `model` is required.
    """

    name: str
    start: int
    model: np.ndarray
    truth: np.ndarray | None = None
    mutated: np.ndarray | None = None
    hits: np.ndarray | None = None


def region_rate_track(
    region: str,
    records: Sequence,
    predictor,
    truth: Sequence[np.ndarray] | None = None,
    mutated: Sequence[np.ndarray] | None = None,
    hits: Sequence[np.ndarray] | None = None,
) -> RateTrack:
    """The tracks over `region` (`chrom:start-end`) from the records named `chrom:start-end` that
    cover it: the predictor's rate (`RecordPredictor.predict_record`) and the per-record arrays
    `truth`, `mutated`, `hits` (lists parallel to `records`, as `data.targets` reads them)."""
    parsed = parse_region(region)
    if parsed is None:
        raise ParameterError("region", f"{region!r} is not chrom:start-end")
    chrom, start, end = parsed
    extra = {"truth": truth, "mutated": mutated, "hits": hits}
    values = {name: np.full(end - start, np.nan) for name in ("model", *extra)}
    covered = False
    for index, record in enumerate(records):
        interval = record.genome_interval
        if not interval or interval[0] != chrom or interval[1] >= end or interval[2] <= start:
            continue
        covered = True
        predicted, _ = predictor.predict_record(record.tokens)
        lo, hi = max(start, interval[1]), min(end, interval[2])
        inside = slice(lo - interval[1], hi - interval[1])
        values["model"][lo - start : hi - start] = predicted[inside]
        for name, per_record in extra.items():
            if per_record is not None:
                values[name][lo - start : hi - start] = per_record[index][inside]
    if not covered:
        raise ParameterError("region", f"no record named chrom:start-end covers {region}")
    return RateTrack(
        f"{region} (0-based)",
        start,
        values["model"],
        **{name: values[name] if extra[name] is not None else None for name in extra},
    )


def rate_track_figure(
    tracks: Sequence[RateTrack],
    title: str = "Predicted vs true mutation rate; shaded: motif hits (hotspots)",
):
    """One row per region: model and truth, each scaled to its mean over the region (the two may
    be on different scales, e.g. P(mutated in >= 1 genome) against a per-genome rate, so the
    rows compare shapes), motif hits shaded, observed mutations ticked below."""
    figure_class = require_matplotlib()
    figure = figure_class(figsize=(12, 2.6 * max(len(tracks), 1)), layout="constrained")
    axes = figure.subplots(max(len(tracks), 1), 1, squeeze=False)[:, 0]
    for axis, track in zip(axes, tracks, strict=False):
        position = track.start + np.arange(len(track.model))
        if track.hits is not None:
            for lo, hi in _runs(np.nan_to_num(track.hits) > 0.5):
                axis.axvspan(track.start + lo, track.start + hi, color=HIT_COLOUR, alpha=0.5, lw=0)
        if track.truth is not None:
            axis.plot(
                position, track.truth / np.nanmean(track.truth), color=TRUTH_COLOUR, lw=0.9, label="true rate"
            )
        axis.plot(position, track.model / np.nanmean(track.model), color=MODEL_COLOUR, lw=0.9, label="model")
        if track.mutated is not None:
            observed = np.flatnonzero(np.nan_to_num(track.mutated) > 0.5)
            axis.plot(
                track.start + observed,
                np.full(len(observed), -0.3),
                "|",
                color=MUTATION_COLOUR,
                ms=6,
                label="observed mutation",
            )
        axis.set_xlim(track.start, track.start + len(track.model))
        axis.ticklabel_format(axis="x", useOffset=False, style="plain")
        axis.set_ylabel("rate / region mean")
        axis.set_title(track.name, fontsize=9)
    axes[0].legend(loc="upper right", fontsize=8, ncol=3)
    figure.suptitle(title)
    return figure


# --- logos and heatmaps -----------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _glyphs():
    """The outlines of A, C, G, T (bold sans serif), with their bounding boxes."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextPath

    font = FontProperties(family="DejaVu Sans", weight="bold")
    paths = [TextPath((0, 0), letter, size=1, prop=font) for letter in "ACGT"]
    return [(path, path.get_extents()) for path in paths]


def draw_logo(axis, heights: np.ndarray, start: int = 0) -> None:
    """Draw a sequence logo of `heights` `(L, 4)` (columns A, C, G, T) on `axis`.

    At each position the positive values are stacked upwards and the negative ones downwards,
    the largest furthest from zero; a letter's height is its value. NaN counts as zero.
    """
    from matplotlib.patches import PathPatch
    from matplotlib.transforms import Affine2D

    heights = np.nan_to_num(np.asarray(heights, dtype=np.float64))
    glyphs = _glyphs()
    top, bottom = 0.0, 0.0
    for i, row in enumerate(heights):
        up, down = 0.0, 0.0
        for base in np.argsort(np.abs(row), kind="stable"):
            height = float(row[base])
            if height == 0.0:
                continue
            path, box = glyphs[base]
            floor = up if height > 0 else down - abs(height)
            transform = (
                Affine2D()
                .translate(-box.x0, -box.y0)
                .scale(0.9 / box.width, abs(height) / box.height)
                .translate(start + i - 0.45, floor)
            )
            axis.add_patch(
                PathPatch(transform.transform_path(path), facecolor=BASE_COLOURS[base], edgecolor="none")
            )
            if height > 0:
                up += height
            else:
                down -= abs(height)
        top, bottom = max(top, up), min(bottom, down)
    span = (top - bottom) or 1.0
    axis.set_xlim(start - 0.5, start + len(heights) - 0.5)
    axis.set_ylim(bottom - 0.05 * span, top + 0.05 * span)
    axis.axhline(0.0, color="grey", lw=0.5)


def draw_heatmap(axis, matrix: np.ndarray, start: int = 0, onehot: np.ndarray | None = None):
    """Draw `matrix` `(L, 4)` as a 4 x L heatmap (rows A, C, G, T; colours centred on 0); dots
    mark the reference bases where `onehot` `(L, 4)` is given. Returns the image (for a colour bar)."""
    matrix = np.asarray(matrix, dtype=np.float64)
    limit = float(np.nanmax(np.abs(matrix))) if np.isfinite(matrix).any() else 0.0
    limit = limit or 1.0
    image = axis.imshow(
        matrix.T,
        aspect="auto",
        cmap="RdBu_r",
        vmin=-limit,
        vmax=limit,
        interpolation="nearest",
        extent=(start - 0.5, start + len(matrix) - 0.5, 3.5, -0.5),
    )
    if onehot is not None:
        where, base = np.nonzero(np.asarray(onehot) > 0.5)
        axis.scatter(start + where, base, s=4, color="black", marker="o", linewidths=0)
    axis.set_yticks(range(4), list("ACGT"))
    return image


def _width(length: int) -> float:
    return float(min(max(6.0, 0.09 * length + 2.0), 40.0))


def _position_axis(axis, start: int, length: int) -> None:
    axis.set_xlim(start - 0.5, start + length - 0.5)
    axis.ticklabel_format(axis="x", useOffset=False, style="plain")
    axis.set_xlabel("position (0-based)")


def logo_figure(heights: np.ndarray, start: int = 0, title: str = "", ylabel: str = "contribution"):
    """A sequence logo of `heights` `(L, 4)`; for per-base contributions `c` `(L,)` of a sequence
    with one-hot `x` `(L, 4)`, pass `x * c[:, None]`."""
    figure = require_matplotlib()(figsize=(_width(len(heights)), 2.4), layout="constrained")
    axis = figure.subplots()
    draw_logo(axis, heights, start)
    _position_axis(axis, start, len(heights))
    axis.set_ylabel(ylabel)
    if title:
        axis.set_title(title, fontsize=9)
    return figure


def ism_heatmap_figure(
    matrix: np.ndarray,
    start: int = 0,
    onehot: np.ndarray | None = None,
    title: str = "",
    label: str = "ISM (mean-centred)",
):
    """`matrix` `(L, 4)` as a 4 x L heatmap with a colour bar; dots on the reference bases."""
    figure = require_matplotlib()(figsize=(_width(len(matrix)), 2.2), layout="constrained")
    axis = figure.subplots()
    image = draw_heatmap(axis, matrix, start, onehot)
    _position_axis(axis, start, len(matrix))
    figure.colorbar(image, ax=axis, label=label, fraction=0.03, pad=0.01)
    if title:
        axis.set_title(title, fontsize=9)
    return figure


def explanation_figure(
    contribution: np.ndarray,
    hypothetical: np.ndarray,
    onehot: np.ndarray,
    start: int = 0,
    title: str = "",
    label: str = "ISM (mean-centred)",
):
    """The contribution logo `(L,)` (letters of the sequence `onehot` `(L, 4)`) above the heatmap
    of `hypothetical` `(L, 4)`, on one position axis."""
    figure = require_matplotlib()(figsize=(_width(len(contribution)), 4.4), layout="constrained")
    logo_axis, heat_axis = figure.subplots(2, 1, sharex=True, height_ratios=[1.3, 1.0])
    heights = np.asarray(onehot, dtype=np.float64) * np.nan_to_num(np.asarray(contribution))[:, None]
    draw_logo(logo_axis, heights, start)
    logo_axis.set_ylabel("contribution")
    image = draw_heatmap(heat_axis, hypothetical, start, onehot)
    _position_axis(heat_axis, start, len(contribution))
    figure.colorbar(image, ax=[logo_axis, heat_axis], label=label, fraction=0.03, pad=0.01)
    if title:
        figure.suptitle(title, fontsize=10)
    return figure


# --- calibration ------------------------------------------------------------------------------


def reliability_figure(
    expected: np.ndarray,
    observed: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    title: str = "Calibration",
    xlabel: str = "predicted (expected) per bin",
    ylabel: str = "observed per bin",
):
    """Observed against predicted per bin, with the interval `[lower, upper]` of each observed
    value, and the diagonal where they agree. Log axes when every value is positive."""
    expected, observed, lower, upper = (
        np.asarray(a, dtype=np.float64) for a in (expected, observed, lower, upper)
    )
    if not len(expected) == len(observed) == len(lower) == len(upper):
        raise ParameterError("expected", "expected, observed, lower and upper must have one value per bin")
    figure = require_matplotlib()(figsize=(4.8, 4.4), layout="constrained")
    axis = figure.subplots()
    errors = np.stack([np.maximum(observed - lower, 0), np.maximum(upper - observed, 0)])
    axis.errorbar(
        expected, observed, yerr=errors, fmt="o", ms=4, color=MODEL_COLOUR, ecolor="grey", capsize=2
    )
    values = np.concatenate([expected, lower, upper, observed])
    values = values[np.isfinite(values)]
    positive = values.size > 0 and bool((values > 0).all())
    lo, hi = (values.min(), values.max()) if values.size else (0.0, 1.0)
    axis.plot([lo, hi], [lo, hi], color="black", lw=0.8, ls="--", label="observed = predicted")
    if positive and hi > 10 * lo:
        axis.set_xscale("log")
        axis.set_yscale("log")
    axis.set_xlabel(xlabel)
    axis.set_ylabel(ylabel)
    axis.set_title(title, fontsize=10)
    axis.legend(loc="upper left", fontsize=8)
    return figure
