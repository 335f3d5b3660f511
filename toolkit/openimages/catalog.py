"""``mlkit classes``: search class names, with image counts from the label indexes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..progress import SILENT, Reporter
from .metadata import load_metadata


@dataclass
class ClassMatch:
    mid: str
    name: str
    counts: dict[str, int] = field(default_factory=dict)  # split -> images verified to show it


@dataclass
class ClassSearch:
    query: str
    matches: list[ClassMatch]
    more: int                      # matches beyond the limit
    counted_splits: list[str]
    notes: list[str]

    def to_json(self) -> dict:
        return {"query": self.query, "counted_splits": self.counted_splits, "more": self.more,
                "matches": [{"mid": m.mid, "name": m.name, "images": m.counts} for m in self.matches],
                "notes": self.notes}


def search_classes(query: str, *, source: str | None = None, cache_dir: Path | str | None = None,
                   label_set: str = "all", splits: tuple[str, ...] = ("train", "validation", "test"),
                   counts: bool | None = None, limit: int = 25, reporter: Reporter = SILENT) -> ClassSearch:
    """Classes whose name matches ``query``, best first. ``counts``: True counts images in
    every split (downloading label files as needed), None only in splits whose label file
    is already at hand, False not at all. ``reporter``: bars and notes of the downloads and
    indexing that counting needs."""
    meta = load_metadata(source, cache_dir, label_set, reporter=reporter)
    found = meta.classes.search(query)
    shown = [ClassMatch(c.mid, c.name) for c in found[:limit]]
    counted: list[str] = []
    notes: list[str] = []
    if counts is not False:
        for split in splits:
            if counts is None and not meta.labels_cached(split):
                notes.append(f"{split}: no image counts (label file not downloaded yet; --counts fetches it)")
                continue
            per_mid = meta.label_index(split, reporter=reporter).counts()
            for m in shown:
                m.counts[split] = per_mid.get(m.mid, 0)
            counted.append(split)
    return ClassSearch(query, shown, max(0, len(found) - limit), counted, notes)
