"""The per-base likelihood, the head's starting bias, the joint-training gradient scale and the
metrics that must not report a number they cannot compute."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import binom

from seqmodel.data.batches import Batch
from seqmodel.models.module import HeadMetrics, Pearson64, gradient_cosine, per_base_loss
from seqmodel.models.network import SeqModel, per_genome_rate

MODEL = {
    "trunk": {"hidden_size": 8, "num_layers": 1, "conv_channels": 8, "conv_layers": 1, "dropout": 0.0},
    "per_base_head": {"hidden": 8},
    "pooled_head": {"hidden": 8, "pooling": "mean"},
}


def test_binomial_loss_is_the_binomial_likelihood():
    rng = np.random.default_rng(0)
    genomes = 37
    logits = torch.tensor(rng.normal(-3, 1.5, size=(3, 50)))
    rate = torch.sigmoid(logits).numpy()
    carriers = rng.binomial(genomes, rate).astype(np.float64)
    mask = torch.tensor(rng.random((3, 50)) < 0.8)
    loss = per_base_loss(logits, torch.tensor(carriers), mask, genomes, "binomial", None)
    m = mask.numpy()
    # -log L without the binomial coefficient, which does not depend on the rate.
    log_choose = np.log([math.comb(genomes, int(k)) for k in carriers[m]])
    brute = -(binom.logpmf(carriers[m], genomes, rate[m]) - log_choose).sum()
    assert float(loss) * m.sum() == pytest.approx(brute, rel=1e-9)


def test_binomial_loss_is_smallest_at_the_true_rate():
    carriers = torch.full((1, 1000), 3.0)
    mask = torch.ones(1, 1000, dtype=torch.bool)
    rates = np.linspace(0.005, 0.2, 400)
    losses = [
        float(
            per_base_loss(torch.full((1, 1000), math.log(r / (1 - r))), carriers, mask, 100, "binomial", None)
        )
        for r in rates
    ]
    assert rates[int(np.argmin(losses))] == pytest.approx(0.03, abs=0.001)


def test_presence_head_is_read_back_as_a_rate():
    rate = torch.tensor([1e-4, 1e-3, 0.02])
    presence = 1 - (1 - rate) ** 50
    logits = torch.log(presence / (1 - presence))
    assert torch.allclose(per_genome_rate(logits, "presence", 50), rate, rtol=1e-4)
    assert torch.allclose(per_genome_rate(logits, "binomial", 50), presence, rtol=1e-5)


def test_per_base_bias_starts_at_the_mean_rate():
    model = SeqModel(num_classes=2, **MODEL)
    model.per_base_head.start_at_rate(2e-3)
    bias = model.per_base_head.mlp[-1].bias.detach()
    assert float(torch.sigmoid(bias)) == pytest.approx(2e-3, rel=1e-5)


def _losses(model, tokens):
    lengths = torch.full((tokens.shape[0],), tokens.shape[1])
    base, classes = model(tokens, tokens < 4, lengths)
    return base.pow(2).mean(), torch.nn.functional.cross_entropy(classes, torch.tensor([0, 1]))


@pytest.mark.parametrize("scale", [0.0, 0.25, 1.0])
def test_pooled_head_gradient_into_the_trunk_is_scaled(scale):
    torch.manual_seed(0)
    tokens = torch.randint(0, 4, (2, 30))
    full = SeqModel(num_classes=2, **MODEL)
    scaled = SeqModel(
        num_classes=2, **{**MODEL, "pooled_head": {**MODEL["pooled_head"], "trunk_grad_scale": scale}}
    )
    scaled.load_state_dict(full.state_dict())
    grads = []
    for model in (full, scaled):
        _, seq_loss = _losses(model, tokens)
        trunk = list(model.trunk.parameters())
        found = torch.autograd.grad(seq_loss, trunk, allow_unused=True)
        grads.append([torch.zeros_like(p) if g is None else g for g, p in zip(found, trunk, strict=True)])
    for g_full, g_scaled in zip(*grads, strict=True):
        assert torch.allclose(g_scaled, scale * g_full, atol=1e-7)


def test_gradient_cosine_of_a_loss_with_itself_is_one():
    torch.manual_seed(0)
    model = SeqModel(num_classes=2, **MODEL)
    base_loss, seq_loss = _losses(model, torch.randint(0, 4, (2, 30)))
    trunk = list(model.trunk.parameters())
    assert float(gradient_cosine((base_loss, base_loss), trunk)) == pytest.approx(1.0)
    assert -1.0 <= float(gradient_cosine((base_loss, seq_loss), trunk)) <= 1.0


def test_pearson_of_small_rates_matches_numpy_in_float64():
    rng = np.random.default_rng(1)
    truth = rng.gamma(2.0, 2e-4, size=2_000_000)
    predicted = truth * rng.lognormal(0, 0.3, size=truth.size)
    metric = Pearson64()
    for part in np.array_split(np.arange(truth.size), 40):
        metric.update(
            torch.tensor(predicted[part], dtype=torch.float32), torch.tensor(truth[part], dtype=torch.float32)
        )
    expected = np.corrcoef(predicted.astype(np.float32), truth.astype(np.float32))[0, 1]
    assert float(metric.compute()) == pytest.approx(expected, abs=1e-6)


def _batch(labels, carriers):
    b, length = len(labels), carriers.shape[1]
    return Batch(
        tokens=torch.zeros(b, length, dtype=torch.long),
        mask=torch.ones(b, length, dtype=torch.bool),
        lengths=torch.full((b,), length),
        base_target=carriers,
        seq_target=torch.tensor(labels),
        true_rate=torch.full((b, length), float("nan")),
        window_ids=torch.arange(b),
    )


def test_metrics_that_cannot_be_computed_are_absent():
    metrics = HeadMetrics(num_classes=2)
    carriers = torch.zeros(3, 10)
    carriers[0, 2] = 2.0
    metrics.update(torch.rand(3, 10), torch.randn(3, 2), _batch([1, 1, 1], carriers))
    values = metrics.compute_and_reset()
    assert "seq_auroc" not in values  # one class among the labels
    assert "pearson_true_rate" not in values  # no true rate
    assert {"base_auroc", "base_auprc", "seq_acc"} <= set(values)
    metrics.update(torch.rand(2, 10), torch.randn(2, 2), _batch([0, 1], torch.zeros(2, 10)))
    values = metrics.compute_and_reset()
    assert "seq_auroc" in values and "base_auroc" not in values  # no mutated base this time
