"""The package's one error type for bad user input, and the CLI wrapper that prints it as one line."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping
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


class ParameterError(SeqmodelInputError):
    """A bad argument value. Names the library's parameter (e.g. `mean_rate`); a CLI that set the
    parameter from a flag or config key names that instead (see `run_cli`)."""

    def __init__(self, parameter: str, message: str):
        self.parameter = parameter
        super().__init__(None, parameter, message)


def reraise_input_error(error: BaseException) -> None:
    """If bad input caused `error` (a runtime TaskError: its `original`), raise that input error.

    A SeqmodelInputError raised inside a loader task reaches the consumer wrapped in the
    task's error; this raises it again as a SeqmodelInputError (the task's error as its
    cause, for SEQMODEL_DEBUG tracebacks), so the CLI prints it as one line. Otherwise
    it returns and the caller re-raises `error`.
    """
    original = getattr(error, "original", None)
    if isinstance(original, SeqmodelInputError) and original is not error:
        raise SeqmodelInputError(original.path, original.where, original.message) from error


def argparse_flags(parser: argparse.ArgumentParser) -> dict[str, str]:
    """Parameter name (an option's `dest`) -> the flag that sets it, e.g. `mean_rate` -> `--mean-rate`."""
    return {action.dest: action.option_strings[-1] for action in parser._actions if action.option_strings}


def run_cli(main: Callable[[], object], flags: Mapping[str, str] | None = None) -> object:
    """Run an entry point; bad input or a failed read / write becomes one line on stderr.

    SeqmodelInputError and OSError (disk full, permission denied, ...) exit with code 2,
    Ctrl-C with 130. A ParameterError names the flag or config key that `flags` maps its
    parameter to. Set SEQMODEL_DEBUG=1 to get the full traceback instead.
    """
    try:
        return main()
    except (SeqmodelInputError, OSError) as error:
        if os.environ.get("SEQMODEL_DEBUG"):
            raise
        if isinstance(error, ParameterError) and flags and error.parameter in flags:
            error = SeqmodelInputError(None, flags[error.parameter], error.message)
        if isinstance(error, OSError) and not isinstance(error, SeqmodelInputError):
            where = f"{error.filename}: " if error.filename else ""
            error = f"{where}{error.strerror or error}"
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
