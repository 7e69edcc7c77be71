"""Which bases drive a trained model's output: in-silico saturation mutagenesis (ISM) and
Integrated Gradients (IG), over arrays and tensors (no files; `seqmodel-explain` is the CLI).

What is explained, a scalar `f` per sequence (the *objective*):

- head `base`: the per-genome rate of the per-base head (`TrainedModel.rate`, the value
  seqmodel-predict writes) summed over the valid bases of a span (default: the whole sequence);
- head `class`: the pooled head's log-odds of one class, `log p_c - log(1 - p_c)`.

A sequence is cut into the tiles seqmodel-predict uses (`stream_tiles`: tiles of the training
window, overlapping, each keeping only its core), so `f` is a function of exactly the track
predict writes. For the per-base head `f` is the sum of the stitched rates over the span; for
the pooled head it is the mean of the tiles' log-odds weighted by the valid bases of each
core (predict weights the tiles' probabilities the same way; log-odds are averaged here so
that `f` is a sum of per-tile terms). ISM deltas and IG attributions are both additive over
such terms, so each tile is explained on its own and the results are added: memory is one
tile batch, whatever the sequence's length. With `rc_average` a tile's term is the mean of the
forward and the reverse-complement strand (the reverse strand's per-base output flipped
back), as predict averages them.

ISM: every valid base is changed to each of its three alternatives (`batch_size` mutants per
forward pass). The `(L, 4)` matrix of objective values is mean-centred per position (each
base's value minus the mean over the four bases): these are the hypothetical contributions,
and the contribution of a base is the centred value of its reference base.

IG (captum's `IntegratedGradients`, through the float one-hot input path
`SeqModel.forward_onehot`): the baseline is the all-zero one-hot, i.e. every base N, which is
what the network sees at N and padding (deterministic, no sampling; a shuffled reference
would need many samples to be stable). captum integrates the gradient along the straight path
from the baseline with `steps` Gauss-Legendre points; with `multiply_by_inputs=False` it
returns the path-averaged gradients `m` `(L, 4)`, and the attribution is
`(x - x') * m`. So a base's contribution is `m` at its reference base (the usual
multiply-by-input), and the hypothetical contribution of base `b` at `j` is the same gradients
times the one-hot difference `e_b - x'_j`, i.e. `m[j, b]` for the zero baseline: what `b`
would get on the same path (the approximation modisco's hypothetical scores use).
Completeness: the contributions add up to `f(x) - f(x')` within the quadrature's error.
The mask and lengths of the pooled head stay those of the reference along the path.

N positions are never mutated and get no contribution (NaN); their hypothetical and one-hot
rows are zero. DeepLIFT / DeepSHAP are not offered: their propagation rules do not cover the
gates of LSTM or GRU cells.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from seqmodel.data.tiling import stream_tiles
from seqmodel.errors import ParameterError
from seqmodel.io import alphabet
from seqmodel.models.checkpoint import TrainedModel

METHODS = ("ism", "ig")
HEADS = ("base", "class")
INTERPRET_HINT = "pip install 'seqmodel[interpret]'"

# Token id -> one-hot row; N (4) is the all-zero row.
_ONEHOT_ROWS = np.eye(alphabet.VOCAB_SIZE, 4, dtype=np.float32)


def require_captum():
    """captum's IntegratedGradients class, or a ParameterError saying how to install it."""
    try:
        from captum.attr import IntegratedGradients
    except ImportError:
        raise ParameterError("method", f"ig needs captum: {INTERPRET_HINT}") from None
    return IntegratedGradients


def onehot(tokens: np.ndarray) -> np.ndarray:
    """`(L, 4)` float32 one-hot (columns A, C, G, T) of token ids; N rows are all zero."""
    return _ONEHOT_ROWS[np.asarray(tokens, dtype=np.intp)]


def class_index(classes: Sequence[str], head: str, target: str | None) -> int | None:
    """The index of the class `target` names (head `class`), None for head `base`."""
    if head not in HEADS:
        raise ParameterError("head", f"must be one of {', '.join(HEADS)}, got {head!r}")
    if head == "base":
        if target is not None:
            raise ParameterError("target", "names a class of head=class; head=base explains the rate")
        return None
    names = [str(name) for name in classes]
    if len(names) < 2:
        raise ParameterError("head", "class needs a model with at least two classes")
    if target is None or str(target) not in names:
        given = "no target" if target is None else f"unknown class {target!r}"
        raise ParameterError("target", f"{given}; the checkpoint's classes are {', '.join(names)}")
    return names.index(str(target))


def _flip_valid(values: torch.Tensor, length: int, dims: tuple[int, ...]) -> torch.Tensor:
    """Reverse the first `length` positions (dim 1) and flip `dims`; padding stays at the end."""
    return torch.cat([values[:, :length].flip(dims), values[:, length:]], dim=1)


def reverse_complement_tokens(tokens: torch.Tensor, length: int) -> torch.Tensor:
    """`(B, W)` token tiles of `length` real bases -> their reverse complements (N stays N)."""
    complement = torch.where(tokens < alphabet.N, 3 - tokens, tokens)
    return _flip_valid(complement, length, (1,))


def reverse_complement_onehot(x: torch.Tensor, length: int) -> torch.Tensor:
    """`(B, W, 4)` one-hot tiles -> their reverse complements (A C G T reversed is T G C A)."""
    return _flip_valid(x, length, (1, 2))


class Objective:
    """The explained scalar of tiles of one sequence: see the module's docstring.

    `weights` is, for head `base`, a `(W,)` tensor (1 at the tile positions whose rate counts,
    in forward-strand order), for head `class` the tile's share of the sequence (a float).
    """

    def __init__(
        self, trained: TrainedModel, head: str = "base", target: str | None = None, rc_average: bool = True
    ):
        self.trained = trained
        self.network = trained.network
        self.head = head
        self.class_index = class_index(trained.classes, head, target)
        self.rc_average = rc_average

    @property
    def device(self) -> torch.device:
        return next(self.network.parameters()).device

    def _value(self, outputs: tuple[torch.Tensor, torch.Tensor], weights) -> torch.Tensor:
        base_logits, class_logits = outputs
        if self.head == "base":  # summed in float64: ISM takes differences of these sums
            return (self.trained.rate(base_logits).double() * weights).sum(-1)
        logits = class_logits.double()
        c = self.class_index
        others = torch.cat([logits[:, :c], logits[:, c + 1 :]], dim=1)
        return weights * (logits[:, c] - torch.logsumexp(others, dim=1))

    def _reverse_weights(self, weights, length: int):
        if self.head == "base":
            return _flip_valid(weights[None], length, (1,))[0]
        return weights

    def _lengths(self, batch: int, length: int) -> torch.Tensor:
        return torch.full((batch,), length, dtype=torch.int64, device=self.device)

    def score_tokens(self, tokens: torch.Tensor, length: int, weights) -> torch.Tensor:
        """`(B,)` objective of token tiles `(B, W)` int64 holding `length` real bases."""
        lengths = self._lengths(len(tokens), length)
        value = self._value(self.network(tokens, tokens < alphabet.N, lengths), weights)
        if self.rc_average:
            reverse = reverse_complement_tokens(tokens, length)
            outputs = self.network(reverse, reverse < alphabet.N, lengths)
            value = (value + self._value(outputs, self._reverse_weights(weights, length))) / 2
        return value

    def score_onehot(self, x: torch.Tensor, mask: torch.Tensor, length: int, weights) -> torch.Tensor:
        """`(B,)` objective of float one-hot tiles `(B, W, 4)`; `mask` `(W,)` the reference's real
        bases (kept along an IG path)."""
        lengths = self._lengths(len(x), length)
        masks = mask.expand(len(x), -1)
        value = self._value(self.network.forward_onehot(x, masks, lengths), weights)
        if self.rc_average:
            reverse = reverse_complement_onehot(x, length)
            outputs = self.network.forward_onehot(reverse, _flip_valid(masks, length, (1,)), lengths)
            value = (value + self._value(outputs, self._reverse_weights(weights, length))) / 2
        return value


def saturation_mutagenesis(
    score: Callable[[torch.Tensor], torch.Tensor],
    tokens: np.ndarray,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
) -> tuple[float, np.ndarray]:
    """ISM of a scalar function of token sequences.

    score: `(B, L)` int64 tensor -> `(B,)` tensor; tokens: `(L,)` ids. Returns the reference's
    score and the deltas `(L, 4)` float64: `score(x with base j set to b) - score(x)`, zero at the
    reference base and on N rows (N is not mutated).
    """
    if batch_size < 1:
        raise ParameterError("batch_size", f"must be at least 1, got {batch_size}")
    tokens = np.asarray(tokens, dtype=np.int64)
    reference = torch.from_numpy(tokens).to(device)[None]
    with torch.inference_mode():
        ref_score = float(score(reference)[0])
    positions = np.flatnonzero(tokens < alphabet.N)
    # Every (position, alternative base) pair, in position order.
    alternatives = (tokens[positions, None] + np.arange(1, 4)[None, :]) % 4
    rows = np.repeat(positions, 3)
    alts = alternatives.reshape(-1)
    deltas = np.zeros((len(tokens), 4), dtype=np.float64)
    with torch.inference_mode():
        for lo in range(0, len(rows), batch_size):
            where = torch.from_numpy(rows[lo : lo + batch_size]).to(device)
            base = torch.from_numpy(alts[lo : lo + batch_size]).to(device)
            mutants = reference.repeat(len(where), 1)
            mutants[torch.arange(len(where), device=device), where] = base
            values = score(mutants).double().cpu().numpy()
            deltas[rows[lo : lo + batch_size], alts[lo : lo + batch_size]] = values - ref_score
    return ref_score, deltas


def mean_centred(values: np.ndarray) -> np.ndarray:
    """`(L, 4)` values minus their mean over the four bases at each position."""
    return values - values.mean(axis=1, keepdims=True)


def path_gradients(
    forward: Callable[[torch.Tensor], torch.Tensor],
    inputs: torch.Tensor,
    baseline: torch.Tensor,
    steps: int = 32,
    batch_size: int | None = None,
) -> torch.Tensor:
    """IG's path-averaged gradients of `forward` (`(B, ...)` -> `(B,)`) from `baseline` to `inputs`.

    The Integrated Gradients attribution is `(inputs - baseline) * path_gradients(...)`.
    """
    if steps < 1:
        raise ParameterError("steps", f"must be at least 1, got {steps}")
    integrated_gradients = require_captum()(forward, multiply_by_inputs=False)
    cudnn_off = (
        torch.backends.cudnn.flags(enabled=False)  # cuDNN's RNN backward runs in training mode only
        if inputs.is_cuda
        else contextlib.nullcontext()
    )
    with cudnn_off:
        return integrated_gradients.attribute(
            inputs, baselines=baseline, n_steps=steps, internal_batch_size=batch_size
        ).detach()


@dataclass
class Attribution:
    """The explanation of one sequence of `L` bases.

    contribution: `(L,)` float32, NaN at N; hypothetical, onehot: `(L, 4)` float32 (columns
    A, C, G, T; zero rows at N); score: the objective `f(x)`; baseline_score: IG's `f(x')`.
    """

    contribution: np.ndarray
    hypothetical: np.ndarray
    onehot: np.ndarray
    score: float
    baseline_score: float | None = None


@dataclass
class _TileWork:
    start: int
    length: int
    tokens: np.ndarray  # (W,) padded with N
    weights: np.ndarray | float


def _tile_work(
    tokens: np.ndarray, window: int, overlap: int, head: str, span: tuple[int, int] | None
) -> Iterator[_TileWork]:
    """The tiles whose term of the objective is not identically zero, with their weights."""
    valid = tokens < alphabet.N
    counted = np.zeros(len(tokens), dtype=bool)
    lo, hi = span if span is not None else (0, len(tokens))
    counted[lo:hi] = valid[lo:hi]
    total_valid = int(valid.sum())
    for tile in stream_tiles(0, [tokens], window, overlap):
        start, core_start, core_end = tile.start, tile.core_start, tile.core_end
        if head == "base":
            weights = np.zeros(window, dtype=np.float32)
            weights[core_start - start : core_end - start] = counted[core_start:core_end]
            if not weights.any():
                continue
        else:
            share = int(valid[core_start:core_end].sum())
            if share == 0:
                continue
            weights = share / total_valid
        yield _TileWork(start, tile.length, tile.tokens, weights)


def explain_sequence(
    trained: TrainedModel,
    tokens: np.ndarray,
    method: str = "ism",
    head: str = "base",
    target: str | None = None,
    span: tuple[int, int] | None = None,
    overlap: int | None = None,
    rc_average: bool = True,
    batch_size: int = 256,
    steps: int = 32,
) -> Attribution:
    """Explain the objective of one sequence of token ids `(L,)`, tile by tile (module docstring).

    span: `[start, end)` of the bases whose rate is summed (head `base`; default all);
    overlap: bases shared by neighbouring tiles (default half the window, as predict).
    """
    if method not in METHODS:
        raise ParameterError("method", f"must be one of {', '.join(METHODS)}, got {method!r}")
    if method == "ig":
        require_captum()
    objective = Objective(trained, head, target, rc_average)
    tokens = np.asarray(tokens, dtype=np.uint8)
    if span is not None:
        if head != "base":
            raise ParameterError("span", "is for head=base (the rate summed over a span of bases)")
        if not 0 <= span[0] < span[1] <= len(tokens):
            raise ParameterError(
                "span", f"[{span[0]}, {span[1]}) is not inside the sequence [0, {len(tokens)})"
            )
    window = trained.window
    overlap = window // 2 if overlap is None else overlap
    device = objective.device
    scores = np.zeros((len(tokens), 4), dtype=np.float64)  # ISM deltas or IG path gradients
    total, baseline_total = 0.0, 0.0
    for tile in _tile_work(tokens, window, overlap, head, span):
        weights = torch.as_tensor(tile.weights, device=device) if head == "base" else tile.weights
        if method == "ism":

            def score(batch: torch.Tensor, tile=tile, weights=weights) -> torch.Tensor:
                return objective.score_tokens(batch, tile.length, weights)

            value, deltas = saturation_mutagenesis(score, tile.tokens, batch_size, device)
            total += value
            scores[tile.start : tile.start + tile.length] += deltas[: tile.length]
        else:
            x = torch.from_numpy(onehot(tile.tokens)).to(device)[None]
            mask = torch.from_numpy(tile.tokens < alphabet.N).to(device)

            def forward(batch: torch.Tensor, tile=tile, weights=weights, mask=mask) -> torch.Tensor:
                return objective.score_onehot(batch, mask, tile.length, weights)

            baseline = torch.zeros_like(x)
            gradients = path_gradients(forward, x, baseline, steps, batch_size)[0]
            with torch.no_grad():
                total += float(forward(x)[0])
                baseline_total += float(forward(baseline)[0])
            scores[tile.start : tile.start + tile.length] += gradients[: tile.length].double().cpu().numpy()
    reference = onehot(tokens)
    valid = tokens < alphabet.N
    if method == "ism":
        hypothetical = mean_centred(scores)
    else:
        # (e_b - x') . m for each base b; the baseline x' is all zero.
        hypothetical = scores.copy()
    hypothetical[~valid] = 0.0
    contribution = np.where(valid, (hypothetical * reference).sum(axis=1), np.nan).astype(np.float32)
    return Attribution(
        contribution,
        hypothetical.astype(np.float32),
        reference,
        total,
        baseline_total if method == "ig" else None,
    )
