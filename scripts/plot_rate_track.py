"""Plot the model's predicted per-base rate against the true simulated rate along a genome region,
with the motif hits (hotspots) and the observed mutations marked.

Usage:
  python scripts/plot_rate_track.py --ckpt RUN/checkpoints/best.ckpt --fasta data/prepared/chr20/test.fa.gz \
    --true-rate data/prepared/chr20/true_rate.bedgraph.gz --mutations data/prepared/chr20/simulated.vcf.gz \
    --hits data/prepared/chr20/hits.bed --region 20:39620000-39623000 --out docs/rate_track.png

The region must be covered by records named `chrom:start-end`. Both tracks are scaled to their
mean over the region (the model predicts P(mutated in >= 1 genome), the truth is a per-genome
rate), so the plot compares shapes.
"""

from __future__ import annotations

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from seqmodel.data.fasta import REGION_ID, load_fasta  # noqa: E402
from seqmodel.data.targets import mutation_targets, track_values  # noqa: E402
from seqmodel.models.checkpoint import load_trained_model  # noqa: E402
from seqmodel.models.predictor import RecordPredictor  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("--ckpt", "--fasta", "--true-rate", "--mutations", "--hits", "--region", "--out"):
        parser.add_argument(name, required=True)
    args = parser.parse_args()
    match = REGION_ID.match(args.region)
    chrom, start, end = match["chrom"], int(match["start"]), int(match["end"])
    records = [
        r
        for r in load_fasta(args.fasta)
        if r.genome_interval and r.genome_interval[0] == chrom
        and r.genome_interval[1] < end and r.genome_interval[2] > start
    ]  # fmt: skip
    if not records:
        raise SystemExit(f"no record of {args.fasta} covers {args.region}")
    predictor = RecordPredictor(load_trained_model(args.ckpt))
    rates = track_values(args.true_rate, records)
    mutated = mutation_targets(args.mutations, records)
    hits = mutation_targets(args.hits, records)
    length = end - start
    track = {name: np.full(length, np.nan) for name in ("model", "truth", "mutated", "hit")}
    for record, rate, mut, hit in zip(records, rates, mutated, hits, strict=True):
        _, record_start, record_end = record.genome_interval
        predicted, _ = predictor.predict_record(record.tokens)
        lo, hi = max(start, record_start), min(end, record_end)
        inside = slice(lo - record_start, hi - record_start)
        for name, values in (("model", predicted), ("truth", rate), ("mutated", mut), ("hit", hit)):
            track[name][lo - start : hi - start] = values[inside]
    position = np.arange(start, end)
    figure, axis = plt.subplots(figsize=(12, 3.6))
    for lo, hi in _runs(track["hit"] > 0.5):
        axis.axvspan(start + lo, start + hi, color="#f3c96b", alpha=0.5, lw=0)
    axis.plot(position, track["truth"] / np.nanmean(track["truth"]), color="black", lw=0.8, label="true rate")
    axis.plot(position, track["model"] / np.nanmean(track["model"]), color="#2a6fdb", lw=0.8, label="model")
    observed = np.flatnonzero(track["mutated"] > 0.5)
    axis.plot(
        start + observed, np.full(len(observed), -0.4), "|", color="#c0392b", ms=6, label="observed mutation"
    )
    axis.set_xlim(start, end)
    axis.set_xlabel(f"{chrom} position (0-based)")
    axis.set_ylabel("rate / mean over region")
    axis.set_title(
        f"Predicted vs true mutation rate, {args.region} (held out); shaded: motif hits (hotspots)"
    )
    axis.legend(loc="upper right", fontsize=8, ncol=3)
    figure.tight_layout()
    figure.savefig(args.out, dpi=130)
    print(f"wrote {args.out}")


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


if __name__ == "__main__":
    main()
