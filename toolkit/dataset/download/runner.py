"""The job runner: ``download_images``, its thread pool and its stop on Ctrl-C, one job from
source to file, and the atomic, synced writes (with the registry of temp files that an
interrupted run removes)."""

from __future__ import annotations

import hashlib
import os
import queue
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from contextlib import suppress
from functools import partial
from pathlib import Path

from toolkit.errors import MlkitError
from toolkit.progress import SILENT, Bar, Reporter

from .images import stored_size, verify_and_process
from .jobs import (Cancelled, DownloadJob, DownloadOptions, DownloadOutcome, DownloadReport, Failure,
                   ImageSource, WriteFailed, check_jobs, check_options, failed_outcome)
from .transport import GaveUp, HttpClient

_INTERRUPT_GRACE = 2.0      # seconds the caller's Ctrl-C waits for in-flight jobs to abort
_PART_GLOB = ".*.part-*"

# fdatasync makes the data and the size of a new file durable, like fsync, without also
# committing its timestamps; macOS has only fsync.
_sync_data = getattr(os, "fdatasync", os.fsync)

BeforeCommit = Callable[[DownloadJob, ImageSource], None]


def download_images(
    jobs: Sequence[DownloadJob],
    options: DownloadOptions | None = None,
    *,
    reporter: Reporter = SILENT,
    on_progress: Callable[[DownloadOutcome], None] | None = None,
    before_commit: BeforeCommit | None = None,
) -> DownloadReport:
    """Download every job's image to its ``dest``; return outcomes in the order of ``jobs``.

    A failed image is an outcome with ``ok=False`` and a reason code, never an exception.
    ``reporter`` shows a bar of the images done (and how many failed).
    ``on_progress`` is called in the calling thread, in completion order, once per job;
    an exception it raises (e.g. KeyboardInterrupt) stops the run like Ctrl-C does:
    queued jobs are cancelled, in-flight ones abort, temp files are removed, the
    exception propagates. Files already finished stay; a rerun skips them.

    ``before_commit(job, source)`` runs in a worker thread just before a verified file is
    renamed into place (e.g. to journal where it came from, so a kill between the rename
    and ``on_progress`` loses nothing); it must be thread-safe.

    When it returns, every file it wrote is on disk (data synced before each rename,
    each folder synced once at the end).

    Raises MlkitError (ParameterError for an option) for invalid options or jobs, and when
    a file cannot be written (disk full, permissions): the run stops, since every later
    job would fail the same way.
    """
    opt = options or DownloadOptions()
    check_options(opt)
    jobs = list(jobs)
    check_jobs(jobs)
    started = time.monotonic()
    _prepare_dirs(jobs)

    downloader = _Downloader(opt, threading.Event(), before_commit)
    with reporter.bar("download", len(jobs), unit="img") as bar:
        outcomes = _run_all(jobs, downloader, bar, on_progress)
    _sync_folders(downloader.folders)
    return DownloadReport(outcomes=outcomes, elapsed=time.monotonic() - started)


# --------------------------------------------------------------------------- the pool


class _Window:
    """The jobs submitted to the pool and not yet collected. A bounded window of submitted
    jobs keeps memory flat and Ctrl-C quick for big runs."""

    def __init__(self, executor: ThreadPoolExecutor, run: Callable[[DownloadJob], DownloadOutcome],
                 jobs: list[DownloadJob], size: int):
        self.executor, self.run, self.jobs, self.size = executor, run, jobs, size
        self.running: dict[Future[DownloadOutcome], int] = {}
        self.finished: queue.SimpleQueue[Future[DownloadOutcome]] = queue.SimpleQueue()
        self.pending = iter(range(len(jobs)))

    def refill(self) -> None:
        while len(self.running) < self.size:
            index = next(self.pending, None)
            if index is None:
                return
            future = self.executor.submit(self.run, self.jobs[index])
            self.running[future] = index
            future.add_done_callback(self.finished.put)

    def next_done(self) -> tuple[int, Future[DownloadOutcome]] | None:
        """The index and future of a finished job, or None after a short wait (so that
        Ctrl-C is seen at once)."""
        try:
            future = self.finished.get(timeout=0.25)
        except queue.Empty:
            return None
        return self.running.pop(future), future

    def in_flight(self) -> list[Future[DownloadOutcome]]:
        # Cancelled futures never reach "done" for wait(); only the in-flight ones matter.
        return [f for f in self.running if not f.cancelled()]


def _run_all(jobs: list[DownloadJob], downloader: _Downloader, bar: Bar,
             on_progress: Callable[[DownloadOutcome], None] | None) -> list[DownloadOutcome]:
    """Run every job on the pool; on any exception, stop the run cleanly and re-raise it."""
    outcomes: list[DownloadOutcome | None] = [None] * len(jobs)
    executor = ThreadPoolExecutor(max_workers=downloader.opt.workers, thread_name_prefix="mlkit-download")
    window = _Window(executor, downloader.run_job, jobs, size=downloader.opt.workers * 2)
    failures = 0
    try:
        window.refill()
        while window.running:
            done = window.next_done()
            if done is None:
                continue
            index, future = done
            outcome = outcomes[index] = _result(future)
            bar.advance()
            if not outcome.ok:
                failures += 1
                bar.describe(f"{failures} failed")
            if on_progress is not None:
                on_progress(outcome)
            window.refill()
    except BaseException:
        downloader.stop.set()
        executor.shutdown(wait=False, cancel_futures=True)
        downloader.client.abort()
        in_flight = window.in_flight()
        if in_flight:
            wait_futures(in_flight, timeout=_INTERRUPT_GRACE)
        downloader.temps.remove_all()
        downloader.close()
        raise
    executor.shutdown(wait=True)
    downloader.close()
    return [o for o in outcomes if o is not None]


def _result(future: Future[DownloadOutcome]) -> DownloadOutcome:
    try:
        return future.result()
    except WriteFailed as e:
        raise MlkitError(
            f"cannot write {e.path}: {e.error.strerror or e.error}; "
            f"free disk space or fix the permissions of {e.path.parent}") from e


# --------------------------------------------------------------------------- one job


class _Downloader:
    """Runs one job at a time in each worker thread; all share one HTTP client."""

    def __init__(self, options: DownloadOptions, stop: threading.Event,
                 before_commit: BeforeCommit | None = None):
        self.opt = options
        self.before_commit = before_commit
        self.stop = stop
        self.client = HttpClient(options, stop)
        self.temps = _TempFiles()
        self.folders: set[Path] = set()  # where files were renamed into place

    def close(self) -> None:
        self.client.close()

    def run_job(self, job: DownloadJob) -> DownloadOutcome:
        if self.stop.is_set():
            raise Cancelled
        existing = self._existing(job)
        if existing is not None:
            return existing
        if not job.sources:
            return failed_outcome(job, "no_source", 0, "the job has no source")

        attempts = 0
        notes: list[str] = []
        reasons: list[str] = []
        for source in job.sources:
            try:
                verified, tries = self.client.get_checked(
                    source.url, partial(verify_and_process, job, source, opt=self.opt))
            except GaveUp as gave_up:
                failure, tries = gave_up.failure, gave_up.tries
                attempts += tries
                reasons.append(failure.reason)
                notes.append(f"{source.kind} {source.url}: {failure.reason} ({failure.message})"
                             + (f" after {tries} attempts" if tries > 1 else ""))
                continue
            attempts += tries
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
        return failed_outcome(job, other[-1] if other else "not_found", attempts, "; ".join(notes))

    def _existing(self, job: DownloadJob) -> DownloadOutcome | None:
        """A dest that decodes is kept (skipped); one that does not is removed at once."""
        dest = job.dest
        try:
            data = dest.read_bytes()
        except FileNotFoundError:
            return None
        except OSError as e:  # a folder in the way, no permission: every rerun would fail
            raise WriteFailed(dest, e) from e
        try:
            width, height = stored_size(data)   # a file on disk is kept as it is
        except Failure:
            with suppress(FileNotFoundError):
                dest.unlink()
            return None
        return DownloadOutcome(
            key=job.key, dest=dest, ok=True, reason=None, source_url=None, source_kind=None,
            md5=hashlib.md5(data).hexdigest(), size=len(data), width=width,
            height=height, attempts=0, skipped=True,
        )

    def _write(self, dest: Path, data: bytes, digest: str | None = None) -> str:
        """Write atomically: a temp file in the same folder, its data synced to disk, renamed
        onto ``dest`` (the folder is synced once, at the end of the run); return hex MD5."""
        tmp = dest.with_name(f".{dest.name}.part-{secrets.token_hex(6)}")
        replaced = False
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            self.temps.add(tmp)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                _sync_data(fd)
            finally:
                os.close(fd)
            if self.stop.is_set():
                raise Cancelled
            os.replace(tmp, dest)
            replaced = True
            self.folders.add(dest.parent)
        except OSError as e:
            if self.stop.is_set():
                raise Cancelled from e
            raise WriteFailed(dest, e) from e
        finally:
            self.temps.discard(tmp)
            if not replaced:
                with suppress(OSError):
                    tmp.unlink()
        return digest or hashlib.md5(data).hexdigest()


# --------------------------------------------------------------------------- disk


class _TempFiles:
    """Thread-safe set of the temp files being written, removed if the run is interrupted."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._paths: set[Path] = set()

    def add(self, path: Path) -> None:
        with self._lock:
            self._paths.add(path)

    def discard(self, path: Path) -> None:
        with self._lock:
            self._paths.discard(path)

    def remove_all(self) -> None:
        with self._lock:
            paths = list(self._paths)
            self._paths.clear()
        for path in paths:
            with suppress(OSError):
                path.unlink()


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
