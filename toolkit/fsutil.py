"""Atomic file writes: a file is either its old complete self or its new complete self."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO


def atomic_write(path: Path | str, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write`` on a temporary file beside ``path``, fsync it, then rename it onto
    ``path``. A crash or kill at any point leaves ``path`` as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        usual_permissions(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: Path | str, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def usual_permissions(path: Path | str) -> None:
    """Give a finished file or folder (recursively) the permissions of anything else the user
    creates (0666 / 0777 minus the umask): ``tempfile`` makes its files 0600 and its folders
    0700, which would leave a model that Xcode, Android Studio or a teammate cannot read."""
    path = Path(path)
    umask = os.umask(0)
    os.umask(umask)
    if path.is_dir():
        for p in [path, *path.rglob("*")]:
            p.chmod((0o777 if p.is_dir() else 0o666) & ~umask)
    else:
        path.chmod(0o666 & ~umask)
