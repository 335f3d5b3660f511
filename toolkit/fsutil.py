"""Atomic file writes: a file is either its old complete self or its new complete self."""

from __future__ import annotations

import errno
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO

from .progress import SILENT, Reporter


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


@contextmanager
def atomic_folder(path: Path | str, tag: str = "partial", suffix: str = "") -> Iterator[Path]:
    """A new empty folder beside ``path`` (``.<name>.<tag>-*``) to build the new version
    of the folder ``path`` in. When the block ends normally it takes ``path``'s place in one
    step (``exchange`` when there is an old version, which is then removed; a rename when
    there is none); when it raises, it is removed. A crash or kill at any point leaves
    ``path`` as it was, plus at most a stale ``.partial-*`` folder that
    ``remove_partial_folders`` clears on the next run. ``suffix`` ends the staging folder's
    name, for writers that go by it (an ``.mlpackage``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    recover_exchange(path)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.{tag}-", suffix=suffix, dir=path.parent))
    try:
        yield staging
        usual_permissions(staging)
        if path.exists():
            exchange(path, staging)        # staging now holds the old version
            shutil.rmtree(staging, ignore_errors=True)
        else:
            os.replace(staging, path)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def remove_partial_folders(path: Path | str, tag: str = "partial") -> None:
    """Remove what a killed ``atomic_folder`` left beside ``path``."""
    path = Path(path)
    for stale in path.parent.glob(f".{path.name}.{tag}-*"):
        shutil.rmtree(stale, ignore_errors=True)


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


# --------------------------------------------------------------------------- generations

_RENAME_EXCHANGE = 2  # linux/fs.h: swap two paths in one step


def exchange(a: Path | str, b: Path | str) -> None:
    """Swap two folders (or files) so that at every instant each path holds one complete
    version. Linux does it in one step with ``renameat2(RENAME_EXCHANGE)`` (see
    rename(2): "Atomically exchange oldpath and newpath"). Where that is missing (another
    OS, a file system that refuses it), two renames via ``<a>.swap`` are used: a kill
    between them leaves ``a`` absent and ``<a>.swap`` complete, which ``recover_exchange``
    puts back."""
    a, b = Path(a), Path(b)
    if _renameat2(a, b):
        return
    aside = a.with_name(a.name + ".swap")
    os.replace(a, aside)
    os.replace(b, a)
    os.replace(aside, b)


def recover_exchange(a: Path | str) -> None:
    """Undo a two-rename ``exchange`` of ``a`` that a kill cut short."""
    a = Path(a)
    aside = a.with_name(a.name + ".swap")
    if aside.exists() and not a.exists():
        os.replace(aside, a)


def _renameat2(a: Path, b: Path) -> bool:
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):  # a libc without renameat2 (glibc < 2.28, musl)
        return False
    at_fdcwd = -100
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False  # the kernel or the file system cannot exchange: two renames then
    raise OSError(err, os.strerror(err), str(a))


def link_or_copy(src: Path | str, dest: Path | str) -> None:
    """Give ``dest`` the content of ``src``: a hard link (no copy, no space) where the file
    system allows one, else a copy written atomically."""
    src, dest = Path(src), Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dest)
        return
    except FileExistsError:
        dest.unlink()
        os.link(src, dest)
        return
    except OSError:
        pass
    with atomic_path(dest) as tmp:
        shutil.copyfile(src, tmp)


# --------------------------------------------------------------------------- locks


LOCK_TIMEOUT_S = float(os.environ.get("MLKIT_LOCK_TIMEOUT", "3600"))
"""How long a run waits for another one that holds the same dataset or cache entry."""


@contextmanager
def locked(lock_path: Path | str, what: str, timeout: float | None = None, *,
           reporter: Reporter = SILENT) -> Iterator[None]:
    """Hold an exclusive lock (``filelock``: ``flock`` on POSIX, ``msvcrt`` on Windows) on
    ``lock_path`` while the block runs. When another process holds it, say so through
    ``reporter`` and wait up to ``timeout`` seconds (``MLKIT_LOCK_TIMEOUT``, default an hour), then fail
    with an MlkitError. The lock file stays (removing it would race with a waiter)."""
    import filelock

    from .errors import MlkitError

    lock_path = Path(lock_path)
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(lock_path), thread_local=False)
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        wait = LOCK_TIMEOUT_S if timeout is None else timeout
        reporter.warn(f"Waiting for another mlkit run that is using {what} (lock {lock_path}) ...")
        try:
            lock.acquire(timeout=wait)
        except filelock.Timeout:
            raise MlkitError(f"another mlkit run has been using {what} for over {wait:.0f} s (lock "
                             f"{lock_path}); wait for it to finish or stop it, then run again "
                             "(MLKIT_LOCK_TIMEOUT sets how long to wait)") from None
    try:
        yield
    finally:
        lock.release()


# --------------------------------------------------------------------------- checks


def file_md5(path: Path | str, chunk: int = 1 << 20) -> str:
    """Hex MD5 of a file, read in 1 MiB blocks."""
    import hashlib

    h = hashlib.md5()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def check_writable(folder: Path | str, what: str) -> None:
    """Raise an MlkitError before any work when ``folder`` (or the nearest folder above it
    that exists, where it would be created) cannot be written."""
    from .errors import MlkitError

    folder = Path(folder).expanduser().absolute()
    probe = folder
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise MlkitError(f"{what} {folder} is not a folder ({probe} is a file); give a folder")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise MlkitError(f"{what} {folder} is not writable ({probe} is read-only for this user); "
                         "choose another folder or fix its permissions")


def describe_write_error(path: Path | str, error: OSError, needed: int | None = None) -> str:
    """The words for a failed write: the path, and for a full disk the space needed."""
    path = Path(path)
    if error.errno == errno.ENOSPC:
        free = ""
        with suppress(OSError):
            free = f", {shutil.disk_usage(_existing_parent(path)).free / 1e6:.1f} MB free"
        need = f" (needs about {needed / 1e6:.1f} MB{free})" if needed else (f" ({free[2:]})" if free else "")
        return f"no space left on the disk to write {path}{need}; free some space and run again"
    return f"cannot write {path}: {error.strerror or error}; check the folder's permissions"


def _existing_parent(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path
