"""kill -9 during training, then `ckpt_path=last`: the run continues where the checkpoint left it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from seqmodel.config import DEMO_DATA_DIR
from seqmodel.data.datamodule import SeqDataModule
from tests.conftest import TINY_MODEL


def train_command(run_dir: Path, window_dir: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "seqmodel.train",
        f"hydra.run.dir={run_dir}",
        *TINY_MODEL,
        "trainer.max_epochs=2",
        "logger=none",
        "test=false",
        "callbacks.last.every_n_train_steps=5",
        "+callbacks.window_log._target_=seqmodel.models.callbacks.WindowLog",
        f"+callbacks.window_log.dirpath={window_dir}",
        *extra,
    ]


def lines(path: Path) -> list[list[int]]:
    return [[int(w) for w in line.split()] for line in path.read_text().splitlines()]


def expected_epoch(epoch: int) -> list[list[int]]:
    datamodule = SeqDataModule(
        fasta=str(DEMO_DATA_DIR / "ctcf_demo.fa.gz"),
        mutations=str(DEMO_DATA_DIR / "ctcf_demo.mutations.vcf.gz"),
        true_rate=str(DEMO_DATA_DIR / "ctcf_demo.true_rate.bedgraph.gz"),
    )
    loader = datamodule.train_dataloader()
    loader.start_index = None
    loader.sampler.set_epoch(epoch)
    try:
        return [batch.window_ids.tolist() for batch in loader]
    finally:
        datamodule.teardown("fit")  # stops the loader's runtime


def test_kill_9_then_resume_repeats_and_skips_no_window(tmp_path):
    run_dir = tmp_path / "run"
    killed_log = run_dir / "windows_killed" / "rank0.epoch0.txt"
    process = subprocess.Popen(
        train_command(run_dir, killed_log.parent),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 240
    while not (killed_log.exists() and len(killed_log.read_text().splitlines()) >= 12):
        assert process.poll() is None and time.monotonic() < deadline, "training ended before the kill"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)

    saved = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    step = saved["global_step"]
    assert step >= 10 and step % 5 == 0
    assert not list((run_dir / "checkpoints").glob(".*tmp"))

    resumed_dir = run_dir / "windows_resumed"
    result = subprocess.run(
        train_command(run_dir, resumed_dir, "ckpt_path=last"),
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr[-3000:]

    epoch0, epoch1 = expected_epoch(0), expected_epoch(1)
    assert lines(killed_log)[:step] + lines(resumed_dir / "rank0.epoch0.txt") == epoch0
    assert lines(resumed_dir / "rank0.epoch1.txt") == epoch1

    final = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    total = len(epoch0) + len(epoch1)
    assert final["global_step"] == total
    assert final["lr_schedulers"][0]["last_epoch"] == total
    assert int(final["optimizer_states"][0]["state"][0]["step"]) == total
