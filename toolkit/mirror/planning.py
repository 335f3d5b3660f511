"""The plan of a mirror: how many pictures of each class each split gets, their ImageIDs,
and which of them are gone from Flickr. A function of the seed and the counts only."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from typing import NamedTuple

from toolkit.mirror.class_shapes import DRAWABLE, KINDS
from toolkit.mirror.classes import CLASSES
from toolkit.openimages import layout

DEFAULT_IMAGES_PER_CLASS: dict[str, int] = {
    "Hot dog": 60,
    "Chicago-style hot dog": 8, "Hot dog bun": 8, "Hot dog stand": 8,
    "Pizza": 25, "Sandwich": 25, "Hamburger": 25, "French fries": 25, "Banana": 25,
    "Doughnut": 25, "Taco": 25, "Cat": 25, "Dog": 25, "Car": 25, "Coffee cup": 25,
    "Submarine sandwich": 12, "Pizza + Hamburger": 8, "Pizza + Submarine sandwich": 4,
}
"""Train pictures per class; validation and test get a quarter of that each (at least 1)."""


DEAD_RATE = 0.03
"""Share of pictures gone from Flickr (at least one in train once train has 10 pictures)."""


def held_out_count(train: int) -> int:
    """Pictures of a class in validation and in test, for ``train`` in train."""
    return 0 if train <= 0 else max(1, round(train / 4))


class PlannedImage(NamedTuple):
    """One picture to draw."""

    split: str
    display_name: str  # the class it is drawn for, or "A + B"
    label_name: str  # its LabelName, or the LabelNames of "A + B" joined by "+"
    image_id: str


def plan_images(seed: int, images_per_class: Mapping[str, int] | None) -> list[PlannedImage]:
    """The pictures of every split, in order: ``images_per_class`` (default
    ``DEFAULT_IMAGES_PER_CLASS``) in train, ``held_out_count`` of it in validation and test."""
    wanted = dict(DEFAULT_IMAGES_PER_CLASS if images_per_class is None else images_per_class)
    by_name = _label_names(wanted)
    planned: list[PlannedImage] = []
    taken: set[str] = set()
    for split in layout.SPLITS:
        for name, n_train in wanted.items():
            mid = by_name[name]
            n = n_train if split == "train" else held_out_count(n_train)
            planned += [PlannedImage(split, name, mid, _image_id(seed, split, mid, i, taken)) for i in range(n)]
    return planned


def _label_names(wanted: Mapping[str, int]) -> dict[str, str]:
    """Display name -> LabelName of every name in ``wanted``; ValueError if one cannot be drawn."""
    by_name = {name: mid for mid, name in CLASSES.items() if mid in KINDS}
    for combo in [n for n in wanted if " + " in n]:  # "Pizza + Hamburger": LabelNames joined by "+"
        parts = combo.split(" + ")
        if all(part in by_name for part in parts):
            by_name[combo] = "+".join(by_name[part] for part in parts)
    unknown = sorted(set(wanted) - set(by_name))
    if unknown:
        raise ValueError(f"cannot draw {', '.join(map(repr, unknown))}; images_per_class takes {', '.join(DRAWABLE)}")
    return by_name


def _image_id(seed: int, split: str, mid: str, index: int, taken: set[str]) -> str:
    salt = 0
    while True:
        h = hashlib.sha256(f"mlkit-mirror:{seed}:{split}:{mid}:{index}:{salt}".encode()).hexdigest()[:16]
        if h not in taken:
            taken.add(h)
            return h
        salt += 1


def dead_ids(seed: int, planned: list[PlannedImage]) -> set[str]:
    """ImageIDs gone from Flickr: ``DEAD_RATE`` of them, drawn by hash."""
    dead_draw = functools.partial(_dead_draw, seed)
    dead = {p.image_id for p in planned if dead_draw(p.image_id) < DEAD_RATE}
    train_ids = [p.image_id for p in planned if p.split == "train"]
    if len(train_ids) >= 10 and not dead.intersection(train_ids):
        dead.add(min(train_ids, key=dead_draw))  # a mirror of any size shows the failure it models
    return dead


def _dead_draw(seed: int, image_id: str) -> float:
    return int.from_bytes(hashlib.sha256(f"dead:{seed}:{image_id}".encode()).digest()[:8], "big") / 2**64
