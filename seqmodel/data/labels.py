"""Sequence labels: from FASTA headers (`label=...`) or a TSV / BED file keyed by record.

Labels are either all integers (class ids 0..K-1) or all names (classes sorted by name).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from seqmodel.errors import SeqmodelInputError, require_file
from seqmodel.io.fasta import FastaRecord
from seqmodel.io.tables import read_labels


def _label_table(path: Path) -> dict[str, tuple[str, str]]:
    """record id -> (label text, where) from an `id<TAB>label` TSV or a `chrom start end label` BED."""
    return {row.key: (row.label, f"line {row.line}") for row in read_labels(path)}


def sequence_labels(
    records: Sequence[FastaRecord],
    fasta_path: str | os.PathLike,
    labels_path: str | os.PathLike | None = None,
    classes: Sequence[str] | None = None,
) -> tuple[np.ndarray, list[str]]:
    """Class ids `(R,)` int64 for every record, and the class names.

    `classes`, when given (e.g. from a checkpoint), fixes the class order; otherwise integer
    labels map to themselves and names are sorted.
    """
    if labels_path is not None:
        source = require_file(labels_path, "labels file")
        table = _label_table(source)
    else:
        source = Path(fasta_path)
        table = {
            r.id: (r.fields["label"], f"record {r.index + 1} ({r.id})")
            for r in records
            if "label" in r.fields
        }
    texts = []
    for record in records:
        if record.id not in table:
            raise SeqmodelInputError(
                source,
                f"record {record.index + 1} ({record.id})",
                "missing sequence label (expected label=... in the header or a row in the labels file)",
            )
        texts.append(table[record.id])
    numeric = [text.lstrip("-").isdigit() for text, _ in texts]
    if classes is None:
        if all(numeric):
            ids = [int(text) for text, _ in texts]
            if min(ids) < 0:
                raise SeqmodelInputError(source, None, "integer labels must be >= 0")
            classes = [str(i) for i in range(max(max(ids) + 1, 2))]
        elif any(numeric):
            text, where = texts[numeric.index(True)]
            raise SeqmodelInputError(
                source, where, f"mixed label types: {text!r} is a number, others are names"
            )
        else:
            classes = sorted({text for text, _ in texts})
    lookup = {name: i for i, name in enumerate(classes)}
    ids = []
    for text, where in texts:
        if text not in lookup:
            raise SeqmodelInputError(source, where, f"unknown class {text!r} (known: {', '.join(classes)})")
        ids.append(lookup[text])
    return np.asarray(ids, dtype=np.int64), list(classes)
