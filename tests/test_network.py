import pytest
import torch

from seqmodel.errors import SeqmodelInputError
from seqmodel.models.network import POOLINGS, SeqModel

TRUNK = {
    "cell": "lstm",
    "conv_channels": 8,
    "conv_kernel": 5,
    "conv_layers": 1,
    "hidden_size": 8,
    "num_layers": 2,
    "dropout": 0.0,
}


def model(cell="lstm", pooling="attention", classes=3):
    torch.manual_seed(0)
    return SeqModel(classes, {**TRUNK, "cell": cell}, {"hidden": 8}, {"hidden": 8, "pooling": pooling}).eval()


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("pooling", POOLINGS)
def test_output_shapes(cell, pooling):
    tokens = torch.randint(0, 5, (4, 30))
    lengths = torch.tensor([30, 12, 1, 30])
    base, classes = model(cell, pooling)(tokens, tokens < 4, lengths)
    assert base.shape == (4, 30) and classes.shape == (4, 3)
    assert torch.isfinite(base).all() and torch.isfinite(classes).all()


@pytest.mark.parametrize("pooling", POOLINGS)
def test_padding_does_not_change_predictions_of_real_bases(pooling):
    net = model(pooling=pooling)
    tokens = torch.randint(0, 4, (1, 20))
    alone_base, alone_classes = net(tokens, tokens < 4, torch.tensor([20]))
    padded = torch.cat([tokens, torch.full((1, 15), 4)], dim=1)
    mask = torch.cat([torch.ones(1, 20, dtype=torch.bool), torch.zeros(1, 15, dtype=torch.bool)], dim=1)
    pad_base, pad_classes = net(padded, mask, torch.tensor([20]))
    torch.testing.assert_close(pad_base[:, :20], alone_base, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(pad_classes, alone_classes, atol=1e-5, rtol=1e-5)


def test_masked_positions_do_not_enter_the_pooled_output():
    net = model(pooling="mean")
    tokens = torch.randint(0, 4, (1, 20))
    mask = torch.ones(1, 20, dtype=torch.bool)
    mask[0, 5:9] = False
    lengths = torch.tensor([20])
    features = net.trunk(tokens, lengths)
    changed = features.clone()
    changed[0, 5:9] += 100.0
    torch.testing.assert_close(
        net.pooled_head(features, mask, lengths), net.pooled_head(changed, mask, lengths)
    )


def test_unknown_cell_is_rejected():
    with pytest.raises(SeqmodelInputError, match="cell"):
        SeqModel(2, {**TRUNK, "cell": "rnn"}, {"hidden": 4}, {"hidden": 4})
