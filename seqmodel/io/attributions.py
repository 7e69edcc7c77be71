"""The `.npz` output of seqmodel-explain, and the two inputs of TF-MoDISco (modisco-lite) beside it.

`contrib.npz` (an uncompressed zip of `.npy`, `np.load` reads it) holds, per explained
sequence `<id>` (a FASTA record, or a `regions=` interval named `chrom:start-end`):

| key | shape, dtype | content |
|---|---|---|
| `<id>` | `(L,)` float32 | the contribution of each base, NaN at N (as a predict `.npz` track) |
| `hypothetical/<id>` | `(4, L)` float32 | hypothetical contributions, rows A, C, G, T |
| `onehot/<id>` | `(4, L)` float32 | the sequence, rows A, C, G, T (N: all zero) |

The per-sequence arrays are channel-first, `(4, L)`, the layout of modisco's inputs.
`modisco motifs` reads one array `(N, 4, L)` from each of two files (`arr_0` of an `.npz`),
so beside the output go `contrib.modisco_onehot.npz` and `contrib.modisco_hypothetical.npz`:

    modisco motifs -s contrib.modisco_onehot.npz -a contrib.modisco_hypothetical.npz -n 2000 -w 200

Their `arr_0` stacks the sequences as `(N, 4, L_max)` float32: sequences of different lengths
are centred in `L_max` bases (modisco cuts its window `-w` around the centre) and padded with
zeros on both sides; a zero column is no base and has zero attribution, so padding never
makes a seqlet. Choose `-w` at most the shortest length to keep every window on real bases.
Each file also holds `ids` `(N,)`, `offsets` `(N,)` (where each sequence starts in `L_max`)
and `lengths` `(N,)`, which modisco ignores.

Per-sequence arrays pass through a spool file beside the output; nothing appears at the three
paths until all three are complete (each is written to a temporary file, then renamed).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from seqmodel.errors import SeqmodelInputError
from seqmodel.io.atomic import write_errors_name


def modisco_paths(output: str | os.PathLike) -> tuple[Path, Path]:
    """`contrib.npz` -> (`contrib.modisco_onehot.npz`, `contrib.modisco_hypothetical.npz`)."""
    output = Path(output)
    stem = output.name[: -len(".npz")] if output.name.lower().endswith(".npz") else output.name
    return (
        output.with_name(f"{stem}.modisco_onehot.npz"),
        output.with_name(f"{stem}.modisco_hypothetical.npz"),
    )


def _write_member(archive: zipfile.ZipFile, name: str, array: np.ndarray) -> None:
    with archive.open(f"{name}.npy", "w", force_zip64=True) as member:
        np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)


class AttributionWriter:
    """Context manager: `add(id, contribution, hypothetical, onehot)` per sequence, in order.

    contribution `(L,)`, hypothetical and onehot `(L, 4)` (columns A, C, G, T); stored as the
    module's docstring says. Memory: one sequence's arrays.
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.modisco = modisco_paths(self.path)
        if not self.path.parent.is_dir():
            raise SeqmodelInputError(self.path, None, f"output directory {self.path.parent} does not exist")
        self._stack = contextlib.ExitStack()
        self._records: list[tuple[str, int, int]] = []  # id, length, offset in the spool (floats)
        self._spooled = 0

    def __enter__(self) -> AttributionWriter:
        self._dir = Path(tempfile.mkdtemp(prefix=f".{self.path.name}.", dir=self.path.parent))
        self._stack.callback(shutil.rmtree, self._dir, True)
        self._archive = self._stack.enter_context(
            zipfile.ZipFile(self._dir / "out.npz", "w", allowZip64=True)
        )
        self._spool = self._stack.enter_context(open(self._dir / "spool.f32", "wb"))
        return self

    def add(
        self, record_id: str, contribution: np.ndarray, hypothetical: np.ndarray, onehot: np.ndarray
    ) -> None:
        length = len(contribution)
        if hypothetical.shape != (length, 4) or onehot.shape != (length, 4):
            raise ValueError(
                f"{record_id}: arrays of shapes {hypothetical.shape}, {onehot.shape} for {length} bases"
            )
        hypothetical = np.ascontiguousarray(hypothetical.T, dtype=np.float32)
        onehot = np.ascontiguousarray(onehot.T, dtype=np.float32)
        with write_errors_name(self.path):
            _write_member(self._archive, record_id, np.asarray(contribution, dtype=np.float32))
            _write_member(self._archive, f"hypothetical/{record_id}", hypothetical)
            _write_member(self._archive, f"onehot/{record_id}", onehot)
            self._spool.write(onehot.tobytes())
            self._spool.write(hypothetical.tobytes())
        self._records.append((record_id, length, self._spooled))
        self._spooled += 8 * length

    def _write_modisco(self, path: Path, which: int) -> None:
        """`arr_0` `(N, 4, L_max)`: the spooled onehot (which=0) or hypothetical (1) arrays, centred."""
        longest = max((length for _, length, _ in self._records), default=0)
        offsets = np.array([(longest - length) // 2 for _, length, _ in self._records], dtype=np.int64)
        lengths = np.array([length for _, length, _ in self._records], dtype=np.int64)
        with (
            zipfile.ZipFile(path, "w", allowZip64=True) as archive,
            open(self._dir / "spool.f32", "rb") as spool,
        ):
            with archive.open("arr_0.npy", "w", force_zip64=True) as member:
                header = {"descr": "<f4", "fortran_order": False, "shape": (len(self._records), 4, longest)}
                np.lib.format.write_array_header_2_0(member, header)
                for (_, length, offset), start in zip(self._records, offsets.tolist(), strict=True):
                    spool.seek(4 * (offset + which * 4 * length))
                    values = np.fromfile(spool, dtype=np.float32, count=4 * length).reshape(4, length)
                    row = np.zeros((4, longest), dtype=np.float32)
                    row[:, start : start + length] = values
                    member.write(row.tobytes())
            _write_member(
                archive, "ids", np.array([record_id for record_id, _, _ in self._records], dtype=str)
            )
            _write_member(archive, "offsets", offsets)
            _write_member(archive, "lengths", lengths)

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                with write_errors_name(self.path):
                    self._archive.close()
                    self._spool.close()
                    finals = [self.path, *self.modisco]
                    temporaries = [
                        self._dir / "out.npz",
                        self._dir / "onehot.npz",
                        self._dir / "hypothetical.npz",
                    ]
                    self._write_modisco(temporaries[1], 0)
                    self._write_modisco(temporaries[2], 1)
                    for temporary in temporaries:
                        os.chmod(temporary, 0o644)
                    for temporary, final in zip(temporaries, finals, strict=True):
                        os.replace(temporary, final)
        finally:
            self._stack.__exit__(exc_type, exc, tb)
