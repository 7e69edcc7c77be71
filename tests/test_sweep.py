"""Hyperparameter sweeps: `seqmodel-train` returns the best monitored validation score, and
`seqmodel-train -m hparams_search=optuna` runs an Optuna search over it (the optuna extra)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from hydra import compose, initialize_config_dir

from seqmodel.config import CONFIG_DIR
from tests.conftest import TINY_MODEL

try:
    import hydra_plugins.hydra_optuna_sweeper  # noqa: F401

    SWEEPER = True
except ImportError:
    SWEEPER = False
needs_sweeper = pytest.mark.skipif(
    not SWEEPER, reason="hydra-optuna-sweeper is not installed (pip install -e '.[optuna]')"
)

# One short epoch with a validation batch, so that every trial has a best checkpoint and a score
# (debug=fast would not: fast_dev_run turns checkpointing off, and the run returns None).
SHORT_TRIAL = [
    *TINY_MODEL,
    "trainer=cpu",
    "trainer.max_epochs=1",
    "+trainer.limit_train_batches=2",
    "+trainer.limit_val_batches=1",
    "trainer.enable_progress_bar=false",
    "loader.cpu_workers=0",
    "logger=none",
    "test=false",
]


def sweep_config(*overrides: str):
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return compose("train", overrides=["hparams_search=optuna", *overrides], return_hydra_config=True)


@needs_sweeper
def test_optuna_search_composes_and_follows_the_checkpoint_mode():
    cfg = sweep_config()
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("OptunaSweeper")
    assert cfg.callbacks.checkpoint.mode == "min" and sweeper.direction == "minimize"
    assert sweeper.sampler.seed is not None
    assert {"model.optim.lr", "model.trunk.hidden_size", "model.pooled_head.trunk_grad_scale"} <= set(
        sweeper.params
    )
    cfg = sweep_config("callbacks.checkpoint.monitor=val/seq_auroc", "callbacks.checkpoint.mode=max")
    assert cfg.hydra.sweeper.direction == "maximize"


def test_without_the_group_the_sweeper_is_hydras_default():
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        cfg = compose("train", return_hydra_config=True)
    assert "optuna" not in cfg.hydra.sweeper._target_.lower()


@needs_sweeper
def test_two_trial_optuna_sweep_optimises_the_best_checkpoint_score(tmp_path: Path):
    sweep_dir = tmp_path / "sweep"
    command = [
        sys.executable,
        "-m",
        "seqmodel.train",
        "-m",
        "hparams_search=optuna",
        "hydra.sweeper.n_trials=2",
        f"hydra.sweep.dir={sweep_dir}",
        *SHORT_TRIAL,
    ]
    result = subprocess.run(
        command,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Directions: ['minimize']" in result.stdout
    # Each trial prints the value it returns: the best val/base_loss, the score of its best.ckpt.
    scores = [float(s) for s in re.findall(r"^best val/base_loss: (\S+)$", result.stdout, re.MULTILINE)]
    assert len(scores) == 2, result.stdout[-3000:]
    for trial, score in zip(("0", "1"), scores, strict=True):
        ckpt = sweep_dir / trial / "checkpoints" / "best.ckpt"
        best = torch.load(ckpt, map_location="cpu", weights_only=True)
        (state,) = [v for k, v in best["callbacks"].items() if k.startswith("ModelCheckpoint")]
        assert float(state["best_model_score"]) == score  # the returned value is the callback's best
    results = yaml.safe_load((sweep_dir / "optimization_results.yaml").read_text())
    assert results["name"] == "optuna"
    assert results["best_value"] == min(scores)
    assert set(results["best_params"]) == {"model.optim.lr", "model.pooled_head.trunk_grad_scale"}
