"""Inputs by path or URL, read by byte range: local files with `os.pread`, URLs through fsspec.

Every input may be a URL that fsspec knows (`https://`, `s3://` with s3fs, `gs://` with gcsfs,
`file://`): readers only ever ask for byte ranges (`RangeReader.pread`), which the FASTA block
sources run on the runtime's I/O tasks, so a slow store keeps many reads in flight. Remote
ranges can be kept in a local cache folder (`set_cache_dir`, from `data.cache_dir`), one file
per range read, keyed by the URL, its size and its ETag / modification time. Every error names
the URL; a missing one is a one-line "not found".

A range read that fails on the way (a dropped connection, a body cut short, a timeout, a 5xx)
is sent again, up to READ_ATTEMPTS times in all with a doubling pause; one that keeps failing is
a SeqmodelInputError naming the URL and the byte range. Fewer bytes than asked for (the range
ends at or before the file's end) are never returned as data, and only a whole range is cached.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import tempfile
import time
from abc import ABC, abstractmethod
from pathlib import Path

from seqmodel.errors import SeqmodelInputError, require_file

URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://")

_cache = {"dir": None}

HEAD_BYTES = 64 << 10  # read whole on the first read inside it: magic numbers, headers
READ_TIMEOUT_S = 60.0  # an HTTP read that receives nothing for this long is dropped (and retried)
READ_ATTEMPTS = 4
RETRY_PAUSE_S = 0.1  # before the second attempt; doubled before each one after


def is_url(path: object) -> bool:
    """Whether `path` is a URL (`scheme://...`) rather than a local path."""
    return isinstance(path, str) and URL.match(path) is not None


def set_cache_dir(directory: str | os.PathLike | None) -> None:
    """Keep remote byte ranges under `directory` (None: no cache)."""
    _cache["dir"] = None if directory is None else Path(directory).expanduser()


def as_input(path: str | os.PathLike) -> Path | str:
    """A local path as a Path, a URL unchanged (a Path would fold its '//')."""
    return path if is_url(path) else Path(path)


def sibling(path: Path | str, suffix: str) -> Path | str:
    """The index file beside `path`: `genome.fa.gz` -> `genome.fa.gz.gzi`, for paths and URLs."""
    return f"{path}{suffix}" if is_url(path) else Path(f"{path}{suffix}")


def base_name(path: Path | str) -> str:
    """The last component of a path or URL, for task names and messages."""
    return str(path).rstrip("/").rsplit("/", 1)[-1] if is_url(path) else Path(path).name


def is_input_file(path: Path | str) -> bool:
    """Whether the (local or remote) file exists."""
    if not is_url(path):
        return Path(path).is_file()
    fs, inner = _filesystem(path)
    try:
        return bool(fs.isfile(inner))
    except Exception:  # noqa: BLE001 - any failure to look means it is not there to read
        return False


def require_input(path: str | os.PathLike, what: str) -> Path | str:
    """`path` checked to be a readable file: a Path, or the URL (raises SeqmodelInputError)."""
    if is_url(path):
        open_reader(path, what).close()
        return path
    return require_file(path, what)


def _filesystem(url: str):
    import fsspec  # only URLs need it

    options = {}
    if url.split("://", 1)[0].lower() in ("http", "https"):
        import aiohttp  # fsspec's HTTP client

        # aiohttp's default is 5 minutes per request in all: a stalled server would hold a read
        # for 20 minutes over the attempts. A silence limit drops it and lets the retry work.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=READ_TIMEOUT_S, sock_read=READ_TIMEOUT_S)
        options["client_kwargs"] = {"timeout": timeout}
    try:
        return fsspec.core.url_to_fs(url, **options)
    except (ImportError, ValueError) as error:
        raise SeqmodelInputError(url, None, f"cannot open this URL ({error})") from None


class RangeReader(ABC):
    """Bytes of one file by range. name: the path or URL that errors name; size: its length."""

    name: Path | str
    size: int

    @abstractmethod
    def pread(self, size: int, offset: int) -> bytes:
        """Up to `size` bytes from `offset` (fewer at the end of the file)."""

    def read_all(self) -> bytes:
        return self.pread(self.size, 0)

    def close(self) -> None:  # noqa: B027 - a remote reader holds nothing open
        """Release what the reader holds open."""

    def __enter__(self) -> RangeReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class LocalReader(RangeReader):
    """A local file: one descriptor, `os.pread` (thread-safe, no shared position)."""

    def __init__(self, path: Path):
        self.name = path
        self.fd = os.open(path, os.O_RDONLY)
        self.size = os.fstat(self.fd).st_size

    def pread(self, size: int, offset: int) -> bytes:
        return os.pread(self.fd, size, offset)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class RemoteReader(RangeReader):
    """A URL read with fsspec's ranged `cat_file`; ranges kept in the cache folder when one is set."""

    def __init__(self, url: str, what: str = "input file"):
        self.name = url
        self.fs, self.inner = _filesystem(url)
        try:
            info = self.fs.info(self.inner)
        except FileNotFoundError:
            raise SeqmodelInputError(url, None, f"{what} not found") from None
        except Exception as error:  # noqa: BLE001 - network and auth errors of any filesystem
            raise SeqmodelInputError(url, None, f"cannot open ({_reason(error)})") from None
        if info.get("type") == "directory":
            raise SeqmodelInputError(url, None, f"{what} is a directory, expected a file")
        if info.get("size") is None:
            raise SeqmodelInputError(url, None, "the server does not give the file's size")
        self.size = int(info["size"])
        self.version = str(
            info.get("ETag") or info.get("etag") or info.get("mtime") or info.get("LastModified") or ""
        )
        self.key = hashlib.sha256(f"{url}\0{self.size}\0{self.version}".encode()).hexdigest()[:24]
        self._head: bytes | None = None  # the file's first HEAD_BYTES, once read

    def pread(self, size: int, offset: int) -> bytes:
        lo, hi = offset, min(offset + size, self.size)
        if hi <= lo:
            return b""
        if hi <= HEAD_BYTES:  # format sniffing and the first block: one round trip for all
            if self._head is None:
                self._head = self._range(0, min(HEAD_BYTES, self.size))
            return self._head[lo:hi]
        return self._range(lo, hi)

    def _range(self, lo: int, hi: int) -> bytes:
        cached = self._cache_path(lo, hi)
        if cached is not None and cached.is_file():
            return cached.read_bytes()
        data = self._fetch(lo, hi)
        if cached is not None:
            _store(cached, data)
        return data

    def _fetch(self, lo: int, hi: int) -> bytes:
        """Bytes [lo, hi) from the store, all of them, sent again while the failure may pass."""
        where = f"bytes {lo}-{hi}"
        for attempt in range(READ_ATTEMPTS):
            if attempt:
                time.sleep(RETRY_PAUSE_S * 2 ** (attempt - 1))
            try:
                data = self.fs.cat_file(self.inner, start=lo, end=hi)
            except Exception as error:  # noqa: BLE001 - network errors of any filesystem
                if isinstance(error, FileNotFoundError):  # its text is only the URL again
                    raise SeqmodelInputError(self.name, where, "gone since it was opened") from None
                if not _may_pass(error):
                    raise SeqmodelInputError(self.name, where, f"cannot read ({_reason(error)})") from None
                failure = _reason(error)
                continue
            if len(data) == hi - lo:
                return data
            if len(data) > hi - lo:
                raise SeqmodelInputError(
                    self.name, where, f"got {len(data)} bytes: the server ignored the range"
                )
            # hi is within the file, so a short body is a connection that closed early, never data.
            failure = f"the connection closed after {len(data)} of {hi - lo} bytes"
        raise SeqmodelInputError(self.name, where, f"cannot read in {READ_ATTEMPTS} attempts ({failure})")

    def _cache_path(self, lo: int, hi: int) -> Path | None:
        root = _cache["dir"]
        return None if root is None else root / self.key / f"{lo}-{hi}"


def _may_pass(error: Exception) -> bool:
    """Whether sending a failed read again may succeed: not for a missing file, a refused
    permission or another 4xx answer (an aiohttp response error carries its HTTP `status`)."""
    if isinstance(error, (FileNotFoundError, PermissionError)):
        return False
    status = getattr(error, "status", None)
    return not (isinstance(status, int) and 400 <= status < 500 and status not in (408, 429))


def _reason(error: BaseException) -> str:
    if isinstance(error, TimeoutError):  # aiohttp's carry no text
        return f"nothing received for {READ_TIMEOUT_S:g} s"
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__


def _store(path: Path, data: bytes) -> None:
    """Write a cached range atomically (readers in other threads / processes see all or nothing)."""
    # A cache that cannot be written only costs the next read: failures are not errors.
    tmp = None
    with contextlib.suppress(OSError):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".part-", dir=path.parent)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
        tmp = None
    if tmp is not None:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def identity(path: Path | str) -> tuple[str, int, str]:
    """(where, size, version) of an input file: a local file's resolved path, size and mtime; a
    URL's size and ETag / modification time as its store gives them. An edited file changes it."""
    if is_url(path):
        reader = RemoteReader(str(path))
        return str(path), reader.size, reader.version
    stat = Path(path).stat()
    return str(Path(path).resolve()), stat.st_size, str(stat.st_mtime_ns)


def open_reader(path: str | os.PathLike, what: str = "input file") -> RangeReader:
    """A RangeReader of `path`: plain `os.pread` for a local file, fsspec for a URL."""
    if is_url(path):
        return RemoteReader(path, what)
    return LocalReader(require_file(path, what))


class _RangeStream(io.RawIOBase):
    """A RangeReader as a sequential raw stream (for the text readers)."""

    def __init__(self, reader: RangeReader):
        self.reader = reader
        self.position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.reader.pread(len(buffer), self.position)
        buffer[: len(data)] = data
        self.position += len(data)
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self.reader.close()
        super().close()


def open_stream(
    path: str | os.PathLike, what: str = "input file", buffer: int = 1 << 20
) -> io.BufferedReader:
    """`path` (local or URL) as a buffered binary stream, read in `buffer`-sized ranges."""
    return io.BufferedReader(_RangeStream(open_reader(path, what)), buffer_size=buffer)
