"""A downloaded metadata file in the cache, and the ``.meta.json`` sidecar that vouches for it.

The sidecar records the file's size, MD5 and modification time. A cached file is used
only if its size is the recorded one and, when its modification time changed (it was
written to since), its MD5 is too. An unfinished download (``<file>.part``) has a sidecar
of its own: the URL, ETag, size and MD5 it is being resumed against.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from toolkit.fsutil import atomic_write_text, file_md5
from toolkit.netutil import b64_from_md5_hex

META_SUFFIX = ".meta.json"
PART_SUFFIX = ".part"

_VERIFIED: set[tuple[str, int, int]] = set()  # (path, size, mtime_ns) checked in this process


def cached_state(dest: Path) -> tuple[bool, str | None]:
    """(usable, what is wrong): the cached file is used only as its sidecar describes it.
    The size is checked every time; the MD5 (about 2 s a GB) only when the file's
    modification time is not the one recorded, i.e. something wrote to it since."""
    meta = read_json(sidecar(dest))
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
    write_json(sidecar(dest), {**meta, "mtime_ns": st.st_mtime_ns})  # checked: trust this time
    return True, None


def record_download(dest: Path, url: str, size: int, md5_hex: str, md5_verified: bool, etag: str | None) -> None:
    """Write the sidecar of ``dest``, just renamed into place from its finished part."""
    write_json(sidecar(dest), {
        "mtime_ns": dest.stat().st_mtime_ns,
        "url": url,
        "size": size,
        "md5": b64_from_md5_hex(md5_hex),  # base64, as in x-goog-hash
        "md5_verified": md5_verified,  # the server sent one to check
        "etag": etag,
        "fetched_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    })


def discard(path: Path) -> None:
    """Remove ``path`` and its sidecar: a damaged cached file, or a part that cannot be continued."""
    path.unlink(missing_ok=True)
    sidecar(path).unlink(missing_ok=True)


def part_of(dest: Path) -> Path:
    """Where the download of ``dest`` streams until it is complete and verified."""
    return dest.with_name(dest.name + PART_SUFFIX)


def sidecar(path: Path) -> Path:
    return path.with_name(path.name + META_SUFFIX)


def size_of(path: Path) -> int:
    """Bytes in ``path``; 0 when it does not exist."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write atomically: a reader sees the old file or the new one, never half of one."""
    atomic_write_text(path, json.dumps(data, indent=2) + "\n")
