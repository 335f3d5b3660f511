"""Robust concurrent image download: retries, source fallback, verification, atomic writes.

``download_images`` fetches each job's image from the first of its sources that works
(CVDF mirror, then Flickr thumbnail, then Flickr original), proves that what arrived is
the image (full length, decodes completely, not Flickr's "photo unavailable"
placeholder, MD5 of originals), applies orientation / rotation / crop / resize, and
writes it atomically as JPEG. A rerun after a crash, Ctrl-C or ``kill -9`` skips what is
already on disk and ends with exactly the files of an uninterrupted run; no partial or
corrupt file is ever left at a destination path. (A file that decodes is trusted as it
is: whoever changes ``max_size``, rotation or crop between runs must clear the old files;
``processing_fingerprint`` names the processing a file was made with, for that check.)

Every failure carries a short, stable reason code (they go into a manifest):

``not_found``         404/410 on every source
``http_<status>``     other 4xx (not retried), or 429 after retries
``server_error``      5xx after retries
``timeout``           connect or read timeout after retries
``connection_error``  reset, refused, broken connection after retries
``truncated``         fewer bytes than Content-Length (or cut image data) after retries
``placeholder``       Flickr's "photo unavailable" image
``md5_mismatch``      an original whose MD5 differs from Open Images' OriginalMD5
``not_an_image``      the body does not decode completely as an image
``no_source``         the job has no source
"""

from __future__ import annotations

import base64
import hashlib
import io
import math
import os
import queue
import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from http.client import HTTPException, IncompleteRead
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

import requests
import urllib3
from PIL import Image, ImageFile, ImageStat
from urllib3.exceptions import ConnectTimeoutError, LocationValueError, NewConnectionError, ReadTimeoutError

from toolkit import __version__
from toolkit.errors import MlkitError
from toolkit.netutil import exception_chain, md5_from_b64, retry_pause

__all__ = [
    "REASONS",
    "SOURCE_KINDS",
    "DownloadJob",
    "DownloadOptions",
    "DownloadOutcome",
    "DownloadReport",
    "ImageSource",
    "download_images",
    "processing_fingerprint",
]

SOURCE_KINDS = ("cvdf", "thumbnail", "original")
REASONS = (
    "not_found", "server_error", "timeout", "connection_error", "truncated",
    "placeholder", "md5_mismatch", "not_an_image", "no_source",
)
"""Fixed reason codes; ``http_<status>`` (e.g. ``http_403``) comes on top of these."""

_CHUNK = 256 * 1024         # bytes per body read; the stop flag is checked between reads
_DRAIN_MAX = 64 * 1024      # an error body up to this size is read so its connection is reused
_MAX_REDIRECTS = 30
_BACKOFF_CAP = 8.0          # seconds; also caps a server's Retry-After
_INTERRUPT_GRACE = 2.0      # seconds the caller's Ctrl-C waits for in-flight jobs to abort
_PLACEHOLDER_MARK = "photo_unavailable"
_ORIENTATION_TAG = 0x0112   # EXIF Orientation
_PART_GLOB = ".*.part-*"

# fdatasync makes the data and the size of a new file durable, like fsync, without also
# committing its timestamps; macOS has only fsync.
_sync_data = getattr(os, "fdatasync", os.fsync)


# --------------------------------------------------------------------------- public types


@dataclass(frozen=True)
class ImageSource:
    """One place an image can be fetched from."""

    url: str
    kind: str  # "cvdf" | "thumbnail" | "original"
    md5_b64: str | None = None
    """Open Images ``OriginalMD5`` (base64 of the MD5 digest); checked only for kind ``original``."""

    def __post_init__(self) -> None:
        if _missing(self.md5_b64):  # an empty CSV cell read by pandas is NaN
            object.__setattr__(self, "md5_b64", None)


@dataclass(frozen=True)
class DownloadJob:
    """One image to put at ``dest``.

    ``sources`` are tried in order. ``rotation`` is Open Images' Rotation column: the
    degrees COUNTER-CLOCKWISE that turn the stored image (and its boxes) upright. It is
    used only for a file without an EXIF orientation of its own; a file that carries one
    is turned by that alone (see ``_turn``). ``crop`` is ``(xmin, ymin, xmax, ymax)``
    normalised to 0..1 in the stored image's frame (the frame Open Images' boxes are
    given in), clamped to the image; it is cut before the image is turned. The file
    written is always JPEG.
    """

    key: str
    dest: Path
    sources: tuple[ImageSource, ...]
    rotation: float | None = None
    crop: tuple[float, float, float, float] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "dest", Path(self.dest))
        object.__setattr__(self, "sources", tuple(self.sources))
        if _missing(self.rotation):  # the Rotation column is often empty (NaN in pandas)
            object.__setattr__(self, "rotation", None)


PROCESSING_VERSION = 2  # 2: Rotation read counter-clockwise, and EXIF alone where the file has it
"""Bump whenever ``_process`` makes other pixels from the same bytes and settings (so files
made by an older version are made again)."""


def processing_fingerprint(job: DownloadJob, options: DownloadOptions) -> str:
    """A short name of everything that decides the pixels written for ``job`` besides the
    source bytes: the processing version, rotation, crop box, max size and JPEG quality.
    Two files with the same source and fingerprint are the same file."""
    rotation = float(job.rotation or 0.0) % 360.0
    crop = None if job.crop is None else [round(float(v), 6) for v in job.crop]
    text = (f"v{PROCESSING_VERSION} rot={rotation:g} crop={crop} max={options.max_size} "
            f"q={options.jpeg_quality}")
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _missing(value: object) -> bool:
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


@dataclass
class DownloadOptions:
    """Knobs of ``download_images``.

    workers: concurrent downloads (threads sharing one pool of keep-alive connections), >= 1.
    connect_timeout / read_timeout: seconds per request; the read timeout bounds every
        wait for data, not the whole body.
    retries: extra attempts per source on retriable errors (timeouts, resets, truncated
        bodies, 5xx, 429); 4xx is never retried; an MD5 mismatch is retried at most once.
    backoff: base seconds of the exponential backoff between attempts (with jitter,
        capped at 8 s; a server's Retry-After is honoured up to the cap).
    max_size: resize so the longer side is at most this many pixels (None: keep).
    jpeg_quality: 1..95, used whenever the image has to be re-encoded.
    progress: show a progress bar on stderr (only when stderr is a terminal).
    user_agent: the User-Agent header.
    """

    workers: int = 32
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    retries: int = 3
    backoff: float = 0.25
    max_size: int | None = None
    jpeg_quality: int = 92
    progress: bool = True
    user_agent: str = f"mlkit/{__version__}"


@dataclass
class DownloadOutcome:
    """What happened to one job."""

    key: str
    dest: Path
    ok: bool
    reason: str | None          # None when ok; else a reason code (the last source's failure)
    source_url: str | None      # the source that produced the file
    source_kind: str | None
    md5: str | None             # hex MD5 of the file at dest
    size: int | None            # bytes of the file at dest
    width: int | None
    height: int | None
    attempts: int               # HTTP requests made (a followed redirect is part of its request)
    skipped: bool = False       # already present and valid: not fetched again
    detail: str | None = None   # human-readable account of each failed source, for logs


@dataclass
class DownloadReport:
    """All outcomes, in the order of the jobs."""

    outcomes: list[DownloadOutcome]
    elapsed: float

    def ok(self) -> list[DownloadOutcome]:
        return [o for o in self.outcomes if o.ok]

    def failed(self) -> list[DownloadOutcome]:
        return [o for o in self.outcomes if not o.ok]

    def failures_by_reason(self) -> dict[str, int]:
        return dict(Counter(o.reason for o in self.outcomes if not o.ok))


# --------------------------------------------------------------------------- internals


class _Cancelled(Exception):
    """The run is stopping (Ctrl-C); the job is abandoned."""


class _WriteFailed(Exception):
    """Writing to disk failed: not a download problem, the whole run stops."""

    def __init__(self, path: Path, error: OSError):
        super().__init__(str(error))
        self.path = path
        self.error = error


@dataclass(eq=False)
class _Failure(Exception):
    reason: str
    retriable: bool
    message: str
    retry_after: float | None = None


@dataclass
class _Fetched:
    body: bytes
    url: str                  # final URL after redirects
    length_known: bool        # the server declared Content-Length (so a full count proves completeness)


@dataclass
class _Verified:
    data: bytes               # the bytes to write
    width: int
    height: int
    md5: str | None = None    # hex MD5 of data, when already known


class _Registry:
    """Thread-safe set of things to clean up on interrupt: temp files, live responses."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._temps: set[Path] = set()
        self._responses: set[urllib3.BaseHTTPResponse] = set()

    def add_temp(self, path: Path) -> None:
        with self._lock:
            self._temps.add(path)

    def discard_temp(self, path: Path) -> None:
        with self._lock:
            self._temps.discard(path)

    @contextmanager
    def response(self, resp: urllib3.BaseHTTPResponse) -> Iterator[urllib3.BaseHTTPResponse]:
        with self._lock:
            self._responses.add(resp)
        try:
            yield resp
        finally:
            with self._lock:
                self._responses.discard(resp)

    def abort_responses(self) -> None:
        """Wake threads blocked reading a body (shutdown, unlike close, interrupts a recv)."""
        with self._lock:
            responses = list(self._responses)
        for resp in responses:
            sock = getattr(resp.connection, "sock", None)
            if sock is not None:
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def remove_temps(self) -> None:
        with self._lock:
            temps = list(self._temps)
            self._temps.clear()
        for path in temps:
            with suppress(OSError):
                path.unlink()


class _Downloader:
    def __init__(self, options: DownloadOptions, stop: threading.Event, registry: _Registry,
                 before_commit: Callable[[DownloadJob, ImageSource], None] | None = None):
        self.opt = options
        self.before_commit = before_commit
        self.stop = stop
        self.registry = registry
        # Keep-alive connections pooled per host, one per worker. urllib3's own retries and
        # redirects are off: run_job retries by itself (it needs to know why each attempt
        # failed), and _fetch follows redirects by itself (the chain is where Flickr's
        # "photo unavailable" shows).
        self._pool_kw: dict[str, object] = dict(
            num_pools=16, maxsize=options.workers, block=False, retries=False,
            timeout=urllib3.Timeout(connect=options.connect_timeout, read=options.read_timeout),
            # Images are never worth compressing; identity keeps the Content-Length check exact.
            headers={"User-Agent": options.user_agent, "Accept-Encoding": "identity"},
            **_ca_settings(),
        )
        self.http = urllib3.PoolManager(**self._pool_kw)
        self._lock = threading.Lock()
        self._routes: dict[tuple[str, str], urllib3.PoolManager] = {}  # (scheme, netloc) -> manager
        self._proxy_managers: dict[str, urllib3.PoolManager] = {}      # proxy URL -> manager
        self.folders: set[Path] = set()  # where files were renamed into place

    def _manager_for(self, url: str) -> urllib3.PoolManager:
        """The pool manager for a URL's host: direct, or its proxy's when the environment
        (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, NO_PROXY) names one; looked up once per host."""
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        manager = self._routes.get(key)
        if manager is not None:
            return manager
        if parts.scheme not in ("http", "https"):
            raise _Failure("connection_error", False, f"{url} is not an http(s) URL")
        proxy = _environ_proxy(url)
        with self._lock:
            manager = self.http if proxy is None else self._proxy_managers.get(proxy)
            if manager is None:
                manager = self._proxy_managers[proxy] = _proxy_manager(proxy, self._pool_kw)
            self._routes[key] = manager
        return manager

    def close(self) -> None:
        self.http.clear()
        for manager in self._proxy_managers.values():
            manager.clear()

    # -- one job ---------------------------------------------------------------------

    def run_job(self, job: DownloadJob) -> DownloadOutcome:
        if self.stop.is_set():
            raise _Cancelled
        existing = self._existing(job)
        if existing is not None:
            return existing
        if not job.sources:
            return _failed(job, "no_source", 0, "the job has no source")

        attempts = 0
        notes: list[str] = []
        reasons: list[str] = []
        for source in job.sources:
            tries = 0
            md5_retried = False
            while True:
                tries += 1
                attempts += 1
                try:
                    fetched = self._fetch(source.url)
                    verified = self._verify_and_process(job, source, fetched)
                except _Failure as failure:
                    again = failure.retriable and tries <= self.opt.retries
                    if failure.reason == "md5_mismatch":
                        again = again and not md5_retried
                        md5_retried = True
                    if again:
                        self._sleep_before_retry(tries, failure.retry_after)
                        continue
                    reasons.append(failure.reason)
                    notes.append(f"{source.kind} {source.url}: {failure.reason} ({failure.message})"
                                 + (f" after {tries} attempts" if tries > 1 else ""))
                    break
                if self.before_commit is not None:
                    self.before_commit(job, source)
                digest = self._write(job.dest, verified.data, verified.md5)
                return DownloadOutcome(
                    key=job.key, dest=job.dest, ok=True, reason=None,
                    source_url=source.url, source_kind=source.kind, md5=digest,
                    size=len(verified.data), width=verified.width, height=verified.height,
                    attempts=attempts, detail="; ".join(notes) or None,
                )
        # not_found only when every source said so; otherwise the last other failure.
        other = [r for r in reasons if r != "not_found"]
        return _failed(job, other[-1] if other else "not_found", attempts, "; ".join(notes))

    def _existing(self, job: DownloadJob) -> DownloadOutcome | None:
        """A dest that decodes is kept (skipped); one that does not is removed at once."""
        dest = job.dest
        try:
            data = dest.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:  # a folder in the way, no permission: every rerun would fail
            raise _WriteFailed(dest, e) from e
        try:
            img = _open(data)
            width, height = img.size
            _load(img, data, full=False)   # a file on disk is kept as it is
        except _Failure:
            with suppress(FileNotFoundError):
                dest.unlink()
            return None
        return DownloadOutcome(
            key=job.key, dest=dest, ok=True, reason=None, source_url=None, source_kind=None,
            md5=hashlib.md5(data).hexdigest(), size=len(data), width=width,
            height=height, attempts=0, skipped=True,
        )

    def _sleep_before_retry(self, tries: int, retry_after: float | None) -> None:
        if self.stop.wait(retry_pause(tries, self.opt.backoff, _BACKOFF_CAP, retry_after)):
            raise _Cancelled

    # -- HTTP ------------------------------------------------------------------------

    def _fetch(self, url: str) -> _Fetched:
        """GET ``url``, following redirects: the complete body, or a _Failure."""
        first = url
        for _ in range(_MAX_REDIRECTS + 1):
            if _PLACEHOLDER_MARK in url:  # Flickr redirects a deleted photo to this image
                raise _Failure("placeholder", False, f"redirected to {url}")
            resp = self._request(url)
            with self.registry.response(resp):  # so that Ctrl-C can wake any read below
                try:
                    status = resp.status
                    location = resp.get_redirect_location()
                    if location:
                        url = urljoin(url, location)
                        continue
                    if status != 200:
                        raise _status_failure(status, resp.headers, url)
                    body, length_known = self._read_body(resp)
                    return _Fetched(body, url, length_known)
                finally:
                    _release(resp, drain=not self.stop.is_set())
        raise _Failure(f"http_{status}", False, f"more than {_MAX_REDIRECTS} redirects from {first}")

    def _request(self, url: str) -> urllib3.BaseHTTPResponse:
        """Send the request and read the response head; the body is left to read."""
        try:
            return self._manager_for(url).urlopen("GET", url, redirect=False, retries=False,
                                                   preload_content=False, decode_content=False)
        except (urllib3.exceptions.HTTPError, HTTPException, OSError) as e:
            if self.stop.is_set():
                raise _Cancelled from e
            raise _classify(e) from e

    def _read_body(self, resp: urllib3.BaseHTTPResponse) -> tuple[bytes, bool]:
        """The whole body, and whether the server declared its length (so it is complete)."""
        declared = resp.headers.get("Content-Length")
        expected = int(declared) if declared and declared.isdigit() else None
        chunks = []
        try:
            while True:
                if self.stop.is_set():
                    raise _Cancelled
                chunk = resp.read(_CHUNK)
                if not chunk:
                    break
                chunks.append(chunk)
        except (urllib3.exceptions.HTTPError, HTTPException, OSError) as e:
            if self.stop.is_set():
                raise _Cancelled from e
            raise _classify(e) from e
        body = b"".join(chunks)   # one chunk: that very object, no copy
        if expected is not None and len(body) != expected:
            raise _Failure("truncated", True, f"received {len(body)} of {expected} bytes")
        return body, expected is not None

    # -- verification and processing -------------------------------------------------

    def _verify_and_process(self, job: DownloadJob, source: ImageSource, fetched: _Fetched) -> _Verified:
        body = fetched.body
        try:
            img = _open(body)
            # The one decode; processing works on its pixels. A JPEG written unchanged needs no
            # pixels, only proof that every byte decodes: see _load.
            keep = _keeps_bytes(img, job, self.opt)
            width, height = img.size   # before a reduced decode shrinks it
            _load(img, body, full=not keep)
        except _Failure as failure:
            if failure.reason == "truncated" and fetched.length_known:
                # All declared bytes arrived: the file itself is cut, retrying won't help.
                raise _Failure("not_an_image", False, failure.message) from None
            raise
        if _looks_like_placeholder(img, fetched.url):
            raise _Failure("placeholder", False, f"uniform {img.format} served for a JPEG URL")
        digest = None
        if source.kind == "original" and source.md5_b64:
            raw = hashlib.md5(body)
            digest = raw.hexdigest()
            if raw.digest() != md5_from_b64(source.md5_b64):
                got = base64.b64encode(raw.digest()).decode()
                raise _Failure("md5_mismatch", True, f"MD5 {got}, expected {source.md5_b64}")
        if keep:  # written as it came: its MD5 is the one just checked, if any
            return _Verified(body, width, height, digest)
        try:
            return _process(img, job, self.opt)
        except (OSError, ValueError, TypeError) as e:
            raise _Failure("not_an_image", False, f"cannot process: {e}") from e

    # -- disk ------------------------------------------------------------------------

    def _write(self, dest: Path, data: bytes, digest: str | None = None) -> str:
        """Write atomically: a temp file in the same folder, its data synced to disk, renamed
        onto ``dest`` (the folder is synced once, at the end of the run); return hex MD5."""
        tmp = dest.with_name(f".{dest.name}.part-{secrets.token_hex(6)}")
        replaced = False
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            self.registry.add_temp(tmp)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                _sync_data(fd)
            finally:
                os.close(fd)
            if self.stop.is_set():
                raise _Cancelled
            os.replace(tmp, dest)
            replaced = True
            self.folders.add(dest.parent)
        except OSError as e:
            if self.stop.is_set():
                raise _Cancelled from e
            raise _WriteFailed(dest, e) from e
        finally:
            self.registry.discard_temp(tmp)
            if not replaced:
                with suppress(OSError):
                    tmp.unlink()
        return digest or hashlib.md5(data).hexdigest()


def _sync_folders(folders: set[Path]) -> None:
    """Make the renames into these folders durable (a file's data is synced before its
    rename; an entry lost in a crash before this only means a rerun fetches it again)."""
    for folder in sorted(folders):
        try:
            fd = os.open(folder, os.O_RDONLY)
        except OSError:  # a platform that cannot open a folder (Windows)
            continue
        try:
            os.fsync(fd)
        except OSError:  # a file system that cannot sync a folder
            pass
        finally:
            os.close(fd)


def _failed(job: DownloadJob, reason: str, attempts: int, detail: str) -> DownloadOutcome:
    return DownloadOutcome(
        key=job.key, dest=job.dest, ok=False, reason=reason, source_url=None,
        source_kind=None, md5=None, size=None, width=None, height=None,
        attempts=attempts, detail=detail or None,
    )


def _status_failure(status: int, headers: urllib3.HTTPHeaderDict, url: str) -> _Failure:
    where = f"HTTP {status} from {url}"
    if status in (404, 410):
        return _Failure("not_found", False, where)
    if status == 429 or status >= 500:
        retry_after = None
        value = headers.get("Retry-After", "")
        with suppress(ValueError):
            retry_after = float(value) if value else None
        reason = "http_429" if status == 429 else "server_error"
        return _Failure(reason, True, where, retry_after)
    return _Failure(f"http_{status}", False, where)


def _release(resp: urllib3.BaseHTTPResponse, *, drain: bool) -> None:
    """Give the response's connection back to the pool. A body left unread is read first
    when small and ``drain`` (CVDF answers 404 for every image outside the boxable set), so
    the keep-alive connection can serve the next request; otherwise it is closed."""
    if resp.connection is not None:  # urllib3 releases it by itself once the body is read
        declared = resp.headers.get("Content-Length", "")
        if drain and declared.isdigit() and int(declared) <= _DRAIN_MAX:
            resp.drain_conn()  # on an error it closes the connection
        else:
            resp.close()
    resp.release_conn()


def _classify(e: BaseException) -> _Failure:
    """The reason code of a failed request or body read (urllib3 nests the socket error)."""
    message = f"{type(e).__name__}: {e}"
    if isinstance(e, LocationValueError):  # a URL urllib3 cannot use: retrying cannot help
        return _Failure("connection_error", False, message)
    causes = exception_chain(e)
    if any(isinstance(c, ConnectTimeoutError | ReadTimeoutError | TimeoutError)
           and not isinstance(c, NewConnectionError) for c in causes):  # refused, DNS: not a timeout
        return _Failure("timeout", True, message)
    if any(isinstance(c, IncompleteRead) for c in causes):  # urllib3's and http.client's
        return _Failure("truncated", True, message)
    return _Failure("connection_error", True, message)


def _environ_proxy(url: str) -> str | None:
    """The proxy URL the environment names for ``url`` (requests' own reading of HTTP_PROXY,
    HTTPS_PROXY, ALL_PROXY and NO_PROXY, as the metadata downloads use), or None."""
    proxy = requests.utils.select_proxy(url, requests.utils.get_environ_proxies(url))
    if not proxy:
        return None
    return proxy if "://" in proxy else f"http://{proxy}"


def _proxy_manager(proxy: str, pool_kw: dict[str, object]) -> urllib3.PoolManager:
    if proxy.lower().startswith("socks"):
        try:
            from urllib3.contrib.socks import SOCKSProxyManager
        except ImportError:
            raise _Failure("connection_error", False,
                           f"the proxy {proxy} is SOCKS, which needs PySocks: pip install pysocks") from None
        return SOCKSProxyManager(proxy, **pool_kw)  # type: ignore[arg-type]
    auth = urllib3.util.parse_url(proxy).auth
    proxy_headers = urllib3.make_headers(proxy_basic_auth=unquote(auth)) if auth else None
    return urllib3.ProxyManager(proxy, proxy_headers=proxy_headers, **pool_kw)  # type: ignore[arg-type]


def _ca_settings() -> dict[str, str]:
    """The CAs that verify HTTPS, as requests picks them: the bundle REQUESTS_CA_BUNDLE or
    CURL_CA_BUNDLE names, else requests' own (certifi's)."""
    bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or requests.certs.where()
    return {"ca_cert_dir": bundle} if os.path.isdir(bundle) else {"ca_certs": bundle}


def _complete(data: bytes, fmt: str | None) -> bool:
    """Structural end-of-data check for what Pillow's decoder lets through."""
    if fmt == "PNG":  # Pillow decodes a PNG that lacks its IEND chunk
        return b"IEND\xaeB`\x82" in data
    if not ImageFile.LOAD_TRUNCATED_IMAGES:
        return True  # Pillow's load() raises on truncated JPEG/GIF data
    # Someone turned Pillow's truncation check off process-wide: check the markers ourselves.
    if fmt == "JPEG":  # entropy-coded data never contains FFD9, so EOI must follow the last SOS
        sos = data.rfind(b"\xff\xda")
        return sos >= 0 and data.find(b"\xff\xd9", sos) >= 0
    if fmt == "GIF":
        return data.rstrip(b"\x00").endswith(b";")
    return True


def _open(data: bytes) -> Image.Image:
    """Read the image header, or raise a not_an_image / truncated failure."""
    if not data:
        raise _Failure("not_an_image", False, "empty body")
    try:
        return Image.open(io.BytesIO(data))
    except Image.UnidentifiedImageError as e:
        raise _Failure("not_an_image", False, f"not a known image format (starts {data[:8].hex()})") from e
    except Exception as e:  # Pillow raises many types for undecodable data
        raise _decode_failure(e) from e


def _load(img: Image.Image, data: bytes, *, full: bool = True) -> None:
    """Decode every byte of the image data, or raise a not_an_image / truncated failure.

    ``full=False`` lets a JPEG that is written unchanged decode with DCT scaling (1/8 size,
    greyscale): libjpeg still reads every marker and entropy-decodes every block, which is
    where a broken file fails; only the inverse DCT and colour conversion, which cannot
    fail, produce fewer pixels. Checked on 400 corrupted JPEGs (flipped bytes, cuts, stray
    markers, zeroed runs): the full and the reduced decode rejected exactly the same files,
    and the reduced one costs 1-1.7 ms less per image. Images that are processed (rotated,
    cropped, resized, re-encoded) need their pixels and get the full decode.
    """
    if not full and img.format == "JPEG" and img.mode in ("RGB", "L"):
        img.draft("L", (1, 1))
    try:
        img.load()
    except Exception as e:
        raise _decode_failure(e) from e
    if not _complete(data, img.format):
        raise _Failure("truncated", True, f"{img.format} data ends early")


def _keeps_bytes(img: Image.Image, job: DownloadJob, opt: DownloadOptions) -> bool:
    """True when the body will be written as it is: an RGB JPEG that needs no change (the
    same conditions under which ``_process`` returns the served bytes)."""
    if img.format != "JPEG" or img.mode != "RGB" or _orientation(img) != 1:
        return False
    if float(job.rotation or 0.0) % 360.0:
        return False
    if job.crop is not None and _crop_box(job.crop, *img.size) != (0, 0, *img.size):
        return False
    return opt.max_size is None or max(img.size) <= opt.max_size


def _decode_failure(e: Exception) -> _Failure:
    text = f"{type(e).__name__}: {e}"
    if isinstance(e, Image.DecompressionBombError):
        return _Failure("not_an_image", False, text)
    if "truncated" in text or "incomplete" in text:
        return _Failure("truncated", True, text)
    return _Failure("not_an_image", False, text)


# EXIF Orientation -> the transpose that shows the picture as meant (EXIF 2.3, tag 0x0112;
# the same table as PIL.ImageOps.exif_transpose). 6 and 8 turn 90 degrees clockwise and
# counter-clockwise; 2, 4, 5, 7 also mirror.
_EXIF_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}
# Rotation (counter-clockwise degrees) -> transpose; PIL's ROTATE_n turns n degrees counter-clockwise
_ROTATION_TRANSPOSE = {90.0: Image.Transpose.ROTATE_90, 180.0: Image.Transpose.ROTATE_180,
                       270.0: Image.Transpose.ROTATE_270}


def _turn(img: Image.Image, job: DownloadJob) -> Callable[[Image.Image], Image.Image]:
    """What turns this file upright: its own EXIF orientation, else Open Images' Rotation.

    Open Images' page "Rotated images in Open Images"
    (https://storage.googleapis.com/openimages/web/2018-05-17-rotation-information.html):
    Rotation 0/90/180/270 is "the degrees (counterclockwise) that the image and boxes
    should be rotated"; the value was recovered from the EXIF orientation of the Flickr
    original, and the copies Open Images serves (CVDF, resizes) carry no EXIF. So a file
    with an EXIF orientation (a Flickr original) is turned by it alone, never by both: the
    two describe the same turn. Empty / NaN Rotation: no orientation was recovered.
    """
    orientation = _orientation(img)
    if orientation != 1:
        method = _EXIF_TRANSPOSE.get(orientation)
        return (lambda im: im.transpose(method)) if method is not None else (lambda im: im)
    rotation = float(job.rotation or 0.0) % 360.0
    if not rotation:
        return lambda im: im
    quarter = _ROTATION_TRANSPOSE.get(rotation)
    if quarter is not None:
        return lambda im: im.transpose(quarter)
    return lambda im: im.rotate(rotation, resample=Image.Resampling.BICUBIC, expand=True)  # counter-clockwise


def _orientation(img: Image.Image) -> int:
    try:
        return int(img.getexif().get(_ORIENTATION_TAG, 1))
    except Exception:  # unreadable EXIF: nothing to honour
        return 1


def _looks_like_placeholder(img: Image.Image, url: str) -> bool:
    """A PNG/GIF served for a .jpg URL that is (nearly) one colour: Flickr's placeholder."""
    if img.format not in ("PNG", "GIF"):
        return False
    if not urlsplit(url).path.lower().endswith((".jpg", ".jpeg")):
        return False
    gray = img.convert("L")
    histogram = gray.histogram()
    dominant = max(histogram) / max(1, gray.width * gray.height)
    return ImageStat.Stat(gray).stddev[0] < 12.0 or dominant >= 0.9


def _process(img: Image.Image, job: DownloadJob, opt: DownloadOptions) -> _Verified:
    """Crop, orientation or rotation, resize, RGB, JPEG: deterministic for the same bytes.
    Only for images ``_keeps_bytes`` turned down: the result is always a new JPEG."""
    icc = img.info.get("icc_profile")
    turn = _turn(img, job)
    if job.crop is not None:  # boxes are in the stored frame: cut before turning
        box = _crop_box(job.crop, img.width, img.height)
        if box != (0, 0, img.width, img.height):
            img = img.crop(box)
    img = turn(img)

    if opt.max_size is not None and max(img.size) > opt.max_size:
        scale = opt.max_size / max(img.size)
        size = (max(1, min(opt.max_size, round(img.width * scale))),
                max(1, min(opt.max_size, round(img.height * scale))))
        img = img.resize(size, Image.Resampling.LANCZOS)

    if img.mode != "RGB":
        if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
            rgba = img.convert("RGBA")
            flat = Image.new("RGB", rgba.size, (255, 255, 255))
            flat.paste(rgba, mask=rgba.getchannel("A"))
            img = flat
        else:
            img = img.convert("RGB")
    out = io.BytesIO()
    img.save(out, "JPEG", quality=opt.jpeg_quality, icc_profile=icc or None)
    return _Verified(out.getvalue(), img.width, img.height)


def _crop_box(crop: tuple[float, float, float, float], width: int, height: int) -> tuple[int, int, int, int]:
    xmin, ymin, xmax, ymax = (min(1.0, max(0.0, float(v))) for v in crop)
    left, right = _span(xmin, xmax, width)
    top, bottom = _span(ymin, ymax, height)
    return left, top, right, bottom


def _span(lo: float, hi: float, n: int) -> tuple[int, int]:
    start = min(n - 1, math.floor(lo * n + 1e-9))
    end = max(start + 1, min(n, math.ceil(hi * n - 1e-9)))
    return start, end


# --------------------------------------------------------------------------- validation


def _check_options(opt: DownloadOptions) -> None:
    problems = []
    if opt.workers < 1:
        problems.append(f"workers must be >= 1 (got {opt.workers})")
    if not opt.connect_timeout > 0 or not opt.read_timeout > 0:
        problems.append(f"timeouts must be > 0 (got connect {opt.connect_timeout}, read {opt.read_timeout})")
    if opt.retries < 0:
        problems.append(f"retries must be >= 0 (got {opt.retries})")
    if opt.backoff < 0:
        problems.append(f"backoff must be >= 0 seconds (got {opt.backoff})")
    if opt.max_size is not None and opt.max_size < 1:
        problems.append(f"max_size must be a positive number of pixels or None (got {opt.max_size})")
    if not 1 <= opt.jpeg_quality <= 95:
        problems.append(f"jpeg_quality must be in 1..95 (got {opt.jpeg_quality})")
    if problems:
        raise MlkitError("invalid download options: " + "; ".join(problems))


def _check_jobs(jobs: Sequence[DownloadJob]) -> None:
    seen: dict[Path, str] = {}
    for job in jobs:
        dest = job.dest.absolute()
        if dest in seen:
            raise MlkitError(f"jobs {seen[dest]!r} and {job.key!r} both write {job.dest}; give each job its own dest")
        seen[dest] = job.key
        for source in job.sources:
            if source.kind not in SOURCE_KINDS:
                raise MlkitError(f"job {job.key!r}: unknown source kind {source.kind!r}; "
                                 f"use one of {', '.join(SOURCE_KINDS)}")
            if urlsplit(source.url).scheme not in ("http", "https"):
                raise MlkitError(f"job {job.key!r}: source URL {source.url!r} is not http(s)")
            if source.md5_b64 is not None and (not isinstance(source.md5_b64, str)
                                               or md5_from_b64(source.md5_b64) is None):
                raise MlkitError(
                    f"job {job.key!r}: md5_b64 {source.md5_b64!r} is not base64 of a 16-byte MD5 digest; "
                    "pass OriginalMD5 exactly as in the image list, or None")
        if job.rotation is not None:
            try:
                float(job.rotation)
            except (TypeError, ValueError):
                raise MlkitError(f"job {job.key!r}: rotation {job.rotation!r} is not a number of degrees") from None
        if job.crop is not None:
            if len(job.crop) != 4:
                raise MlkitError(f"job {job.key!r}: crop must be (xmin, ymin, xmax, ymax)")
            xmin, ymin, xmax, ymax = job.crop
            if not (xmin < xmax and ymin < ymax):
                raise MlkitError(f"job {job.key!r}: crop {job.crop} is empty; need xmin < xmax and ymin < ymax")


def _prepare_dirs(jobs: Sequence[DownloadJob]) -> None:
    """Create destination folders and remove temp files a killed run left behind."""
    for folder in sorted({job.dest.parent for job in jobs}):
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise MlkitError(f"cannot create {folder}: {e.strerror}; check the path and its permissions") from e
        for stale in folder.glob(_PART_GLOB):
            with suppress(OSError):
                stale.unlink()


# --------------------------------------------------------------------------- progress


@contextmanager
def _progress_bar(enabled: bool, total: int) -> Iterator[Callable[[bool], None]]:
    """Yield ``advance(failed)``; a rich bar on stderr when enabled and stderr is a terminal."""
    if not enabled:
        yield lambda failed: None
        return
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn,
                               TextColumn, TimeRemainingColumn)
    from rich.text import Text

    class _Rate(ProgressColumn):
        def render(self, task) -> Text:  # type: ignore[no-untyped-def]
            speed = task.finished_speed or task.speed
            return Text("-- img/s" if speed is None else f"{speed:.1f} img/s", style="progress.data.speed")

    console = Console(stderr=True)
    progress = Progress(
        TextColumn("download"), BarColumn(), MofNCompleteColumn(), _Rate(), TimeRemainingColumn(),
        TextColumn("[red]{task.fields[failed]} failed"),
        console=console, disable=not console.is_terminal, transient=False,
    )
    task = progress.add_task("download", total=total, failed=0)
    failures = 0

    def advance(failed: bool) -> None:
        nonlocal failures
        failures += failed
        progress.update(task, advance=1, failed=failures)

    with progress:
        yield advance


# --------------------------------------------------------------------------- entry point


def download_images(
    jobs: Sequence[DownloadJob],
    options: DownloadOptions | None = None,
    on_progress: Callable[[DownloadOutcome], None] | None = None,
    before_commit: Callable[[DownloadJob, ImageSource], None] | None = None,
) -> DownloadReport:
    """Download every job's image to its ``dest``; return outcomes in the order of ``jobs``.

    A failed image is an outcome with ``ok=False`` and a reason code, never an exception.
    ``on_progress`` is called in the calling thread, in completion order, once per job;
    an exception it raises (e.g. KeyboardInterrupt) stops the run like Ctrl-C does:
    queued jobs are cancelled, in-flight ones abort, temp files are removed, the
    exception propagates. Files already finished stay; a rerun skips them.

    ``before_commit(job, source)`` runs in a worker thread just before a verified file is
    renamed into place (e.g. to journal where it came from, so a kill between the rename
    and ``on_progress`` loses nothing); it must be thread-safe.

    When it returns, every file it wrote is on disk (data synced before each rename,
    each folder synced once at the end).

    Raises MlkitError for invalid options or jobs, and when a file cannot be written
    (disk full, permissions): the run stops, since every later job would fail the same way.
    """
    opt = options or DownloadOptions()
    _check_options(opt)
    jobs = list(jobs)
    _check_jobs(jobs)
    started = time.monotonic()
    _prepare_dirs(jobs)

    stop = threading.Event()
    registry = _Registry()
    downloader = _Downloader(opt, stop, registry, before_commit)
    outcomes: list[DownloadOutcome | None] = [None] * len(jobs)
    executor = ThreadPoolExecutor(max_workers=opt.workers, thread_name_prefix="mlkit-download")
    running: dict[Future[DownloadOutcome], int] = {}
    finished: queue.SimpleQueue[Future[DownloadOutcome]] = queue.SimpleQueue()
    # A bounded window of submitted jobs keeps memory flat and Ctrl-C quick for big runs.
    window = opt.workers * 2
    pending = iter(range(len(jobs)))
    try:
        with _progress_bar(opt.progress, len(jobs)) as advance:
            def refill() -> None:
                while len(running) < window:
                    index = next(pending, None)
                    if index is None:
                        return
                    future = executor.submit(downloader.run_job, jobs[index])
                    running[future] = index
                    future.add_done_callback(finished.put)

            refill()
            while running:
                try:  # a timeout, so that Ctrl-C is seen at once
                    future = finished.get(timeout=0.25)
                except queue.Empty:
                    continue
                index = running.pop(future)
                try:
                    outcome = future.result()
                except _WriteFailed as e:
                    raise MlkitError(
                        f"cannot write {e.path}: {e.error.strerror or e.error}; "
                        f"free disk space or fix the permissions of {e.path.parent}") from e
                outcomes[index] = outcome
                advance(not outcome.ok)
                if on_progress is not None:
                    on_progress(outcome)
                refill()
    except BaseException:
        stop.set()
        executor.shutdown(wait=False, cancel_futures=True)
        registry.abort_responses()
        # Cancelled futures never reach "done" for wait(); only the in-flight ones matter.
        in_flight = [f for f in running if not f.cancelled()]
        if in_flight:
            wait_futures(in_flight, timeout=_INTERRUPT_GRACE)
        registry.remove_temps()
        downloader.close()
        raise
    executor.shutdown(wait=True)
    downloader.close()
    _sync_folders(downloader.folders)
    return DownloadReport(outcomes=[o for o in outcomes if o is not None], elapsed=time.monotonic() - started)
