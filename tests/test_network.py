import pytest
import torch

from seqmodel.errors import SeqmodelInputError
from seqmodel.models.network import POOLINGS, PerBaseHead, SeqModel, kmer_indicator

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


def test_kmer_indicator_is_the_centred_kmer_and_zero_at_ns_and_ends():
    tokens = torch.tensor([[0, 1, 2, 3, 4, 2, 1]])  # A C G T N G C
    onehot = torch.nn.functional.one_hot(tokens, 5)[..., :4].float()
    indicator = kmer_indicator(onehot, 3)
    assert indicator.shape == (1, 7, 64)
    # Base 1 (C) sits in A C G: code 0*16 + 1*4 + 2 = 6; base 2 in C G T: 1*16 + 2*4 + 3 = 27.
    assert indicator[0, 1].nonzero().flatten().tolist() == [6]
    assert indicator[0, 2].nonzero().flatten().tolist() == [27]
    for position in (0, 3, 4, 5, 6):  # past an end, or an N inside the 3-mer
        assert not indicator[0, position].any()


def test_the_context_term_holds_a_kmer_table_exactly_and_passes_gradients():
    torch.manual_seed(0)
    head = PerBaseHead(8, 4, context=3)
    table = torch.randn(64)
    with torch.no_grad():
        head.kmer_logit.weight.copy_(table[None])
    tokens = torch.randint(0, 4, (2, 12))
    onehot = torch.nn.functional.one_hot(tokens, 5)[..., :4].float().requires_grad_()
    features = torch.randn(2, 12, 8)
    plain = head.mlp(features).squeeze(-1)
    with_context = head(features, onehot)
    codes = tokens[:, :-2] * 16 + tokens[:, 1:-1] * 4 + tokens[:, 2:]
    torch.testing.assert_close(with_context[:, 1:-1] - plain[:, 1:-1], table[codes])
    torch.testing.assert_close(with_context[:, [0, -1]], plain[:, [0, -1]])
    with_context.sum().backward()
    assert onehot.grad is not None and onehot.grad.abs().sum() > 0


def test_a_new_context_term_starts_as_the_plain_head():
    torch.manual_seed(0)
    plain = SeqModel(2, TRUNK, {"hidden": 8}, {"hidden": 8, "pooling": "mean"}).eval()
    torch.manual_seed(0)
    wide = SeqModel(2, TRUNK, {"hidden": 8, "context": 3}, {"hidden": 8, "pooling": "mean"}).eval()
    tokens = torch.randint(0, 5, (2, 15))
    lengths = torch.tensor([15, 9])
    torch.testing.assert_close(plain(tokens, tokens < 4, lengths)[0], wide(tokens, tokens < 4, lengths)[0])
    with pytest.raises(SeqmodelInputError, match="context"):
        PerBaseHead(8, 4, context=2)
