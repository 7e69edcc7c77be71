"""A labelled set of sequences held as flat arrays (a token store), and views of its records."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from seqmodel.data.labels import sequence_labels
from seqmodel.data.targets import mutation_counts, track_values
from seqmodel.data.token_cache import open_token_cache
from seqmodel.errors import SeqmodelInputError
from seqmodel.io.fasta import FastaRecord, load_fasta_tokens
from seqmodel.io.remote import as_input
from seqmodel.runtime import Runtime


@dataclass
class SequenceDataset:
    """Records concatenated into flat per-base arrays; record r spans `offsets[r]:offsets[r+1]`.

    tokens: `(T,)` uint8 token ids; base_target: `(T,)` float32 carrier counts (genomes with a
    mutation at the base, out of `genomes`);
    true_rate: `(T,)` float32, NaN where unknown (without a truth track: a read-only NaN
    array that takes no memory); labels: `(R,)` int64 class ids;
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
    genomes: int = 1

    @property
    def starts(self) -> np.ndarray:
        """`(R,)` int64: where each record starts in the flat arrays."""
        return self.offsets[:-1]

    @property
    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def __len__(self) -> int:
        return len(self.ids)

    def view(self, indices: np.ndarray) -> DatasetView:
        """The records `indices` (in that order), reading this dataset's arrays in place."""
        return DatasetView(self, np.asarray(indices, dtype=np.int64))

    def subset(self, indices: np.ndarray) -> SequenceDataset:
        """The records `indices` (in that order) as a new dataset with its own (copied) arrays."""
        indices = np.asarray(indices, dtype=np.int64)

        def gather(values: np.ndarray) -> np.ndarray:
            parts = [values[self.offsets[i] : self.offsets[i + 1]] for i in indices]
            return np.concatenate(parts) if parts else values[:0].copy()

        return SequenceDataset(
            ids=[self.ids[i] for i in indices],
            offsets=np.concatenate([[0], np.cumsum(self.lengths[indices])]).astype(np.int64),
            tokens=gather(self.tokens),
            base_target=gather(self.base_target),
            true_rate=gather(self.true_rate),
            labels=self.labels[indices],
            classes=self.classes,
            record_splits=None if self.record_splits is None else [self.record_splits[i] for i in indices],
            genomes=self.genomes,
        )


@dataclass(frozen=True)
class DatasetView:
    """Some records of a SequenceDataset (a split): the per-record arrays are its own, the
    flat per-base arrays (`tokens`, `base_target`, `true_rate`) are the dataset's, not a copy."""

    dataset: SequenceDataset
    records: np.ndarray  # (R',) int64 record indices into `dataset`

    @property
    def ids(self) -> list[str]:
        return [self.dataset.ids[i] for i in self.records]

    @property
    def starts(self) -> np.ndarray:
        return self.dataset.offsets[self.records]

    @property
    def lengths(self) -> np.ndarray:
        return self.dataset.offsets[self.records + 1] - self.dataset.offsets[self.records]

    @property
    def labels(self) -> np.ndarray:
        return self.dataset.labels[self.records]

    @property
    def tokens(self) -> np.ndarray:
        return self.dataset.tokens

    @property
    def base_target(self) -> np.ndarray:
        return self.dataset.base_target

    @property
    def true_rate(self) -> np.ndarray:
        return self.dataset.true_rate

    @property
    def classes(self) -> list[str]:
        return self.dataset.classes

    @property
    def genomes(self) -> int:
        return self.dataset.genomes

    def mean_rate(self) -> float:
        """Carriers per genome per valid (A/C/G/T) base over these records: the per-genome rate
        a model without context would predict."""
        carriers, bases = 0.0, 0
        offsets = self.dataset.offsets
        for record in self.records:
            lo, hi = offsets[record], offsets[record + 1]
            valid = self.tokens[lo:hi] < 4
            carriers += float(self.base_target[lo:hi].sum(where=valid, dtype=np.float64))
            bases += int(valid.sum())
        return carriers / (self.genomes * bases) if bases else 0.0

    def __len__(self) -> int:
        return len(self.records)


def _flat(arrays: list[np.ndarray], dtype) -> np.ndarray:
    if len(arrays) == 1:  # one record (a chromosome): no copy
        return arrays[0].astype(dtype, copy=False)
    return np.concatenate(arrays).astype(dtype, copy=False) if arrays else np.zeros(0, dtype=dtype)


def from_records(
    records: list[FastaRecord],
    fasta_path: str | os.PathLike,
    mutations: str | os.PathLike | None = None,
    true_rate: str | os.PathLike | None = None,
    labels: str | os.PathLike | None = None,
    classes: list[str] | None = None,
    tokens: np.ndarray | None = None,
    genomes: int | None = None,
) -> SequenceDataset:
    """Build a dataset from parsed records and the optional target / label files.

    tokens: the records' tokens already concatenated (a token store), used as is.
    genomes: how many genomes the mutations were observed in, where the file does not say
    (a VCF's `AN` or sample columns do); see `_genomes`.
    """
    lengths = [len(r) for r in records]
    total = sum(lengths)
    if mutations:
        counts, file_genomes = mutation_counts(mutations, records)
        base = _flat(counts, np.float32)
        genomes = _genomes(mutations, base, file_genomes, genomes)
    else:
        base = np.zeros(total, dtype=np.float32)  # pages are mapped only where written
        genomes = genomes or 1
    rate = (
        _flat(track_values(true_rate, records), np.float32)
        if true_rate
        else np.broadcast_to(np.float32(np.nan), (total,))
    )
    if labels is None and not any("label" in r.fields for r in records):
        label_ids, class_names = np.zeros(len(records), dtype=np.int64), list(classes or ["0", "1"])
    else:
        label_ids, class_names = sequence_labels(records, fasta_path, labels, classes)
    return SequenceDataset(
        ids=[r.id for r in records],
        offsets=np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64),
        tokens=_flat([r.tokens for r in records], np.uint8) if tokens is None else tokens,
        base_target=base,
        true_rate=rate,
        labels=label_ids,
        classes=class_names,
        record_splits=[r.fields.get("split") for r in records],
        genomes=genomes,
    )


def _genomes(
    path: str | os.PathLike, carriers: np.ndarray, from_file: int | None, from_config: int | None
) -> int:
    """The number of genomes behind the carrier counts: the file's word (VCF `AN` or sample
    columns), else the config's (`data.genomes`), else 1 when no base has more than one
    carrier (presence data: a BED of sites); a count above it is an error."""
    most = float(carriers.max(initial=0))
    genomes = from_file or from_config
    if genomes is None:
        if most > 1:
            raise SeqmodelInputError(
                path,
                None,
                f"up to {most:g} carriers per base but the number of genomes is unknown (set genomes)",
            )
        genomes = 1
    if most > genomes:
        raise SeqmodelInputError(
            path, None, f"{most:g} carriers at one base, more than the {genomes} genomes"
        )
    return int(genomes)


def load_dataset(
    fasta: str | os.PathLike,
    mutations: str | os.PathLike | None = None,
    true_rate: str | os.PathLike | None = None,
    labels: str | os.PathLike | None = None,
    token_cache: str | os.PathLike | None = None,
    runtime: Runtime | None = None,
    genomes: int | None = None,
) -> SequenceDataset:
    """Read a FASTA and its targets into a SequenceDataset.

    The FASTA is read into one token array (with `runtime`: blocks read and inflated by its
    I/O tasks, tokenized by its CPU tasks; None: in this thread). token_cache: a folder: the
    tokens come from the FASTA's token cache there instead (built on first use, the same
    way), memory-mapped rather than held in memory.
    """
    if token_cache is None:
        store = load_fasta_tokens(fasta, runtime)
    else:
        store = open_token_cache(fasta, token_cache, runtime)
    return from_records(
        store.records(), as_input(fasta), mutations, true_rate, labels, tokens=store.tokens, genomes=genomes
    )
