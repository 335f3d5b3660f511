"""Where Open Images metadata comes from, and where downloaded files are kept.

A *source* is either a base URL laid out like the Open Images bucket (the real one by
default, or a mirror / test server) or a local folder laid out the same way. A local
folder is used in place, never copied; a file of a URL source is cached under
``cache_dir/<host>[_<port>]/<base path>/<relpath>``, so distinct sources never collide.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit
from urllib.request import url2pathname

from toolkit.errors import MlkitError, ParameterError
from toolkit.openimages import layout


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
        return self.base.rstrip("/") + "/" + quote(check_relpath(relpath), safe="/")

    def cache_path(self, relpath: str) -> Path:
        """Where ``relpath`` of a URL source is cached; distinct sources never collide."""
        parts = urlsplit(self.base)
        host = (parts.hostname or "unknown-host").lower()
        if parts.port is not None:
            host = f"{host}_{parts.port}"
        base_segments = [_safe_segment(s) for s in unquote(parts.path).split("/") if s]
        return self.cache_dir.joinpath(host, *base_segments, *check_relpath(relpath).split("/"))

    def local_file(self, relpath: str) -> Path:
        """``relpath`` in a local folder source, which must hold it (used in place)."""
        relpath = check_relpath(relpath)
        path = Path(self.base) / relpath
        if not path.is_file():
            raise MlkitError(
                f"{path} not found: the source folder {self.base} must be laid out like the "
                f"Open Images bucket ({layout.METADATA_BASE}), with this file at {relpath}"
            )
        return path


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
            raise ParameterError("source", text, f"must be a URL with a host name, like {layout.METADATA_BASE}")
        if not text.endswith("/"):
            text += "/"
        return MetadataSource(text, cache)
    if scheme == "file":
        parts = urlsplit(text)
        if parts.netloc not in ("", "localhost"):
            raise ParameterError("source", text, "must name a local folder when it is a file:// URL "
                                                 "(file:///path/to/folder), not a remote host")
        return MetadataSource(str(_existing_folder(Path(url2pathname(parts.path)), text)), cache)
    if text and Path(text).expanduser().is_dir():
        return MetadataSource(str(Path(text).expanduser().resolve()), cache)
    raise ParameterError(
        "source", text,
        f"must be an http(s):// base URL laid out like {layout.METADATA_BASE}, an existing local "
        f"folder laid out the same way, or a file:// URL of such a folder"
    )


def _existing_folder(path: Path, given: str) -> Path:
    path = path.expanduser()
    if not path.is_dir():
        raise ParameterError("source", given, f"must be an existing folder laid out like {layout.METADATA_BASE}")
    return path.resolve()


def _is_http(base: str) -> bool:
    return urlsplit(base).scheme.lower() in ("http", "https")


def check_relpath(relpath: str) -> str:
    """``relpath`` with ``/`` separators, once it is known to stay under the source base."""
    segments = relpath.replace("\\", "/").split("/")
    if not relpath or relpath.startswith("/") or any(s in ("", ".", "..") for s in segments):
        raise ParameterError("relpath", relpath,
                             f"must be relative to the source base, like {layout.CLASSES_ALL!r}", flag="")
    return "/".join(segments)


def _safe_segment(segment: str) -> str:
    if segment in (".", ".."):
        return "_"
    return re.sub(r'[\\:*?"<>|\x00-\x1f]', "_", segment)
