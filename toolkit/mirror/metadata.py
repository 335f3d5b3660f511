"""The Open Images metadata files of a mirror, in the official schemas and at the paths of
``toolkit.openimages.layout``: class lists, the boxable hierarchy, human-verified labels of
both label sets, image lists with attribution, and boxes.

Image lists are written in a shuffled row order: the real ones are not sorted by ImageID
(label and box files are, and so are they here).
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from toolkit.mirror.attribution import LICENSE
from toolkit.mirror.classes import BOXABLE, CLASSES, HIERARCHY
from toolkit.mirror.records import MirrorImage
from toolkit.openimages import layout


def write_metadata(root: Path, base_url: str, images: list[MirrorImage]) -> None:
    """Every metadata file of ``images`` under ``root``; image URLs under ``base_url``."""
    _write_class_files(root)
    for split in layout.SPLITS:
        mine = sorted((im for im in images if im.split == split), key=lambda im: im.image_id)
        boxable = [im for im in mine if im.boxable]
        _write_csv(root / layout.human_labels_path(split, "all"), layout.LABEL_COLUMNS,
                   [(im.image_id, src, mid, conf) for im in mine for src, mid, conf in im.labels])
        _write_csv(root / layout.human_labels_path(split, "boxable"), layout.LABEL_COLUMNS,
                   [(im.image_id, src, mid, conf) for im in boxable for src, mid, conf in im.labels if mid in BOXABLE])
        _write_image_lists(root, base_url, split, mine)
        _write_csv(root / layout.boxes_path(split), layout.BOX_COLUMNS, [
            (im.image_id, b.source, b.label_name, 1, _coord(b.x_min), _coord(b.x_max), _coord(b.y_min), _coord(b.y_max),
             b.is_occluded, b.is_truncated, b.is_group_of, 0, 0)
            for im in boxable for b in im.boxes])


def _write_class_files(root: Path) -> None:
    """The class list, its boxable subset, and the hierarchy JSON."""
    by_name = sorted(CLASSES.items())
    _write_csv(root / layout.CLASSES_ALL, ("LabelName", "DisplayName"), by_name)
    _write_csv(root / layout.CLASSES_BOXABLE, None, [row for row in by_name if row[0] in BOXABLE])
    hierarchy = root / layout.HIERARCHY
    hierarchy.parent.mkdir(parents=True, exist_ok=True)
    hierarchy.write_text(json.dumps(_hierarchy_json(HIERARCHY), indent=4) + "\n", encoding="utf-8")


def _hierarchy_json(node: tuple) -> dict:
    out: dict = {"LabelName": node[0]}
    if node[1]:
        out["Subcategory"] = [_hierarchy_json(child) for child in node[1]]
    if len(node) > 2:
        out["Part"] = [{"LabelName": mid} for mid in node[2]]
    return out


def _write_image_lists(root: Path, base_url: str, split: str, mine: list[MirrorImage]) -> None:
    """The image list of ``split`` (train: all and boxable), rows in a fixed shuffle."""
    # the real image lists are not sorted by ImageID: a fixed shuffle of the rows
    listed = sorted(mine, key=lambda im: hashlib.sha256(f"row:{im.image_id}".encode()).digest())
    rows = [_image_row(base_url, im) for im in listed]
    if split == "train":
        _write_csv(root / layout.image_list_path(split, "all"), layout.IMAGE_COLUMNS, rows)
        _write_csv(root / layout.image_list_path(split, "boxable"), layout.IMAGE_COLUMNS,
                   [row for row, im in zip(rows, listed) if im.boxable])
    else:
        _write_csv(root / layout.image_list_path(split), layout.IMAGE_COLUMNS, rows)


def _image_row(base_url: str, im: MirrorImage) -> tuple[object, ...]:
    return (
        im.image_id, im.split, f"{base_url}/flickr/{im.image_id}_o.jpg", im.landing_url,
        LICENSE, im.author_profile_url, im.author, im.title, im.original_size, im.original_md5,
        f"{base_url}/flickr/{im.image_id}_z.jpg" if im.thumbnail else "",
        "" if im.rotation is None else im.rotation,
    )


def _coord(v: float) -> str:
    return f"{min(1.0, max(0.0, v)):.6f}"


def _write_csv(path: Path, header: Iterable[str] | None, rows: Iterable[Iterable[object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        if header is not None:
            writer.writerow(header)
        writer.writerows(rows)
