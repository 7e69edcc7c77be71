"""Motif files (JASPAR count matrices, MEME letter-probability matrices), log-odds position
weight matrices and a vectorised scan of both strands of token arrays.

Scores are log2 odds against a background (uniform unless given). A window containing N
has no score (-inf), so it is never a hit.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from seqmodel.errors import SeqmodelInputError
from seqmodel.io.text import numbered_lines

UNIFORM_BACKGROUND = (0.25, 0.25, 0.25, 0.25)
# Total pseudocount per column, shared out by the background (as JASPAR's TFBSTools does).
DEFAULT_PSEUDOCOUNT = 0.8
# MEME's default when a matrix line gives no nsites=.
MEME_DEFAULT_NSITES = 20.0
PROBABILITY_SUM_TOLERANCE = 0.01
_JASPAR_ROW = re.compile(r"^\s*(?:([ACGTacgt])\s*)?\[?\s*([^\[\]]*?)\s*\]?\s*$")
_MEME_KEY_VALUE = re.compile(r"(\w+)\s*=\s*(\S+)")


@dataclass(frozen=True)
class Motif:
    """A motif as read from a file: `counts` `(4, W)` (rows A, C, G, T; site counts)."""

    id: str
    name: str
    counts: np.ndarray

    @property
    def width(self) -> int:
        return self.counts.shape[1]

    def pwm(
        self,
        pseudocount: float = DEFAULT_PSEUDOCOUNT,
        background: Sequence[float] = UNIFORM_BACKGROUND,
    ) -> PositionWeightMatrix:
        """Log2-odds matrix: log2((count + pseudocount * bg) / (total + pseudocount) / bg).

        `total` is the column's count total; `pseudocount` must be > 0.
        """
        if pseudocount <= 0:
            raise ValueError("pseudocount must be > 0")
        bg = np.asarray(background, dtype=np.float64)[:, None]
        probs = (self.counts + pseudocount * bg) / (self.counts.sum(axis=0) + pseudocount)
        return PositionWeightMatrix(self.id, np.log2(probs / bg))


@dataclass(frozen=True)
class MotifHit:
    """One hit: `start`, `end` 0-based half-open on the forward strand; `strand` '+' or '-'."""

    start: int
    end: int
    strand: str
    score: float


@dataclass(frozen=True)
class PositionWeightMatrix:
    """`log_odds` `(4, W)` log2-odds scores, rows A, C, G, T."""

    motif_id: str
    log_odds: np.ndarray

    @property
    def width(self) -> int:
        return self.log_odds.shape[1]

    @property
    def min_score(self) -> float:
        return float(self.log_odds.min(axis=0).sum())

    @property
    def max_score(self) -> float:
        return float(self.log_odds.max(axis=0).sum())

    def threshold(self, relative: float) -> float:
        """The log-odds score at a relative score in [0, 1] (0 = worst window, 1 = best)."""
        return self.min_score + relative * (self.max_score - self.min_score)

    def scores(self, tokens: np.ndarray) -> np.ndarray:
        """Scores of every window on both strands.

        Parameters
        ----------
        tokens : `(..., L)` token ids.

        Returns
        -------
        `(..., 2, L - W + 1)` log2-odds; `[..., 0, i]` is the forward window starting at i,
        `[..., 1, i]` the reverse complement of that same window; -inf where it holds an N.
        """
        tokens = np.asarray(tokens)
        n = max(tokens.shape[-1] - self.width + 1, 0)
        out = np.zeros((*tokens.shape[:-1], 2, n))
        if n == 0:
            return out
        no_score = np.full((1, self.width), -np.inf)
        forward = np.vstack([self.log_odds, no_score])
        # Reversing the rows A C G T gives T G C A: the complement.
        reverse = np.vstack([self.log_odds[::-1, ::-1], no_score])
        for j in range(self.width):
            column = tokens[..., j : j + n]
            out[..., 0, :] += forward[column, j]
            out[..., 1, :] += reverse[column, j]
        return out

    def hits(self, tokens: np.ndarray, threshold: float) -> list[MotifHit]:
        """Windows of a `(L,)` sequence scoring >= `threshold` (log2 odds), by start then strand."""
        scores = self.scores(tokens)
        strand_index, starts = np.nonzero(scores >= threshold)
        order = np.lexsort((strand_index, starts))
        return [
            MotifHit(int(s), int(s) + self.width, "+-"[k], float(scores[k, s]))
            for k, s in zip(strand_index[order], starts[order], strict=True)
        ]

    def hit_mask(self, tokens: np.ndarray, threshold: float) -> np.ndarray:
        """`(L,)` bool: the base lies inside a hit on either strand."""
        tokens = np.asarray(tokens)
        is_hit = (self.scores(tokens) >= threshold).any(axis=0)
        # A base is covered when a hit starts within width - 1 bases upstream of it.
        starts = np.zeros(len(tokens) + 1, dtype=np.int64)
        starts[1 : len(is_hit) + 1] = np.cumsum(is_hit)
        starts[len(is_hit) + 1 :] = starts[len(is_hit)]
        position = np.arange(len(tokens))
        first = np.maximum(position - self.width + 1, 0)
        return starts[position + 1] - starts[first] > 0

    def best_score(self, tokens: np.ndarray) -> np.ndarray:
        """`(...)` best score over both strands of each `(..., L)` sequence (-inf if none)."""
        scores = self.scores(tokens)
        if scores.shape[-1] == 0:
            return np.full(scores.shape[:-2], -np.inf)
        return scores.max(axis=(-2, -1))


def read_motifs(path: str | os.PathLike) -> list[Motif]:
    """Read a JASPAR (`.jaspar`, count matrices) or MEME (`MEME version 4`) motif file.

    The format is told from the first non-blank line. Raises SeqmodelInputError naming the
    file and line for a malformed file, no motif or a duplicate motif id.
    """
    lines = [line for _, line in numbered_lines(path, "motif file")]
    first = next((line.strip() for line in lines if line.strip()), "")
    if first.startswith("MEME version"):
        motifs = _parse_meme(path, lines)
    elif first.startswith(">"):
        motifs = _parse_jaspar(path, lines)
    else:
        raise SeqmodelInputError(
            path,
            None,
            "not a motif file: expected JASPAR ('>ID NAME' then rows A C G T) or MEME ('MEME version 4')",
        )
    if not motifs:
        raise SeqmodelInputError(path, None, "no motifs in the file")
    seen: set[str] = set()
    for motif in motifs:
        if motif.id in seen:
            raise SeqmodelInputError(path, f"motif {motif.id}", "duplicate motif id")
        seen.add(motif.id)
    return motifs


def select_motif(motifs: Sequence[Motif], motif_id: str, path: str | os.PathLike) -> Motif:
    """The motif with id `motif_id`; SeqmodelInputError listing the ids when it is absent."""
    for motif in motifs:
        if motif.id == motif_id:
            return motif
    ids = ", ".join(motif.id for motif in motifs[:20])
    raise SeqmodelInputError(path, None, f"no motif with id {motif_id!r} (ids: {ids})")


def _numbers(text: str) -> list[float] | None:
    try:
        values = [float(word) for word in text.split()]
    except ValueError:
        return None
    return values if all(math.isfinite(v) and v >= 0 for v in values) else None


def _parse_jaspar(path: str | os.PathLike, lines: list[str]) -> list[Motif]:
    motifs: list[Motif] = []
    number = 0
    while number < len(lines):
        line = lines[number]
        number += 1
        if not line.strip():
            continue
        if not line.startswith(">"):
            raise SeqmodelInputError(
                path, f"line {number}", "expected a '>ID NAME' header before the matrix rows"
            )
        words = line[1:].split(None, 1)
        if not words:
            raise SeqmodelInputError(path, f"line {number}", "header has no motif id")
        rows = []
        for letter in "ACGT":
            if number >= len(lines) or not lines[number].strip():
                raise SeqmodelInputError(
                    path, f"line {number + 1}", f"motif {words[0]}: expected the {letter} row"
                )
            where = f"line {number + 1}"
            match = _JASPAR_ROW.match(lines[number])
            values = _numbers(match[2]) if match else None
            if match is None or values is None or not values:
                raise SeqmodelInputError(path, where, f"motif {words[0]}: {letter} row is not counts >= 0")
            if match[1] and match[1].upper() != letter:
                raise SeqmodelInputError(
                    path, where, f"motif {words[0]}: row {match[1]!r}, expected {letter}"
                )
            if rows and len(values) != len(rows[0]):
                raise SeqmodelInputError(
                    path,
                    where,
                    f"motif {words[0]}: {len(values)} columns, the A row has {len(rows[0])}",
                )
            rows.append(values)
            number += 1
        counts = np.array(rows, dtype=np.float64)
        if (counts.sum(axis=0) <= 0).any():
            raise SeqmodelInputError(path, f"line {number - 3}", f"motif {words[0]}: a column with no counts")
        motifs.append(Motif(words[0], words[1].strip() if len(words) > 1 else "", counts))
    return motifs


def _parse_meme(path: str | os.PathLike, lines: list[str]) -> list[Motif]:
    motifs: list[Motif] = []
    motif_id, name, header_line = "", "", 0
    number = 0
    while number < len(lines):
        line = lines[number].strip()
        number += 1
        where = f"line {number}"
        if line.startswith("ALPHABET") and line.partition("=")[2].strip() != "ACGT":
            raise SeqmodelInputError(path, where, "only the DNA alphabet ACGT is supported")
        if line.startswith("MOTIF"):
            words = line.split()
            if len(words) < 2:
                raise SeqmodelInputError(path, where, "MOTIF line has no motif id")
            motif_id, name, header_line = words[1], " ".join(words[2:]), number
        elif line.startswith("letter-probability matrix"):
            if not motif_id or header_line == 0:
                raise SeqmodelInputError(path, where, "matrix without a MOTIF line before it")
            keys = dict(_MEME_KEY_VALUE.findall(line.partition(":")[2]))
            if keys.get("alength", "4") != "4":
                raise SeqmodelInputError(path, where, f"motif {motif_id}: alength must be 4")
            try:
                width = int(keys["w"]) if "w" in keys else None
                nsites = float(keys.get("nsites", MEME_DEFAULT_NSITES))
            except ValueError:
                raise SeqmodelInputError(path, where, f"motif {motif_id}: bad w= or nsites= value") from None
            rows = []
            while number < len(lines) and (width is None or len(rows) < width):
                values = _numbers(lines[number])
                if values is None or not values:
                    break
                if len(values) != 4 or abs(sum(values) - 1) > PROBABILITY_SUM_TOLERANCE:
                    raise SeqmodelInputError(
                        path,
                        f"line {number + 1}",
                        f"motif {motif_id}: expected 4 probabilities summing to 1",
                    )
                rows.append(values)
                number += 1
            if not rows or (width is not None and len(rows) != width):
                raise SeqmodelInputError(
                    path,
                    f"line {number + 1}",
                    f"motif {motif_id}: {len(rows)} matrix rows, expected {width or 'some'}",
                )
            counts = np.array(rows, dtype=np.float64).T * max(nsites, 1.0)
            motifs.append(Motif(motif_id, name, counts))
            header_line = 0
    return motifs
