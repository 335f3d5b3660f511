"""Getting Open Images metadata files (CSV/JSON, up to several GB) into a local cache.

A *source* (``source.py``) is either a base URL laid out like the Open Images bucket (the
real one by default, or a mirror / test server) or a local folder laid out the same way.
``fetch`` turns a path under that base (``layout.CLASSES_ALL`` and friends) into a local
file that is complete and verified:

- a local folder is used in place, never copied;
- a URL is downloaded once into ``cache_dir/<host>[_<port>]/<base path>/<relpath>``, next
  to a ``.meta.json`` sidecar; a later call finds both and makes no request;
- the download (``transfer.py``) streams into ``<file>.part``, resumes from the bytes
  already there and checks the size and, when the server sends one, the MD5 before the
  file is renamed into place;
- the sidecar (``cachedfile.py``) records the file's size, MD5 and modification time. A
  cached file is used only if its size is the recorded one and, when its modification time
  changed (it was written to since), its MD5 is too; a damaged file is downloaded again,
  with a message;
- a download holds a lock (``<file>.lock``) so that two runs never write one file at once:
  the second waits, then finds the file in the cache.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import requests

from toolkit.fsutil import locked
from toolkit.openimages.cachedfile import cached_state, discard, part_of, size_of
from toolkit.openimages.source import MetadataSource, check_relpath, default_cache_dir, metadata_source
from toolkit.openimages.transfer import download, remote_size
from toolkit.progress import SILENT, Reporter

__all__ = ["FileInfo", "MetadataSource", "default_cache_dir", "fetch", "head", "metadata_source"]


def fetch(
    source: MetadataSource,
    relpath: str,
    *,
    reporter: Reporter = SILENT,
    session: requests.Session | None = None,
    timeout: float = 30.0,
    retries: int = 5,
) -> Path:
    """Return a local path to the complete, verified file ``relpath`` of ``source``.

    A local folder source returns ``base/relpath`` itself. A URL source returns the cached
    copy when it and its sidecar exist (no request); otherwise it downloads into
    ``<file>.part`` (resuming what an earlier attempt left), checks the size and, when the
    server sends one, the MD5, and renames the file into place.

    ``reporter``: shows a bar over the bytes of a download, and says when a damaged cached
    file is fetched again or a dropped connection retried. ``session``: a
    ``requests.Session`` to reuse (one is made otherwise). ``timeout``: seconds to connect
    and between bytes. ``retries``: how many times a dropped connection, timeout or 5xx is
    retried, each resuming from the bytes already on disk.

    Raises ``MlkitError`` when the file is missing, the server refuses it, the network is
    unreachable, retries run out or the MD5 still differs after one fresh download.
    """
    relpath = check_relpath(relpath)
    if source.is_local:
        return source.local_file(relpath)

    dest = source.cache_path(relpath)
    if cached_state(dest)[0]:
        return dest

    url = source.url(relpath)
    dest.parent.mkdir(parents=True, exist_ok=True)
    with locked(dest.with_name(dest.name + ".lock"), f"the cached file {dest}", reporter=reporter):
        ok, problem = cached_state(dest)  # another run may have fetched it while we waited
        if ok:
            return dest
        if problem:
            reporter.warn(f"The cached {dest} is damaged ({problem}); downloading it again.")
            discard(dest)
        http = session if session is not None else requests.Session()
        try:
            return download(http, url, dest, timeout=timeout, retries=max(0, retries), reporter=reporter,
                            label=relpath)
        finally:
            if session is None:
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
    relpath = check_relpath(relpath)
    if source.is_local:
        path = source.local_file(relpath)
        return FileInfo(relpath, str(path), path.stat().st_size, True)
    dest = source.cache_path(relpath)
    url = source.url(relpath)
    if cached_state(dest)[0]:
        return FileInfo(relpath, url, dest.stat().st_size, True)
    partial = size_of(part_of(dest))
    http = session if session is not None else requests.Session()
    try:
        return FileInfo(relpath, url, remote_size(http, url, timeout=timeout, retries=retries), False, partial)
    finally:
        if session is None:
            http.close()
