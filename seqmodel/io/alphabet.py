"""The DNA alphabet: token ids, the N / IUPAC / lowercase policy, and the reverse complement.

Policy (one place for it):
- A, C, G, T -> 0, 1, 2, 3; soft-masked lowercase reads as uppercase.
- N and the IUPAC ambiguity codes (R Y S W K M B D H V) -> N (4). N positions are masked
  out of losses and metrics and get no value in per-base outputs.
- Any other byte is an error (the caller names the file and record).
"""

from __future__ import annotations

import numpy as np

BASES = "ACGTN"
A, C, G, T, N = range(5)
VOCAB_SIZE = 5
INVALID = 255
IUPAC_AMBIGUOUS = "RYSWKMBDHVN"

ENCODE_LUT = np.full(256, INVALID, dtype=np.uint8)
for _token, _base in enumerate("ACGT"):
    ENCODE_LUT[ord(_base)] = _token
    ENCODE_LUT[ord(_base.lower())] = _token
for _code in IUPAC_AMBIGUOUS:
    ENCODE_LUT[ord(_code)] = N
    ENCODE_LUT[ord(_code.lower())] = N

DECODE_LUT = np.frombuffer(BASES.encode(), dtype=np.uint8)
COMPLEMENT_LUT = np.array([T, G, C, A, N], dtype=np.uint8)


def encode(seq: bytes | str) -> np.ndarray:
    """Token ids `(L,)` uint8 for a sequence; bytes outside the alphabet become INVALID (255)."""
    if isinstance(seq, str):
        seq = seq.encode("ascii", errors="replace")
    return ENCODE_LUT[np.frombuffer(seq, dtype=np.uint8)]


def decode(tokens: np.ndarray) -> str:
    """Inverse of `encode` for valid tokens (uppercase, ambiguity codes as N)."""
    return DECODE_LUT[np.asarray(tokens, dtype=np.intp)].tobytes().decode()


def first_invalid(tokens: np.ndarray) -> int | None:
    """0-based offset of the first INVALID token, or None."""
    bad = np.flatnonzero(tokens == INVALID)
    return int(bad[0]) if bad.size else None


def reverse_complement(tokens: np.ndarray) -> np.ndarray:
    """Reverse complement of token ids along the last axis (N stays N); an involution."""
    return COMPLEMENT_LUT[tokens[..., ::-1]]
