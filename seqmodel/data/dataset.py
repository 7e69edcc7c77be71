"""A labelled set of sequences held as flat arrays (a token store), and its splits."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from seqmodel.data import alphabet
from seqmodel.io.fasta import FastaRecord, load_fasta
from seqmodel.data.labels import sequence_labels
from seqmodel.data.targets import mutation_targets, track_values
from seqmodel.data.token_cache import open_token_cache
from seqmodel.errors import SeqmodelInputError
from seqmodel.runtime import Runtime


@dataclass
class SequenceDataset:
    """Records concatenated into flat per-base arrays; record r spans `offsets[r]:offsets[r+1]`.

    tokens: `(T,)` uint8 token ids; base_target: `(T,)` float32 in [0, 1];
    true_rate: `(T,)` float32, NaN where unknown; labels: `(R,)` int64 class ids;
    record_splits: each record's `split=` header field (train / val / test) or None.
    """

    ids: list[str]
    offsets: np.ndarray
    tokens: np.ndarray
    base_target: np.ndarray
    true_rate: np.ndarray
    labels: np.ndarray
    classes: list[str]
    record_splits: list[str | None] | None = None

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, indices: np.ndarray) -> SequenceDataset:
        """The records `indices` (in that order) as a new dataset."""
        parts = [np.arange(self.offsets[i], self.offsets[i + 1]) for i in indices]
        flat = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        lengths = self.lengths[indices]
        return SequenceDataset(
            ids=[self.ids[i] for i in indices],
            offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
            tokens=self.tokens[flat],
            base_target=self.base_target[flat],
            true_rate=self.true_rate[flat],
            labels=self.labels[indices],
            classes=self.classes,
            record_splits=None if self.record_splits is None else [self.record_splits[i] for i in indices],
        )


def _flat(arrays: list[np.ndarray], dtype) -> np.ndarray:
    return np.concatenate(arrays).astype(dtype, copy=False) if arrays else np.zeros(0, dtype=dtype)


def from_records(
    records: list[FastaRecord],
    fasta_path: str | os.PathLike,
    mutations: str | os.PathLike | None = None,
    true_rate: str | os.PathLike | None = None,
    labels: str | os.PathLike | None = None,
    classes: list[str] | None = None,
    tokens: np.ndarray | None = None,
) -> SequenceDataset:
    """Build a dataset from parsed records and the optional target / label files.

    tokens: the records' tokens already concatenated (a token cache's map), used as is.
    """
    base = (
        mutation_targets(mutations, records)
        if mutations
        else [np.zeros(len(r), dtype=np.float32) for r in records]
    )
    rate = (
        track_values(true_rate, records)
        if true_rate
        else [np.full(len(r), np.nan, dtype=np.float32) for r in records]
    )
    if labels is None and not any("label" in r.fields for r in records):
        label_ids, class_names = np.zeros(len(records), dtype=np.int64), list(classes or ["0", "1"])
    else:
        label_ids, class_names = sequence_labels(records, fasta_path, labels, classes)
    lengths = [len(r) for r in records]
    return SequenceDataset(
        ids=[r.id for r in records],
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        tokens=_flat([r.tokens for r in records], np.uint8) if tokens is None else tokens,
        base_target=_flat(base, np.float32),
        true_rate=_flat(rate, np.float32),
        labels=label_ids,
        classes=class_names,
        record_splits=[r.fields.get("split") for r in records],
    )


def load_dataset(
    fasta: str | os.PathLike,
    mutations: str | os.PathLike | None = None,
    true_rate: str | os.PathLike | None = None,
    labels: str | os.PathLike | None = None,
    token_cache: str | os.PathLike | None = None,
    runtime: Runtime | None = None,
) -> SequenceDataset:
    """Read a FASTA and its targets into a SequenceDataset.

    token_cache: a folder: tokens come from the FASTA's token cache there (built on first
    use, with `runtime` when given), memory-mapped rather than parsed into memory.
    """
    if token_cache is None:
        return from_records(load_fasta(fasta), Path(fasta), mutations, true_rate, labels)
    cache = open_token_cache(fasta, token_cache, runtime)
    return from_records(cache.records(), Path(fasta), mutations, true_rate, labels, tokens=cache.tokens)


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


def split_records(
    num_records: int, val_fraction: float, test_fraction: float, seed: int
) -> dict[str, np.ndarray]:
    """Disjoint train / val / test record indices from a seeded permutation (sorted within each)."""
    order = np.random.default_rng(seed).permutation(num_records)
    n_val = int(round(num_records * val_fraction))
    n_test = int(round(num_records * test_fraction))
    if num_records - n_val - n_test < 1 or (val_fraction > 0 and n_val == 0):
        raise ValueError(f"{num_records} records are too few for val={val_fraction}, test={test_fraction}")
    splits = {
        "val": np.sort(order[:n_val]),
        "test": np.sort(order[n_val : n_val + n_test]),
        "train": np.sort(order[n_val + n_test :]),
    }
    return splits


def valid_mask(tokens: np.ndarray) -> np.ndarray:
    """True where a base is A, C, G or T (N and padding are masked out)."""
    return tokens < alphabet.N
