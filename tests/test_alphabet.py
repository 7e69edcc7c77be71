import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from seqmodel.io import alphabet

dna = st.text(alphabet="ACGTN", max_size=300)
iupac = st.text(alphabet="ACGTNRYSWKMBDHVacgtnryswkmbdhv", max_size=300)


@given(dna)
def test_encode_decode_round_trip(seq):
    assert alphabet.decode(alphabet.encode(seq)) == seq


@given(iupac)
def test_lowercase_reads_as_uppercase_and_iupac_as_n(seq):
    expected = "".join(c if c in "ACGT" else "N" for c in seq.upper())
    assert alphabet.decode(alphabet.encode(seq)) == expected


@given(
    st.text(min_size=1, max_size=50).filter(
        lambda s: any(c not in "ACGTNRYSWKMBDHVacgtnryswkmbdhv" for c in s)
    )
)
def test_bytes_outside_the_alphabet_are_invalid(seq):
    assert alphabet.first_invalid(alphabet.encode(seq)) is not None


@given(dna)
def test_reverse_complement_is_an_involution(seq):
    tokens = alphabet.encode(seq)
    np.testing.assert_array_equal(alphabet.reverse_complement(alphabet.reverse_complement(tokens)), tokens)


def test_reverse_complement_of_known_sequence():
    assert alphabet.decode(alphabet.reverse_complement(alphabet.encode("AACGTN"))) == "NACGTT"
