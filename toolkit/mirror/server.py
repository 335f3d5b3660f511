"""A static-file HTTP server over a folder, with fault injection.

It serves an Open-Images-shaped folder (see ``generate.py``) the way the real hosts do:
metadata files carry Google Cloud Storage's ``x-goog-hash``, images can be fetched with
``Range``, and a photo "gone from Flickr" redirects to a placeholder PNG with HTTP 200.
Faults (error statuses, connection resets, truncated bodies, slow answers, placeholders,
garbage and altered images) can be planned per path or drawn at random, reproducibly, so
the download code is tested against real sockets and real failure modes.
"""

from __future__ import annotations

import base64
import collections
import email.utils
import hashlib
import io
import json
import mimetypes
import os
import random
import socket
import struct
import threading
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FAULT_KINDS = ("status", "reset", "truncate", "slow", "placeholder", "garbage", "md5_mismatch")
PLACEHOLDER_PATH = "/photo_unavailable.png"
"""Where Flickr-style dead photos end up: always served, HTTP 200, a grey PNG."""
REDIRECTS_FILE = "_redirects.json"
"""Optional file under the root: ``{"/url/path": "/target/path", ...}`` served as 302s."""

RANDOM_SLOW_DELAY = 1.0
"""Seconds a random "slow" fault waits (planned ones say their own ``delay``)."""

_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_RANDOM_STATUSES = (500, 502, 503)
_CONTENT_TYPES = {
    ".csv": "text/csv",
    ".json": "application/json",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}
_CHUNK = 64 * 1024


@dataclass(frozen=True)
class Fault:
    """One misbehaviour of the server for one request."""

    kind: str  # one of FAULT_KINDS
    status: int = 500  # for kind="status"
    delay: float = 0.0  # for kind="slow": seconds to sleep before sending anything

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; expected one of {', '.join(FAULT_KINDS)}")


@dataclass
class FaultPlan:
    """Which requests misbehave, and how.

    ``per_path`` maps a URL path to the faults of its successive requests, consumed in
    order; once used up the path is served normally. ``rate`` is the probability of a
    random fault for each request of an image path (``.jpg``/``.jpeg``/``.png``, not the
    placeholder); the draw depends only on ``seed``, the path and how many times that path
    was requested since the plan was set, so it is reproducible whatever the thread
    interleaving. ``latency`` is added before every response.
    """

    per_path: dict[str, list[Fault]] = field(default_factory=dict)
    rate: float = 0.0
    kinds: tuple[str, ...] = ("status", "reset", "truncate")
    seed: int = 0
    latency: float = 0.0


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
        if plan.rate > 0 and plan.kinds and _is_image_path(path):
            rng = random.Random(f"{plan.seed}:{path}:{n}")
            if rng.random() < plan.rate:
                kind = rng.choice(plan.kinds)
                status = rng.choice(_RANDOM_STATUSES) if kind == "status" else 500
                return Fault(kind, status=status, delay=RANDOM_SLOW_DELAY), plan.latency
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
            return _altered_jpeg(b"")
        stat = path.stat()
        key = (str(path), stat.st_mtime_ns, stat.st_size)
        data = self._altered_cache.get(key)
        if data is None:
            data = _altered_jpeg(path.read_bytes())
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
        if fault is not None:
            if fault.kind == "slow":
                if mirror._stopping.wait(fault.delay):
                    self._reset()
                    return
            elif fault.kind == "status":
                self._send_text(fault.status, f"injected fault: HTTP {fault.status}\n", head)
                return
            elif fault.kind == "reset":
                self._reset()
                return
            elif fault.kind == "placeholder":
                self._redirect(PLACEHOLDER_PATH, head)
                return
            elif fault.kind == "garbage":
                file = mirror._resolve(path)
                size = file.stat().st_size if file is not None else 4096
                body = bytearray(random.Random(f"garbage:{path}").randbytes(max(size, 64)))
                body[0:2] = b"\x00\x00"  # never the JPEG start-of-image marker
                self._send_bytes(bytes(body), "image/jpeg", head)
                return
            elif fault.kind == "md5_mismatch":
                self._send_bytes(mirror._altered(mirror._resolve(path)), "image/jpeg", head)
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
        mirror = self.server.mirror
        stat = file.stat()
        size = stat.st_size
        suffix = file.suffix.lower()
        content_type = _CONTENT_TYPES.get(suffix) or mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        extra: list[tuple[str, str]] = [("Accept-Ranges", "bytes"), ("Last-Modified", email.utils.formatdate(stat.st_mtime, usegmt=True))]
        if suffix in (".csv", ".json"):
            digest = mirror._md5(file, stat)
            etag = f'"{digest.hex()}"'
            extra += [("x-goog-hash", "md5=" + base64.b64encode(digest).decode("ascii")), ("ETag", etag)]
            if self.headers.get("If-None-Match") == etag:
                self.send_response(304)
                for name, value in extra:
                    self.send_header(name, value)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return

        status, start, end = 200, 0, size  # end is exclusive
        wanted = _parse_range(self.headers.get("Range"), size)
        if wanted == "unsatisfiable":
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            body = b"range not satisfiable\n"
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head:
                self.wfile.write(body)
            return
        if wanted is not None:
            status, (start, end) = 206, wanted

        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(end - start))
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
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


_placeholder_lock = threading.Lock()
_placeholder: bytes | None = None


def placeholder_png() -> bytes:
    """The "photo unavailable" PNG served at ``PLACEHOLDER_PATH`` (Flickr's is 500x374, grey)."""
    global _placeholder
    with _placeholder_lock:
        if _placeholder is None:
            from PIL import Image, ImageDraw

            img = Image.new("RGB", (500, 374), (222, 222, 222))
            draw = ImageDraw.Draw(img)
            # a crossed-out photo frame and the words, as on Flickr's placeholder
            draw.rectangle((200, 120, 300, 200), outline=(160, 160, 160), width=4)
            draw.polygon([(212, 188), (240, 150), (262, 172), (276, 158), (290, 188)], fill=(175, 175, 175))
            draw.line((195, 205, 305, 115), fill=(160, 160, 160), width=5)
            draw.text((172, 230), "This photo is no longer available", fill=(120, 120, 120))
            buf = io.BytesIO()
            img.save(buf, format="PNG", optimize=False)
            _placeholder = buf.getvalue()
        return _placeholder


def _altered_jpeg(original: bytes) -> bytes:
    """The original re-encoded and visibly nudged: still a JPEG, never the same bytes."""
    from PIL import Image, ImageDraw

    try:
        with Image.open(io.BytesIO(original)) as src:
            img = src.convert("RGB")
    except Exception:  # not an image (or no file): any small valid JPEG will do
        img = Image.new("RGB", (64, 48), (128, 96, 64))
    draw = ImageDraw.Draw(img)
    w, h = img.size
    draw.rectangle((0, 0, max(1, w // 16), max(1, h // 16)), fill=(255, 0, 255))
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=61)
    data = buf.getvalue()
    if data == original:  # cannot really happen after the drawing, but the contract is "differs"
        data = data[:-2] + b"\x00" + data[-2:]
    return data
