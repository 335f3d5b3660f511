"""Robust concurrent image download: retries, source fallback, verification, atomic writes.

``download_images`` fetches each job's image from the first of its sources that works
(CVDF mirror, then Flickr thumbnail, then Flickr original), proves that what arrived is
the image (full length, decodes completely, not Flickr's "photo unavailable"
placeholder, MD5 of originals), applies orientation / rotation / crop / resize, and
writes it atomically as JPEG. A rerun after a crash, Ctrl-C or ``kill -9`` skips what is
already on disk and ends with exactly the files of an uninterrupted run; no partial or
corrupt file is ever left at a destination path. (A file that decodes is trusted as it
is: whoever changes ``max_size``, rotation or crop between runs must clear the old files;
``processing_fingerprint`` names the processing a file was made with, for that check.)

Every failure carries a short, stable reason code (they go into a manifest):

``not_found``         404/410 on every source
``http_<status>``     other 4xx (not retried), or 429 after retries
``server_error``      5xx after retries
``timeout``           connect or read timeout after retries
``connection_error``  reset, refused, broken connection after retries
``truncated``         fewer bytes than Content-Length (or cut image data) after retries
``placeholder``       Flickr's "photo unavailable" image
``md5_mismatch``      an original whose MD5 differs from Open Images' OriginalMD5
``not_an_image``      the body does not decode completely as an image
``no_source``         the job has no source

The modules: ``jobs`` (the types, the checks of options and jobs), ``transport`` (HTTP:
connection pools, proxies, redirects, failure codes, retries), ``images`` (proof that a
body is the image; crop, orientation, resize), ``runner`` (the thread pool, Ctrl-C,
atomic writes, ``download_images``).
"""

from __future__ import annotations

from .jobs import (
    PROCESSING_VERSION,
    REASONS,
    SOURCE_KINDS,
    DownloadJob,
    DownloadOptions,
    DownloadOutcome,
    DownloadReport,
    ImageSource,
    processing_fingerprint,
)
from .runner import download_images

__all__ = [
    "PROCESSING_VERSION",
    "REASONS",
    "SOURCE_KINDS",
    "DownloadJob",
    "DownloadOptions",
    "DownloadOutcome",
    "DownloadReport",
    "ImageSource",
    "download_images",
    "processing_fingerprint",
]
