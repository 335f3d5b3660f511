"""``Selection``: the images a build takes, per class folder, as ``binary`` and ``multiclass``
choose them; and what both share (where each image was drawn from, the hint of an empty
selection)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..openimages import layout
from ..openimages.labelindex import hex_to_id, ids_to_hex
from ..openimages.ontology import OIClass, RelatedClass
from .config import DatasetConfig
from .exclusions import ImageExclusion
from .selection import Balance


@dataclass
class Selection:
    """The images a build takes, per class folder in dataset order, and what to record of them."""

    folders: list[str]
    chosen: dict[str, np.ndarray]                  # folder -> ImageIDs (uint64, sorted)
    drawn_from: list[tuple[np.ndarray, dict[str, np.ndarray]]]  # (ids, Open Images split -> candidates)
    crop_mids: dict[str, list[str]]                # folder -> the MIDs whose boxes --crop cuts it to
    balance: Balance
    notes: list[str]
    title: str                                     # of preview.png
    default_name: str
    positive: OIClass | None = None                # binary: the positive class
    related: list[RelatedClass] = field(default_factory=list)
    class_info: list[dict] = field(default_factory=list)       # multi-class: per folder, for dataset.json
    ambiguous: dict[str, tuple[str, ...]] = field(default_factory=dict)  # ImageID -> the folders it shows
    ambiguous_subset: dict[str, str] = field(default_factory=dict)       # ImageID -> its Open Images split

    def result_fields(self) -> dict:
        return {"task": "multiclass" if self.class_info else "binary", "class_info": self.class_info,
                "ambiguous": ambiguous_counts(self.ambiguous)}


def ambiguous_counts(ambiguous: dict[str, tuple[str, ...]]) -> dict[str, int]:
    """'a+b' (the folders an ambiguous image shows, in dataset order) -> images."""
    return dict(sorted(Counter("+".join(f) for f in ambiguous.values()).items()))


class LeaveOut:
    """The images ``--exclude`` names, taken out of every pool a class is drawn from, so the
    dataset is filled with other images; ``note`` says how many were among the candidates."""

    def __init__(self, exclusion: ImageExclusion | None) -> None:
        self.exclusion = exclusion
        self.ids = (np.array(sorted(hex_to_id(i) for i in exclusion.image_ids), dtype=np.uint64)
                    if exclusion is not None else np.empty(0, dtype=np.uint64))
        self._hit = np.empty(0, dtype=np.uint64)

    def pool(self, ids: np.ndarray) -> np.ndarray:
        """``ids`` without the excluded images (remembering which of them were there)."""
        if not self.ids.size:
            return ids
        self._hit = np.union1d(self._hit, np.intersect1d(ids, self.ids, assume_unique=True))
        return np.setdiff1d(ids, self.ids, assume_unique=True)

    def notes(self) -> list[str]:
        return [] if self.exclusion is None else [self.exclusion.note(int(self._hit.size))]


def subset_lookup(drawn_from: Sequence[tuple[np.ndarray, dict[str, np.ndarray]]]) -> dict[str, str]:
    """ImageID (hex) -> the Open Images split it was drawn from (the first that has it),
    given (chosen ids, Open Images split -> the candidates they were drawn from) pairs."""
    out: dict[str, str] = {}
    for chosen, by_split in drawn_from:
        for split, ids in by_split.items():
            hit = chosen[np.isin(chosen, ids)]
            for i in ids_to_hex(hit):
                out.setdefault(i, split)
    return out


def widen_hint(config: DatasetConfig, has_related: bool) -> str:
    """What to change when a class has no verified image in the splits drawn from."""
    hints = []
    if len(config.splits) < len(layout.SPLITS):
        hints.append("more splits (--split train,validation,test)")
    if has_related and not config.include_related:
        hints.append("--include-related")
    if config.label_set == "boxable":
        hints.append("--label-set all")
    if not hints:
        return "Open Images has no verified images of it: choose another class (`mlkit classes WORD`)."
    return "Try " + ", or ".join(hints) + "."
