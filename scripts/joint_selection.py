"""Joint training that costs the per-base head nothing: choose the mechanism on validation data.

For each simulation seed, simulate per-base mutations on the CTCF set (data/prepared/ctcf,
split by 1-Mb genome blocks with seqmodel-prepare), train every candidate for each training
seed, and read the validation metrics (the genome-block `val` split) at the checkpoint each
rule would keep. Nothing here looks at the test split.

    python scripts/joint_selection.py --sim-seeds 11 --seeds 0 1 --epochs 30 --out outputs/joint_selection

Candidates: `joint` (the pooled head's full gradient into the trunk), `joint_scale0.1`,
`joint_stopgrad` (scale 0: the pooled head reads the trunk, does not shape it) and `base_only`
(w_seq = 0, the reference). Checkpoint rules: lowest `val/loss` (joint loss) or lowest
`val/base_loss` (per-base loss only).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
MIX = "SBS1=0.1,SBS2=0.2,SBS3=0.3,SBS5=0.2,SBS13=0.2"


@dataclass(frozen=True)
class Dataset:
    """A prepared set (scripts/prepare_results_data.sh) and the motif its hotspots are planted at."""

    prepared: Path
    motif_id: str
    motif_threshold: float  # log2-odds bits: a hit above it is a hotspot (x 20)
    mix: str = MIX  # COSMIC signature weights of the simulation


DATASETS = {
    "ctcf": Dataset(ROOT / "data" / "prepared" / "ctcf", "MA0139.1", 12),
    "p73": Dataset(ROOT / "data" / "prepared" / "p73", "MA0106.3", 10),
    # G3b's loci (scripts/rare_hotspots.py prepares them): another mix, rare hotspots.
    "rare": Dataset(
        ROOT / "outputs" / "rare_hotspots" / "data", "MA0139.1", 16, mix="SBS1=0.3,SBS5=0.4,SBS18=0.3"
    ),
}
CANDIDATES = {
    "joint": ["model.pooled_head.trunk_grad_scale=1.0"],
    "joint_scale0.1": ["model.pooled_head.trunk_grad_scale=0.1"],
    "joint_stopgrad": ["model.pooled_head.trunk_grad_scale=0.0"],
    # The per-base head's own 3-mer term (model.per_base_head.context), with stop-gradient.
    "context3": ["model.pooled_head.trunk_grad_scale=0.0", "model.per_base_head.context=3"],
    "base_only": ["model.loss.w_seq=0.0"],
}
RULES = ("val/loss", "val/base_loss")
REPORTED = ("val/base_loss", "val/base_auprc", "val/base_auroc", "val/pearson_true_rate", "val/seq_auroc")


def simulate(sim_seed: int, out: Path, dataset: Dataset = DATASETS["ctcf"]) -> dict[str, Path]:
    """Mutations and the true rate on the dataset's regions for one simulation seed."""
    files = {"mutations": out / "mutations.vcf.gz", "true_rate": out / "true_rate.bedgraph.gz"}
    if all(path.exists() for path in files.values()):
        return files
    out.mkdir(parents=True, exist_ok=True)
    command = [
        *(sys.executable, "-m", "seqmodel.simulate_cli"),
        *("--fasta", str(dataset.prepared / "regions.fa.gz")),
        *("--signatures", str(ROOT / "data" / "COSMIC_v3_SBS_GRCh37.tsv"), "--mix", dataset.mix),
        *("--mean-rate", "5e-4", "--genomes", "100", "--seed", str(sim_seed)),
        *("--motifs", str(ROOT / "data" / "jaspar2024_selected.jaspar"), "--motif-id", dataset.motif_id),
        *("--motif-threshold", str(dataset.motif_threshold), "--motif-factor", "20"),
        *("--regional-cv", "0.27", "--regional-scale", "1000000"),
        *("--out-vcf", str(files["mutations"]), "--out-rate", str(files["true_rate"])),
        *("--out-hits", str(out / "hits.bed")),
    ]
    subprocess.run(command, check=True, cwd=ROOT)
    return files


def train(
    run_dir: Path,
    files: dict[str, Path],
    candidate: str,
    seed: int,
    epochs: int,
    monitor: str | None = None,
    dataset: Dataset = DATASETS["ctcf"],
) -> Path:
    """One training run (CSV log); returns its metrics.csv. `monitor`: the checkpoint rule
    (the metric whose lowest value picks best.ckpt; default the config's, `val/loss`)."""
    metrics = run_dir / "csv" / "version_0" / "metrics.csv"
    if metrics.exists():
        return metrics
    command = [
        *(sys.executable, "-m", "seqmodel.train"),
        f"data.fasta={dataset.prepared / 'regions.fa.gz'}",
        "data.split_from_headers=true",
        f"data.mutations={files['mutations']}",
        f"data.true_rate={files['true_rate']}",
        "logger=csv",
        "test=false",
        f"seed={seed}",
        f"trainer.max_epochs={epochs}",
        "model.loss.grad_cosine_every=25",
        f"hydra.run.dir={run_dir}",
        *CANDIDATES[candidate],
        *([f"callbacks.checkpoint.monitor={monitor}"] if monitor else []),
    ]
    # One torch thread: on a shared 2-core machine more threads oversubscribe and run many times slower.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL, env=env)
    return metrics


def epoch_rows(metrics: Path) -> list[dict[str, float]]:
    """Per-epoch validation metrics, and the mean training gradient cosine of that epoch."""
    by_epoch: dict[int, dict[str, float]] = {}
    cosines: dict[int, list[float]] = {}
    with open(metrics) as handle:
        for row in csv.DictReader(handle):
            if not row.get("epoch"):  # the learning-rate monitor's rows
                continue
            epoch = int(float(row["epoch"]))
            if row.get("train/grad_cosine"):
                cosines.setdefault(epoch, []).append(float(row["train/grad_cosine"]))
            values = {k: float(v) for k, v in row.items() if k.startswith("val/") and v != ""}
            if values:
                by_epoch.setdefault(epoch, {}).update(values)
    rows = []
    for epoch in sorted(by_epoch):
        row = {"epoch": epoch, **by_epoch[epoch]}
        if cosines.get(epoch):
            row["grad_cosine"] = float(np.mean(cosines[epoch]))
        rows.append(row)
    return rows


def at_rule(rows: list[dict[str, float]], rule: str) -> dict[str, float]:
    """The validation metrics of the epoch whose checkpoint `rule` keeps (lowest value)."""
    usable = [row for row in rows if math.isfinite(row.get(rule, math.nan))]
    best = min(usable, key=lambda row: row[rule])
    return {key: best.get(key, math.nan) for key in ("epoch", *REPORTED)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", choices=DATASETS, default="ctcf")
    parser.add_argument("--sim-seeds", type=int, nargs="+", default=[11])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--candidates", nargs="+", default=list(CANDIDATES))
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "joint_selection")
    args = parser.parse_args()
    results = []
    for sim_seed in args.sim_seeds:
        dataset = DATASETS[args.dataset]
        files = simulate(sim_seed, args.out / f"sim{sim_seed}", dataset)
        for seed in args.seeds:
            for candidate in args.candidates:
                run_dir = args.out / f"sim{sim_seed}" / f"{candidate}_seed{seed}"
                rows = epoch_rows(train(run_dir, files, candidate, seed, args.epochs, dataset=dataset))
                cosine = [row["grad_cosine"] for row in rows if "grad_cosine" in row]
                for rule in RULES:
                    results.append(
                        {
                            "sim_seed": sim_seed,
                            "seed": seed,
                            "candidate": candidate,
                            "rule": rule,
                            **at_rule(rows, rule),
                            "grad_cosine_mean": float(np.mean(cosine)) if cosine else None,
                        }
                    )
                print(json.dumps(results[-1]), flush=True)
    (args.out / "selection.json").write_text(json.dumps(results, indent=1) + "\n")
    print(summary_table(results))


def summary_table(results: list[dict]) -> str:
    """Mean (min-max over seeds) of each validation metric per candidate and rule."""
    lines = [
        "| candidate | rule | " + " | ".join(REPORTED) + " | grad cosine |",
        "|---" * (len(REPORTED) + 3) + "|",
    ]
    keys = sorted({(r["candidate"], r["rule"]) for r in results})
    for candidate, rule in keys:
        rows = [r for r in results if r["candidate"] == candidate and r["rule"] == rule]
        cells = []
        for metric in (*REPORTED, "grad_cosine_mean"):
            values = np.array([r[metric] for r in rows if r[metric] is not None], dtype=float)
            values = values[np.isfinite(values)]
            cells.append(
                f"{values.mean():.4f} ({values.min():.4f}-{values.max():.4f})" if len(values) else "-"
            )
        lines.append(f"| {candidate} | {rule} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
