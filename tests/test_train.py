"""Real training runs through the Hydra entry point, on the demo data in data/."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import lightning as L
import torch

from seqmodel.config import DEMO_DATA_DIR
from seqmodel.data.datamodule import SeqDataModule
from seqmodel.models.module import SeqLightningModule
from tests.conftest import TINY_MODEL


def run_train(run_dir: Path, *overrides: str, env: dict | None = None) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "seqmodel.train", f"hydra.run.dir={run_dir}", *overrides]
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


def test_tiny_run_writes_checkpoints_and_an_offline_wandb_run(tmp_path):
    secret = "wandb-secret-0123456789abcdef0123456789abcdef"
    result = run_train(
        tmp_path,
        *TINY_MODEL,
        "trainer.max_epochs=2",
        "+trainer.limit_train_batches=3",
        "+trainer.limit_val_batches=2",
        "logger=wandb",
        env={"WANDB_API_KEY": secret, "WANDB_MODE": "offline"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "checkpoints" / "best.ckpt").is_file()
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
    assert f"best checkpoint: {tmp_path / 'checkpoints' / 'best.ckpt'}" in result.stdout
    runs = list((tmp_path / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(runs) == 1
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), f"API key written to {path}"


def test_checkpoint_carries_model_settings_and_loads_weights_only(tmp_path):
    result = run_train(
        tmp_path,
        *TINY_MODEL,
        "model.trunk.cell=gru",
        "trainer.max_epochs=1",
        "+trainer.limit_train_batches=2",
        "+trainer.limit_val_batches=1",
        "logger=none",
        "test=false",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoint = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    hparams = checkpoint["hyper_parameters"]
    assert hparams["model"]["trunk"]["cell"] == "gru"
    assert hparams["data_info"] == {
        "format": 2,
        "alphabet": "ACGTN",
        "window": 200,
        "classes": ["0", "1"],
        "genomes": 100,  # the demo VCF's AN
    }
    assert hparams["loss"]["base"] == "binomial"
    assert 0 < hparams["mean_rate"] < 0.01


def test_bad_override_and_bad_input_exit_nonzero_with_one_line(tmp_path):
    result = run_train(tmp_path, "data.fasta=/nonexistent/x.fa", "logger=none")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == "error: /nonexistent/x.fa: input file not found"
    assert "Traceback" not in result.stderr


def test_training_loss_decreases_on_demo_data():
    L.seed_everything(0)
    datamodule = SeqDataModule(
        fasta=str(DEMO_DATA_DIR / "ctcf_demo.fa.gz"),
        mutations=str(DEMO_DATA_DIR / "ctcf_demo.mutations.vcf.gz"),
        batch_size=32,
    )
    module = SeqLightningModule(
        model={
            "trunk": {"hidden_size": 16, "conv_channels": 16, "num_layers": 1},
            "per_base_head": {"hidden": 16},
            "pooled_head": {"hidden": 16},
        },
        num_classes=datamodule.num_classes,
        data_info=datamodule.data_info,
        loss={"w_base": 1.0, "w_seq": 0.5, "pos_weight": 1.0},
        optim={"lr": 3e-3, "weight_decay": 0.0, "warmup_steps": 0},
    )
    losses: list[float] = []

    class Record(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            losses.append(float(outputs["loss"]))

    trainer = L.Trainer(
        max_epochs=3,
        limit_train_batches=8,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        callbacks=[Record()],
    )
    trainer.fit(module, datamodule=datamodule)
    assert sum(losses[-8:]) / 8 < 0.8 * sum(losses[:8]) / 8


def test_resume_continues_the_same_wandb_run(tmp_path):
    common = [
        *TINY_MODEL,
        "+trainer.limit_train_batches=2",
        "+trainer.limit_val_batches=1",
        "test=false",
        "logger=wandb",
    ]
    assert run_train(tmp_path, *common, "trainer.max_epochs=1").returncode == 0
    result = run_train(tmp_path, *common, "trainer.max_epochs=2", "ckpt_path=last")
    assert result.returncode == 0, result.stderr[-3000:]
    runs = sorted(p.name for p in (tmp_path / "wandb").glob("offline-run-*"))
    assert len(runs) == 2 and len({name.rsplit("-", 1)[-1] for name in runs}) == 1
