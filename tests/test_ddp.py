"""A real 2-rank DDP run on CPU (gloo), launched as a subprocess through seqmodel-train."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from seqmodel.config import DEMO_DATA_DIR
from seqmodel.data.batches import WindowAssembler
from seqmodel.data.dataset import load_dataset
from seqmodel.data.splits import permuted_splits
from tests.conftest import TINY_MODEL


@pytest.mark.slow
def test_two_rank_ddp_shards_are_disjoint_and_one_checkpoint_is_written(tmp_path):
    run_dir, windows = tmp_path / "run", tmp_path / "run" / "windows"
    command = [
        sys.executable,
        "-m",
        "seqmodel.train",
        f"hydra.run.dir={run_dir}",
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "trainer.max_epochs=1",
        "+trainer.limit_val_batches=2",
        "logger=csv",
        "test=false",
        *TINY_MODEL,
        "+callbacks.window_log._target_=seqmodel.models.callbacks.WindowLog",
        f"+callbacks.window_log.dirpath={windows}",
    ]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
        env={**os.environ, "WANDB_MODE": "offline"},
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr[-3000:]

    shards = []
    for rank in (0, 1):
        lines = (windows / f"rank{rank}.epoch0.txt").read_text().split("\n")
        shards.append([int(w) for line in lines for w in line.split()])
    assert len(shards[0]) > 0 and len(shards[1]) > 0
    assert not set(shards[0]) & set(shards[1])
    dataset = load_dataset(DEMO_DATA_DIR / "ctcf_demo.fa.gz")
    train = dataset.subset(permuted_splits(len(dataset), 0.1, 0.1, seed=0)["train"])
    assert sorted(shards[0] + shards[1]) == list(range(len(WindowAssembler(train, 200, 200, False, 0))))

    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    assert len(list(run_dir.glob("csv/version_*"))) == 1


@pytest.mark.slow
def test_validation_metrics_reduced_over_two_ranks_equal_one_rank(tmp_path, tiny_checkpoint):
    script = Path(__file__).with_name("ddp_validate.py")
    results = {}
    for devices in (1, 2):
        out = tmp_path / f"metrics{devices}.json"
        result = subprocess.run(
            [sys.executable, str(script), str(tiny_checkpoint), str(devices), str(out)],
            capture_output=True,
            text=True,
            timeout=600,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])},
        )
        assert result.returncode == 0, result.stderr[-3000:]
        results[devices] = json.loads(out.read_text())
    for name in ("val/base_auroc", "val/base_auprc", "val/seq_auroc", "val/seq_acc", "val/pearson_true_rate"):
        assert results[2][name] == pytest.approx(results[1][name], abs=1e-5), name
