"""What the CSVs say about one generated picture: ``MirrorImage`` and its ``MirrorBox``es."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MirrorBox:
    """One row of the box CSV, normalised to the stored frame (see ``rotation.py``)."""

    label_name: str
    x_min: float
    x_max: float
    y_min: float
    y_max: float
    is_occluded: int
    is_truncated: int
    is_group_of: int
    source: str = "xclick"


@dataclass(frozen=True)
class MirrorImage:
    """One generated picture and everything the CSVs say about it."""

    image_id: str
    split: str
    display_name: str  # the class it was drawn for ("A + B": A, with a B beside it)
    label_name: str
    labels: tuple[tuple[str, str, int], ...]  # (Source, LabelName, Confidence), human-verified
    boxes: tuple[MirrorBox, ...]
    boxable: bool  # in the boxable image list and labels (always, outside train)
    dead: bool  # gone from Flickr: no CVDF copy, original redirects to the placeholder
    rotation: int | None  # counter-clockwise degrees that turn the stored copies upright; None: empty in the CSV
    thumbnail: bool  # Thumbnail300KURL is set
    original_size: int
    original_md5: str  # base64 of the MD5 digest, as in the CSV
    landing_url: str
    author_profile_url: str
    author: str
    title: str
    exif_orientation: int | None = None  # EXIF Orientation tag of the Flickr original, if it has one
    also: tuple[str, ...] = ()  # LabelNames of further classes drawn beside the main one

    @property
    def has_cvdf_copy(self) -> bool:
        return self.boxable and not self.dead

    def confidence(self, label_name: str) -> int | None:
        for _, mid, conf in self.labels:
            if mid == label_name:
                return conf
        return None
