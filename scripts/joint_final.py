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
from joint_selection import CANDIDATES, DATASETS, ROOT, Dataset, simulate, train
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


def evaluate(run_dir: Path, files: dict[str, Path], hits: Path, dataset: Dataset) -> dict:
    """seqmodel-evaluate of the run's best checkpoint on the test split (cached in results.json)."""
    output = run_dir / "results.json"
    if not output.exists():
        command = [
            *(sys.executable, "-m", "seqmodel.evaluate"),
            f"ckpt_path={run_dir / 'checkpoints' / 'best.ckpt'}",
            f"data.fasta={dataset.prepared / 'regions.fa.gz'}",
            "data.split_from_headers=true",
            f"data.mutations={files['mutations']}",
            f"data.true_rate={files['true_rate']}",
            f"hits={hits}",
            f"baselines.pwm_motifs={ROOT / 'data' / 'jaspar2024_selected.jaspar'}",
            f"baselines.pwm_motif_id={dataset.motif_id}",
            f"baselines.pwm_hit_threshold={dataset.motif_threshold}",
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


def summarise(out: Path, joint: str) -> str:
    """Markdown: per arm, mean [95 % t-interval] over the runs found under `out`; then the paired
    joint-minus-per-base-only differences; then the calibration bins of every run."""
    runs: dict[tuple[int, int], dict[str, dict]] = {}
    for path in sorted(out.glob("sim*/*_seed*/results.json")):
        candidate, seed = path.parent.name.rsplit("_seed", 1)
        arm = "base_only" if candidate == "base_only" else "joint" if candidate == joint else None
        if arm:
            runs.setdefault((int(path.parent.parent.name[3:]), int(seed)), {})[arm] = json.loads(
                path.read_text()
            )
    lines = [
        "| metric | " + f"joint ({joint}) | per-base only | joint - per-base only (paired) |",
        "|---|---|---|---|",
    ]
    pairs = [r for r in runs.values() if len(r) == 2]
    for metric in METRICS:
        values = {
            arm: [r[arm]["model"].get(metric) for r in runs.values() if arm in r]
            for arm in ("joint", "base_only")
        }
        diffs = [
            r["joint"]["model"][metric] - r["base_only"]["model"][metric]
            for r in pairs
            if r["joint"]["model"].get(metric) is not None and r["base_only"]["model"].get(metric) is not None
        ]
        joint_cell, base_cell = interval(values["joint"]), interval(values["base_only"])
        lines.append(f"| {metric} | {joint_cell} | {base_cell} | {interval(diffs)} |")
    for baseline in ("oracle", "kmer3_pwm", "kmer7", "kmer3"):
        # Baselines do not depend on the arm: one value per (simulation, training) seed.
        values = [next(iter(r.values())).get(baseline, {}).get("per_base_auprc") for r in runs.values()]
        lines.append(f"| {baseline} per_base_auprc | {interval(values)} | | |")
    pwm = [next(iter(r.values())).get("pwm", {}).get("sequence_auroc") for r in runs.values()]
    lines.append(f"| pwm sequence_auroc | {interval(pwm)} | | |")
    closure = {
        arm: [r[arm].get("gap_closure_vs_kmer7") for r in runs.values() if arm in r]
        for arm in ("joint", "base_only")
    }
    joint_cell, base_cell = interval(closure["joint"]), interval(closure["base_only"])
    lines.append(f"| gap closure vs kmer7 (AUPRC) | {joint_cell} | {base_cell} | |")
    lines.append(f"\nruns: {sorted(runs)} (simulation seed, training seed); paired: {len(pairs)}")
    joint_seq = [r["joint"]["model"].get("sequence_auroc") for r in runs.values() if "joint" in r]
    lines.append(
        "joint sequence AUROC per run: "
        + " ".join(f"{v:.3f}" for v in joint_seq if v is not None)
        + "; PWM scan per run: "
        + " ".join(f"{v:.3f}" for v in pwm if v is not None)
    )
    lines.append("\nObserved / expected per bin of predicted rate (bins with >= 100 expected carriers):")
    for key, arms in sorted(runs.items()):
        for arm, result in sorted(arms.items()):
            bins = result["model"].get("calibration", {}).get("all") or []
            ratios = [
                f"{b['ratio']:.2f}"
                for b in bins
                if (b.get("expected") or 0) >= 100 and b.get("ratio") is not None
            ]
            lines.append(f"- sim {key[0]} seed {key[1]} {arm}: " + " ".join(ratios))
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dataset", choices=DATASETS, default="ctcf")
    parser.add_argument("--joint", default="joint", choices=[c for c in CANDIDATES if c != "base_only"])
    parser.add_argument("--sim-seeds", type=int, nargs="+", default=[21, 22])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--monitor", default="val/base_loss", help="the checkpoint rule")
    parser.add_argument(
        "--only", choices=["joint", "base_only"], help="run one arm only (to run two in parallel)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "joint_final")
    parser.add_argument("--summarise", action="store_true", help="only print the table of the runs in --out")
    args = parser.parse_args()
    if args.summarise:
        print(summarise(args.out, args.joint))
        return
    dataset = DATASETS[args.dataset]
    arms = {"joint": args.joint, "base_only": "base_only"}
    if args.only:
        arms = {args.only: arms[args.only]}
    rows = []
    for sim_seed in args.sim_seeds:
        sim_dir = args.out / f"sim{sim_seed}"
        files = simulate(sim_seed, sim_dir, dataset)
        for seed in args.seeds:
            for arm, candidate in arms.items():
                run_dir = sim_dir / f"{candidate}_seed{seed}"
                train(run_dir, files, candidate, seed, args.epochs, monitor=args.monitor, dataset=dataset)
                results = evaluate(run_dir, files, sim_dir / "hits.bed", dataset)
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
