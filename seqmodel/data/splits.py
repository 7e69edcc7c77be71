"""Train / validation / test splits of records, and the check that splits do not overlap.

`record_splits` is the one split that training and evaluation both use: the `split=` header
fields that `seqmodel-prepare` writes (by genome block, see `block_splits`), or a seeded
permutation of the records.

`block_splits` (used by `seqmodel-prepare`): records are grouped into blocks of the genome
(`chrom`, `start // block_size`); whole blocks go to one split, so neighbouring sequence never
lands on both sides of a split. A record that is not placed on a genome (plain id) is a block
of its own.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from seqmodel.data.intervals import overlapping_pairs
from seqmodel.errors import ParameterError, SeqmodelInputError
from seqmodel.io.genome import chrom_key

if TYPE_CHECKING:
    from seqmodel.data.dataset import SequenceDataset

SPLITS = ("train", "val", "test")
# (chrom, start, end, record id), 0-based half-open.
Interval = tuple[str, int, int, str]


def block_splits(
    intervals: Sequence[Interval],
    block_size: int,
    val_fraction: float,
    test_fraction: float,
    seed: int,
) -> list[str]:
    """The split ("train", "val" or "test") of each record.

    Blocks are visited in a seeded random order; a block goes to test (else val) when that
    split is short of its fraction of the records by more than the block would overshoot it;
    the remaining blocks are train.
    """
    if block_size < 1:
        raise ParameterError("block_size", f"{block_size} must be >= 1")
    if not (0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1):
        raise ParameterError("val_fraction", "need val and test fractions in [0, 1) that sum to < 1")
    keys = [(chrom_key(chrom), start // block_size) for chrom, start, _, _ in intervals]
    blocks = sorted(set(keys))
    order = np.random.default_rng(seed).permutation(len(blocks))
    sizes = {block: 0 for block in blocks}
    for key in keys:
        sizes[key] += 1
    wanted = {"test": test_fraction * len(keys), "val": val_fraction * len(keys)}
    taken = {"test": 0, "val": 0}
    block_split = {}
    for index in order:
        block = blocks[index]
        split = next(
            (s for s in ("test", "val") if taken[s] + sizes[block] - wanted[s] < wanted[s] - taken[s]),
            "train",
        )
        block_split[block] = split
        if split != "train":
            taken[split] += sizes[block]
    splits = [block_split[key] for key in keys]
    if "train" not in splits:
        raise ParameterError(
            "split_block", f"no block left for training ({len(blocks)} blocks); use smaller blocks"
        )
    return splits


def check_disjoint(groups: Mapping[str, Sequence[Interval]]) -> None:
    """Raise SeqmodelInputError naming two records when records of different groups overlap."""
    rows = [(name, record_id) for name, intervals in groups.items() for *_, record_id in intervals]
    spans = [(chrom_key(c), start, end) for intervals in groups.values() for c, start, end, _ in intervals]
    for i, j in overlapping_pairs(spans):
        (first, first_id), (second, second_id) = rows[j], rows[i]
        if first != second:
            raise SeqmodelInputError(
                None,
                None,
                f"{first} record {first_id} overlaps {second} record {second_id}: splits must not overlap",
            )


def record_splits(
    dataset: SequenceDataset,
    fasta_path: str | os.PathLike,
    *,
    split_from_headers: bool,
    val_fraction: float,
    test_fraction: float,
    seed: int,
) -> dict[str, np.ndarray]:
    """Record indices of "train", "val" and "test": from the `split=` header fields with
    `split_from_headers`, else `permuted_splits` with the fractions."""
    if split_from_headers:
        return header_splits(dataset, fasta_path)
    return permuted_splits(len(dataset), val_fraction, test_fraction, seed)


def header_splits(dataset: SequenceDataset, fasta_path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Record indices by the `split=` header field (as `seqmodel-prepare` writes it); every
    record must name train, val or test."""
    names = dataset.record_splits or [None] * len(dataset)
    for index, name in enumerate(names):
        if name not in ("train", "val", "test"):
            raise SeqmodelInputError(
                fasta_path,
                f"record {index + 1} ({dataset.ids[index]})",
                f"split={name} (expected split=train, val or test on every record)",
            )
    return {split: np.flatnonzero(np.array(names) == split) for split in ("train", "val", "test")}


def permuted_splits(
    num_records: int, val_fraction: float, test_fraction: float, seed: int
) -> dict[str, np.ndarray]:
    """Disjoint train / val / test record indices from a seeded permutation (sorted within each)."""
    order = np.random.default_rng(seed).permutation(num_records)
    n_val = int(round(num_records * val_fraction))
    n_test = int(round(num_records * test_fraction))
    if num_records - n_val - n_test < 1 or (val_fraction > 0 and n_val == 0):
        raise ParameterError(
            "val_fraction",
            f"{num_records} record(s) are too few for val={val_fraction}, test={test_fraction}: every split"
            " with a fraction > 0 needs a whole record (split a chromosome into windows, or set the"
            " fractions to 0)",
        )
    splits = {
        "val": np.sort(order[:n_val]),
        "test": np.sort(order[n_val : n_val + n_test]),
        "train": np.sort(order[n_val + n_test :]),
    }
    return splits
