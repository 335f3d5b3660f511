"""The HTTP side of the downloader: pooled keep-alive connections (direct or through the
environment's proxy, verified with requests' CAs), one GET with its redirects and its
body, the reason code of each way a request fails, and the retries with backoff."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from http.client import HTTPException, IncompleteRead
from typing import TypeVar
from urllib.parse import unquote, urljoin, urlsplit

import requests
import urllib3
from urllib3.exceptions import ConnectTimeoutError, LocationValueError, NewConnectionError, ReadTimeoutError

from toolkit.netutil import exception_chain, retry_pause

from .jobs import Cancelled, DownloadOptions, Failure

_CHUNK = 256 * 1024         # bytes per body read; the stop flag is checked between reads
_DRAIN_MAX = 64 * 1024      # an error body up to this size is read so its connection is reused
_MAX_REDIRECTS = 30
_BACKOFF_CAP = 8.0          # seconds; also caps a server's Retry-After
_PLACEHOLDER_MARK = "photo_unavailable"

T = TypeVar("T")


@dataclass
class Fetched:
    body: bytes
    url: str                  # final URL after redirects
    length_known: bool        # the server declared Content-Length (so a full count proves completeness)


class GaveUp(Exception):
    """A source failed for good: its last failure, after ``tries`` requests."""

    def __init__(self, failure: Failure, tries: int):
        super().__init__(failure.message)
        self.failure = failure
        self.tries = tries


class HttpClient:
    """GETs for many threads at once; ``stop`` set makes every call raise ``Cancelled``."""

    def __init__(self, options: DownloadOptions, stop: threading.Event):
        self.opt = options
        self.stop = stop
        # Keep-alive connections pooled per host, one per worker. urllib3's own retries and
        # redirects are off: get_checked retries by itself (it needs to know why each attempt
        # failed), and fetch follows redirects by itself (the chain is where Flickr's
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
        self._live: set[urllib3.BaseHTTPResponse] = set()               # responses being read

    def _manager_for(self, url: str) -> urllib3.PoolManager:
        """The pool manager for a URL's host: direct, or its proxy's when the environment
        (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY, NO_PROXY) names one; looked up once per host."""
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        manager = self._routes.get(key)
        if manager is not None:
            return manager
        if parts.scheme not in ("http", "https"):
            raise Failure("connection_error", False, f"{url} is not an http(s) URL")
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

    @contextmanager
    def _tracked(self, resp: urllib3.BaseHTTPResponse) -> Iterator[urllib3.BaseHTTPResponse]:
        """While the block runs, ``abort`` can wake a thread reading ``resp``."""
        with self._lock:
            self._live.add(resp)
        try:
            yield resp
        finally:
            with self._lock:
                self._live.discard(resp)

    def abort(self) -> None:
        """Wake threads blocked reading a body (shutdown, unlike close, interrupts a recv)."""
        with self._lock:
            responses = list(self._live)
        for resp in responses:
            sock = getattr(resp.connection, "sock", None)
            if sock is not None:
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    # -- retries ---------------------------------------------------------------------

    def get_checked(self, url: str, check: Callable[[Fetched], T]) -> tuple[T, int]:
        """``check`` of the body ``url`` serves, and the requests it took; raises GaveUp.

        A ``Failure`` of the request or of ``check`` that is retriable is tried again up to
        ``options.retries`` times, after a backoff pause (``netutil.retry_pause``); an MD5
        mismatch at most once (a second one means the source itself differs)."""
        tries = 0
        md5_retried = False
        while True:
            tries += 1
            try:
                return check(self.fetch(url)), tries
            except Failure as failure:
                again = failure.retriable and tries <= self.opt.retries
                if failure.reason == "md5_mismatch":
                    again = again and not md5_retried
                    md5_retried = True
                if not again:
                    raise GaveUp(failure, tries) from None
                self._sleep_before_retry(tries, failure.retry_after)

    def _sleep_before_retry(self, tries: int, retry_after: float | None) -> None:
        if self.stop.wait(retry_pause(tries, self.opt.backoff, _BACKOFF_CAP, retry_after)):
            raise Cancelled

    # -- one GET ---------------------------------------------------------------------

    def fetch(self, url: str) -> Fetched:
        """GET ``url``, following redirects: the complete body, or a Failure."""
        first = url
        for _ in range(_MAX_REDIRECTS + 1):
            if _PLACEHOLDER_MARK in url:  # Flickr redirects a deleted photo to this image
                raise Failure("placeholder", False, f"redirected to {url}")
            resp = self._request(url)
            with self._tracked(resp):  # so that Ctrl-C can wake any read below
                try:
                    status = resp.status
                    location = resp.get_redirect_location()
                    if location:
                        url = urljoin(url, location)
                        continue
                    if status != 200:
                        raise _status_failure(status, resp.headers, url)
                    body, length_known = self._read_body(resp)
                    return Fetched(body, url, length_known)
                finally:
                    _release(resp, drain=not self.stop.is_set())
        raise Failure(f"http_{status}", False, f"more than {_MAX_REDIRECTS} redirects from {first}")

    def _request(self, url: str) -> urllib3.BaseHTTPResponse:
        """Send the request and read the response head; the body is left to read."""
        try:
            return self._manager_for(url).urlopen("GET", url, redirect=False, retries=False,
                                                   preload_content=False, decode_content=False)
        except (urllib3.exceptions.HTTPError, HTTPException, OSError) as e:
            if self.stop.is_set():
                raise Cancelled from e
            raise _classify(e) from e

    def _read_body(self, resp: urllib3.BaseHTTPResponse) -> tuple[bytes, bool]:
        """The whole body, and whether the server declared its length (so it is complete)."""
        declared = resp.headers.get("Content-Length")
        expected = int(declared) if declared and declared.isdigit() else None
        chunks = []
        try:
            while True:
                if self.stop.is_set():
                    raise Cancelled
                chunk = resp.read(_CHUNK)
                if not chunk:
                    break
                chunks.append(chunk)
        except (urllib3.exceptions.HTTPError, HTTPException, OSError) as e:
            if self.stop.is_set():
                raise Cancelled from e
            raise _classify(e) from e
        body = b"".join(chunks)   # one chunk: that very object, no copy
        if expected is not None and len(body) != expected:
            raise Failure("truncated", True, f"received {len(body)} of {expected} bytes")
        return body, expected is not None


# --------------------------------------------------------------------------- responses


def _status_failure(status: int, headers: urllib3.HTTPHeaderDict, url: str) -> Failure:
    where = f"HTTP {status} from {url}"
    if status in (404, 410):
        return Failure("not_found", False, where)
    if status == 429 or status >= 500:
        retry_after = None
        value = headers.get("Retry-After", "")
        with suppress(ValueError):
            retry_after = float(value) if value else None
        reason = "http_429" if status == 429 else "server_error"
        return Failure(reason, True, where, retry_after)
    return Failure(f"http_{status}", False, where)


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


def _classify(e: BaseException) -> Failure:
    """The reason code of a failed request or body read (urllib3 nests the socket error)."""
    message = f"{type(e).__name__}: {e}"
    if isinstance(e, LocationValueError):  # a URL urllib3 cannot use: retrying cannot help
        return Failure("connection_error", False, message)
    causes = exception_chain(e)
    if any(isinstance(c, ConnectTimeoutError | ReadTimeoutError | TimeoutError)
           and not isinstance(c, NewConnectionError) for c in causes):  # refused, DNS: not a timeout
        return Failure("timeout", True, message)
    if any(isinstance(c, IncompleteRead) for c in causes):  # urllib3's and http.client's
        return Failure("truncated", True, message)
    return Failure("connection_error", True, message)


# --------------------------------------------------------------------------- environment


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
            raise Failure("connection_error", False,
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
