"""Plot the model's predicted per-base rate against the true simulated rate along a genome region,
with the motif hits (hotspots) and the observed mutations marked.

Usage:
  python scripts/plot_rate_track.py --ckpt RUN/checkpoints/best.ckpt --fasta data/prepared/chr20/test.fa.gz \
    --true-rate data/prepared/chr20/true_rate.bedgraph.gz --mutations data/prepared/chr20/simulated.vcf.gz \
    --hits data/prepared/chr20/hits.bed --region 20:39620000-39623000 [--region ...] --out docs/rate_track.png

Each region (one row of the figure) must be covered by records named `chrom:start-end`. Both
tracks are scaled to their mean over the region (the model predicts P(mutated in >= 1 genome),
the truth is a per-genome rate), so the plot compares shapes.
"""

from __future__ import annotations

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from seqmodel.io.fasta import REGION_ID, load_fasta  # noqa: E402
from seqmodel.data.targets import mutation_targets, track_values  # noqa: E402
from seqmodel.models.checkpoint import load_trained_model  # noqa: E402
from seqmodel.models.predictor import RecordPredictor  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("--ckpt", "--fasta", "--true-rate", "--mutations", "--hits", "--out"):
        parser.add_argument(name, required=True)
    parser.add_argument(
        "--region", action="append", required=True, help="chrom:start-end; repeat for more rows"
    )
    args = parser.parse_args()
    records = load_fasta(args.fasta)
    tracks = {
        "truth": track_values(args.true_rate, records),
        "mutated": mutation_targets(args.mutations, records),
        "hit": mutation_targets(args.hits, records),
    }
    predictor = RecordPredictor(load_trained_model(args.ckpt))
    figure, axes = plt.subplots(len(args.region), 1, figsize=(12, 2.6 * len(args.region)), squeeze=False)
    for axis, region in zip(axes[:, 0], args.region, strict=True):
        plot_region(axis, region, records, tracks, predictor)
    axes[0, 0].legend(loc="upper right", fontsize=8, ncol=3)
    figure.suptitle("Predicted vs true mutation rate on held-out sequence; shaded: motif hits (hotspots)")
    figure.tight_layout()
    figure.savefig(args.out, dpi=130)
    print(f"wrote {args.out}")


def plot_region(axis, region: str, records: list, tracks: dict, predictor: RecordPredictor) -> None:
    """One row: model and truth over `region` (each scaled to its mean), hits shaded, mutations ticked."""
    match = REGION_ID.match(region)
    if match is None:
        raise SystemExit(f"--region {region!r} is not chrom:start-end")
    chrom, start, end = match["chrom"], int(match["start"]), int(match["end"])
    track = {name: np.full(end - start, np.nan) for name in ("model", *tracks)}
    covered = False
    for index, record in enumerate(records):
        interval = record.genome_interval
        if not interval or interval[0] != chrom or interval[1] >= end or interval[2] <= start:
            continue
        covered = True
        predicted, _ = predictor.predict_record(record.tokens)
        lo, hi = max(start, interval[1]), min(end, interval[2])
        inside = slice(lo - interval[1], hi - interval[1])
        track["model"][lo - start : hi - start] = predicted[inside]
        for name, values in tracks.items():
            track[name][lo - start : hi - start] = values[index][inside]
    if not covered:
        raise SystemExit(f"no record covers {region}")
    position = np.arange(start, end)
    for lo, hi in _runs(track["hit"] > 0.5):
        axis.axvspan(start + lo, start + hi, color="#f3c96b", alpha=0.5, lw=0)
    axis.plot(position, track["truth"] / np.nanmean(track["truth"]), color="black", lw=0.9, label="true rate")
    axis.plot(position, track["model"] / np.nanmean(track["model"]), color="#2a6fdb", lw=0.9, label="model")
    observed = np.flatnonzero(track["mutated"] > 0.5)
    axis.plot(
        start + observed, np.full(len(observed), -0.3), "|", color="#c0392b", ms=6, label="observed mutation"
    )
    axis.set_xlim(start, end)
    axis.ticklabel_format(axis="x", useOffset=False, style="plain")
    axis.set_ylabel("rate / region mean")
    axis.set_title(f"{region} (0-based)", fontsize=9)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


if __name__ == "__main__":
    main()
