"""Where Open Images keeps its files, and the exact schema of each.

Facts from Open Images' download pages (see ../shared/docs/openimages.md in the project
workspace). A mirror, local folder or test server lays its files out the same way under
its own base.
"""

from __future__ import annotations

METADATA_BASE = "https://storage.googleapis.com/openimages/"
"""Default base of every metadata file (class names, labels, image lists, hierarchy)."""

CVDF_IMAGES_BASE = "https://open-images-dataset.s3.amazonaws.com/"
"""CVDF mirror of the boxable images, resized to at most 1024 px: ``{split}/{ImageID}.jpg``."""

SPLITS = ("train", "validation", "test")

CLASSES_ALL = "v7/oidv7-class-descriptions.csv"  # ~20k classes, header row in the official file
CLASSES_BOXABLE = "v5/class-descriptions-boxable.csv"  # 600 boxable classes, no header row
HIERARCHY = "2018_04/bbox_labels_600_hierarchy.json"
HIERARCHY_ROOT = "/m/0bl9f"  # "Entity"

LABEL_COLUMNS = ("ImageID", "Source", "LabelName", "Confidence")
IMAGE_COLUMNS = (
    "ImageID", "Subset", "OriginalURL", "OriginalLandingURL", "License",
    "AuthorProfileURL", "Author", "Title", "OriginalSize", "OriginalMD5",
    "Thumbnail300KURL", "Rotation",
)
BOX_COLUMNS = (
    "ImageID", "Source", "LabelName", "Confidence", "XMin", "XMax", "YMin", "YMax",
    "IsOccluded", "IsTruncated", "IsGroupOf", "IsDepiction", "IsInside",
)

LABEL_SETS = ("all", "boxable")
"""``all``: v7 human-verified labels of ~20k classes; ``boxable``: v5 labels of the 600 boxable classes."""

_V7_SPLIT = {"train": "train", "validation": "val", "test": "test"}


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")


def human_labels_path(split: str, label_set: str = "all") -> str:
    """Human-verified image-level labels of one split (columns ``LABEL_COLUMNS``)."""
    _check_split(split)
    if label_set == "boxable":
        return f"v5/{split}-annotations-human-imagelabels-boxable.csv"
    return f"v7/oidv7-{_V7_SPLIT[split]}-annotations-human-imagelabels.csv"


def image_list_path(split: str, label_set: str = "all") -> str:
    """Image list of one split with URLs, attribution and rotation (columns ``IMAGE_COLUMNS``)."""
    _check_split(split)
    if split == "train":
        if label_set == "boxable":
            return "2018_04/train/train-images-boxable-with-rotation.csv"
        return "v6/oidv6-train-images-with-labels-with-rotation.csv"
    return f"2018_04/{split}/{split}-images-with-rotation.csv"


def boxes_path(split: str) -> str:
    """Bounding boxes of one split (columns ``BOX_COLUMNS``, coordinates normalised 0..1)."""
    _check_split(split)
    if split == "train":
        return "v6/oidv6-train-annotations-bbox.csv"
    return f"v5/{split}-annotations-bbox.csv"


def cvdf_image_url(images_base: str, split: str, image_id: str) -> str:
    _check_split(split)
    return f"{images_base.rstrip('/')}/{split}/{image_id}.jpg"
