"""Figures as image files (PNG), written atomically: a temporary file beside the output, renamed."""

from __future__ import annotations

import os
from pathlib import Path

from seqmodel.errors import SeqmodelInputError
from seqmodel.io.atomic import atomic_path


def write_png(figure, path: str | os.PathLike, dpi: int = 130) -> Path:
    """Save a matplotlib Figure as PNG at `path`; nothing appears there unless it is complete."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise SeqmodelInputError(path, None, "figures are written as PNG: use a .png name")
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=dpi)
    return path
