"""What the downloader is given and what it hands back: sources, jobs, options, outcomes,
the checks of options and jobs, and the failures its parts pass each other."""

from __future__ import annotations

import hashlib
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from toolkit import __version__
from toolkit.errors import MlkitError, ParameterError
from toolkit.netutil import md5_from_b64

SOURCE_KINDS = ("cvdf", "thumbnail", "original")
REASONS = (
    "not_found", "server_error", "timeout", "connection_error", "truncated",
    "placeholder", "md5_mismatch", "not_an_image", "no_source",
)
"""Fixed reason codes; ``http_<status>`` (e.g. ``http_403``) comes on top of these."""


# --------------------------------------------------------------------------- public types


@dataclass(frozen=True)
class ImageSource:
    """One place an image can be fetched from."""

    url: str
    kind: str  # "cvdf" | "thumbnail" | "original"
    md5_b64: str | None = None
    """Open Images ``OriginalMD5`` (base64 of the MD5 digest); checked only for kind ``original``."""

    def __post_init__(self) -> None:
        if _missing(self.md5_b64):  # an empty CSV cell read by pandas is NaN
            object.__setattr__(self, "md5_b64", None)


@dataclass(frozen=True)
class DownloadJob:
    """One image to put at ``dest``.

    ``sources`` are tried in order. ``rotation`` is Open Images' Rotation column: the
    degrees COUNTER-CLOCKWISE that turn the stored image (and its boxes) upright. It is
    used only for a file without an EXIF orientation of its own; a file that carries one
    is turned by that alone (see ``images.turn``). ``crop`` is ``(xmin, ymin, xmax, ymax)``
    normalised to 0..1 in the stored image's frame (the frame Open Images' boxes are
    given in), clamped to the image; it is cut before the image is turned. The file
    written is always JPEG.
    """

    key: str
    dest: Path
    sources: tuple[ImageSource, ...]
    rotation: float | None = None
    crop: tuple[float, float, float, float] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "dest", Path(self.dest))
        object.__setattr__(self, "sources", tuple(self.sources))
        if _missing(self.rotation):  # the Rotation column is often empty (NaN in pandas)
            object.__setattr__(self, "rotation", None)


PROCESSING_VERSION = 2  # 2: Rotation read counter-clockwise, and EXIF alone where the file has it
"""Bump whenever ``images.process`` makes other pixels from the same bytes and settings (so
files made by an older version are made again)."""


def processing_fingerprint(job: DownloadJob, options: DownloadOptions) -> str:
    """A short name of everything that decides the pixels written for ``job`` besides the
    source bytes: the processing version, rotation, crop box, max size and JPEG quality.
    Two files with the same source and fingerprint are the same file."""
    rotation = float(job.rotation or 0.0) % 360.0
    crop = None if job.crop is None else [round(float(v), 6) for v in job.crop]
    text = (f"v{PROCESSING_VERSION} rot={rotation:g} crop={crop} max={options.max_size} "
            f"q={options.jpeg_quality}")
    return hashlib.sha1(text.encode()).hexdigest()[:16]


def _missing(value: object) -> bool:
    return value is None or value == "" or (isinstance(value, float) and math.isnan(value))


@dataclass
class DownloadOptions:
    """Knobs of ``download_images``.

    workers: concurrent downloads (threads sharing one pool of keep-alive connections), >= 1.
    connect_timeout / read_timeout: seconds per request; the read timeout bounds every
        wait for data, not the whole body.
    retries: extra attempts per source on retriable errors (timeouts, resets, truncated
        bodies, 5xx, 429); 4xx is never retried; an MD5 mismatch is retried at most once.
    backoff: base seconds of the exponential backoff between attempts (with jitter,
        capped at 8 s; a server's Retry-After is honoured up to the cap).
    max_size: resize so the longer side is at most this many pixels (None: keep).
    jpeg_quality: 1..95, used whenever the image has to be re-encoded.
    user_agent: the User-Agent header.
    """

    workers: int = 32
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    retries: int = 3
    backoff: float = 0.25
    max_size: int | None = None
    jpeg_quality: int = 92
    user_agent: str = f"mlkit/{__version__}"


@dataclass
class DownloadOutcome:
    """What happened to one job."""

    key: str
    dest: Path
    ok: bool
    reason: str | None          # None when ok; else a reason code (the last source's failure)
    source_url: str | None      # the source that produced the file
    source_kind: str | None
    md5: str | None             # hex MD5 of the file at dest
    size: int | None            # bytes of the file at dest
    width: int | None
    height: int | None
    attempts: int               # HTTP requests made (a followed redirect is part of its request)
    skipped: bool = False       # already present and valid: not fetched again
    detail: str | None = None   # human-readable account of each failed source, for logs


@dataclass
class DownloadReport:
    """All outcomes, in the order of the jobs."""

    outcomes: list[DownloadOutcome]
    elapsed: float

    def ok(self) -> list[DownloadOutcome]:
        return [o for o in self.outcomes if o.ok]

    def failed(self) -> list[DownloadOutcome]:
        return [o for o in self.outcomes if not o.ok]

    def failures_by_reason(self) -> dict[str, int]:
        return dict(Counter(o.reason for o in self.outcomes if not o.ok))


def failed_outcome(job: DownloadJob, reason: str, attempts: int, detail: str) -> DownloadOutcome:
    """The outcome of a job that produced no file."""
    return DownloadOutcome(
        key=job.key, dest=job.dest, ok=False, reason=reason, source_url=None,
        source_kind=None, md5=None, size=None, width=None, height=None,
        attempts=attempts, detail=detail or None,
    )


# --------------------------------------------------------------------------- internal failures


class Cancelled(Exception):
    """The run is stopping (Ctrl-C); the job is abandoned."""


class WriteFailed(Exception):
    """Writing to disk failed: not a download problem, the whole run stops."""

    def __init__(self, path: Path, error: OSError):
        super().__init__(str(error))
        self.path = path
        self.error = error


@dataclass(eq=False)
class Failure(Exception):
    """One attempt at a source failed: its reason code, and whether another may succeed."""

    reason: str
    retriable: bool
    message: str
    retry_after: float | None = None


# --------------------------------------------------------------------------- validation


def check_options(opt: DownloadOptions) -> None:
    """Raise ParameterError for the first option out of its range."""
    if opt.workers < 1:
        raise ParameterError("workers", opt.workers, "must be at least 1")
    for name in ("connect_timeout", "read_timeout"):
        if not getattr(opt, name) > 0:
            raise ParameterError(name, getattr(opt, name), "must be more than 0 seconds", flag="")
    if opt.retries < 0:
        raise ParameterError("retries", opt.retries, "must be at least 0", flag="")
    if opt.backoff < 0:
        raise ParameterError("backoff", opt.backoff, "must be at least 0 seconds", flag="")
    if opt.max_size is not None and opt.max_size < 1:
        raise ParameterError("max_size", opt.max_size, "must be a positive number of pixels or None")
    if not 1 <= opt.jpeg_quality <= 95:
        raise ParameterError("jpeg_quality", opt.jpeg_quality, "must be in 1..95", flag="")


def check_jobs(jobs: Sequence[DownloadJob]) -> None:
    """Raise MlkitError for two jobs writing one file, or a job that cannot be run."""
    seen: dict[Path, str] = {}
    for job in jobs:
        dest = job.dest.absolute()
        if dest in seen:
            raise MlkitError(f"jobs {seen[dest]!r} and {job.key!r} both write {job.dest}; give each job its own dest")
        seen[dest] = job.key
        for source in job.sources:
            _check_source(job, source)
        _check_geometry(job)


def _check_source(job: DownloadJob, source: ImageSource) -> None:
    if source.kind not in SOURCE_KINDS:
        raise MlkitError(f"job {job.key!r}: unknown source kind {source.kind!r}; "
                         f"use one of {', '.join(SOURCE_KINDS)}")
    if urlsplit(source.url).scheme not in ("http", "https"):
        raise MlkitError(f"job {job.key!r}: source URL {source.url!r} is not http(s)")
    if source.md5_b64 is not None and (not isinstance(source.md5_b64, str)
                                       or md5_from_b64(source.md5_b64) is None):
        raise MlkitError(
            f"job {job.key!r}: md5_b64 {source.md5_b64!r} is not base64 of a 16-byte MD5 digest; "
            "pass OriginalMD5 exactly as in the image list, or None")


def _check_geometry(job: DownloadJob) -> None:
    if job.rotation is not None:
        try:
            float(job.rotation)
        except (TypeError, ValueError):
            raise MlkitError(f"job {job.key!r}: rotation {job.rotation!r} is not a number of degrees") from None
    if job.crop is not None:
        if len(job.crop) != 4:
            raise MlkitError(f"job {job.key!r}: crop must be (xmin, ymin, xmax, ymax)")
        xmin, ymin, xmax, ymax = job.crop
        if not (xmin < xmax and ymin < ymax):
            raise MlkitError(f"job {job.key!r}: crop {job.crop} is empty; need xmin < xmax and ymin < ymax")
