"""What a build must download before it can select a single image: the metadata plan.

With the defaults a first build fetches about 5.6 GB of metadata (the v7 train labels,
2.74 GB, and the v6 train image list, 2.68 GB, are most of it); ``metadata_plan`` lists
each file a build needs, its size (from ``HEAD``, no body), whether it is already cached,
and the total, so the user sees it before anything starts, and ``--dry-run`` can report it
without downloading anything. Sizes of the real files (``HEAD`` figures, see the project's
notes on Open Images, docs/openimages.md "Sizes of the default first download"): v7 class
descriptions 501,178 B; v7 train labels 2,735,816,020 B; v7 val 28,392,297 B; v7 test
93,606,939 B; v6 train image list 2,684,720,962 B; validation image list ~15.2 MB; test
image list ~45.2 MB.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import requests

from ..errors import MlkitError
from . import layout
from .fetch import FileInfo, MetadataSource, head

CHEAPER_SPLITS = ("validation", "test")
CHEAPER_FACTS = ("on Open Images itself about 180 MB instead of about 5.6 GB, but far fewer positives: "
                 "validation and test hold 167k images, train 9M")


@dataclass(frozen=True)
class PlannedFile:
    relpath: str
    what: str               # what it is for, in words
    url: str
    size: int | None        # bytes; None: the server did not say
    cached: bool
    partial: int = 0        # bytes already kept from an interrupted download
    split: str | None = None  # the Open Images split it belongs to (None: class files)


@dataclass
class MetadataPlan:
    """The metadata files of one build, in the order it reads them."""

    source: str
    files: list[PlannedFile]
    hint: str | None = None  # the cheaper alternative, when there is one
    notes: list[str] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(f.size or 0 for f in self.files)

    @property
    def download_bytes(self) -> int:
        """Bytes still to download (what is cached, or kept in a .part file, is not counted)."""
        return sum(max(0, (f.size or 0) - f.partial) for f in self.files if not f.cached)

    @property
    def all_cached(self) -> bool:
        return all(f.cached for f in self.files)

    def missing(self, relpaths: Sequence[str]) -> list[str]:
        wanted = set(relpaths)
        return [f.relpath for f in self.files if f.relpath in wanted and not f.cached]

    def lines(self) -> list[str]:
        """The plan as text, one line per file, then the total and the hint."""
        out = [f"Metadata from {self.source}:"]
        width = max((len(f.relpath) for f in self.files), default=0)
        for f in self.files:
            state = "cached" if f.cached else (f"to download ({_size(f.partial)} kept)" if f.partial else "to download")
            out.append(f"  {f.relpath:<{width}}  {_size(f.size):>9}  {state:<12}  {f.what}")
        unknown = sum(1 for f in self.files if f.size is None)
        total = f"  total {_size(self.total_bytes)}, of which {_size(self.download_bytes)} to download"
        out.append(total + (f" ({unknown} file(s) of unknown size)" if unknown else ""))
        out.extend(f"  note: {n}" for n in self.notes)
        if self.hint and not self.all_cached:
            out.append(f"  cheaper: {self.hint}")
        return out

    def to_json(self) -> dict:
        return {"source": self.source, "files": [asdict(f) for f in self.files],
                "total_bytes": self.total_bytes, "download_bytes": self.download_bytes,
                "all_cached": self.all_cached, "hint": self.hint, "notes": self.notes}


def metadata_files(label_set: str, splits: Sequence[str], crop: bool) -> list[tuple[str, str, str | None]]:
    """(path under the source base, what it is for, split) of every metadata file a build reads."""
    classes = layout.CLASSES_ALL if label_set == "all" else layout.CLASSES_BOXABLE
    out: list[tuple[str, str, str | None]] = [(classes, "class names", None),
                                              (layout.HIERARCHY, "class hierarchy (related classes)", None)]
    for split in splits:
        out.append((layout.human_labels_path(split, label_set), f"{split} human-verified labels", split))
        out.append((layout.image_list_path(split, label_set), f"{split} image list (URLs, attribution)", split))
        if crop:
            out.append((layout.boxes_path(split), f"{split} boxes (--crop)", split))
    return out


def metadata_plan(source: MetadataSource, label_set: str, splits: Sequence[str], crop: bool = False,
                  *, strict: bool = True) -> MetadataPlan:
    """Size and cache state of each metadata file a build needs: one ``HEAD`` per file not
    yet cached, no download.

    ``strict``: a file that cannot be sized (missing, host unreachable) raises
    ``MlkitError``; otherwise it is listed with an unknown size and a note, and the build
    meets the same problem, with its own message, when it fetches the file. The class
    hierarchy is optional (a source without it still works), so it never raises.
    """
    files: list[PlannedFile] = []
    notes: list[str] = []
    session = None if source.is_local else requests.Session()
    try:
        for relpath, what, split in metadata_files(label_set, splits, crop):
            try:
                info = head(source, relpath, session=session)
            except MlkitError as exc:
                if relpath == layout.HIERARCHY and "not found" in str(exc):
                    notes.append(f"{relpath} not found: related classes are found by name only")
                    continue  # optional, as in load_metadata
                if strict:
                    raise
                notes.append(f"{relpath}: {exc}")
                info = FileInfo(relpath, source.url(relpath) if not source.is_local else relpath, None, False)
            files.append(PlannedFile(relpath, what, info.url, info.size, info.cached, info.partial, split))
    finally:
        if session is not None:
            session.close()
    plan = MetadataPlan(source.describe(), files, None, notes)
    if "train" in splits and not source.is_local:
        cheap = MetadataPlan("", [f for f in files if f.split in (None, *CHEAPER_SPLITS)])
        plan.hint = (f"--split {','.join(CHEAPER_SPLITS)} would download {_size(cheap.download_bytes)} instead of "
                     f"{_size(plan.download_bytes)} ({CHEAPER_FACTS})")
    return plan


def _size(n: int | None) -> str:
    if n is None:
        return "?"
    if n >= 1e9:
        return f"{n / 1e9:.2f} GB"
    if n >= 1e6:
        return f"{n / 1e6:.1f} MB"
    if n >= 1e3:
        return f"{n / 1e3:.0f} kB"
    return f"{n} B"


