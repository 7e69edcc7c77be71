"""Benchmark genome-scale prediction: bases/s, peak RSS, and model forward vs pipeline time.

    python scripts/bench_predict.py                      # slices of GRCh37 chr20, default model
    python scripts/bench_predict.py --sizes 1e6 4e6 --ckpt RUN/checkpoints/best.ckpt
    python scripts/bench_predict.py --whole              # all of chr20 (long on CPU)

Each size runs `seqmodel-predict` in a fresh process on a slice of chr20 (from
../shared/data/genome when present, else a generated sequence), so peak RSS is per run.
The split comes from the predictor's own forward timer ("model forward" = tensors in,
probabilities out); the rest is the pipeline: reading, tokenizing, tiling, stitching, writing.
"""

from __future__ import annotations

import argparse
import gzip
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
CHR20 = ROOT.parent / "shared" / "data" / "genome" / "GRCh37_chr20.fa.gz"


def default_checkpoint(path: Path) -> Path:
    """A checkpoint of the default model configuration with random weights (speed does not depend on them)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    from seqmodel.config import CONFIG_DIR, register_resolvers
    from seqmodel.models.checkpoint import CHECKPOINT_FORMAT
    from seqmodel.models.module import SeqLightningModule

    register_resolvers()
    with initialize_config_dir(str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train")
    model = {k: OmegaConf.to_container(cfg.model[k]) for k in ("trunk", "per_base_head", "pooled_head")}
    module = SeqLightningModule(
        model,
        2,
        {
            "format": CHECKPOINT_FORMAT,
            "alphabet": "ACGTN",
            "window": cfg.data.window,
            "stride": cfg.data.window,
            "classes": ["0", "1"],
        },
        dict(cfg.model.loss),
        dict(cfg.model.optim),
    )
    torch.save({"hyper_parameters": dict(module.hparams), "state_dict": module.state_dict()}, path)
    return path


def genome_slice(out: Path, start: int, size: int) -> Path:
    """Write `size` bases of chr20 from `start` (or random sequence without the file) as FASTA."""
    if CHR20.exists():
        with gzip.open(CHR20, "rt") as handle:
            handle.readline()
            sequence = "".join(line.strip() for line in handle)[start : start + size]
    else:
        sequence = "".join(np.random.default_rng(0).choice(list("ACGT"), size))
    with open(out, "w") as handle:
        handle.write(f">20:{start}-{start + len(sequence)}\n")
        for i in range(0, len(sequence), 60):
            handle.write(sequence[i : i + 60] + "\n")
    return out


def run(ckpt: Path, fasta: Path, output: Path, extra: list[str]) -> dict:
    command = [
        sys.executable,
        "-m",
        "seqmodel.predict",
        f"ckpt_path={ckpt}",
        f"input={fasta}",
        f"output={output}",
        f"hydra.run.dir={output.parent / 'hydra'}",
        *extra,
    ]
    log = output.parent / f"{output.name}.log"
    started = time.perf_counter()
    with open(log, "w+") as handle:
        process = subprocess.Popen(
            command, stdout=handle, stderr=subprocess.STDOUT, env={**os.environ, "TQDM_DISABLE": "1"}
        )
        _, status, usage = os.wait4(process.pid, 0)  # this child's own CPU time and peak RSS
        wall = time.perf_counter() - started
        handle.seek(0)
        stdout = handle.read()
    if os.waitstatus_to_exitcode(status):
        sys.exit(stdout)
    match = re.search(r"predicted ([\d,]+) bases in ([\d.]+) s .*model forward ([\d.]+) s", stdout)
    bases, inner, forward = int(match[1].replace(",", "")), float(match[2]), float(match[3])
    return {
        "bases": bases,
        "wall": wall,
        "predict_s": inner,
        "forward_s": forward,
        "cpu_s": usage.ru_utime + usage.ru_stime,
        "rss_mb": usage.ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ckpt", type=Path, help="checkpoint (default: the default model, random weights)")
    parser.add_argument("--sizes", type=float, nargs="+", default=[2e5, 8e5], help="slice lengths in bases")
    parser.add_argument("--start", type=int, default=30_000_000, help="slice start on chr20 (0-based)")
    parser.add_argument("--whole", action="store_true", help="predict all of chr20 as well")
    parser.add_argument(
        "--output", default=".bedgraph.gz", help="output suffix (.bedgraph.gz, .bw, .npz ...)"
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=64)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ckpt = args.ckpt or default_checkpoint(tmp / "default.ckpt")
        extra = [f"predict.device={args.device}", f"predict.batch_size={args.batch_size}"]
        source = CHR20 if CHR20.exists() else "generated sequence"
        print(f"source: {source}; checkpoint: {args.ckpt or 'default model'}")
        columns = ("bases", "bases/s", "wall s", "forward s", "pipeline %", "CPU s", "peak RSS MB")
        print(" ".join(f"{c:>{w}}" for c, w in zip(columns, (12, 10, 8, 9, 10, 7, 11), strict=True)))
        jobs = [
            (int(size), genome_slice(tmp / f"slice{int(size)}.fa", args.start, int(size)))
            for size in args.sizes
        ]
        if args.whole:
            jobs.append((0, CHR20))
        rows = []
        for size, fasta in jobs:
            row = run(ckpt, fasta, tmp / f"out{size}{args.output}", extra)
            rows.append(row)
            overhead = 100 * (row["predict_s"] - row["forward_s"]) / row["forward_s"]
            print(
                f"{row['bases']:>12,} {row['bases'] / row['predict_s']:>10,.0f} {row['wall']:>8.1f} "
                f"{row['forward_s']:>9.1f} {overhead:>10.1f} {row['cpu_s']:>7.1f} {row['rss_mb']:>11.0f}"
            )
        last = rows[-1]
        print(
            f"bases_per_s={last['bases'] / last['predict_s']:.0f} "
            f"pipeline_overhead={(last['predict_s'] - last['forward_s']) / last['forward_s']:.3f} "
            f"peak_rss_mb={max(r['rss_mb'] for r in rows):.0f}"
        )


if __name__ == "__main__":
    main()
