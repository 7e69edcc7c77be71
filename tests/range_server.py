"""A local HTTP file server with byte ranges, a set latency and injected faults, for tests and
scripts/bench_storage.py.

    with RangeServer(folder, latency=0.005) as server:
        url = server.url("genome.fa.gz")     # http://127.0.0.1:PORT/genome.fa.gz
        server.requests                      # requests served so far
        server.sleeps                        # requests that slept `latency` first
        server.shortest_sleep                # the shortest of those sleeps, as the server timed it

    with RangeServer(folder, cut=BodyCut(after=1000, times=2)) as server:
        ...                                  # the first 2 GETs stop after 1000 bytes of the body

Serves the files of one folder (no subfolders): HEAD and GET, `Range: bytes=a-b` / `a-` /
`-n` answered with 206, a missing file with 404. Every request first sleeps `latency`
seconds (a slow store's time to first byte); each is served on its own thread, HTTP/1.1
with keep-alive. A `BodyCut` makes GET replies longer than `after` bytes send only that much
of the body and then close the socket: a connection dropped mid-read. Binds 127.0.0.1 port 0;
leaving the `with` stops the server thread.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


@dataclass(frozen=True)
class BodyCut:
    """GET replies cut short: `after` bytes of the body sent, then the connection closed.

    times: how many replies to cut, the first ones (None: every reply longer than `after`).
    declare_length: send the full Content-Length, so the client can see the body end early;
    False sends none (the body then ends where the connection closes), so only counting the
    bytes against the range asked for shows the cut.
    """

    after: int = 0
    times: int | None = None
    declare_length: bool = True
    stall: float = 0.0  # seconds the server then sends nothing before it closes (a stalled store)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_HEAD(self) -> None:  # noqa: N802 - the http.server naming
        self._serve(body=False)

    def do_GET(self) -> None:  # noqa: N802
        self._serve(body=True)

    def _serve(self, body: bool) -> None:
        with self.server.count_lock:
            self.server.requests += 1
        if self.server.latency:
            start = time.monotonic()
            time.sleep(self.server.latency)
            slept = time.monotonic() - start
            with self.server.count_lock:
                self.server.sleeps += 1
                self.server.shortest_sleep = min(self.server.shortest_sleep, slept)
        name = self.path.split("?", 1)[0].lstrip("/")
        path = self.server.root / name
        if "/" in name or not path.is_file():
            self._reply(404, b"not found\n", body)
            return
        size = path.stat().st_size
        lo, hi = 0, size  # half-open
        status = 200
        header = self.headers.get("Range")
        if header:
            match = RANGE.match(header.strip())
            if match is None or not (match[1] or match[2]):
                self._reply(416, b"bad range\n", body)
                return
            if match[1]:
                lo = int(match[1])
                hi = min(int(match[2]) + 1, size) if match[2] else size
            else:  # the last n bytes
                lo = max(size - int(match[2]), 0)
            if lo >= size or hi <= lo:
                self._reply(416, b"range not satisfiable\n", body, {"Content-Range": f"bytes */{size}"})
                return
            status = 206
        with open(path, "rb") as handle:
            handle.seek(lo)
            data = handle.read(hi - lo) if body else b""
        extra = {"Accept-Ranges": "bytes"}
        if status == 206:
            extra["Content-Range"] = f"bytes {lo}-{hi - 1}/{size}"
        cut = self.server.take_cut(len(data)) if body else None
        if cut is None:
            self._reply(status, data, body, extra, length=hi - lo)
            return
        if not cut.declare_length:
            extra["Connection"] = "close"
        self._reply(status, data[: cut.after], body, extra, length=hi - lo, send_length=cut.declare_length)
        if cut.stall:
            self.wfile.flush()
            time.sleep(cut.stall)
        self.close_connection = True  # the socket closes with the body short of what was asked

    def _reply(
        self, status: int, data: bytes, body: bool, extra=None, length: int | None = None, send_length=True
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        if send_length:
            self.send_header("Content-Length", str(len(data) if length is None else length))
        for key, value in (extra or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if body:
            self.wfile.write(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64

    def __init__(self, root: Path, latency: float, cut: BodyCut | None):
        super().__init__(("127.0.0.1", 0), _Handler)
        self.root = Path(root)
        self.latency = latency
        self.cut = cut
        self.requests = 0
        self.cuts = 0
        self.sleeps = 0
        self.shortest_sleep = float("inf")
        self.count_lock = threading.Lock()

    def take_cut(self, body_bytes: int) -> BodyCut | None:
        """The cut to apply to a reply of `body_bytes` (counted as done), or None to send it whole."""
        with self.count_lock:
            cut = self.cut
            if cut is None or body_bytes <= cut.after or (cut.times is not None and self.cuts >= cut.times):
                return None
            self.cuts += 1
            return cut


class RangeServer:
    """The server of `folder` on a thread; see the module docstring."""

    def __init__(self, folder: str | Path, latency: float = 0.0, cut: BodyCut | None = None):
        self._server = _Server(Path(folder), latency, cut)
        self._thread = threading.Thread(target=self._server.serve_forever, name="range-server", daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def requests(self) -> int:
        return self._server.requests

    @property
    def cuts(self) -> int:
        """GET replies cut short since `cut` was last set."""
        return self._server.cuts

    @property
    def sleeps(self) -> int:
        """Requests that slept `latency` before their answer."""
        return self._server.sleeps

    @property
    def shortest_sleep(self) -> float:
        """The shortest of those sleeps as the server timed it, in seconds (inf before any)."""
        return self._server.shortest_sleep

    @property
    def latency(self) -> float:
        return self._server.latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        self._server.latency = seconds

    @property
    def cut(self) -> BodyCut | None:
        return self._server.cut

    @cut.setter
    def cut(self, cut: BodyCut | None) -> None:
        with self._server.count_lock:
            self._server.cut = cut
            self._server.cuts = 0

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def start(self) -> RangeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def __enter__(self) -> RangeServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
