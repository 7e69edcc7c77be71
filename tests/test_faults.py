"""Faults during prediction: a kill or a full disk leaves nothing at the output path."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time

import numpy as np


def predict_command(tmp_path, ckpt, fasta, output):
    return [
        sys.executable,
        "-m",
        "seqmodel.predict",
        f"ckpt_path={ckpt}",
        f"input={fasta}",
        f"output={output}",
        f"hydra.run.dir={tmp_path / 'hydra'}",
    ]


def big_fasta(tmp_path, bases=400_000):
    fasta = tmp_path / "big.fa"
    sequence = "".join(np.random.default_rng(0).choice(list("ACGT"), bases))
    fasta.write_text(">big\n" + "\n".join(sequence[i : i + 80] for i in range(0, bases, 80)) + "\n")
    return fasta


def test_kill_9_during_prediction_leaves_no_output(tmp_path, tiny_checkpoint):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    output = out_dir / "risk.bedgraph"
    process = subprocess.Popen(
        predict_command(tmp_path, tiny_checkpoint, big_fasta(tmp_path), output),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    # Wait until the temporary output exists and is being written, then kill.
    while not any(p.stat().st_size > 0 for p in out_dir.glob(".risk.bedgraph.*")):
        assert process.poll() is None and time.monotonic() < deadline
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert not output.exists()
    assert not (out_dir / "risk.sequences.tsv").exists()


def _small_file_limit() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (200_000, 200_000))


def test_disk_full_is_a_clean_error_without_partial_output(tmp_path, tiny_checkpoint):
    output = tmp_path / "risk.bedgraph"
    result = subprocess.run(
        predict_command(tmp_path, tiny_checkpoint, big_fasta(tmp_path, 60_000), output),
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
        preexec_fn=_small_file_limit,
        env={**os.environ, "TQDM_DISABLE": "1"},
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == f"error: {output}: cannot write: File too large"
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.fa", "hydra"]
