"""A FASTA tokenized once into a memory-mapped token store, shared through the page cache.

    cache = open_token_cache("genome.fa.gz", "~/.cache/seqmodel", runtime=rt)
    cache.tokens            # (T,) uint8 np.memmap: record r is tokens[offsets[r]:offsets[r + 1]]
    cache.windows(starts, 1000)   # (B, 1000) uint8 gathered windows

The cache lives in `<root>/<file name>.<key>/`, key = hash of the source's absolute path (or URL),
size and mtime (or ETag), so an edited or replaced file gets a new cache. It is built once (by
`read_fasta_chunks`: I/O tasks read, CPU tasks tokenize, an I/O task writes), into a
temporary folder renamed into place, under a lock, so concurrent processes (DDP ranks)
build it once and never see half a cache. Every process maps the same file: the pages
are shared, not copied per process or per worker.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from seqmodel.errors import SeqmodelInputError, reraise_input_error
from seqmodel.io.fasta import CHUNK_BYTES, FastaTokens, read_fasta_chunks
from seqmodel.io.remote import as_input, base_name, identity, require_input
from seqmodel.runtime import Runtime, TaskError

FORMAT_VERSION = 1


@dataclass
class TokenCache(FastaTokens):
    """A tokenized FASTA in `directory`: `tokens` `(T,)` uint8 is a read-only memmap, so records
    (`record`, `records`) are views of the map; `offsets` `(R + 1,)` int64."""

    directory: Path
    _views: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    def windows(self, starts: np.ndarray, length: int) -> np.ndarray:
        """`(B, length)` uint8 copies of `tokens[s : s + length]` for each flat start `s`.

        One fancy index over a strided view: numpy copies B contiguous rows (GIL released).
        """
        view = self._views.get(length)
        if view is None:  # every length-long stretch of the store, as rows (no copy)
            view = self._views[length] = sliding_window_view(self.tokens, length)
        return view[np.asarray(starts)]


def cache_key(path: Path | str) -> str:
    """Hash of the source's identity (absolute path or URL, size, mtime or ETag) and this
    format's version."""
    where, size, version = identity(path)
    text = f"{where}\0{size}\0{version}\0{FORMAT_VERSION}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cache_directory(path: str | os.PathLike, root: str | os.PathLike) -> Path:
    path = as_input(path)
    return Path(root).expanduser() / f"{base_name(path)}.{cache_key(path)}"


def load_token_cache(directory: Path) -> TokenCache:
    """Map a built cache (no check of the source; see `open_token_cache`)."""
    index = json.loads((directory / "index.json").read_text())
    offsets = np.load(directory / "offsets.npy")
    tokens = np.memmap(directory / "tokens.u8", dtype=np.uint8, mode="r")
    if len(tokens) != int(offsets[-1]) or len(offsets) != len(index["ids"]) + 1:
        raise SeqmodelInputError(directory, None, "token cache is incomplete; delete it to rebuild")
    return TokenCache(tokens, offsets, index["ids"], index["descriptions"], directory)


def open_token_cache(
    path: str | os.PathLike,
    root: str | os.PathLike,
    runtime: Runtime | None = None,
    chunk_bytes: int = CHUNK_BYTES,
) -> TokenCache:
    """The token cache of FASTA `path` under `root`, built first if there is none.

    runtime: build with it (reads on I/O tasks, tokenizing on CPU tasks, the whole build
    an I/O task ``cache <file>``); None: in this thread. Bad input raises
    SeqmodelInputError naming the file and record.
    """
    path = require_input(path, "input file")
    directory = cache_directory(path, root)
    if (directory / "index.json").is_file():
        return load_token_cache(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    with open(directory.parent / f".{directory.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another process may be building it: wait for it
        if not (directory / "index.json").is_file():
            if runtime is None:
                _build(path, directory, None, chunk_bytes)
            else:
                task = runtime.submit(
                    _build,
                    path,
                    directory,
                    runtime,
                    chunk_bytes,
                    pool="io",
                    name=f"cache {base_name(path)}",
                    context={"file": str(path)},
                )
                try:
                    task.result()
                except TaskError as error:
                    reraise_input_error(error)
                    raise
    return load_token_cache(directory)


def _build(path: Path | str, directory: Path, runtime: Runtime | None, chunk_bytes: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        ids: list[str] = []
        descriptions: list[str] = []
        lengths: list[int] = []
        with open(tmp / "tokens.u8", "wb") as out:
            for chunk in read_fasta_chunks(path, chunk_bytes, runtime=runtime):
                if chunk.offset == 0:
                    ids.append(chunk.record_id)
                    descriptions.append(chunk.description)
                    lengths.append(0)
                out.write(chunk.tokens.data)
                lengths[-1] += len(chunk.tokens)
        np.save(tmp / "offsets.npy", np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64))
        where, size, version = identity(path)
        index = {
            "version": FORMAT_VERSION,
            "source": {"path": where, "size": size, "version": version},
            "ids": ids,
            "descriptions": descriptions,
        }
        (tmp / "index.json").write_text(json.dumps(index))  # written last: its presence means complete
        if directory.exists():  # left incomplete by hand: we hold the lock, replace it
            shutil.rmtree(directory)
        os.rename(tmp, directory)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
