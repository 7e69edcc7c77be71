"""Shared fixtures: small real files written to a temporary folder."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

# Tests never reach a wandb server.
os.environ["WANDB_MODE"] = "offline"
os.environ["WANDB_SILENT"] = "true"
# One intra-op thread in tests and the CLIs they start: beside the loader's worker threads on a
# 2-core machine, more oversubscribe the cores and make the tiny models many times slower.
os.environ.setdefault("OMP_NUM_THREADS", "1")

PROJECT_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models run fastest on one intra-op thread (several contend on a busy machine)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def random_dna(rng: np.random.Generator, length: int) -> str:
    return "".join(rng.choice(list("ACGT"), size=length))


@pytest.fixture
def small_fasta(tmp_path: Path) -> Path:
    """Records shorter than, equal to and longer than a 50-base window, with N and lowercase."""
    rng = np.random.default_rng(0)
    records = {
        "short label=0": random_dna(rng, 17),
        "exact label=1": random_dna(rng, 50),
        "long label=1": random_dna(rng, 60)
        + "NNNNN"
        + random_dna(rng, 70).lower()
        + "RY"
        + random_dna(rng, 40),
        "chr9:1000-1130 label=0": random_dna(rng, 130),
    }
    path = tmp_path / "small.fa"
    with open(path, "w") as handle:
        for header, seq in records.items():
            handle.write(f">{header}\n")
            for i in range(0, len(seq), 60):
                handle.write(seq[i : i + 60] + "\n")
    return path


TINY_MODEL = [
    "model.trunk.hidden_size=8",
    "model.trunk.conv_channels=8",
    "model.trunk.num_layers=1",
    "model.per_base_head.hidden=8",
    "model.pooled_head.hidden=8",
]


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A checkpoint from a real (very short) seqmodel-train run on the demo data."""
    import subprocess
    import sys

    run_dir = tmp_path_factory.mktemp("tiny_run")
    command = [
        sys.executable,
        "-m",
        "seqmodel.train",
        f"hydra.run.dir={run_dir}",
        *TINY_MODEL,
        "trainer.max_epochs=1",
        "+trainer.limit_train_batches=4",
        "+trainer.limit_val_batches=1",
        "logger=none",
        "test=false",
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dir / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="session")
def save_untrained_checkpoint():
    """A function saving a checkpoint of an untrained network the way seqmodel-train saves one:
    save(path, model settings, window, class names) -> path."""
    return _save_untrained_checkpoint


def _save_untrained_checkpoint(path: Path, model: dict, window: int, classes: list[str]) -> Path:
    import torch

    from seqmodel.models.checkpoint import CHECKPOINT_FORMAT
    from seqmodel.models.network import SeqModel

    torch.manual_seed(0)
    network = SeqModel(num_classes=len(classes), **model)
    hyper_parameters = {
        "model": model,
        "num_classes": len(classes),
        "data_info": {"format": CHECKPOINT_FORMAT, "window": window, "classes": classes, "genomes": 1},
        "loss": {"base": "binomial"},
    }
    state = {f"model.{key}": value for key, value in network.state_dict().items()}
    torch.save({"hyper_parameters": hyper_parameters, "state_dict": state}, path)
    return path
