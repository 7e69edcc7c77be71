"""The two-head recurrent network: conv stem + bidirectional LSTM/GRU trunk, per-base and pooled heads."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqmodel.errors import ParameterError
from seqmodel.io import alphabet

POOLINGS = ("final", "mean", "max", "attention")


class Trunk(nn.Module):
    """One-hot tokens -> conv stem -> stacked bidirectional RNN -> LayerNorm.

    Input tokens `(B, L)`, lengths `(B,)`; output features `(B, L, 2 * hidden_size)`.
    N and padding are all-zero one-hot columns.
    """

    def __init__(
        self,
        cell: str = "lstm",
        conv_channels: int = 64,
        conv_kernel: int = 9,
        conv_layers: int = 2,
        hidden_size: int = 64,
        num_layers: int = 2,
        dropout: float = 0.1,
    ):
        super().__init__()
        if cell not in ("lstm", "gru"):
            raise ParameterError("cell", f"must be 'lstm' or 'gru', got {cell!r}")
        layers: list[nn.Module] = []
        channels = 4
        for _ in range(conv_layers):
            layers += [
                nn.Conv1d(channels, conv_channels, conv_kernel, padding=conv_kernel // 2),
                nn.GELU(),
            ]
            channels = conv_channels
        self.stem = nn.Sequential(*layers)
        rnn = nn.LSTM if cell == "lstm" else nn.GRU
        self.rnn = rnn(
            channels,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            bidirectional=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.norm = nn.LayerNorm(2 * hidden_size)
        self.dropout = nn.Dropout(dropout)
        self.out_features = 2 * hidden_size

    def forward(self, tokens: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        onehot = F.one_hot(tokens, alphabet.VOCAB_SIZE)[..., :4].to(self.norm.weight.dtype)
        return self.forward_onehot(onehot, lengths)

    def forward_onehot(self, onehot: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """The trunk on a float one-hot `(B, L, 4)` (columns A, C, G, T; N and padding all zero).

        The token path builds exactly this tensor, so both give the same features; a float
        input can carry gradients back to the bases (Integrated Gradients) or be any point
        between two sequences.
        """
        onehot = onehot.to(self.norm.weight.dtype)
        x = self.stem(onehot.transpose(1, 2)).transpose(1, 2)
        length = onehot.shape[1]
        if bool((lengths < length).any()):
            # Pack so the backward direction starts at each window's last real base, not in padding.
            packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
            x, _ = pad_packed_sequence(self.rnn(packed)[0], batch_first=True, total_length=length)
        else:
            x = self.rnn(x)[0]
        return self.dropout(self.norm(x))


class PerBaseHead(nn.Module):
    """Per-position MLP: features `(B, L, F)` -> logits `(B, L)` of the per-genome mutation rate.

    context: odd k > 0 adds a learned logit per k-mer centred on the base (4^k values, the
    k-mer table of the context baselines, inside the model), so that the sequence context a
    table captures is one exact term rather than something the trunk must approximate; 0: none.
    The k-mer indicator is the product of the k one-hot columns: differentiable in a float
    one-hot input, and 0 wherever the window holds an N or padding.
    """

    def __init__(self, in_features: int, hidden: int, context: int = 0):
        super().__init__()
        if context < 0 or (context and context % 2 == 0) or context > 7:
            raise ParameterError("context", f"must be 0 or an odd k-mer length up to 7, got {context}")
        self.mlp = nn.Sequential(nn.Linear(in_features, hidden), nn.GELU(), nn.Linear(hidden, 1))
        self.context = context
        self.kmer_logit = nn.Linear(4**context, 1, bias=False) if context else None
        if self.kmer_logit is not None:
            nn.init.zeros_(self.kmer_logit.weight)  # starts as the plain head

    def forward(self, features: torch.Tensor, onehot: torch.Tensor | None = None) -> torch.Tensor:
        logits = self.mlp(features).squeeze(-1)
        if self.kmer_logit is None:
            return logits
        return logits + self.kmer_logit(kmer_indicator(onehot.to(logits.dtype), self.context)).squeeze(-1)

    def start_at_rate(self, rate: float) -> None:
        """Set the output bias to logit(`rate`), so training starts at the data's mean rate
        rather than at 0.5 (which costs the first hundreds of steps on a rare outcome)."""
        rate = min(max(rate, 1e-7), 1 - 1e-7)
        with torch.no_grad():
            self.mlp[-1].bias.fill_(math.log(rate / (1 - rate)))


def kmer_indicator(onehot: torch.Tensor, k: int) -> torch.Tensor:
    """`(B, L, 4^k)`: at each base, the one-hot of the k-mer centred on it (columns ordered as
    base-4 numbers, first base most significant); all zero where the window leaves the sequence
    or holds an N (an all-zero one-hot column)."""
    half = k // 2
    padded = F.pad(onehot, (0, 0, half, half))
    length = onehot.shape[1]
    out = padded[:, :length]
    for offset in range(1, k):
        column = padded[:, offset : offset + length]
        out = (out.unsqueeze(-1) * column.unsqueeze(-2)).flatten(-2)
    return out


def per_genome_rate(base_logits: torch.Tensor, base_loss: str, genomes: float) -> torch.Tensor:
    """The per-genome mutation rate from the per-base head's logits.

    A head trained with the binomial loss predicts the rate itself; one trained on presence
    ("carried by >= 1 of N genomes", P = 1 - (1 - rate)^N) is inverted to the rate.
    """
    probability = torch.sigmoid(base_logits.float())
    if base_loss == "presence":
        return -torch.expm1(torch.log1p(-probability.clamp(max=1 - 1e-7)) / genomes)
    return probability


class _ScaleGradient(torch.autograd.Function):
    """Identity forward; the backward gradient multiplied by `scale`."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return grad * ctx.scale, None


def scale_gradient(x: torch.Tensor, scale: float) -> torch.Tensor:
    """`x` in the forward pass; its gradient times `scale` in the backward (0: stop-gradient)."""
    if scale == 1.0:
        return x
    if scale == 0.0:
        return x.detach()
    return _ScaleGradient.apply(x, scale)


class PooledHead(nn.Module):
    """Pool features over valid positions, then MLP: `(B, L, F)` -> class logits `(B, K)`."""

    def __init__(
        self,
        in_features: int,
        hidden: int,
        num_classes: int,
        pooling: str = "attention",
        trunk_grad_scale: float = 1.0,
    ):
        super().__init__()
        if pooling not in POOLINGS:
            raise ParameterError("pooling", f"must be one of {POOLINGS}, got {pooling!r}")
        if not 0.0 <= trunk_grad_scale <= 1.0:
            raise ParameterError("trunk_grad_scale", f"must be in [0, 1], got {trunk_grad_scale}")
        self.pooling = pooling
        # How much of the sequence loss's gradient reaches the shared trunk (0: the pooled head
        # reads the trunk's features but does not shape them).
        self.trunk_grad_scale = float(trunk_grad_scale)
        self.score = nn.Linear(in_features, 1) if pooling == "attention" else None
        self.mlp = nn.Sequential(nn.Linear(in_features, hidden), nn.GELU(), nn.Linear(hidden, num_classes))

    def forward(self, features: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        # Windows made only of N still need a defined pooled value: fall back to all real positions.
        features = scale_gradient(features, self.trunk_grad_scale)
        inside = torch.arange(features.shape[1], device=features.device)[None, :] < lengths[:, None]
        mask = torch.where(mask.any(dim=1, keepdim=True), mask, inside)
        if self.pooling == "final":
            half = features.shape[-1] // 2
            last = (lengths - 1).clamp(min=0)
            forward_state = features[torch.arange(len(features)), last, :half]
            pooled = torch.cat([forward_state, features[:, 0, half:]], dim=-1)
        elif self.pooling == "mean":
            weights = mask.to(features.dtype).unsqueeze(-1)
            pooled = (features * weights).sum(1) / weights.sum(1).clamp(min=1)
        elif self.pooling == "max":
            pooled = features.masked_fill(~mask.unsqueeze(-1), torch.finfo(features.dtype).min).amax(1)
        else:
            scores = self.score(features).squeeze(-1).masked_fill(~mask, torch.finfo(features.dtype).min)
            pooled = (torch.softmax(scores, dim=1).unsqueeze(-1) * features).sum(1)
        return self.mlp(pooled)


class SeqModel(nn.Module):
    """Shared trunk feeding a per-base head and a pooled head.

    forward(tokens `(B, L)`, mask `(B, L)`, lengths `(B,)`) -> (base logits `(B, L)`, class logits `(B, K)`);
    forward_onehot takes a float one-hot `(B, L, 4)` in place of the tokens.
    """

    def __init__(self, num_classes: int, trunk: dict, per_base_head: dict, pooled_head: dict):
        super().__init__()
        self.trunk = Trunk(**trunk)
        self.per_base_head = PerBaseHead(self.trunk.out_features, **per_base_head)
        self.pooled_head = PooledHead(self.trunk.out_features, num_classes=num_classes, **pooled_head)

    def forward(
        self, tokens: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        onehot = F.one_hot(tokens, alphabet.VOCAB_SIZE)[..., :4].to(self.trunk.norm.weight.dtype)
        return self.forward_onehot(onehot, mask, lengths)

    def forward_onehot(
        self, onehot: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`forward` on a float one-hot `(B, L, 4)` instead of tokens (see `Trunk.forward_onehot`);
        `mask` `(B, L)` marks the real bases, as for tokens (`tokens < N`)."""
        features = self.trunk.forward_onehot(onehot, lengths)
        return self.per_base_head(features, onehot), self.pooled_head(features, mask, lengths)
