"""Loading a trained model from a checkpoint alone, without running code hidden in the file."""

from __future__ import annotations

import os
import pickle
import zipfile
from dataclasses import dataclass

import torch

from seqmodel.errors import SeqmodelInputError, require_file
from seqmodel.models.network import SeqModel, per_genome_rate

# Bumped whenever a checkpoint's hyperparameters or weights change meaning.
# 2: the per-base head predicts the per-genome rate (loss.base, data_info.genomes).
CHECKPOINT_FORMAT = 2


@dataclass
class TrainedModel:
    """A network in eval mode with what is needed to read new data as training did."""

    network: SeqModel
    window: int
    classes: list[str]
    base_loss: str = "binomial"
    genomes: float = 1.0

    def rate(self, base_logits: torch.Tensor) -> torch.Tensor:
        """The per-genome mutation rate from the network's per-base logits."""
        return per_genome_rate(base_logits, self.base_loss, self.genomes)


def load_trained_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> TrainedModel:
    """Rebuild the network from a Lightning checkpoint's hyperparameters and weights.

    The file is read with `torch.load(weights_only=True)`: a pickle that would build
    arbitrary objects is refused.
    """
    path = require_file(path, "checkpoint")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else "unsafe content"
        raise SeqmodelInputError(
            path, None, f"refused to load: not a plain-weights checkpoint ({first_line})"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError) as error:
        raise SeqmodelInputError(path, None, f"unreadable or truncated checkpoint ({error})") from None
    hparams = checkpoint.get("hyper_parameters") if isinstance(checkpoint, dict) else None
    if not hparams or not {"model", "num_classes", "data_info"} <= set(hparams):
        raise SeqmodelInputError(path, None, "not a seqmodel checkpoint (no model settings inside)")
    try:
        network = SeqModel(num_classes=hparams["num_classes"], **hparams["model"])
        weights = {
            k.removeprefix("model."): v for k, v in checkpoint["state_dict"].items() if k.startswith("model.")
        }
        network.load_state_dict(weights)
    except (TypeError, RuntimeError, KeyError) as error:
        raise SeqmodelInputError(
            path,
            None,
            f"checkpoint does not fit this version of seqmodel ({str(error).splitlines()[0]})",
        ) from None
    info = hparams["data_info"]
    if info.get("format") != CHECKPOINT_FORMAT:
        raise SeqmodelInputError(
            path,
            None,
            f"checkpoint format {info.get('format')!r}, this seqmodel reads format {CHECKPOINT_FORMAT}",
        )
    if info.get("alphabet", "ACGTN") != "ACGTN":
        raise SeqmodelInputError(
            path, None, f"checkpoint alphabet {info['alphabet']!r}, this seqmodel reads ACGTN"
        )
    return TrainedModel(
        network.to(device).eval(),
        int(info["window"]),
        list(info["classes"]),
        base_loss=hparams["loss"].get("base", "binomial"),
        genomes=float(info.get("genomes") or 1),
    )
