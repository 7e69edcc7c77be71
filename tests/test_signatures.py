from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from seqmodel.errors import SeqmodelInputError
from seqmodel.io import alphabet
from seqmodel.io.signatures import (
    CHANNELS,
    CONTEXTS,
    NO_CONTEXT,
    channel_of,
    context_counts,
    fit_signatures,
    parse_mix,
    pyrimidine_contexts,
    read_signatures,
)

COSMIC = Path(__file__).resolve().parents[1] / "data" / "COSMIC_v3_SBS_GRCh37.tsv"


def write_table(path: Path, rows: list[str], header: str = "Type\tSigA\tSigB") -> Path:
    path.write_text(header + "\n" + "".join(row + "\n" for row in rows))
    return path


def uniform_rows() -> list[str]:
    return [f"{channel}\t{1 / 96}\t{1 / 96}" for channel in CHANNELS]


def test_reads_the_cosmic_table_in_channel_order():
    table = read_signatures(COSMIC)
    assert table.matrix.shape == (96, len(table.names)) == (96, 67)
    assert table.names[:3] == ("SBS1", "SBS2", "SBS3")
    np.testing.assert_allclose(table.matrix.sum(axis=0), 1, atol=0.01)
    # SBS1 is C>T at CpG: its largest channel is a [C>T]G.
    assert CHANNELS[int(np.argmax(table.column("SBS1")))].endswith("[C>T]G")


def test_rows_in_any_order_are_put_in_channel_order(tmp_path):
    rng = np.random.default_rng(0)
    values = rng.dirichlet(np.ones(96))
    rows = [f"{c}\t{float(v)!r}\t{1 / 96}" for c, v in zip(CHANNELS, values, strict=True)]
    shuffled = [rows[i] for i in rng.permutation(96)]
    table = read_signatures(write_table(tmp_path / "t.tsv", shuffled))
    np.testing.assert_array_equal(table.column("SigA"), values)


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda rows: rows.__setitem__(3, rows[3].replace(f"{1 / 96}", "abc", 1)), "line 5"),
        (lambda rows: rows.__setitem__(0, "A[C>C]A\t0.5\t0.5"), "line 2: 'A[C>C]A' is not"),
        (lambda rows: rows.__setitem__(1, rows[0]), "line 3: channel A[C>A]A repeats line 2"),
        (lambda rows: rows.pop(), "1 of the 96 channels missing, first T[T>G]T"),
        (lambda rows: rows.__setitem__(5, rows[5] + "\t0.1"), "line 7: 4 fields, expected 3"),
        (lambda rows: rows.__setitem__(5, rows[5].split("\t")[0] + "\t0.5\t0"), "column SigA"),
    ],
)
def test_bad_table_error_names_file_and_line(tmp_path, edit, expected):
    rows = uniform_rows()
    edit(rows)
    path = write_table(tmp_path / "bad.tsv", rows)
    with pytest.raises(SeqmodelInputError, match="bad.tsv") as error:
        read_signatures(path)
    assert expected in str(error.value)


def test_duplicate_signature_name_is_an_error(tmp_path):
    path = write_table(tmp_path / "t.tsv", uniform_rows(), header="Type\tSigA\tSigA")
    with pytest.raises(SeqmodelInputError, match="line 1: duplicate signature name 'SigA'"):
        read_signatures(path)


def test_mix_is_the_weighted_mean_of_columns():
    table = read_signatures(COSMIC)
    spectrum = table.mix(parse_mix("SBS2=1,SBS13=3"))
    expected = (table.column("SBS2") + 3 * table.column("SBS13")) / 4
    np.testing.assert_allclose(spectrum, expected / expected.sum())


@pytest.mark.parametrize(
    "text, expected",
    [
        ("SBS1", "'SBS1' is not NAME=WEIGHT"),
        ("SBS1=x", "'SBS1=x' is not NAME=WEIGHT"),
        ("SBS1=0.5,SBS1=0.5", "given twice"),
    ],
)
def test_bad_mix_text_is_an_error(text, expected):
    with pytest.raises(SeqmodelInputError, match=expected):
        parse_mix(text)


def test_unknown_or_negative_mix_weights_are_errors():
    table = read_signatures(COSMIC)
    with pytest.raises(SeqmodelInputError, match="unknown signature 'SBS999'"):
        table.mix({"SBS1": 1.0, "SBS999": 1.0})
    with pytest.raises(SeqmodelInputError, match=">= 0"):
        table.mix({"SBS1": -1.0})


def test_contexts_on_the_pyrimidine_strand():
    tokens = alphabet.encode("ACGTAGCNTCA")
    contexts = pyrimidine_contexts(tokens)
    names = [CONTEXTS[c] if c != NO_CONTEXT else None for c in contexts]
    # ACG -> ACG; CGT (G) -> ACG; GTA -> GTA; TAG (A) -> CTA; AGC (G) -> GCT; GCN, CNT, NTC: none.
    assert names == [None, "ACG", "ACG", "GTA", "CTA", "GCT", None, None, None, "TCA", None]


def test_channel_of_a_purine_substitution_is_complemented():
    tokens = alphabet.encode("AGC")  # G>A read on the other strand: GCT, C>T
    context = pyrimidine_contexts(tokens)[1:2]
    channel = channel_of(context, np.array([alphabet.A]), tokens[1:2])
    assert CHANNELS[int(channel[0])] == "G[C>T]T"
    channel = channel_of(pyrimidine_contexts(alphabet.encode("TCA"))[1:2], [alphabet.G], [1])
    assert CHANNELS[int(channel[0])] == "T[C>G]A"


@given(st.text(alphabet="ACGTN", min_size=0, max_size=60))
def test_contexts_are_strand_symmetric(seq):
    tokens = alphabet.encode(seq)
    forward = pyrimidine_contexts(tokens)
    reverse = pyrimidine_contexts(alphabet.reverse_complement(tokens))
    np.testing.assert_array_equal(forward, reverse[::-1])


def test_context_counts_ignore_bases_without_context():
    counts = context_counts(pyrimidine_contexts(alphabet.encode("ACGTAGCNTCA")))
    assert counts.sum() == 6 and counts[CONTEXTS.index("ACG")] == 2


def test_nnls_refit_recovers_an_exact_mix():
    table = read_signatures(COSMIC)
    spectrum = 300 * table.column("SBS3") + 700 * table.column("SBS13")
    fit = fit_signatures(spectrum, table)
    assert fit.cosine > 0.9999
    assert list(fit.weights) == list(table.names)
    expected = {name: {"SBS3": 0.3, "SBS13": 0.7}.get(name, 0.0) for name in table.names}
    assert fit.weights == pytest.approx(expected, abs=1e-6)
