"""Figures as image files (PNG), written atomically: a temporary file beside the output, renamed."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from seqmodel.errors import SeqmodelInputError
from seqmodel.io.atomic import write_errors_name


def write_png(figure, path: str | os.PathLike, dpi: int = 130) -> Path:
    """Save a matplotlib Figure as PNG at `path`; nothing appears there unless it is complete."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise SeqmodelInputError(path, None, "figures are written as PNG: use a .png name")
    if not path.parent.is_dir():
        raise SeqmodelInputError(path, None, f"output directory {path.parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with write_errors_name(path), os.fdopen(fd, "wb") as handle:
            figure.savefig(handle, format="png", dpi=dpi)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path
