"""Per-base risk and per-sequence class probabilities for whole records, tile by tile."""

from __future__ import annotations

import numpy as np
import torch

from seqmodel.data import alphabet
from seqmodel.data.batches import reverse_valid
from seqmodel.data.tiling import tile_plan
from seqmodel.models.checkpoint import TrainedModel


class RecordPredictor:
    """Runs a trained model over records of any length.

    Tiles of the training window overlap by `overlap` bases and only their cores are kept;
    with `rc_average`, each tile is also predicted on its reverse complement and the
    per-base output is flipped back before averaging (probabilities are averaged).
    """

    def __init__(
        self,
        trained: TrainedModel,
        batch_size: int = 64,
        overlap: int | None = None,
        rc_average: bool = True,
        device: str | torch.device = "cpu",
    ):
        self.network = trained.network.to(device).eval()
        self.window = trained.window
        self.overlap = self.window // 2 if overlap is None else overlap
        self.batch_size = batch_size
        self.rc_average = rc_average
        self.device = torch.device(device)

    @torch.inference_mode()
    def _forward(self, tokens: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities for a tile batch: per base `(B, W)` and per class `(B, K)`."""
        x = torch.from_numpy(tokens.astype(np.int64)).to(self.device)
        n = torch.from_numpy(lengths.astype(np.int64)).to(self.device)
        mask = x < alphabet.N
        base_logits, class_logits = self.network(x, mask, n)
        return torch.sigmoid(base_logits.float()).cpu().numpy(), torch.softmax(
            class_logits.float(), -1
        ).cpu().numpy()

    def predict_tiles(self, tokens: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Like `_forward`, averaged with the reverse-complement prediction when `rc_average`."""
        base, classes = self._forward(tokens, lengths)
        if self.rc_average:
            rc_tokens = reverse_valid(alphabet.COMPLEMENT_LUT[tokens], lengths)
            rc_base, rc_classes = self._forward(rc_tokens, lengths)
            base = (base + reverse_valid(rc_base, lengths)) / 2
            classes = (classes + rc_classes) / 2
        return base, classes

    def predict_record(self, tokens: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-base probability `(L,)` float32 (NaN at N) and class probabilities `(K,)`.

        The record's class probabilities are the tiles' averaged, weighted by the number of
        valid bases in each tile's core.
        """
        length, window = len(tokens), self.window
        plan = tile_plan(length, window, self.overlap)
        out = np.full(length, np.nan, dtype=np.float32)
        class_sum, weight_sum = 0.0, 0.0
        padded = np.append(tokens, np.full(window, alphabet.N, dtype=np.uint8))
        for first in range(0, len(plan), self.batch_size):
            rows = plan[first : first + self.batch_size]
            batch = padded[rows[:, 0:1] + np.arange(window)[None, :]]
            lengths = np.minimum(window, length - rows[:, 0])
            base, classes = self.predict_tiles(batch, lengths)
            for (start, core_start, core_end), tile_base, tile_classes in zip(
                rows, base, classes, strict=True
            ):
                out[core_start:core_end] = tile_base[core_start - start : core_end - start]
                weight = float((tokens[core_start:core_end] < alphabet.N).sum()) or 1e-6
                class_sum = class_sum + weight * tile_classes
                weight_sum += weight
        out[tokens >= alphabet.N] = np.nan
        return out, (class_sum / weight_sum).astype(np.float32)
