"""`seqmodel-predict`: per-base mutation risk and per-sequence class probabilities from a FASTA."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import hydra
from omegaconf import DictConfig
from tqdm import tqdm

from seqmodel.config import CONFIG_DIR
from seqmodel.errors import SeqmodelInputError

TRACK_SUFFIXES = (".bedgraph", ".bedgraph.gz", ".bg", ".bg.gz")


def sequences_path(output: Path) -> Path:
    """`risk.bedgraph` -> `risk.sequences.tsv` (the output's stem, compression suffix dropped)."""
    name = output.name
    for suffix in TRACK_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return output.with_name(f"{name}.sequences.tsv")


def pick_device(name: str):
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return name


def predict(cfg: DictConfig) -> tuple[Path, Path]:
    """Predict every base of every record of `cfg.input`; returns the two output paths."""
    from seqmodel.data.fasta import read_fasta
    from seqmodel.data.writers import (
        atomic_text,
        bedgraph_lines,
        sequence_table_header,
        sequence_table_row,
    )
    from seqmodel.models.checkpoint import load_trained_model
    from seqmodel.models.predictor import RecordPredictor

    output = Path(cfg.output)
    if not output.name.endswith(TRACK_SUFFIXES):
        raise SeqmodelInputError(
            output, None, f"unsupported output type; use one of {', '.join(TRACK_SUFFIXES)}"
        )
    device = pick_device(cfg.predict.device)
    trained = load_trained_model(cfg.ckpt_path, device)
    predictor = RecordPredictor(
        trained,
        batch_size=cfg.predict.batch_size,
        overlap=cfg.predict.overlap,
        rc_average=cfg.predict.rc_average,
        device=device,
    )
    table_path = sequences_path(output)
    started, bases = time.perf_counter(), 0
    with atomic_text(output) as track, atomic_text(table_path) as table:
        table.write(sequence_table_header(trained.classes))
        progress = tqdm(unit="b", unit_scale=True, desc="predict", disable=None)
        for record in read_fasta(cfg.input):
            risk, class_prob = predictor.predict_record(record.tokens)
            track.write(bedgraph_lines(record.id, risk))
            table.write(sequence_table_row(record.id, len(record), class_prob))
            bases += len(record)
            progress.update(len(record))
        progress.close()
    elapsed = time.perf_counter() - started
    print(f"predicted {bases} bases in {elapsed:.1f} s ({bases / max(elapsed, 1e-9):,.0f} bases/s)")
    print(f"per-base risk: {output}\nper-sequence table: {table_path}")
    return output, table_path


@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="predict")
def _hydra_main(cfg: DictConfig) -> None:
    try:
        predict(cfg)
    except SeqmodelInputError as error:
        if os.environ.get("SEQMODEL_DEBUG"):
            raise
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


def main() -> None:
    _hydra_main()


if __name__ == "__main__":
    main()
