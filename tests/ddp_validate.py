"""Validate a checkpoint on the demo data with N CPU ranks; rank 0 writes the metrics as JSON.

Run as a script (DDP re-launches the script for the other ranks):
    python tests/ddp_validate.py CKPT DEVICES OUT.json
"""

import json
import sys

import lightning as L

from seqmodel.config import DEMO_DATA_DIR
from seqmodel.data.datamodule import SeqDataModule
from seqmodel.models.module import SeqLightningModule

if __name__ == "__main__":
    ckpt, devices, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    module = SeqLightningModule.load_from_checkpoint(ckpt, weights_only=True)
    datamodule = SeqDataModule(
        fasta=str(DEMO_DATA_DIR / "ctcf_demo.fa.gz"),
        mutations=str(DEMO_DATA_DIR / "ctcf_demo.mutations.vcf.gz"),
        true_rate=str(DEMO_DATA_DIR / "ctcf_demo.true_rate.bedgraph.gz"),
        batch_size=16,
    )
    trainer = L.Trainer(
        accelerator="cpu",
        devices=devices,
        strategy="ddp" if devices > 1 else "auto",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    metrics = trainer.validate(module, datamodule=datamodule, verbose=False)[0]
    if trainer.is_global_zero:
        with open(out, "w") as handle:
            json.dump({k: float(v) for k, v in metrics.items()}, handle)
