"""Exclusion files: images a user wants left out (``--exclude``).

The file is ``review.csv`` written by ``mlkit review`` (its ``file`` column, or
``image_id``), or plain text with one entry per line: an Open Images ImageID, a file name,
or a path relative to the dataset folder (``#`` starts a comment line). ``train
--exclude`` matches entries against a dataset's files; ``build-dataset --exclude`` leaves
the ImageIDs among them out of what it selects, so the dataset is filled with others.
"""

from __future__ import annotations

import csv
import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path, PurePosixPath

from ..errors import MlkitError

# Open Images ImageIDs are 16 lowercase hex digits (e.g. 000002b66c9c498e in the image lists:
# https://storage.googleapis.com/openimages/web/download_v7.html#download-manually)
OPEN_IMAGES_ID = re.compile(r"^[0-9a-f]{16}$")


def read_exclusions(path: Path | str) -> list[str]:
    """The entries of an exclusion file: review.csv's ``file`` column, or one per line."""
    path = Path(path)
    if not path.is_file():
        raise MlkitError(f"--exclude {path}: no such file. Give review.csv written by `mlkit review`, or a text "
                         "file with one ImageID or file name per line")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise MlkitError(f"--exclude {path}: cannot read it as text ({exc})") from None
    lines = text.splitlines()
    header = [h.strip() for h in next(csv.reader([lines[0]]))] if lines else []
    if "file" in header or "image_id" in header:
        col = "file" if "file" in header else "image_id"
        return [row[col].strip() for row in csv.DictReader(lines) if (row.get(col) or "").strip()]
    return [s.strip() for s in lines if s.strip() and not s.strip().startswith("#")]


def image_id_of(entry: str) -> str:
    """The Open Images ImageID an entry names (``train/hot_dog/<id>.jpg``, ``<id>.jpg`` or
    ``<id>``), or "" when it names none."""
    stem = PurePosixPath(entry.replace("\\", "/")).stem.lower()
    return stem if OPEN_IMAGES_ID.match(stem) else ""


@dataclass(frozen=True)
class ImageExclusion:
    """The ImageIDs an exclusion file names, for ``build-dataset --exclude``."""

    file: Path
    entries: int
    image_ids: frozenset[str]

    @property
    def digest(self) -> str:
        """What the file excludes, not where it lies: the same list rebuilds the same dataset."""
        return hashlib.sha256("\n".join(sorted(self.image_ids)).encode()).hexdigest()[:16]

    def note(self, left_out: int) -> str:
        return (f"--exclude {self.file}: {left_out} of its {len(self.image_ids)} ImageIDs were among the "
                "candidates and were left out")

    def to_json(self, left_out: int) -> dict:
        return {"file": str(self.file), "entries": self.entries, "image_ids": len(self.image_ids),
                "left_out": left_out, "sha256": self.digest}


def read_image_exclusion(path: Path | str) -> ImageExclusion:
    """The ImageIDs of an exclusion file; MlkitError when it names none (entries that are
    not ImageIDs are file names of a folder dataset: `train --exclude` takes those).

    A build asks for it several times (checking the config, selecting, recording its
    settings): the file is read once while it stays the same (its size and mtime)."""
    try:
        st = Path(path).stat()
    except OSError:
        return _read_image_exclusion(str(path), -1, -1)   # read_exclusions says what is wrong
    return _read_image_exclusion(str(path), st.st_mtime_ns, st.st_size)


@lru_cache(maxsize=8)
def _read_image_exclusion(path: str, _mtime_ns: int, _size: int) -> ImageExclusion:
    entries = read_exclusions(path)
    ids = {i for i in map(image_id_of, entries) if i}
    if not ids:
        example = f" (e.g. {entries[0]!r})" if entries else ""
        raise MlkitError(f"--exclude {path}: none of its {len(entries)} entries is an Open Images ImageID"
                         f"{example}; build-dataset leaves out images by ImageID (16 hex digits, or a file "
                         "named after one). For a folder of your own photos, use `mlkit train --exclude`")
    return ImageExclusion(Path(path), len(entries), frozenset(ids))
