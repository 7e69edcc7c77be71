"""G4 of docs/results.md: the default model against a 3-mer table on real somatic SNVs, by
10-fold cross-validation over genome blocks of chr20.

    python scripts/real_snv_cv.py --folds 10 --out outputs/real_cv
    python scripts/real_snv_cv.py --out outputs/real_cv --summarise

All of GRCh37 chr20 in 1-kb tiles with the 11,413 BRCA SNVs of ../shared/data/bench (100 genomes;
REF-checked by seqmodel-prepare). The 1-Mb blocks are shuffled (seed 0) into 10 folds. For fold k
the test records are every tile of the fold's blocks; validation is 500 tiles drawn from fold
k + 1; training is `--train-tiles` tiles drawn from the other 8 folds, and both the model and the
k-mer tables (seqmodel-evaluate's kmer3/5/7) are fitted on exactly those tiles. The model trains
for `--epochs` epochs with the default configuration otherwise. Each SNV is scored once, in its
fold's test set. CTCF (MA0139.1) hits at 12 bits (the PWM scan of seqmodel.io.motifs) give the
observed / expected ratio of real SNVs at CTCF sites under the model.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from joint_final import interval
from joint_selection import ROOT

from seqmodel.io import alphabet
from seqmodel.io.atomic import atomic_text
from seqmodel.io.fasta import read_fasta
from seqmodel.io.motifs import DEFAULT_PSEUDOCOUNT, read_motifs, select_motif
from seqmodel.io.regions import parse_region
from seqmodel.metrics import poisson_interval

SHARED = ROOT.parent / "shared" / "data"
BLOCK = 1_000_000
VAL_TILES = 500
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def prepare(out: Path) -> Path:
    """chr20 in 1-kb tiles with the REF-checked SNVs (seqmodel-prepare), and the CTCF hits (BED)."""
    if not (out / "regions.fa.gz").exists():
        command = [
            *(sys.executable, "-m", "seqmodel.prepare"),
            *("--genome", str(SHARED / "genome" / "GRCh37_chr20.fa.gz"), "--tile", "20"),
            *("--tile-size", "1000", "--split-block", str(BLOCK)),
            *("--mutations", str(SHARED / "bench" / "brca100_chr20_snvs.tsv.gz"), "--out", str(out)),
        ]
        subprocess.run(command, check=True, cwd=ROOT, env=ENV)
    if not (out / "ctcf_hits.bed").exists():
        motifs = ROOT / "data" / "jaspar2024_selected.jaspar"
        pwm = select_motif(read_motifs(motifs), "MA0139.1", motifs).pwm(DEFAULT_PSEUDOCOUNT)
        with atomic_text(out / "ctcf_hits.bed") as bed:
            for record in read_fasta(out / "regions.fa.gz"):
                chrom, start, _ = parse_region(record.id)
                for hit in pwm.hits(record.tokens, 12):
                    bed.write(f"{chrom}\t{start + hit.start}\t{start + hit.end}\tMA0139.1\t0\t{hit.strand}\n")
    return out


def write_fold(data: Path, fold: int, folds: int, train_tiles: int, path: Path) -> None:
    """The fold's FASTA: its test blocks whole, sampled validation and training tiles."""
    records = list(read_fasta(data / "regions.fa.gz"))
    blocks = np.array([parse_region(r.id)[1] // BLOCK for r in records])
    order = np.random.default_rng(0).permutation(np.unique(blocks))
    fold_of = dict(zip(order.tolist(), (np.arange(len(order)) % folds).tolist(), strict=True))
    record_fold = np.array([fold_of[b] for b in blocks.tolist()])
    rng = np.random.default_rng(1000 + fold)
    test = np.flatnonzero(record_fold == fold)
    val_pool = np.flatnonzero(record_fold == (fold + 1) % folds)
    train_pool = np.flatnonzero((record_fold != fold) & (record_fold != (fold + 1) % folds))
    split = dict.fromkeys(test.tolist(), "test")
    split |= dict.fromkeys(rng.choice(val_pool, VAL_TILES, replace=False).tolist(), "val")
    split |= dict.fromkeys(rng.choice(train_pool, train_tiles, replace=False).tolist(), "train")
    with atomic_text(path) as out:
        for index in sorted(split):
            record = records[index]
            out.write(f">{record.id} split={split[index]}\n{alphabet.decode(record.tokens)}\n")


def run_fold(args: argparse.Namespace, data: Path, fold: int) -> dict:
    fold_dir = args.out / f"fold{fold}"
    fasta = fold_dir / "records.fa.gz"
    results_path = fold_dir / "results.json"
    if results_path.exists():
        return json.loads(results_path.read_text())
    fold_dir.mkdir(parents=True, exist_ok=True)
    if not fasta.exists():
        write_fold(data, fold, args.folds, args.train_tiles, fasta)
    files = [
        f"data.fasta={fasta}",
        "data.split_from_headers=true",
        f"data.mutations={data / 'mutations.vcf.gz'}",
        "data.true_rate=null",
        "data.genomes=100",
    ]
    checkpoint = fold_dir / "checkpoints" / "best.ckpt"
    if not checkpoint.exists():
        command = [
            *(sys.executable, "-m", "seqmodel.train", *files, "logger=csv", "test=false"),
            *(f"seed={args.seed}", f"trainer.max_epochs={args.epochs}", f"hydra.run.dir={fold_dir}"),
            *args.train_args,
        ]
        subprocess.run(command, check=True, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL)
    command = [
        *(sys.executable, "-m", "seqmodel.evaluate", f"ckpt_path={checkpoint}", *files),
        f"hits={data / 'ctcf_hits.bed'}",
        f"baselines.pwm_motifs={ROOT / 'data' / 'jaspar2024_selected.jaspar'}",
        "baselines.pwm_motif_id=MA0139.1",
        "baselines.pwm_hit_threshold=12",
        f"output={results_path}",
        f"hydra.run.dir={fold_dir / 'evaluate'}",
    ]
    subprocess.run(command, check=True, cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL)
    return json.loads(results_path.read_text())


def summarise(out: Path) -> str:
    folds = [json.loads(p.read_text()) for p in sorted(out.glob("fold*/results.json"))]
    lines = [f"folds: {len(folds)}", "| metric | mean [95 % t-interval] over folds |", "|---|---|"]
    for method in ("model", "kmer3", "kmer5", "kmer7", "kmer3_pwm"):
        values = [f[method]["per_base_auroc"] for f in folds if method in f]
        lines.append(f"| {method} per-base AUROC | {interval(values)} |")
    diffs = [f["model"]["per_base_auroc"] - f["kmer3"]["per_base_auroc"] for f in folds]
    lines.append(f"| model - kmer3 AUROC (paired by fold) | {interval(diffs)} |")
    observed = expected = 0.0
    for f in folds:
        bins = (f["model"].get("calibration") or {}).get("at_motifs") or []
        observed += sum(b["observed"] for b in bins)
        expected += sum(b["expected"] for b in bins)
    if expected > 0:
        low, high = poisson_interval(np.array([observed]), 0.95)
        lines.append(
            f"observed / expected at CTCF hits (model): {observed:.0f} / {expected:.1f} = "
            f"{observed / expected:.2f} [{low[0] / expected:.2f}, {high[0] / expected:.2f}]"
        )
    snvs = sum(f["evaluation"].get("held_out_carriers") or 0 for f in folds)
    lines.append(f"held-out carriers over the folds: {snvs}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--only", type=int, nargs="+", help="run these folds only (to run in parallel)")
    parser.add_argument("--train-tiles", type=int, default=5000, help="1-kb training tiles per fold")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "real_cv")
    parser.add_argument("--data", type=Path, help="the prepared tiles (default: OUT/data)")
    parser.add_argument("--train-args", nargs="*", default=[], help="further seqmodel-train overrides")
    parser.add_argument("--summarise", action="store_true")
    args = parser.parse_args()
    if not args.summarise:
        data = prepare(args.data or args.out / "data")
        for fold in args.only if args.only is not None else range(args.folds):
            result = run_fold(args, data, fold)
            print(fold, json.dumps({m: result[m]["per_base_auroc"] for m in ("model", "kmer3")}), flush=True)
    print(summarise(args.out))


if __name__ == "__main__":
    main()
