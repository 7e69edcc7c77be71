"""Offline wandb runs of seqmodel-train (and seqmodel-evaluate), read back from their run directories."""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from seqmodel.models.callbacks import fixed_records
from tests.conftest import TINY_MODEL
from tests.test_train import run_train

pytest.importorskip("wandb")
pytest.importorskip("matplotlib")

WANDB_ENV = {"WANDB_MODE": "offline", "WANDB_SILENT": "true"}
SHORT_FIT = [
    *TINY_MODEL,
    "trainer.max_epochs=2",
    "trainer.log_every_n_steps=1",
    "+trainer.limit_train_batches=2",
]


def wandb_records(path: Path) -> list:
    """The protobuf records of a `.wandb` file (wandb's log format: a 7-byte header, then 32 KiB
    blocks of chunks, each with a 7-byte header: checksum, length, kind full/first/middle/last)."""
    from wandb.proto import wandb_internal_pb2

    data, block = path.read_bytes(), 32768
    assert data[:4] == b":W&B"
    records, pending, position = [], b"", 7
    while position + 7 <= len(data):
        if block - position % block < 7:  # a block's tail too short for a header is padding
            position += block - position % block
            continue
        _checksum, length, kind = struct.unpack("<IHB", data[position : position + 7])
        chunk = data[position + 7 : position + 7 + length]
        position += 7 + length
        if kind == 0:
            continue
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
    return records


def of_type(records: list, kind: str) -> list:
    return [getattr(r, kind) for r in records if r.WhichOneof("record_type") == kind]


def summary(records: list) -> dict:
    """The run's final summary: the last value written under each key."""
    values = {}
    for update in of_type(records, "summary"):
        for item in update.update:
            key = "/".join(item.nested_key) if item.nested_key else item.key
            values[key] = json.loads(item.value_json)
    return values


def history_keys(records: list) -> set[str]:
    """The top-level keys logged (a media entry's own fields are nested below its key)."""
    return {
        item.nested_key[0] if item.nested_key else item.key
        for step in of_type(records, "history")
        for item in step.item
    }


@pytest.fixture(scope="module")
def wandb_training(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("wandb_train")
    result = run_train(
        run_dir,
        *SHORT_FIT,
        "test=false",
        "logger=wandb",
        "logger.wandb.log_model=true",
        "logger.wandb.tags=[tiny,check]",
        "callbacks.wandb_tracks.table_records=30",
        env=WANDB_ENV,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = (run_dir / "wandb").glob("offline-run-*")
    return run_dir, run, wandb_records(next(run.glob("run-*.wandb")))


def test_validation_images_and_table_in_the_offline_run(wandb_training):
    _, run, records = wandb_training
    media = run / "files" / "media"
    images = sorted((media / "images" / "val").glob("rate_tracks_*.png"))
    tables = sorted((media / "table" / "val").glob("predictions_*.table.json"))
    assert len(images) == len(tables) == 2  # one per validation epoch (not the sanity check)
    assert images[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = json.loads(tables[-1].read_text())
    assert table["columns"][:5] == ["id", "label", "predicted", "p_0", "p_1"]
    assert "top5_positions" in table["columns"]
    assert len(table["data"]) == 30
    row = dict(zip(table["columns"], table["data"][0], strict=True))
    assert row["p_0"] + row["p_1"] == pytest.approx(1.0, abs=1e-3)
    positions = [int(p) for p in row["top5_positions"].split(",")]
    assert len(set(positions)) == 5 and all(0 <= p < row["bases"] for p in positions)
    assert {"val/predictions", "val/rate_tracks", "lr-AdamW"} <= history_keys(records)


def test_summary_holds_best_values_and_the_run_its_name_group_tags(wandb_training):
    _, _, records = wandb_training
    values = summary(records)
    assert set(values["val/loss"]) == {"min", "last"}
    assert values["val/loss"]["min"] <= values["val/loss"]["last"]
    for name, goal in [("val/base_loss", "min"), ("val/base_auprc", "max"), ("val/seq_auroc", "max")]:
        assert goal in values[name], name
    (run,) = of_type(records, "run")
    assert run.display_name == "train-seed0"
    assert run.run_group == "train"
    assert list(run.tags) == ["tiny", "check"]


def test_log_model_keeps_the_best_checkpoint_as_an_artifact_of_the_offline_run(wandb_training):
    run_dir, _, records = wandb_training
    (model,) = [a for a in of_type(records, "artifact") if a.type == "model"]
    assert {"best", "latest"} <= set(model.aliases)
    (entry,) = model.manifest.contents
    assert entry.path == "model.ckpt"
    staged = Path(entry.local_path)
    assert staged.is_file() and run_dir / "wandb" in staged.parents  # not in the home directory
    assert staged.read_bytes() == (run_dir / "checkpoints" / "best.ckpt").read_bytes()


def test_csv_run_makes_no_wandb_directory_and_logs_the_learning_rate(tmp_path):
    result = run_train(tmp_path, *SHORT_FIT, "test=false", "logger=csv", env=WANDB_ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not (tmp_path / "wandb").exists()
    (metrics,) = (tmp_path / "csv").rglob("metrics.csv")
    assert "lr-AdamW" in metrics.read_text().splitlines()[0].split(",")


def test_evaluate_logs_its_results_table_and_calibration_plot(wandb_training, tmp_path):
    run_dir, _, _ = wandb_training
    command = [
        sys.executable,
        "-m",
        "seqmodel.evaluate",
        f"hydra.run.dir={tmp_path}",
        f"ckpt_path={run_dir / 'checkpoints' / 'best.ckpt'}",
        "baselines.kmer_sizes=[3]",
        "++metrics.bootstrap_replicates=0",
        "logger=wandb",
    ]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **WANDB_ENV},
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (run,) = (tmp_path / "wandb").glob("offline-run-*")
    assert f"wandb run: {run}" in result.stdout
    (table_file,) = (run / "files" / "media" / "table" / "evaluate").glob("results_*.table.json")
    table = json.loads(table_file.read_text())
    assert table["columns"][:3] == ["method", "per_base_auroc", "per_base_auprc"]
    assert [row[0] for row in table["data"]] == ["model", "kmer3", "oracle"]
    assert list((run / "files" / "media" / "images" / "evaluate").glob("calibration_*.png"))
    assert (tmp_path / "calibration.png").is_file()  # drawn into the run directory
    records = wandb_records(next(run.glob("run-*.wandb")))
    assert "model/per_base_auprc" in summary(records)
    (wandb_run,) = of_type(records, "run")
    assert (wandb_run.display_name, wandb_run.run_group) == ("evaluate", "evaluate")


def test_fixed_records_take_the_classes_in_turn():
    labels = np.array([1, 1, 1, 0, 1, 0])
    assert fixed_records(labels, 4) == [3, 0, 5, 1]
    assert fixed_records(labels, 10) == [3, 0, 5, 1, 2, 4]
    assert fixed_records(np.array([], dtype=np.int64), 4) == []
