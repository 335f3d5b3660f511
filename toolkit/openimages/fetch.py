"""Getting Open Images metadata files (CSV/JSON, up to several GB) into a local cache.

A *source* is either a base URL laid out like the Open Images bucket (the real one by
default, or a mirror / test server) or a local folder laid out the same way. ``fetch``
turns a path under that base (``layout.CLASSES_ALL`` and friends) into a local file that
is complete and verified:

- a local folder is used in place, never copied;
- a URL is downloaded once into ``cache_dir/<host>[_<port>]/<base path>/<relpath>``, next
  to a ``.meta.json`` sidecar; a later call finds both and makes no request;
- a download streams into ``<file>.part`` and resumes from the bytes already there, after
  a dropped connection within one call or after a killed run (``Range`` + ``If-Range``);
- the size must match what the server announced and, when the server sends
  ``x-goog-hash: md5=...`` (Google Cloud Storage does), so must the MD5; only then is the
  file renamed into place, so the final path never holds a truncated file;
- the sidecar records the file's size, MD5 and modification time. A cached file is used
  only if its size is the recorded one and, when its modification time changed (it was
  written to since), its MD5 is too; a damaged file is downloaded again, with a message;
- a download holds a lock (``<file>.lock``) so that two runs never write one file at once:
  the second waits, then finds the file in the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlsplit
from urllib.request import url2pathname

import requests

from toolkit.errors import MlkitError
from toolkit.fsutil import atomic_write_text, file_md5, locked
from toolkit.netutil import b64_from_md5_hex, is_name_resolution_error, md5_from_b64, retry_pause
from toolkit.openimages import layout

CHUNK_SIZE = 256 * 1024
"""Bytes read from the network (and hashed) at a time. A dropped connection loses at most
the chunk being read (requests discards a short last read), so resuming repeats that much."""

BACKOFF_BASE_S = 0.5
"""First pause between retries; it doubles each time, up to ``BACKOFF_MAX_S`` (``netutil.retry_pause``)."""
BACKOFF_MAX_S = 10.0

_META_SUFFIX = ".meta.json"
_PART_SUFFIX = ".part"
_RETRY_STATUS = frozenset({408, 425, 429})  # besides every 5xx


# --------------------------------------------------------------------------- sources


def default_cache_dir() -> Path:
    """Where downloads are cached: ``$MLKIT_CACHE`` if set, else the user's cache folder.

    ``~/Library/Caches/mlkit`` on macOS; ``$XDG_CACHE_HOME/mlkit`` or ``~/.cache/mlkit``
    elsewhere.
    """
    env = os.environ.get("MLKIT_CACHE")
    if env:
        return Path(env).expanduser()
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "mlkit"
    xdg = os.environ.get("XDG_CACHE_HOME")
    # The XDG spec says a relative value is invalid and must be ignored.
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "mlkit"
    return Path.home() / ".cache" / "mlkit"


@dataclass(frozen=True)
class MetadataSource:
    """Where metadata files come from, and where downloaded ones are kept.

    ``base`` is an http(s) base URL ending in ``/`` (default ``layout.METADATA_BASE``) or
    the path of a local folder laid out like the Open Images bucket. Build one with
    ``metadata_source`` rather than by hand.
    """

    base: str
    cache_dir: Path

    @property
    def is_local(self) -> bool:
        return not _is_http(self.base)

    def describe(self) -> str:
        if self.is_local:
            return f"local folder {self.base}"
        return f"{self.base} (cached in {self.cache_dir})"

    def url(self, relpath: str) -> str:
        """The URL of ``relpath`` under a URL source."""
        return self.base.rstrip("/") + "/" + quote(_check_relpath(relpath), safe="/")

    def cache_path(self, relpath: str) -> Path:
        """Where ``relpath`` of a URL source is cached; distinct sources never collide."""
        parts = urlsplit(self.base)
        host = (parts.hostname or "unknown-host").lower()
        if parts.port is not None:
            host = f"{host}_{parts.port}"
        base_segments = [_safe_segment(s) for s in unquote(parts.path).split("/") if s]
        return self.cache_dir.joinpath(host, *base_segments, *_check_relpath(relpath).split("/"))


def metadata_source(
    base: str | Path | None = None, cache_dir: Path | str | None = None
) -> MetadataSource:
    """Build a ``MetadataSource``.

    ``base``: ``None`` for the real Open Images bucket; an ``http(s)://`` base URL of a
    mirror; or a local folder laid out like the bucket, as an existing directory path or a
    ``file://`` URL. ``cache_dir``: where URL downloads are kept (default
    ``default_cache_dir()``); unused by a local folder.
    """
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    if base is None:
        return MetadataSource(layout.METADATA_BASE, cache)

    if isinstance(base, Path):
        return MetadataSource(str(_existing_folder(base, str(base))), cache)

    text = str(base).strip()
    scheme = urlsplit(text).scheme.lower()
    if scheme in ("http", "https"):
        if not urlsplit(text).hostname:
            raise MlkitError(f"source {text!r} has no host name; give a URL like {layout.METADATA_BASE}")
        if not text.endswith("/"):
            text += "/"
        return MetadataSource(text, cache)
    if scheme == "file":
        parts = urlsplit(text)
        if parts.netloc not in ("", "localhost"):
            raise MlkitError(
                f"source {text!r} names a remote host; a file:// source must be a local folder "
                f"(file:///path/to/folder)"
            )
        return MetadataSource(str(_existing_folder(Path(url2pathname(parts.path)), text)), cache)
    if text and Path(text).expanduser().is_dir():
        return MetadataSource(str(Path(text).expanduser().resolve()), cache)
    raise MlkitError(
        f"source {text!r} is neither an http(s):// URL nor an existing folder; give a base URL "
        f"laid out like {layout.METADATA_BASE}, a local folder laid out the same way, or a "
        f"file:// URL of such a folder"
    )


def _existing_folder(path: Path, given: str) -> Path:
    path = path.expanduser()
    if not path.is_dir():
        raise MlkitError(
            f"source folder {given!r} does not exist or is not a folder; give an existing folder "
            f"laid out like {layout.METADATA_BASE}"
        )
    return path.resolve()


def _is_http(base: str) -> bool:
    return urlsplit(base).scheme.lower() in ("http", "https")


def _check_relpath(relpath: str) -> str:
    segments = relpath.replace("\\", "/").split("/")
    if not relpath or relpath.startswith("/") or any(s in ("", ".", "..") for s in segments):
        raise MlkitError(
            f"metadata path {relpath!r} must be relative to the source base, like "
            f"{layout.CLASSES_ALL!r}"
        )
    return "/".join(segments)


def _safe_segment(segment: str) -> str:
    if segment in (".", ".."):
        return "_"
    return re.sub(r'[\\:*?"<>|\x00-\x1f]', "_", segment)


# --------------------------------------------------------------------------- fetch


def fetch(
    source: MetadataSource,
    relpath: str,
    *,
    progress: bool = True,
    session: requests.Session | None = None,
    timeout: float = 30.0,
    retries: int = 5,
) -> Path:
    """Return a local path to the complete, verified file ``relpath`` of ``source``.

    A local folder source returns ``base/relpath`` itself. A URL source returns the cached
    copy when it and its sidecar exist (no request); otherwise it downloads into
    ``<file>.part`` (resuming what an earlier attempt left), checks the size and, when the
    server sends one, the MD5, and renames the file into place.

    ``progress``: show a progress bar on stderr. ``session``: a ``requests.Session`` to
    reuse (one is made otherwise). ``timeout``: seconds to connect and between bytes.
    ``retries``: how many times a dropped connection, timeout or 5xx is retried, each
    resuming from the bytes already on disk.

    Raises ``MlkitError`` when the file is missing, the server refuses it, the network is
    unreachable, retries run out or the MD5 still differs after one fresh download.
    """
    relpath = _check_relpath(relpath)
    if source.is_local:
        path = Path(source.base) / relpath
        if not path.is_file():
            raise MlkitError(
                f"{path} not found: the source folder {source.base} must be laid out like the "
                f"Open Images bucket ({layout.METADATA_BASE}), with this file at {relpath}"
            )
        return path

    dest = source.cache_path(relpath)
    if _cached(dest)[0]:
        return dest

    url = source.url(relpath)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with locked(dest.with_name(dest.name + ".lock"), f"the cached file {dest}"):
        ok, problem = _cached(dest)  # another run may have fetched it while we waited
        if ok:
            return dest
        if problem:
            print(f"The cached {dest} is damaged ({problem}); downloading it again.", file=sys.stderr)
            dest.unlink(missing_ok=True)
            _sidecar(dest).unlink(missing_ok=True)
        own_session = session is None
        http = session if session is not None else requests.Session()
        try:
            with _progress_bar(progress, relpath) as bar:
                return _download(http, url, dest, timeout=timeout, retries=max(0, retries), bar=bar)
        finally:
            if own_session:
                http.close()


@dataclass(frozen=True)
class FileInfo:
    """What ``head`` learnt of one metadata file without downloading it."""

    relpath: str
    url: str                # the URL, or the local path for a folder source
    size: int | None        # bytes (None: the server did not say)
    cached: bool            # complete on disk already (or in a local folder): no download needed
    partial: int = 0        # bytes of an interrupted download kept in its .part file


def head(
    source: MetadataSource,
    relpath: str,
    *,
    session: requests.Session | None = None,
    timeout: float = 30.0,
    retries: int = 2,
) -> FileInfo:
    """Size of ``relpath`` and whether it is cached, with at most one HTTP ``HEAD`` (no body).

    A local folder source and a cached file answer from disk, making no request. Otherwise
    ``HEAD`` follows redirects and reads ``Content-Length`` (Google Cloud Storage sends it
    for every object). Raises ``MlkitError`` when the file is missing or the host cannot be
    reached, as ``fetch`` would.
    """
    relpath = _check_relpath(relpath)
    if source.is_local:
        path = Path(source.base) / relpath
        if not path.is_file():
            raise MlkitError(
                f"{path} not found: the source folder {source.base} must be laid out like the "
                f"Open Images bucket ({layout.METADATA_BASE}), with this file at {relpath}"
            )
        return FileInfo(relpath, str(path), path.stat().st_size, True)
    dest = source.cache_path(relpath)
    url = source.url(relpath)
    if _cached(dest)[0]:
        return FileInfo(relpath, url, dest.stat().st_size, True)
    partial = _size(dest.with_name(dest.name + _PART_SUFFIX))
    http = session if session is not None else requests.Session()
    try:
        for attempt in range(max(0, retries) + 1):
            try:
                resp = http.head(url, timeout=timeout, allow_redirects=True,
                                 headers={"Accept-Encoding": "identity"})
            except requests.RequestException as exc:
                if attempt < retries and not is_name_resolution_error(exc):
                    time.sleep(retry_pause(attempt + 1, BACKOFF_BASE_S, BACKOFF_MAX_S))
                    continue
                raise MlkitError(
                    f"could not reach {url} ({_reason(exc)}): check your connection, or use --source "
                    f"with a local mirror or folder laid out like {layout.METADATA_BASE}"
                ) from None
            if resp.status_code >= 500 or resp.status_code in _RETRY_STATUS:
                if attempt < retries:
                    time.sleep(retry_pause(attempt + 1, BACKOFF_BASE_S, BACKOFF_MAX_S))
                    continue
            if resp.status_code in (404, 410):
                raise MlkitError(f"{url} not found (HTTP {resp.status_code}): is --source laid out like "
                                 f"{layout.METADATA_BASE}?")
            if resp.status_code >= 400:
                raise MlkitError(f"{url} answered HEAD with HTTP {resp.status_code}; try again later")
            return FileInfo(relpath, url, _int(resp.headers.get("Content-Length")), False, partial)
        raise AssertionError("unreachable")
    finally:
        if session is None:
            http.close()



_VERIFIED: set[tuple[str, int, int]] = set()  # (path, size, mtime_ns) checked in this process


def _cached(dest: Path) -> tuple[bool, str | None]:
    """(usable, what is wrong): the cached file is used only as its sidecar describes it.
    The size is checked every time; the MD5 (about 2 s a GB) only when the file's
    modification time is not the one recorded, i.e. something wrote to it since."""
    meta = _read_json(_sidecar(dest))
    try:
        st = dest.stat()
    except FileNotFoundError:
        return False, None
    if meta is None:
        return False, None  # no sidecar: not known to be complete
    size = meta.get("size")
    if isinstance(size, int) and st.st_size != size:
        return False, f"{st.st_size} bytes, {size} recorded"
    key = (str(dest), st.st_size, st.st_mtime_ns)
    if meta.get("mtime_ns") == st.st_mtime_ns or key in _VERIFIED:
        return True, None
    md5 = meta.get("md5")
    if not isinstance(md5, str):
        return True, None  # an old sidecar without an MD5: size is all there is to check
    got = b64_from_md5_hex(file_md5(dest))
    if got != md5:
        return False, f"its MD5 is {got}, {md5} recorded when it was downloaded"
    _VERIFIED.add(key)
    _write_json(_sidecar(dest), {**meta, "mtime_ns": st.st_mtime_ns})  # checked: trust this time
    return True, None


# The download proper: one loop of attempts, each a single HTTP request.


class _Transient(Exception):
    """A failure worth retrying; bytes already in the .part file are kept."""


class _Restart(Exception):
    """The .part file cannot be continued; start from zero without waiting."""


@dataclass
class _Done:
    size: int
    md5_hex: str
    expected_md5_b64: str | None
    etag: str | None


def _download(http: requests.Session, url: str, dest: Path, *, timeout: float, retries: int, bar: _Bar) -> Path:
    part = dest.with_name(dest.name + _PART_SUFFIX)
    failures = 0  # transient failures so far; at most `retries` are retried
    restarts = 0  # _Restart without a wait; bounded so a confused server cannot loop us
    md5_refetched = False
    last_error = ""
    while True:
        try:
            done = _attempt(http, url, part, timeout=timeout, bar=bar)
        except _Transient as exc:
            last_error = str(exc)
            if failures >= retries:
                kept = _size(part)
                then = (
                    f"run again to resume from the {kept} bytes kept in {part}" if kept
                    else "check your connection and try again later"
                )
                raise MlkitError(
                    f"could not download {url} after {failures + 1} attempts ({last_error}); "
                    f"{then}, or use --source with a local mirror or folder laid out like "
                    f"{layout.METADATA_BASE}"
                ) from None
            failures += 1
            pause = retry_pause(failures, BACKOFF_BASE_S, BACKOFF_MAX_S)
            bar.note(f"{last_error}; retry {failures}/{retries} in {pause:.1f} s, resuming from byte {_size(part)}")
            time.sleep(pause)
            continue
        except _Restart as exc:
            _discard(part)
            restarts += 1
            if restarts > retries + 1:
                raise MlkitError(f"could not download {url}: {exc}; try again later") from None
            continue

        if done.expected_md5_b64 is not None and not _md5_matches(done.md5_hex, done.expected_md5_b64):
            _discard(part)
            if md5_refetched:
                raise MlkitError(
                    f"{url} failed its MD5 check twice (server says {done.expected_md5_b64}, "
                    f"the download hashes to {b64_from_md5_hex(done.md5_hex)}); the server or a proxy is "
                    f"corrupting it: try again later or use --source with a local mirror"
                )
            md5_refetched = True
            continue

        _fsync(part)
        os.replace(part, dest)
        _write_json(_sidecar(dest), {
            "mtime_ns": dest.stat().st_mtime_ns,
            "url": url,
            "size": done.size,
            "md5": b64_from_md5_hex(done.md5_hex),  # base64, as in x-goog-hash
            "md5_verified": done.expected_md5_b64 is not None,  # the server sent one to check
            "etag": done.etag,
            "fetched_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        })
        _sidecar(part).unlink(missing_ok=True)
        return dest


def _attempt(http: requests.Session, url: str, part: Path, *, timeout: float, bar: _Bar) -> _Done:
    """One request: continue (or start) ``part`` and return once it holds the whole file."""
    part_meta = _read_json(_sidecar(part)) or {}
    if part_meta.get("url") not in (None, url):
        part_meta = {}
        _discard(part)
    offset = _size(part)
    if offset == 0:
        part_meta = {}

    headers = {"Accept-Encoding": "identity"}  # the bytes as stored: sizes and hashes hold
    if offset > 0:
        headers["Range"] = f"bytes={offset}-"
        etag = part_meta.get("etag")
        if isinstance(etag, str) and etag and not etag.startswith("W/"):  # If-Range needs a strong one
            headers["If-Range"] = etag

    try:
        resp = http.get(url, headers=headers, stream=True, timeout=timeout)
    except requests.exceptions.ConnectionError as exc:
        if is_name_resolution_error(exc):
            raise MlkitError(
                f"could not download {url}: the host cannot be resolved (no network or DNS?); "
                f"check your connection, or use --source with a local mirror or folder laid "
                f"out like {layout.METADATA_BASE}"
            ) from None
        raise _Transient(f"connection failed: {_reason(exc)}") from None
    except requests.exceptions.Timeout as exc:
        raise _Transient(f"timed out: {_reason(exc)}") from None
    except requests.exceptions.RequestException as exc:
        raise MlkitError(f"could not download {url}: {_reason(exc)}; check --source") from None

    with resp:
        status = resp.status_code
        if status == 416 and offset > 0:
            return _range_not_satisfiable(resp, part, part_meta, offset, bar)
        if status == 404:
            raise MlkitError(
                f"{part.name.removesuffix(_PART_SUFFIX)} not found at {url}; check --source "
                f"(a mirror must be laid out like {layout.METADATA_BASE})"
            )
        if status >= 500 or status in _RETRY_STATUS:
            raise _Transient(f"HTTP {status}")
        if status not in (200, 206):
            raise MlkitError(f"could not download {url}: HTTP {status} {resp.reason}; check --source")

        etag = resp.headers.get("ETag")
        expected_md5 = _goog_md5(resp.headers)
        encoded = resp.headers.get("Content-Encoding", "identity").lower() not in ("", "identity")
        if status == 206:
            if offset == 0:
                raise _Restart("server sent a partial response to a full request")
            start, total = _content_range(resp.headers.get("Content-Range", ""))
            if start != offset:
                raise _Restart(f"server resumed at byte {start}, not {offset}")
            if expected_md5 is None:
                expected_md5 = part_meta.get("md5")
            mode = "ab"
        else:
            offset = 0
            total = None if encoded else _int(resp.headers.get("Content-Length"))
            mode = "wb"
        if encoded:
            expected_md5 = None  # the hash describes the encoded bytes, not what we store
        if status == 200 or not part_meta:
            _write_json(_sidecar(part), {"url": url, "etag": etag, "size": total, "md5": expected_md5})

        digest = hashlib.md5()
        if offset > 0:
            _hash_file(part, digest)
        written = offset
        bar.start(total, offset)
        try:
            with open(part, mode) as out:
                for chunk in resp.iter_content(CHUNK_SIZE):
                    out.write(chunk)
                    digest.update(chunk)
                    written += len(chunk)
                    bar.advance(len(chunk))
        except requests.exceptions.RequestException as exc:  # (an OSError too: test it first)
            raise _Transient(f"connection lost after {written} bytes: {_reason(exc)}") from None
        except OSError as exc:
            if _is_network_oserror(exc):
                raise _Transient(f"connection lost after {written} bytes: {_reason(exc)}") from None
            raise MlkitError(f"could not write {part}: {exc}; check free space and permissions") from None

    if total is not None:
        if written < total:
            raise _Transient(f"connection closed after {written} of {total} bytes")
        if written > total:
            raise _Restart(f"received {written} bytes, more than the {total} announced")
    return _Done(written, digest.hexdigest(), expected_md5, etag)


def _range_not_satisfiable(resp: requests.Response, part: Path, part_meta: dict[str, Any], offset: int, bar: _Bar) -> _Done:
    """416 to ``Range: bytes=<offset>-``: the part may already be whole, or is bogus."""
    total = None
    match = re.fullmatch(r"\s*bytes\s+\*/(\d+)\s*", resp.headers.get("Content-Range", ""))
    if match:
        total = int(match.group(1))
    elif isinstance(part_meta.get("size"), int):
        total = part_meta["size"]
    if total is None or total != offset:
        raise _Restart(f"server has no bytes after {offset} (size {total})")
    # A run was stopped after the last byte landed but before the rename: verify and keep.
    digest = hashlib.md5()
    _hash_file(part, digest)
    bar.start(total, total)
    expected = _goog_md5(resp.headers) or part_meta.get("md5")
    return _Done(total, digest.hexdigest(), expected, part_meta.get("etag") or resp.headers.get("ETag"))


# --------------------------------------------------------------------------- helpers


def _content_range(value: str) -> tuple[int, int | None]:
    match = re.fullmatch(r"\s*bytes\s+(\d+)-(\d+)/(\d+|\*)\s*", value)
    if not match:
        raise _Restart(f"unreadable Content-Range {value!r}")
    total = None if match.group(3) == "*" else int(match.group(3))
    return int(match.group(1)), total


def _goog_md5(headers: Any) -> str | None:
    """The base64 MD5 in ``x-goog-hash: crc32c=...,md5=...`` (possibly several headers)."""
    for item in headers.get("x-goog-hash", "").split(","):
        key, _, value = item.strip().partition("=")
        if key.strip().lower() == "md5" and value.strip():
            return value.strip()
    return None


def _md5_matches(md5_hex: str, expected_b64: str) -> bool:
    digest = md5_from_b64(expected_b64)
    return digest is not None and digest.hex() == md5_hex


def _hash_file(path: Path, digest: Any) -> None:
    with open(path, "rb") as f:
        while block := f.read(CHUNK_SIZE):
            digest.update(block)


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + _META_SUFFIX)


def _discard(part: Path) -> None:
    part.unlink(missing_ok=True)
    _sidecar(part).unlink(missing_ok=True)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Write atomically: a reader sees the old file or the new one, never half of one."""
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def _fsync(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "..."


def _is_network_oserror(exc: OSError) -> bool:
    # urllib3 surfaces some socket errors raw from a streamed body; disk errors are ours.
    return isinstance(exc, (ConnectionError, TimeoutError, socket.timeout))


# --------------------------------------------------------------------------- progress


SMALL_FILE_BYTES = 1 << 20


class _Bar:
    """A rich progress bar on stderr (bytes, rate, ETA), or nothing."""

    def __init__(self, progress: Any, label: str) -> None:
        self._progress = progress
        self._label = label
        self._task: Any = None

    def start(self, total: int | None, completed: int) -> None:
        if self._progress is None:
            return
        if self._task is None:
            if total is not None and total - completed < SMALL_FILE_BYTES:
                return  # a bar that flashes by for a small file is only noise
            self._task = self._progress.add_task(self._label, total=total, completed=completed)
        else:
            self._progress.reset(self._task, total=total, completed=completed)

    def note(self, message: str) -> None:
        if self._progress is not None:
            self._progress.console.print(f"{self._label}: {message}", style="yellow", markup=False, highlight=False)

    def advance(self, n: int) -> None:
        if self._task is not None:
            self._progress.advance(self._task, n)


@contextmanager
def _progress_bar(enabled: bool, label: str) -> Iterator[_Bar]:
    if not enabled:
        yield _Bar(None, label)
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn,
        TransferSpeedColumn,
    )

    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        console=(console := Console(stderr=True)),
        disable=not console.is_terminal,   # piped or in CI: no bar (rich would leave blank lines)
        transient=True,
    )
    with progress:
        yield _Bar(progress, label)
