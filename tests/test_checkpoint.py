"""Checkpoints are read as plain weights: hidden code is refused, damage is a clean error."""

from __future__ import annotations

import os

import pytest
import torch

from seqmodel.errors import SeqmodelInputError
from seqmodel.models.checkpoint import load_trained_model


class RunsCode:
    """Unpickling this would run a shell command."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_checkpoint_whose_pickle_would_run_code_is_refused(tmp_path, tiny_checkpoint):
    marker = tmp_path / "code-ran"
    checkpoint = torch.load(tiny_checkpoint, weights_only=True)
    checkpoint["hyper_parameters"]["payload"] = RunsCode(marker)
    evil = tmp_path / "evil.ckpt"
    torch.save(checkpoint, evil)
    with pytest.raises(SeqmodelInputError, match="refused to load"):
        load_trained_model(evil)
    assert not marker.exists()


def test_truncated_checkpoint(tmp_path, tiny_checkpoint):
    data = tiny_checkpoint.read_bytes()
    path = tmp_path / "cut.ckpt"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(SeqmodelInputError, match="unreadable or truncated"):
        load_trained_model(path)


def test_checkpoint_from_an_incompatible_version(tmp_path, tiny_checkpoint):
    checkpoint = torch.load(tiny_checkpoint, weights_only=True)
    checkpoint["hyper_parameters"]["data_info"]["format"] = 0
    path = tmp_path / "old.ckpt"
    torch.save(checkpoint, path)
    with pytest.raises(SeqmodelInputError, match="checkpoint format 0, this seqmodel reads format 2"):
        load_trained_model(path)
    checkpoint["hyper_parameters"]["data_info"]["format"] = 1
    checkpoint["hyper_parameters"]["model"]["trunk"]["hidden_size"] = 999
    torch.save(checkpoint, path)
    with pytest.raises(SeqmodelInputError, match="does not fit this version"):
        load_trained_model(path)


def test_not_a_seqmodel_checkpoint(tmp_path):
    path = tmp_path / "other.ckpt"
    torch.save({"state_dict": {}}, path)
    with pytest.raises(SeqmodelInputError, match="not a seqmodel checkpoint"):
        load_trained_model(path)
