"""The final runs of docs/results.md: the chosen joint mechanism against per-base only, on new
simulations, scored once by seqmodel-evaluate on the held-out genome blocks (the `test` split).

    python scripts/joint_final.py --joint joint --sim-seeds 21 22 --seeds 0 1 2 --out outputs/joint_final

Each run trains with the candidate's overrides (see scripts/joint_selection.py), keeps the
checkpoint the chosen rule keeps (`--monitor`), and evaluates it; the summary gives mean and 95 %
t-interval over runs, and the joint-minus-per-base-only difference paired by (simulation,
training) seed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from joint_selection import CANDIDATES, PREPARED, ROOT, simulate, train
from scipy import stats

METRICS = (
    "per_base_auprc",
    "per_base_auroc",
    "pearson_true_rate",
    "pearson_true_rate_log",
    "binomial_deviance_per_base",
    "observed_expected_ratio",
    "sequence_auroc",
)


def evaluate(run_dir: Path, files: dict[str, Path], hits: Path) -> dict:
    """seqmodel-evaluate of the run's best checkpoint on the test split (cached in results.json)."""
    output = run_dir / "results.json"
    if not output.exists():
        command = [
            *(sys.executable, "-m", "seqmodel.evaluate"),
            f"ckpt_path={run_dir / 'checkpoints' / 'best.ckpt'}",
            f"data.fasta={PREPARED / 'regions.fa.gz'}",
            "data.split_from_headers=true",
            f"data.mutations={files['mutations']}",
            f"data.true_rate={files['true_rate']}",
            f"hits={hits}",
            f"baselines.pwm_motifs={ROOT / 'data' / 'jaspar2024_selected.jaspar'}",
            "baselines.pwm_motif_id=MA0139.1",
            "baselines.pwm_hit_threshold=12",
            f"calibration_plot={run_dir / 'calibration.png'}",
            f"output={output}",
            f"hydra.run.dir={run_dir / 'evaluate'}",
        ]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL, env=env)
    return json.loads(output.read_text())


def interval(values: list[float]) -> str:
    """mean [95 % t-interval] of `values`."""
    x = np.asarray([v for v in values if v is not None], dtype=float)
    if len(x) < 2:
        return f"{x.mean():.4f}" if len(x) else "-"
    half = stats.t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
    return f"{x.mean():.4f} [{x.mean() - half:.4f}, {x.mean() + half:.4f}]"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--joint", default="joint", choices=[c for c in CANDIDATES if c != "base_only"])
    parser.add_argument("--sim-seeds", type=int, nargs="+", default=[21, 22])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--monitor", default="val/base_loss", help="the checkpoint rule")
    parser.add_argument(
        "--only", choices=["joint", "base_only"], help="run one arm only (to run two in parallel)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "joint_final")
    args = parser.parse_args()
    arms = {"joint": args.joint, "base_only": "base_only"}
    if args.only:
        arms = {args.only: arms[args.only]}
    rows = []
    for sim_seed in args.sim_seeds:
        sim_dir = args.out / f"sim{sim_seed}"
        files = simulate(sim_seed, sim_dir)
        for seed in args.seeds:
            for arm, candidate in arms.items():
                run_dir = sim_dir / f"{candidate}_seed{seed}"
                train(run_dir, files, candidate, seed, args.epochs, monitor=args.monitor)
                results = evaluate(run_dir, files, sim_dir / "hits.bed")
                row = {"sim_seed": sim_seed, "seed": seed, "arm": arm, "candidate": candidate}
                row |= {m: results["model"].get(m) for m in METRICS}
                for baseline in ("oracle", "kmer3_pwm", "kmer7"):
                    row[f"{baseline}_per_base_auprc"] = results.get(baseline, {}).get("per_base_auprc")
                row["gap_closure_vs_kmer7"] = results.get("gap_closure_vs_kmer7")
                row["calibration_all"] = results["model"].get("calibration", {}).get("all")
                rows.append(row)
                print(json.dumps({k: v for k, v in row.items() if k != "calibration_all"}), flush=True)
    (args.out / "final.json").write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
