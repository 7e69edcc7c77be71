"""`seqmodel-explain`: which bases drive the per-base risk or a class of a trained model.

    seqmodel-explain ckpt_path=RUN/checkpoints/best.ckpt input=regions.fa output=contrib.bw
    seqmodel-explain ckpt_path=... input=genome.fa regions=peaks.bed output=contrib.npz explain.method=ig
    seqmodel-explain ckpt_path=... input=x.fa output=contrib.bedgraph head=class explain.target=ctcf

Every record of `input` (or every interval of `regions=`, a BED on the FASTA's records, read
with flanks of half the window as seqmodel-predict does) is explained one at a time with
`seqmodel.attribution.explain_sequence`: what is explained (`head`, `explain.target`,
`explain.window`) and the methods (`explain.method`: ism or ig) are described there. Outputs:

- `output`: one contribution per base, in any track format seqmodel-predict writes
  (bedGraph[.gz], TSV, bigWig, npz; N positions get no value). A `.npz` also holds, per
  sequence, the hypothetical contributions and the one-hot `(4, L)`, and beside it the two
  arrays `modisco motifs -s ... -a ...` reads (see `seqmodel.io.attributions`);
- `<stem>.scores.tsv`: per sequence, the explained value `f(x)`, for IG also `f(baseline)`,
  and the sum of the contributions over the explained sequence, a region's flanks included
  (IG: about `f(x) - f(baseline)`);
- `plot=region.png` (optional): the contribution logo and the ISM (or IG hypothetical)
  heatmap of the first sequence, over `explain.window` or the whole sequence, at most
  `explain.plot_bases` bases around its centre.

The model runs on tiles of its training window, tiled as predict tiles them, so a sequence
may be longer than the window; a sequence longer than `explain.max_bases` is refused (use
`regions=`), which bounds memory and time: ISM costs about 12 window-long forward passes per
base (3 alternatives x 2 overlapping tiles x 2 strands), IG `2 * steps` forward and backward
passes per tile.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import hydra
import numpy as np
from omegaconf import DictConfig, OmegaConf

from seqmodel.attribution import HEADS, METHODS, Attribution, class_index, explain_sequence, require_captum
from seqmodel.config import CONFIG_DIR
from seqmodel.errors import ParameterError, SeqmodelInputError, run_cli
from seqmodel.io.atomic import atomic_text
from seqmodel.io.fasta import read_fasta
from seqmodel.io.regions import format_region
from seqmodel.io.tracks import TrackWriter, track_suffix

USAGE = "seqmodel-explain ckpt_path=... input=... output=..."
# Library parameter -> the config key that sets it (for one-line errors).
FLAGS = {
    "method": "explain.method",
    "target": "explain.target",
    "span": "explain.window",
    "steps": "explain.steps",
    "batch_size": "explain.batch_size",
    "head": "head",
    "plot": "plot",
}


# --- what is explained ------------------------------------------------------------------------


@dataclass
class Unit:
    """One sequence to explain: `tokens` (with flanks for a region), of which `[lo, hi)` is
    written out at `start` of `chrom`; `chrom_length` ends the chrom's track after the last unit."""

    id: str
    chrom: str
    start: int
    tokens: np.ndarray
    lo: int
    hi: int
    chrom_length: int
    last_on_chrom: bool


def read_units(cfg: DictConfig, flank: int) -> Iterator[Unit]:
    """The records of `cfg.input`, or its `regions=` intervals with `flank` bases each side, in order."""
    from seqmodel.predict import read_regions

    if not cfg.regions:
        for record in read_fasta(cfg.input):
            yield Unit(record.id, record.id, 0, record.tokens, 0, len(record), len(record), True)
        return
    wanted = read_regions(cfg.regions)
    for record in read_fasta(cfg.input):
        rows = wanted.pop(record.id, [])
        for i, (start, end, line) in enumerate(rows):
            if end > len(record):
                message = f"region end {end} is past the end of {record.id} ({len(record)})"
                raise SeqmodelInputError(cfg.regions, f"line {line}", message)
            lo, hi = max(0, start - flank), min(len(record), end + flank)
            key = format_region(record.id, start, end)
            tokens = record.tokens[lo:hi]
            yield Unit(key, record.id, start, tokens, start - lo, end - lo, len(record), i == len(rows) - 1)
    if wanted:
        chrom, rows = next(iter(wanted.items()))
        raise SeqmodelInputError(cfg.regions, f"line {rows[0][2]}", f"no FASTA record named {chrom!r}")


def unit_span(unit: Unit, window) -> tuple[int, int]:
    """`explain.window` (relative to the record or region) in the unit's token coordinates."""
    if window is None:
        return unit.lo, unit.hi
    start, end = (int(v) for v in window)
    if not 0 <= start < end <= unit.hi - unit.lo:
        raise SeqmodelInputError(
            None,
            "explain.window",
            f"[{start}, {end}) is not inside {unit.id} (length {unit.hi - unit.lo})",
        )
    return unit.lo + start, unit.lo + end


def check_settings(cfg: DictConfig) -> None:
    """Refuse bad settings before any file is read."""
    for key in ("ckpt_path", "input", "output"):
        if OmegaConf.is_missing(cfg, key):
            raise SeqmodelInputError(None, None, f"Missing mandatory value: {key} (usage: {USAGE})")
    settings = cfg.explain
    if settings.method not in METHODS:
        raise ParameterError("method", f"must be one of {', '.join(METHODS)}, got {settings.method!r}")
    if cfg.head not in HEADS:
        raise ParameterError("head", f"must be one of {', '.join(HEADS)}, got {cfg.head!r}")
    if cfg.head == "class" and settings.target is None:
        raise ParameterError("target", "head=class needs the class to explain (explain.target=<class name>)")
    if cfg.head == "base" and settings.target is not None:
        raise ParameterError("target", "names a class for head=class; head=base explains the rate")
    if settings.window is not None:
        if cfg.head != "base":
            raise ParameterError("span", "is for head=base (the rate summed over a window)")
        if len(settings.window) != 2:
            raise ParameterError(
                "span", f"must be [start, end] (0-based, end excluded), got {list(settings.window)}"
            )
    for key in ("batch_size", "steps", "max_bases", "plot_bases"):
        if settings[key] < 1:
            raise SeqmodelInputError(None, f"explain.{key}", f"must be at least 1, got {settings[key]}")
    track_suffix(cfg.output)
    if settings.method == "ig":
        require_captum()
    if cfg.plot:
        from seqmodel.plots import require_matplotlib

        require_matplotlib()
        if not str(cfg.plot).lower().endswith(".png"):
            raise ParameterError("plot", f"figures are written as PNG, got {cfg.plot}")


def scores_path(output: str) -> Path:
    """`contrib.bw` -> `contrib.scores.tsv`."""
    output = Path(output)
    return output.with_name(output.name[: -len(track_suffix(output))] + ".scores.tsv")


def scores_row(unit_id: str, length: int, attribution: Attribution) -> str:
    baseline = "NA" if attribution.baseline_score is None else f"{attribution.baseline_score:.6g}"
    total = float(np.nansum(attribution.contribution))
    return f"{unit_id}\t{length}\t{attribution.score:.6g}\t{baseline}\t{total:.6g}\n"


def plot_unit(
    path: str, unit: Unit, attribution: Attribution, span: tuple[int, int], cfg: DictConfig
) -> None:
    """The logo and heatmap of `unit` over `span` (token coordinates), at most `plot_bases` wide."""
    from seqmodel.plots import explanation_figure, save_png

    lo, hi = span
    if hi - lo > cfg.explain.plot_bases:
        lo = (lo + hi) // 2 - cfg.explain.plot_bases // 2
        hi = lo + cfg.explain.plot_bases
    part = slice(lo, hi)
    label = "ISM (mean-centred)" if cfg.explain.method == "ism" else "IG hypothetical"
    what = "rate" if cfg.head == "base" else f"log-odds of {cfg.explain.target}"
    figure = explanation_figure(
        attribution.contribution[part],
        attribution.hypothetical[part],
        attribution.onehot[part],
        start=unit.start - unit.lo + lo,
        title=f"{unit.id}: contributions to the {what} ({cfg.explain.method})",
        label=label,
    )
    save_png(figure, path)


def explain(cfg: DictConfig) -> Path:
    """Explain every record (or region) of `cfg.input`; returns the output path."""
    from seqmodel.io.attributions import AttributionWriter
    from seqmodel.models.checkpoint import load_trained_model
    from seqmodel.models.predictor import resolve_device

    check_settings(cfg)
    settings = cfg.explain
    output = Path(cfg.output)
    trained = load_trained_model(cfg.ckpt_path, resolve_device(cfg.predict.device))
    class_index(trained.classes, cfg.head, settings.target)  # an unknown class fails before any work
    started = time.perf_counter()
    count, bases = 0, 0
    first = None
    with contextlib.ExitStack() as outputs:
        if track_suffix(output) == ".npz":
            arrays, track = outputs.enter_context(AttributionWriter(output)), None
        else:
            arrays, track = None, outputs.enter_context(TrackWriter(output, cfg.predict.bigwig_zooms))
        table = outputs.enter_context(atomic_text(scores_path(output)))
        table.write("id\tlength\tscore\tbaseline_score\tcontribution_sum\n")
        for unit in read_units(cfg, trained.window // 2):
            if len(unit.tokens) > settings.max_bases:
                raise SeqmodelInputError(
                    cfg.input,
                    f"record {unit.id}",
                    f"{len(unit.tokens):,} bases to explain, more than "
                    f"explain.max_bases={settings.max_bases:,}; "
                    "explain parts of it with regions=<BED> (or raise explain.max_bases)",
                )
            span = unit_span(unit, settings.window) if cfg.head == "base" else None
            attribution = explain_sequence(
                trained,
                unit.tokens,
                method=settings.method,
                head=cfg.head,
                target=settings.target,
                span=span,
                overlap=cfg.predict.overlap,
                rc_average=cfg.predict.rc_average,
                batch_size=settings.batch_size,
                steps=settings.steps,
            )
            part = slice(unit.lo, unit.hi)
            if arrays is not None:
                arrays.add(
                    unit.id,
                    attribution.contribution[part],
                    attribution.hypothetical[part],
                    attribution.onehot[part],
                )
            else:
                track.segment(unit.chrom, unit.start, attribution.contribution[part])
                if unit.last_on_chrom:
                    track.end_record(unit.chrom, unit.chrom_length)
            table.write(scores_row(unit.id, unit.hi - unit.lo, attribution))
            if cfg.plot and first is None:
                first = (unit, attribution, span or (unit.lo, unit.hi))
            count += 1
            bases += unit.hi - unit.lo
    if first is not None:  # drawn once the outputs are in place
        plot_unit(cfg.plot, *first, cfg)
    elapsed = time.perf_counter() - started
    print(f"explained {count:,} sequences ({bases:,} bases) in {elapsed:.1f} s with {settings.method}")
    print(f"contributions: {output}\nscores: {scores_path(output)}")
    if cfg.plot:
        print(f"figure: {cfg.plot}")
    return output


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="explain")
def _hydra_main(cfg: DictConfig) -> None:
    run_cli(lambda: explain(cfg), FLAGS)


def main() -> None:
    _hydra_main()


if __name__ == "__main__":
    main()
