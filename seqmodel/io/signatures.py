"""COSMIC single-base-substitution (SBS) signatures: the 96-channel table, trinucleotide
contexts of a sequence, and the NNLS refit of a mutation spectrum.

A channel is written as COSMIC writes it, `A[C>T]G`: the 5' base, the substitution of the
middle base and the 3' base, all on the strand where the reference middle base is a pyrimidine
(C or T). A G or A on the reference strand is counted as its reverse complement.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.optimize import nnls

from seqmodel.errors import ParameterError, SeqmodelInputError
from seqmodel.io import alphabet
from seqmodel.io.text import numbered_lines

SUBSTITUTIONS = ("C>A", "C>G", "C>T", "T>A", "T>C", "T>G")
# COSMIC order: 5' base, then substitution, then 3' base.
CHANNELS = tuple(f"{five}[{sub}]{three}" for five in "ACGT" for sub in SUBSTITUTIONS for three in "ACGT")
CHANNEL_INDEX = {name: index for index, name in enumerate(CHANNELS)}
# Pyrimidine-strand trinucleotide contexts: index = five * 8 + (0 for C, 1 for T) * 4 + three.
CONTEXTS = tuple(f"{five}{mid}{three}" for five in "ACGT" for mid in "CT" for three in "ACGT")
N_CHANNELS = len(CHANNELS)
N_CONTEXTS = len(CONTEXTS)
NO_CONTEXT = -1
COLUMN_SUM_TOLERANCE = 0.01
_CHANNEL_PATTERN = re.compile(r"^[ACGT]\[(C>[AGT]|T>[ACG])\][ACGT]$")


@dataclass(frozen=True)
class SignatureTable:
    """A signature table: `matrix` `(96, S)` probabilities, rows in `CHANNELS` order."""

    names: tuple[str, ...]
    matrix: np.ndarray
    path: str

    def column(self, name: str) -> np.ndarray:
        """The `(96,)` probabilities of one signature."""
        return self.matrix[:, self.names.index(name)]

    def mix(self, weights: Mapping[str, float]) -> np.ndarray:
        """The `(96,)` spectrum of a mix of signatures; weights are relative (normalized to 1).

        Raises SeqmodelInputError for an unknown name, a negative weight or all-zero weights.
        """
        unknown = [name for name in weights if name not in self.names]
        if unknown:
            raise ParameterError(
                "mix",
                f"unknown signature {unknown[0]!r}: not a column of {self.path} "
                f"(columns: {', '.join(self.names[:8])}, ...)",
            )
        values = np.array(list(weights.values()), dtype=np.float64)
        if (values < 0).any() or not np.isfinite(values).all() or values.sum() <= 0:
            raise ParameterError("mix", "weights must be finite, >= 0 and not all zero")
        columns = [self.names.index(name) for name in weights]
        spectrum = self.matrix[:, columns] @ (values / values.sum())
        return spectrum / spectrum.sum()


@dataclass(frozen=True)
class SignatureFit:
    """An NNLS refit: `weights` of each fitted signature (summing to 1), `cosine` between the
    spectrum and its reconstruction `reconstructed` `(96,)` (same units as the spectrum)."""

    weights: dict[str, float]
    cosine: float
    reconstructed: np.ndarray


def read_signatures(path: str | os.PathLike) -> SignatureTable:
    """Read a COSMIC SBS table (tab-separated, plain or gzip).

    Expected: a header `Type<TAB>SBS1<TAB>...`, then one row per channel (`A[C>A]A`, any
    order, each of the 96 exactly once) with one probability per signature; every column sums
    to 1 (within 0.01). Raises SeqmodelInputError naming the file and line otherwise.
    """
    lines = [line for _, line in numbered_lines(path, "signature table")]
    if not lines or not lines[0].strip():
        raise SeqmodelInputError(path, "line 1", "empty file, expected a header 'Type<TAB>SBS1...'")
    header = lines[0].rstrip("\n").split("\t")
    names = tuple(header[1:])
    if not names or any(not name for name in names):
        raise SeqmodelInputError(
            path, "line 1", "header must be a channel column then signature names, tab-separated"
        )
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise SeqmodelInputError(path, "line 1", f"duplicate signature name {duplicated[0]!r}")
    matrix = np.full((N_CHANNELS, len(names)), np.nan)
    seen: dict[str, int] = {}
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = line.split("\t")
        where = f"line {number}"
        if len(fields) != len(header):
            raise SeqmodelInputError(
                path, where, f"{len(fields)} fields, expected {len(header)} like the header"
            )
        channel = fields[0]
        if not _CHANNEL_PATTERN.match(channel):
            raise SeqmodelInputError(path, where, f"{channel!r} is not an SBS channel like 'A[C>T]G'")
        if channel in seen:
            raise SeqmodelInputError(path, where, f"channel {channel} repeats line {seen[channel]}")
        seen[channel] = number
        for column, text in enumerate(fields[1:]):
            try:
                value = float(text)
            except ValueError:
                value = math.nan
            if not math.isfinite(value) or value < 0:
                raise SeqmodelInputError(path, where, f"{names[column]}: {text!r} is not a probability >= 0")
            matrix[CHANNEL_INDEX[channel], column] = value
    missing = [channel for channel in CHANNELS if channel not in seen]
    if missing:
        raise SeqmodelInputError(path, None, f"{len(missing)} of the 96 channels missing, first {missing[0]}")
    sums = matrix.sum(axis=0)
    bad = np.flatnonzero(np.abs(sums - 1.0) > COLUMN_SUM_TOLERANCE)
    if bad.size:
        raise SeqmodelInputError(
            path,
            f"column {names[bad[0]]}",
            f"probabilities sum to {sums[bad[0]]:.4g}, expected 1",
        )
    return SignatureTable(names, matrix, str(path))


def parse_mix(text: str) -> dict[str, float]:
    """Parse `SBS1=0.2,SBS2=0.3` into {name: weight}, in the order given."""
    mix: dict[str, float] = {}
    for item in text.split(","):
        name, sep, value = item.strip().partition("=")
        try:
            weight = float(value)
        except ValueError:
            weight = math.nan
        if not sep or not name or not math.isfinite(weight):
            raise ParameterError("mix", f"{item.strip()!r} is not NAME=WEIGHT (e.g. SBS1=0.2)")
        if name in mix:
            raise ParameterError("mix", f"signature {name!r} given twice")
        mix[name] = weight
    return mix


def pyrimidine_contexts(tokens: np.ndarray) -> np.ndarray:
    """Pyrimidine-strand trinucleotide context of each base.

    Parameters
    ----------
    tokens : `(L,)` token ids (see `alphabet`).

    Returns
    -------
    `(L,)` int8 index into `CONTEXTS`, or `NO_CONTEXT` (-1) where the base or a neighbour is N
    or the base is the first or last of the sequence.
    """
    tokens = np.asarray(tokens)
    contexts = np.full(len(tokens), NO_CONTEXT, dtype=np.int8)
    if len(tokens) < 3:
        return contexts
    five, mid, three = tokens[:-2].astype(np.int16), tokens[1:-1], tokens[2:].astype(np.int16)
    valid = (five < alphabet.N) & (mid < alphabet.N) & (three < alphabet.N)
    purine = (mid == alphabet.A) | (mid == alphabet.G)
    complement = alphabet.COMPLEMENT_LUT
    # A purine middle base is read on the other strand: reverse complement the trinucleotide.
    left = np.where(purine, complement[three], five)
    middle = np.where(purine, complement[mid], mid)
    right = np.where(purine, complement[five], three)
    index = left * 8 + (middle == alphabet.T) * 4 + right
    contexts[1:-1] = np.where(valid, index, NO_CONTEXT)
    return contexts


def channel_of(context: np.ndarray, alt: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Channel index of substitutions `ref > alt` in pyrimidine `context` (all `(M,)`).

    `ref` and `alt` are reference-strand token ids; a purine `ref` is complemented with `alt`.
    """
    context = np.asarray(context, dtype=np.int64)
    ref = np.asarray(ref)
    purine = (ref == alphabet.A) | (ref == alphabet.G)
    alt_pyr = np.where(purine, alphabet.COMPLEMENT_LUT[np.asarray(alt)], alt).astype(np.int64)
    five, is_t, three = context // 8, (context // 4) % 2, context % 4
    # Substitutions from C go to A, G, T (0..2); from T to A, C, G (3..5).
    sub = np.where(is_t == 0, np.searchsorted([0, 2, 3], alt_pyr), 3 + alt_pyr)
    return five * 24 + sub * 4 + three


def context_counts(contexts: np.ndarray) -> np.ndarray:
    """`(32,)` number of bases in each pyrimidine context (`NO_CONTEXT` ignored)."""
    contexts = np.asarray(contexts)
    return np.bincount(contexts[contexts >= 0], minlength=N_CONTEXTS).astype(np.float64)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two vectors (0 when either is all zero)."""
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b) / norm) if norm > 0 else 0.0


def fit_signatures(
    spectrum: np.ndarray, table: SignatureTable, names: tuple[str, ...] | None = None
) -> SignatureFit:
    """Refit a `(96,)` mutation spectrum (counts per channel) to signatures by NNLS.

    `names` restricts the fit to those columns (default: every signature of the table).
    """
    names = table.names if names is None else tuple(names)
    basis = np.stack([table.column(name) for name in names], axis=1)
    exposures, _ = nnls(basis, np.asarray(spectrum, dtype=np.float64))
    total = exposures.sum()
    weights = exposures / total if total > 0 else exposures
    reconstructed = basis @ exposures
    return SignatureFit(
        {name: float(w) for name, w in zip(names, weights, strict=True)},
        cosine(spectrum, reconstructed),
        reconstructed,
    )
