"""Atomic file writes: a file is either its old complete self or its new complete self."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


@contextmanager
def atomic_path(path: Path | str, suffix: str = "") -> Iterator[Path]:
    """A temporary path beside ``path`` (``suffix`` after its name, for writers that go by
    it) to write the new file to. When the block ends normally, the file is fsynced, given
    the usual permissions and renamed onto ``path``; when it raises, the file is removed. A
    crash or kill at any point leaves ``path`` as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".part{suffix}", dir=path.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        usual_permissions(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: Path | str, write: Callable[[IO[bytes]], None]) -> None:
    """Call ``write`` on a temporary file beside ``path``, then put it in place (see
    ``atomic_path``)."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        write(f)


def atomic_write_bytes(path: Path | str, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: Path | str, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def path_size(path: Path | str) -> int:
    """Bytes of a file, or of every file in a folder (an .mlpackage is a folder)."""
    path = Path(path)
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.stat().st_size


def usual_permissions(path: Path | str) -> None:
    """Give a finished file or folder (recursively) the permissions of anything else the user
    creates (0666 / 0777 minus the umask): ``tempfile`` makes its files 0600 and its folders
    0700, which would leave a model that Xcode, Android Studio or a teammate cannot read."""
    path = Path(path)
    umask = _umask()
    if path.is_dir():
        for p in [path, *path.rglob("*")]:
            p.chmod((0o777 if p.is_dir() else 0o666) & ~umask)
    else:
        path.chmod(0o666 & ~umask)


def _umask() -> int:
    """The process's umask. Linux shows it in /proc; elsewhere it can only be read by setting
    it, which for a moment gives files other threads create meanwhile wider permissions."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    umask = os.umask(0o077)
    os.umask(umask)
    return umask
