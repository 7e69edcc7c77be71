"""Plot the model's predicted per-base rate against the true simulated rate along a genome region,
with the motif hits (hotspots) and the observed mutations marked.

Usage:
  python scripts/plot_rate_track.py --ckpt RUN/checkpoints/best.ckpt --fasta data/prepared/chr20/test.fa.gz \
    --true-rate data/prepared/chr20/true_rate.bedgraph.gz --mutations data/prepared/chr20/simulated.vcf.gz \
    --hits data/prepared/chr20/hits.bed --region 20:39620000-39623000 [--region ...] --out docs/rate_track.png

Each region (one row of the figure) must be covered by records named `chrom:start-end`. Both
tracks are scaled to their mean over the region, so the plot compares shapes. The figure is
`seqmodel.plots.rate_track_figure` (needs the plot extra: pip install 'seqmodel[plot]').
"""

from __future__ import annotations

import argparse

from seqmodel.data.targets import mutation_targets, track_values
from seqmodel.errors import argparse_flags, run_cli
from seqmodel.io.fasta import load_fasta
from seqmodel.models.checkpoint import load_trained_model
from seqmodel.models.predictor import RecordPredictor
from seqmodel.plots import rate_track_figure, region_rate_track, require_matplotlib, save_png


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("--ckpt", "--fasta", "--true-rate", "--mutations", "--hits", "--out"):
        parser.add_argument(name, required=True)
    parser.add_argument(
        "--region", action="append", required=True, help="chrom:start-end; repeat for more rows"
    )
    args = parser.parse_args()
    run_cli(lambda: plot(args), argparse_flags(parser))


def plot(args: argparse.Namespace) -> None:
    require_matplotlib()
    records = load_fasta(args.fasta)
    truth = track_values(args.true_rate, records)
    mutated = mutation_targets(args.mutations, records)
    hits = mutation_targets(args.hits, records)
    predictor = RecordPredictor(load_trained_model(args.ckpt))
    tracks = [
        region_rate_track(region, records, predictor, truth=truth, mutated=mutated, hits=hits)
        for region in args.region
    ]
    figure = rate_track_figure(
        tracks, "Predicted vs true mutation rate on held-out sequence; shaded: motif hits (hotspots)"
    )
    save_png(figure, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
