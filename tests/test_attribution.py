"""ISM and Integrated Gradients (seqmodel.attribution) on tiny models with random or known weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from seqmodel.attribution import (
    Objective,
    explain_sequence,
    mean_centred,
    onehot,
    require_captum,
    reverse_complement_onehot,
    reverse_complement_tokens,
    saturation_mutagenesis,
)
from seqmodel.errors import ParameterError
from seqmodel.io import alphabet
from seqmodel.models.checkpoint import TrainedModel
from seqmodel.models.network import SeqModel
from seqmodel.models.predictor import RecordPredictor


def tiny_network(cell: str = "lstm", pooling: str = "attention", seed: int = 0) -> SeqModel:
    torch.manual_seed(seed)
    return SeqModel(
        num_classes=2,
        trunk={
            "cell": cell,
            "hidden_size": 6,
            "conv_channels": 6,
            "conv_kernel": 5,
            "conv_layers": 1,
            "num_layers": 1,
        },
        per_base_head={"hidden": 6},
        pooled_head={"hidden": 6, "pooling": pooling},
    ).eval()


def trained(window: int = 40, **kwargs) -> TrainedModel:
    return TrainedModel(tiny_network(**kwargs), window, ["background", "peak"])


def random_tokens(
    rng: np.random.Generator, length: int, n_runs: tuple[tuple[int, int], ...] = ()
) -> np.ndarray:
    tokens = rng.integers(0, 4, length).astype(np.uint8)
    for lo, hi in n_runs:
        tokens[lo:hi] = alphabet.N
    return tokens


def has_captum() -> bool:
    try:
        require_captum()
    except ParameterError:
        return False
    return True


needs_captum = pytest.mark.skipif(not has_captum(), reason="captum not installed (the interpret extra)")


# --- the float one-hot input path -----------------------------------------------------------------


@pytest.mark.parametrize("cell,pooling", [("lstm", "attention"), ("gru", "final"), ("lstm", "max")])
def test_float_onehot_path_equals_the_token_path(cell, pooling):
    network = tiny_network(cell, pooling)
    rng = np.random.default_rng(1)
    tokens = torch.from_numpy(rng.integers(0, 5, (6, 30))).long()  # N (4) anywhere
    lengths = torch.tensor([30, 30, 25, 17, 30, 9])
    for i, n in enumerate(lengths.tolist()):
        tokens[i, n:] = alphabet.N  # padding
    mask = tokens < alphabet.N
    x = torch.from_numpy(onehot(tokens.numpy()))
    assert x.shape == (6, 30, 4) and x.dtype == torch.float32
    assert torch.equal(x, F.one_hot(tokens, 5)[..., :4].float())
    with torch.no_grad():
        by_tokens = network(tokens, mask, lengths)
        by_onehot = network.forward_onehot(x, mask, lengths)
    for a, b in zip(by_tokens, by_onehot, strict=True):
        assert torch.equal(a, b)


def test_reverse_complement_of_tokens_and_one_hot_agree():
    rng = np.random.default_rng(2)
    tokens = torch.from_numpy(random_tokens(rng, 12, ((3, 5),))).long()[None]
    tokens[:, 10:] = alphabet.N  # 10 real bases, then padding
    reverse = reverse_complement_tokens(tokens, 10)
    expected = alphabet.reverse_complement(tokens[0, :10].numpy().astype(np.uint8))
    assert reverse[0, :10].tolist() == expected.tolist() and reverse[0, 10:].tolist() == [4, 4]
    assert torch.equal(reverse_complement_onehot(torch.from_numpy(onehot(tokens.numpy())), 10),
                       torch.from_numpy(onehot(reverse.numpy())))  # fmt: skip


# --- ISM ---------------------------------------------------------------------------------------


def test_ism_of_a_linear_function_gives_its_centred_weights():
    rng = np.random.default_rng(3)
    weights = rng.normal(size=(20, 4))
    tokens = random_tokens(rng, 20, ((7, 9),))

    def score(batch: torch.Tensor) -> torch.Tensor:
        return (F.one_hot(batch, 5)[..., :4].double() * torch.from_numpy(weights)).sum((1, 2))

    reference, deltas = saturation_mutagenesis(score, tokens, batch_size=7)
    valid = tokens < alphabet.N
    assert reference == pytest.approx(float((onehot(tokens) * weights).sum()))
    expected = weights - weights[np.arange(20), np.minimum(tokens, 3)][:, None]
    np.testing.assert_allclose(deltas[valid], expected[valid], atol=1e-12)
    assert (deltas[~valid] == 0).all()
    np.testing.assert_allclose(mean_centred(deltas)[valid], (weights - weights.mean(1, keepdims=True))[valid])


class LinearNetwork(nn.Module):
    """Class log-odds (peak vs background) = sum of `weights[j, base_j]`: a known linear function."""

    def __init__(self, weights: np.ndarray):
        super().__init__()
        self.weights = nn.Parameter(torch.from_numpy(weights).float())

    def forward(self, tokens, mask, lengths):
        return self.forward_onehot(F.one_hot(tokens.long(), 5)[..., :4].float(), mask, lengths)

    def forward_onehot(self, x, mask, lengths):
        score = (x * self.weights).sum((1, 2))
        return torch.zeros(x.shape[:2]), torch.stack([torch.zeros_like(score), score], dim=1)


@pytest.mark.parametrize("method", ["ism", pytest.param("ig", marks=needs_captum)])
def test_a_model_linear_in_the_one_hot_gets_its_known_contributions(method):
    rng = np.random.default_rng(4)
    weights = rng.normal(size=(32, 4))
    model = TrainedModel(LinearNetwork(weights), 32, ["background", "peak"])
    tokens = random_tokens(rng, 32, ((10, 12),))
    valid = tokens < alphabet.N
    result = explain_sequence(model, tokens, method, head="class", target="peak", rc_average=False, steps=4)
    ref = np.minimum(tokens, 3)
    at_reference = weights[np.arange(32), ref]
    assert result.score == pytest.approx(float(at_reference[valid].sum()), abs=1e-5)
    if method == "ism":  # the reference's score minus the mean over the four bases
        expected = weights - weights.mean(1, keepdims=True)
    else:  # constant gradients: the weights themselves, zero baseline
        expected = weights
        assert result.baseline_score == pytest.approx(0.0)
    np.testing.assert_allclose(result.hypothetical[valid], expected[valid], atol=1e-5)
    np.testing.assert_allclose(result.contribution[valid], expected[np.arange(32), ref][valid], atol=1e-5)
    assert np.isnan(result.contribution[~valid]).all()
    assert (result.hypothetical[~valid] == 0).all() and (result.onehot[~valid] == 0).all()
    np.testing.assert_array_equal(result.onehot, onehot(tokens))


def rate_sum(predictor: RecordPredictor, tokens: np.ndarray, lo: int = 0, hi: int | None = None) -> float:
    values, _ = predictor.predict_record(tokens)
    return float(np.nansum(values[lo:hi].astype(np.float64)))


def test_tiled_ism_is_the_change_of_the_predicted_track():
    """A record of 3 windows with N: ISM deltas are exactly the change of seqmodel-predict's
    stitched, reverse-complement-averaged track summed over the window."""
    model = trained(window=40)
    predictor = RecordPredictor(model, batch_size=64, rc_average=True)
    rng = np.random.default_rng(5)
    tokens = random_tokens(rng, 100, ((50, 53),))
    span = (30, 85)
    result = explain_sequence(model, tokens, "ism", head="base", span=span, batch_size=200)
    assert result.score == pytest.approx(rate_sum(predictor, tokens, *span), rel=1e-5)
    for j in (0, 19, 20, 31, 49, 60, 99):  # tile edges and cores, both ends
        scores = []
        for base in range(4):
            mutant = tokens.copy()
            mutant[j] = base
            scores.append(rate_sum(predictor, mutant, *span))
        scores = np.array(scores)
        np.testing.assert_allclose(result.hypothetical[j], scores - scores.mean(), atol=2e-6)
        assert result.contribution[j] == pytest.approx(scores[tokens[j]] - scores.mean(), abs=2e-6)


def test_class_head_of_one_tile_explains_the_predicted_log_odds():
    model = trained(window=40, pooling="mean")
    predictor = RecordPredictor(model, rc_average=False)
    tokens = random_tokens(np.random.default_rng(6), 33)
    result = explain_sequence(model, tokens, "ism", head="class", target="peak", rc_average=False)
    _, classes = predictor.predict_record(tokens)
    assert result.score == pytest.approx(float(np.log(classes[1] / classes[0])), abs=1e-5)
    mutant = tokens.copy()
    mutant[5] = (tokens[5] + 1) % 4
    _, mutant_classes = predictor.predict_record(mutant)
    delta = np.log(mutant_classes[1] / mutant_classes[0]) - result.score
    centred = result.hypothetical[5]
    assert centred[mutant[5]] - centred[tokens[5]] == pytest.approx(delta, abs=1e-5)


# --- Integrated Gradients ------------------------------------------------------------------------


@needs_captum
@pytest.mark.parametrize("head,target", [("base", None), ("class", "peak")])
def test_integrated_gradients_are_complete(head, target):
    """Contributions add up to f(x) - f(baseline), tiles and reverse complement included."""
    model = trained(window=40)
    tokens = random_tokens(np.random.default_rng(7), 90, ((40, 42),))
    result = explain_sequence(model, tokens, "ig", head=head, target=target, steps=48, batch_size=96)
    gap = result.score - result.baseline_score
    assert abs(gap) > 1e-4
    assert float(np.nansum(result.contribution)) == pytest.approx(gap, rel=2e-3, abs=1e-5)
    valid = tokens < alphabet.N
    hypothetical_at_reference = (result.hypothetical * result.onehot).sum(1)
    np.testing.assert_allclose(hypothetical_at_reference[valid], result.contribution[valid], rtol=1e-6)


def test_missing_captum_is_one_clear_error(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "captum", None)  # `import captum...` now raises ImportError
    monkeypatch.setitem(sys.modules, "captum.attr", None)
    with pytest.raises(ParameterError, match=r"ig needs captum: pip install 'seqmodel\[interpret\]'"):
        explain_sequence(trained(), random_tokens(np.random.default_rng(8), 20), "ig")


# --- arguments -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs,parameter",
    [
        ({"method": "deeplift"}, "method"),
        ({"head": "pooled"}, "head"),
        ({"head": "class"}, "target"),
        ({"head": "class", "target": "enhancer"}, "target"),
        ({"head": "base", "target": "peak"}, "target"),
        ({"span": (5, 500)}, "span"),
        ({"head": "class", "target": "peak", "span": (0, 5)}, "span"),
    ],
)
def test_bad_arguments_name_their_parameter(kwargs, parameter):
    with pytest.raises(ParameterError) as error:
        explain_sequence(trained(), random_tokens(np.random.default_rng(9), 20), **kwargs)
    assert error.value.parameter == parameter


def test_objective_of_a_class_needs_two_classes():
    with pytest.raises(ParameterError, match="at least two classes"):
        Objective(TrainedModel(tiny_network(), 40, ["only"]), "class", "only")
