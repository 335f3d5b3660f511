"""The resumable HTTP transfer of one metadata file into the cache.

- a download streams into ``<file>.part`` and resumes from the bytes already there, after
  a dropped connection within one call or after a killed run (``Range`` + ``If-Range``);
- the size must match what the server announced and, when the server sends
  ``x-goog-hash: md5=...`` (Google Cloud Storage does), so must the MD5; only then is the
  file renamed into place, so the final path never holds a truncated file;
- a dropped connection, a timeout or a 5xx is retried after a pause
  (``netutil.retry_pause``), each retry resuming from the bytes on disk.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from toolkit.errors import MlkitError
from toolkit.netutil import b64_from_md5_hex, is_name_resolution_error, md5_from_b64, retry_pause
from toolkit.openimages import layout
from toolkit.openimages.cachedfile import (PART_SUFFIX, discard, part_of, read_json, record_download, sidecar,
                                           size_of, write_json)
from toolkit.progress import Bar, Reporter

CHUNK_SIZE = 256 * 1024
"""Bytes read from the network (and hashed) at a time. A dropped connection loses at most
the chunk being read (requests discards a short last read), so resuming repeats that much."""

BACKOFF_BASE_S = 0.5
"""First pause between retries; it doubles each time, up to ``BACKOFF_MAX_S`` (``netutil.retry_pause``)."""
BACKOFF_MAX_S = 10.0

SMALL_FILE_BYTES = 1 << 20
"""A download with less than this to go gets no bar: one that flashes by is only noise."""

_RETRY_STATUS = frozenset({408, 425, 429})  # besides every 5xx


def _retryable(status: int) -> bool:
    return status >= 500 or status in _RETRY_STATUS


def _pause(attempt: int) -> None:
    time.sleep(retry_pause(attempt, BACKOFF_BASE_S, BACKOFF_MAX_S))


# --------------------------------------------------------------------------- size only


def remote_size(http: requests.Session, url: str, *, timeout: float, retries: int) -> int | None:
    """``Content-Length`` of ``url`` from one ``HEAD`` (no body), following redirects and
    retrying what ``download`` would retry; None when the server does not say."""
    for attempt in range(max(0, retries) + 1):
        try:
            resp = http.head(url, timeout=timeout, allow_redirects=True, headers={"Accept-Encoding": "identity"})
        except requests.RequestException as exc:
            if attempt < retries and not is_name_resolution_error(exc):
                _pause(attempt + 1)
                continue
            raise MlkitError(
                f"could not reach {url} ({_reason(exc)}): check your connection, or use --source "
                f"with a local mirror or folder laid out like {layout.METADATA_BASE}"
            ) from None
        if _retryable(resp.status_code) and attempt < retries:
            _pause(attempt + 1)
            continue
        if resp.status_code in (404, 410):
            raise MlkitError(f"{url} not found (HTTP {resp.status_code}): is --source laid out like "
                             f"{layout.METADATA_BASE}?")
        if resp.status_code >= 400:
            raise MlkitError(f"{url} answered HEAD with HTTP {resp.status_code}; try again later")
        return _int(resp.headers.get("Content-Length"))
    raise AssertionError("unreachable")


# --------------------------------------------------------------------------- download


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


@dataclass
class _Incoming:
    """What an answer's headers say its body is."""

    offset: int                 # where in the file the body starts
    total: int | None           # the whole file's size (None: not said)
    mode: str                   # "ab" to continue the part, "wb" to start it over
    expected_md5: str | None    # base64 MD5 of the whole file, to check
    etag: str | None


class _ByteBar:
    """The bytes bar of one download, opened through the reporter once the size is known,
    and not at all for a small file; retry messages go to the reporter, naming the file."""

    def __init__(self, reporter: Reporter, label: str) -> None:
        self._reporter, self._label = reporter, label
        self._stack = ExitStack()
        self._bar: Bar | None = None

    def __enter__(self) -> _ByteBar:
        return self

    def __exit__(self, *exc: object) -> bool | None:
        return self._stack.__exit__(*exc)

    def start(self, total: int | None, completed: int) -> None:
        """The body (re)starts at byte ``completed`` of ``total``."""
        if self._bar is not None:
            self._bar.restart(total, completed)
            return
        if total is not None and total - completed < SMALL_FILE_BYTES:
            return
        self._bar = self._stack.enter_context(self._reporter.bar(self._label, total, unit="B"))
        if completed:
            self._bar.restart(total, completed)

    def advance(self, n: int) -> None:
        if self._bar is not None:
            self._bar.advance(n)

    def note(self, message: str) -> None:
        self._reporter.note(f"{self._label}: {message}")


def download(http: requests.Session, url: str, dest: Path, *, timeout: float, retries: int,
             reporter: Reporter, label: str) -> Path:
    """Download ``url`` to ``dest`` through ``<dest>.part`` (resuming what it holds), verify
    it and rename it into place, with its sidecar. ``label`` names it in the bar and notes."""
    with _ByteBar(reporter, label) as bar:
        done = _complete_part(http, url, part_of(dest), timeout=timeout, retries=retries, bar=bar)
    part = part_of(dest)
    _fsync(part)
    os.replace(part, dest)
    record_download(dest, url, done.size, done.md5_hex, done.expected_md5_b64 is not None, done.etag)
    sidecar(part).unlink(missing_ok=True)
    return dest


def _complete_part(http: requests.Session, url: str, part: Path, *, timeout: float, retries: int,
                   bar: _ByteBar) -> _Done:
    """Attempts until ``part`` holds the whole file and passes its MD5 check."""
    failures = 0  # transient failures so far; at most `retries` are retried
    restarts = 0  # _Restart without a wait; bounded so a confused server cannot loop us
    md5_refetched = False
    while True:
        try:
            done = _attempt(http, url, part, timeout=timeout, bar=bar)
        except _Transient as exc:
            if failures >= retries:
                raise _gave_up(url, part, failures + 1, str(exc)) from None
            failures += 1
            pause = retry_pause(failures, BACKOFF_BASE_S, BACKOFF_MAX_S)
            bar.note(f"{exc}; retry {failures}/{retries} in {pause:.1f} s, resuming from byte {size_of(part)}")
            time.sleep(pause)
            continue
        except _Restart as exc:
            discard(part)
            restarts += 1
            if restarts > retries + 1:
                raise MlkitError(f"could not download {url}: {exc}; try again later") from None
            continue

        if done.expected_md5_b64 is None or _md5_matches(done.md5_hex, done.expected_md5_b64):
            return done
        discard(part)
        if md5_refetched:
            raise MlkitError(
                f"{url} failed its MD5 check twice (server says {done.expected_md5_b64}, "
                f"the download hashes to {b64_from_md5_hex(done.md5_hex)}); the server or a proxy is "
                f"corrupting it: try again later or use --source with a local mirror"
            )
        md5_refetched = True


def _gave_up(url: str, part: Path, attempts: int, last_error: str) -> MlkitError:
    kept = size_of(part)
    then = (
        f"run again to resume from the {kept} bytes kept in {part}" if kept
        else "check your connection and try again later"
    )
    return MlkitError(
        f"could not download {url} after {attempts} attempts ({last_error}); "
        f"{then}, or use --source with a local mirror or folder laid out like "
        f"{layout.METADATA_BASE}"
    )


def _attempt(http: requests.Session, url: str, part: Path, *, timeout: float, bar: _ByteBar) -> _Done:
    """One request: continue (or start) ``part`` and return once it holds the whole file."""
    offset, part_meta = _resume_point(part, url)
    resp = _get(http, url, offset, part_meta, timeout=timeout)
    with resp:
        if resp.status_code == 416 and offset > 0:
            return _range_not_satisfiable(resp, part, part_meta, offset, bar)
        _check_status(resp, url, part)
        incoming = _incoming(resp, url, part, part_meta, offset)
        written, digest = _stream(resp, part, incoming, bar)
    if incoming.total is not None:
        if written < incoming.total:
            raise _Transient(f"connection closed after {written} of {incoming.total} bytes")
        if written > incoming.total:
            raise _Restart(f"received {written} bytes, more than the {incoming.total} announced")
    return _Done(written, digest.hexdigest(), incoming.expected_md5, incoming.etag)


def _resume_point(part: Path, url: str) -> tuple[int, dict[str, Any]]:
    """(bytes kept in ``part``, its sidecar); a part of another URL is discarded first."""
    part_meta = read_json(sidecar(part)) or {}
    if part_meta.get("url") not in (None, url):
        part_meta = {}
        discard(part)
    offset = size_of(part)
    return offset, part_meta if offset else {}


def _get(http: requests.Session, url: str, offset: int, part_meta: dict[str, Any], *,
         timeout: float) -> requests.Response:
    """The streamed ``GET``, asking for the bytes after ``offset`` when there are some."""
    headers = {"Accept-Encoding": "identity"}  # the bytes as stored: sizes and hashes hold
    if offset > 0:
        headers["Range"] = f"bytes={offset}-"
        etag = part_meta.get("etag")
        if isinstance(etag, str) and etag and not etag.startswith("W/"):  # If-Range needs a strong one
            headers["If-Range"] = etag
    try:
        return http.get(url, headers=headers, stream=True, timeout=timeout)
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


def _check_status(resp: requests.Response, url: str, part: Path) -> None:
    status = resp.status_code
    if status == 404:
        raise MlkitError(
            f"{part.name.removesuffix(PART_SUFFIX)} not found at {url}; check --source "
            f"(a mirror must be laid out like {layout.METADATA_BASE})"
        )
    if _retryable(status):
        raise _Transient(f"HTTP {status}")
    if status not in (200, 206):
        raise MlkitError(f"could not download {url}: HTTP {status} {resp.reason}; check --source")


def _incoming(resp: requests.Response, url: str, part: Path, part_meta: dict[str, Any], offset: int) -> _Incoming:
    """Read a 200 or 206 answer's headers; a new download records them beside ``part``, so
    that a later run resumes against the same ETag and MD5."""
    etag = resp.headers.get("ETag")
    expected_md5 = _goog_md5(resp.headers)
    encoded = resp.headers.get("Content-Encoding", "identity").lower() not in ("", "identity")
    if resp.status_code == 206:
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
    if resp.status_code == 200 or not part_meta:
        write_json(sidecar(part), {"url": url, "etag": etag, "size": total, "md5": expected_md5})
    return _Incoming(offset, total, mode, expected_md5, etag)


def _stream(resp: requests.Response, part: Path, incoming: _Incoming, bar: _ByteBar) -> tuple[int, Any]:
    """Write the body into ``part``: (its size now, the MD5 of all of it so far)."""
    digest = hashlib.md5()
    if incoming.offset > 0:
        _hash_file(part, digest)
    written = incoming.offset
    bar.start(incoming.total, incoming.offset)
    try:
        with open(part, incoming.mode) as out:
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
    return written, digest


def _range_not_satisfiable(resp: requests.Response, part: Path, part_meta: dict[str, Any], offset: int,
                           bar: _ByteBar) -> _Done:
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


def _fsync(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "..."


def _is_network_oserror(exc: OSError) -> bool:
    # urllib3 surfaces some socket errors raw from a streamed body; disk errors are ours.
    return isinstance(exc, (ConnectionError, TimeoutError, socket.timeout))
