"""The package's one error type for bad user input, and the CLI wrapper that prints it as one line."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path


class SeqmodelInputError(Exception):
    """Bad user input: names the file, where in it (line or record) and what was expected."""

    def __init__(self, path: str | os.PathLike | None, where: str | None, message: str):
        self.path = None if path is None else str(path)
        self.where = where
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        location = ":".join(part for part in (self.path, self.where) if part)
        return f"{location}: {self.message}" if location else self.message


def run_cli(main: Callable[[], object]) -> None:
    """Run an entry point; a SeqmodelInputError becomes one line on stderr and exit code 2.

    Set SEQMODEL_DEBUG=1 to get the full traceback instead.
    """
    try:
        main()
    except SeqmodelInputError as error:
        if os.environ.get("SEQMODEL_DEBUG"):
            raise
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)


def require_file(path: str | os.PathLike, what: str) -> Path:
    """Return `path` as a Path if it is a readable regular file, else raise SeqmodelInputError."""
    p = Path(path)
    if not p.exists():
        raise SeqmodelInputError(p, None, f"{what} not found")
    if p.is_dir():
        raise SeqmodelInputError(p, None, f"{what} is a directory, expected a file")
    return p
