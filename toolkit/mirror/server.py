"""A static-file HTTP server over a folder, with fault injection.

It serves an Open-Images-shaped folder (see ``generate.py``) the way the real hosts do:
metadata files carry Google Cloud Storage's ``x-goog-hash``, images can be fetched with
``Range``, and a photo "gone from Flickr" redirects to a placeholder PNG with HTTP 200.
Faults (``faults.py``: error statuses, connection resets, truncated bodies, slow answers,
placeholders, garbage and altered images) can be planned per path or drawn at random,
reproducibly, so the download code is tested against real sockets and real failure modes.
"""

from __future__ import annotations

import base64
import collections
import email.utils
import hashlib
import json
import mimetypes
import os
import socket
import struct
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from toolkit.mirror.faults import FAULT_KINDS, Fault, FaultPlan
from toolkit.mirror.substitute_bodies import altered_jpeg, garbage_body, placeholder_png

PLACEHOLDER_PATH = "/photo_unavailable.png"
"""Where Flickr-style dead photos end up: always served, HTTP 200, a grey PNG."""
REDIRECTS_FILE = "_redirects.json"
"""Optional file under the root: ``{"/url/path": "/target/path", ...}`` served as 302s."""

_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_CONTENT_TYPES = {
    ".csv": "text/csv",
    ".json": "application/json",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}
_CHUNK = 64 * 1024


class MirrorServer:
    """Serves ``root`` over HTTP/1.1 on ``host:port`` (port 0: any free port)::

        with MirrorServer(folder) as server:
            requests.get(server.url + "/v5/class-descriptions-boxable.csv")

    ``url`` is set by ``start()``; a server started again after ``stop()`` takes the same
    port, so URLs written into a mirror stay valid. ``requests`` counts requests (GET and
    HEAD) per URL path, ``request_log`` lists every request as ``(method, path)`` in the
    order they came (tests read it to prove what a client did or did not fetch),
    ``connections`` the TCP connections accepted.
    """

    def __init__(
        self,
        root: Path | str,
        faults: FaultPlan | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.root = Path(root).resolve()
        self.host = host
        self.port = port
        self.url = ""
        self.requests: collections.Counter[str] = collections.Counter()
        self.request_log: list[tuple[str, str]] = []
        self.connections = 0
        """TCP connections accepted so far (keep-alive clients make few)."""
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._plan: FaultPlan | None = None
        self._queued: dict[str, collections.deque[Fault]] = {}
        self._seen: collections.Counter[str] = collections.Counter()
        self._md5_cache: dict[tuple[str, int, int], bytes] = {}
        self._altered_cache: dict[tuple[str, int, int], bytes] = {}
        self._redirects_cache: tuple[tuple[int, int], dict[str, str]] | None = None
        self.set_faults(faults)

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> MirrorServer:
        if self._httpd is not None:
            return self
        self._stopping.clear()
        httpd = _HTTPServer((self.host, self.port), _Handler)
        httpd.mirror = self
        self._httpd = httpd
        host, port = httpd.server_address[:2]
        self.port = port
        self.url = f"http://{host}:{port}"
        self._thread = threading.Thread(
            target=httpd.serve_forever, kwargs={"poll_interval": 0.05},
            name=f"mirror-server-{port}", daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()  # wakes handlers sleeping for "slow" faults or latency
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> MirrorServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- faults ----------------------------------------------------------------------

    def set_faults(self, plan: FaultPlan | None) -> None:
        """Replace the fault plan (``None``: no faults); per-path queues start afresh."""
        if plan is not None:
            unknown = sorted(set(plan.kinds) - set(FAULT_KINDS))
            if unknown:
                raise ValueError(f"unknown fault kind {unknown[0]!r}; expected one of {', '.join(FAULT_KINDS)}")
        with self._lock:
            self._plan = plan
            self._queued = {p: collections.deque(fs) for p, fs in plan.per_path.items()} if plan else {}
            self._seen = collections.Counter()

    def _next_fault(self, path: str, method: str = "GET") -> tuple[Fault | None, float]:
        """Count and log the request; return its fault (or None) and the latency to add."""
        with self._lock:
            self.requests[path] += 1
            self.request_log.append((method, path))
            plan = self._plan
            if plan is None:
                return None, 0.0
            queue = self._queued.get(path)
            if queue:
                return queue.popleft(), plan.latency
            n = self._seen[path]
            self._seen[path] += 1
        if _is_image_path(path):
            return plan.random_fault(path, n), plan.latency
        return None, plan.latency

    # -- file facts (cached by path, mtime and size) ---------------------------------

    def _md5(self, path: Path, stat: os.stat_result) -> bytes:
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        digest = self._md5_cache.get(key)
        if digest is None:
            digest = hashlib.md5(path.read_bytes()).digest()
            self._md5_cache[key] = digest
        return digest

    def _altered(self, path: Path | None) -> bytes:
        """A valid JPEG that is not byte-identical to ``path`` (for ``md5_mismatch``)."""
        if path is None:
            return altered_jpeg(b"")
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        data = self._altered_cache.get(key)
        if data is None:
            data = altered_jpeg(path.read_bytes())
            self._altered_cache[key] = data
        return data

    def _redirects(self) -> dict[str, str]:
        file = self.root / REDIRECTS_FILE
        try:
            stat = file.stat()
        except OSError:
            return {}
        key = (stat.st_mtime_ns, stat.st_size)
        cached = self._redirects_cache
        if cached is not None and cached[0] == key:
            return cached[1]
        try:
            table = {str(k): str(v) for k, v in json.loads(file.read_text("utf-8")).items()}
        except (OSError, ValueError, AttributeError):
            table = {}
        self._redirects_cache = (key, table)
        return table

    def _resolve(self, path: str) -> Path | None:
        """The file under root that ``path`` names, or None (missing, or outside root)."""
        parts = [p for p in path.split("/") if p]
        if not parts or any(p in (".", "..") or "\\" in p or "\0" in p for p in parts):
            return None
        candidate = self.root.joinpath(*parts)
        try:
            real = candidate.resolve(strict=True)
        except (OSError, RuntimeError):
            return None
        if not real.is_relative_to(self.root) or not real.is_file():
            return None
        return real


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    mirror: MirrorServer

    def __init__(self, *args: object, **kwargs: object) -> None:
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def process_request(self, request, client_address):  # type: ignore[no-untyped-def]
        with self._open_lock:
            self._open.add(request)
        with self.mirror._lock:
            self.mirror.connections += 1
        super().process_request(request, client_address)

    def shutdown_request(self, request):  # type: ignore[no-untyped-def]
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Wake every handler blocked on an idle keep-alive connection so it ends."""
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request, client_address):  # type: ignore[no-untyped-def]
        pass  # a client that hangs up mid-answer is expected here, not an error


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "mlkit-mirror/1"

    def version_string(self) -> str:
        return self.server_version
    timeout = 60  # idle keep-alive connections end on their own
    disable_nagle_algorithm = True  # headers and body go out as separate writes
    server: _HTTPServer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def handle(self) -> None:
        try:
            super().handle()
        except (ConnectionError, TimeoutError, OSError):
            self.close_connection = True

    def do_GET(self) -> None:
        self._answer(head=False)

    def do_HEAD(self) -> None:
        self._answer(head=True)

    # -- dispatch --------------------------------------------------------------------

    def _answer(self, head: bool) -> None:
        mirror = self.server.mirror
        path = urllib.parse.unquote(urllib.parse.urlsplit(self.path).path)
        fault, latency = mirror._next_fault(path, "HEAD" if head else "GET")
        if latency > 0 and mirror._stopping.wait(latency):
            self._reset()
            return
        if fault is not None and self._answer_fault(fault, path, head):
            return
        target = mirror._redirects().get(path)
        if target is not None:
            self._redirect(target, head)
            return
        if path == "/" + REDIRECTS_FILE:
            self._send_text(404, "not found\n", head)
            return
        file = mirror._resolve(path)
        if file is None:
            if path == PLACEHOLDER_PATH:
                self._send_bytes(placeholder_png(), "image/png", head)
            else:
                self._send_text(404, "not found\n", head)
            return
        self._send_file(file, head, truncate=fault is not None and fault.kind == "truncate")

    def _answer_fault(self, fault: Fault, path: str, head: bool) -> bool:
        """Answer as ``fault`` says; False where the file is still to be sent (slow, truncate)."""
        mirror = self.server.mirror
        if fault.kind == "slow":
            if mirror._stopping.wait(fault.delay):
                self._reset()
                return True
            return False
        if fault.kind == "status":
            self._send_text(fault.status, f"injected fault: HTTP {fault.status}\n", head)
        elif fault.kind == "reset":
            self._reset()
        elif fault.kind == "placeholder":
            self._redirect(PLACEHOLDER_PATH, head)
        elif fault.kind == "garbage":
            file = mirror._resolve(path)
            size = file.stat().st_size if file is not None else 4096
            self._send_bytes(garbage_body(path, size), "image/jpeg", head)
        elif fault.kind == "md5_mismatch":
            self._send_bytes(mirror._altered(mirror._resolve(path)), "image/jpeg", head)
        else:
            return False  # truncate: the file, cut short
        return True

    # -- responses -------------------------------------------------------------------

    def _send_text(self, status: int, text: str, head: bool) -> None:
        body = text.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _send_bytes(self, body: bytes, content_type: str, head: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _redirect(self, target: str, head: bool) -> None:
        location = target if "://" in target else self.server.mirror.url + target
        body = f"moved to {location}\n".encode()
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _reset(self) -> None:
        """Abort the connection with a TCP RST and no response."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self.rfile.close()  # drops the makefile reference so close() really closes now
        self.connection.close()

    def _send_file(self, file: Path, head: bool, truncate: bool) -> None:
        stat = file.stat()
        size = stat.st_size
        suffix = file.suffix.lower()
        content_type = _CONTENT_TYPES.get(suffix) or mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        extra: list[tuple[str, str]] = [("Accept-Ranges", "bytes"), ("Last-Modified", email.utils.formatdate(stat.st_mtime, usegmt=True))]
        if suffix in (".csv", ".json"):
            digest = self.server.mirror._md5(file, stat)
            etag = f'"{digest.hex()}"'
            extra += [("x-goog-hash", "md5=" + base64.b64encode(digest).decode("ascii")), ("ETag", etag)]
            if self.headers.get("If-None-Match") == etag:
                self._send_not_modified(extra)
                return

        wanted = _parse_range(self.headers.get("Range"), size)
        if wanted == "unsatisfiable":
            self._send_unsatisfiable(size, head)
            return
        start, end = (0, size) if wanted is None else wanted  # end is exclusive
        self.send_response(200 if wanted is None else 206)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(end - start))
        if wanted is not None:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        self._send_body(file, start, end, head, truncate)

    def _send_not_modified(self, headers: list[tuple[str, str]]) -> None:
        self.send_response(304)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _send_unsatisfiable(self, size: int, head: bool) -> None:
        self.send_response(416)
        self.send_header("Content-Range", f"bytes */{size}")
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        body = b"range not satisfiable\n"
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def _send_body(self, file: Path, start: int, end: int, head: bool, truncate: bool) -> None:
        """Bytes ``start`` to ``end`` (exclusive) of ``file``; when ``truncate``, only the
        first half of them (even for HEAD), then the connection is closed."""
        if truncate:
            self.close_connection = True
            end = start + (end - start) // 2
        if head and not truncate:
            return
        if not head:
            with file.open("rb") as fh:
                fh.seek(start)
                left = end - start
                while left > 0:
                    chunk = fh.read(min(_CHUNK, left))
                    if not chunk:
                        break
                    self.wfile.write(chunk)
                    left -= len(chunk)
        if truncate:
            self.wfile.flush()
            try:
                self.connection.shutdown(socket.SHUT_WR)
            except OSError:
                pass


def _parse_range(header: str | None, size: int) -> tuple[int, int] | str | None:
    """``(start, end_exclusive)``, ``"unsatisfiable"``, or None (no usable Range: send it all)."""
    if not header:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None  # multiple ranges are allowed to be ignored
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    try:
        if first.strip() == "":  # suffix: the last N bytes
            n = int(last)
            if n <= 0 or size == 0:
                return "unsatisfiable"
            return (max(0, size - n), size)
        start = int(first)
        end = int(last) + 1 if last.strip() != "" else size
    except ValueError:
        return None
    if start < 0 or end <= start and last.strip() != "":
        return None  # an invalid range-spec: ignore the header
    if start >= size:
        return "unsatisfiable"
    return (start, min(end, size))


def _is_image_path(path: str) -> bool:
    return path.lower().endswith(_IMAGE_SUFFIXES) and path != PLACEHOLDER_PATH
