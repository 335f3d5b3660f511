"""One photo of the mirror: its picture, what the CSVs say of it, and the bytes of its copies.

A photo is drawn upright at the Flickr original's size, then stored turned by its
``Rotation`` (``rotation.py``); the original is a JPEG of that, the thumbnail and the CVDF
copy are made from it at half size. A photo gone from Flickr has no files at all. Its
labels, boxes, rotation and attribution continue the random stream of its picture, so the
same seed and ImageID give the same photo.
"""

from __future__ import annotations

import base64
import hashlib
import io
import random
from typing import NamedTuple

from PIL import Image

from toolkit.mirror.attribution import attribution
from toolkit.mirror.class_shapes import KINDS, SHAPE_CLASS
from toolkit.mirror.classes import BOXABLE
from toolkit.mirror.labels import verified_labels
from toolkit.mirror.planning import PlannedImage
from toolkit.mirror.records import MirrorBox, MirrorImage
from toolkit.mirror.rotation import (
    EXIF_ORIENTATION_TAG,
    draw_rotation,
    exif_orientation,
    stored_box,
    stored_picture,
    stored_size,
)
from toolkit.mirror.scenes import Placed, compose_scene


class CopySizes(NamedTuple):
    """(width, height) of a photo's copies, upright."""

    original: tuple[int, int]  # the Flickr original: twice the CVDF copy
    cvdf: tuple[int, int]
    thumbnail: tuple[int, int]  # 0.7 times the CVDF copy


def copy_sizes(image_size: tuple[int, int]) -> CopySizes:
    """The sizes of the copies of a mirror whose CVDF copies are ``image_size``."""
    width, height = image_size
    return CopySizes((2 * width, 2 * height), image_size, (max(8, round(.7 * width)), max(8, round(.7 * height))))


def draw_upright(seed: int, image_id: str, mid: str, size: tuple[int, int]) -> tuple[random.Random, Image.Image, list[Placed]]:
    """The upright picture of ``image_id`` and the random stream its other draws continue."""
    rng = random.Random(f"mlkit-mirror:{seed}:{image_id}")
    mid, *also = mid.split("+")  # "A+B": A's picture with a B beside it
    kind = KINDS[mid]
    picture, placed = compose_scene(rng, kind.shape, size, food=kind.food, also=tuple(KINDS[m].shape for m in also))
    return rng, picture, placed


def make_photo(seed: int, planned: PlannedImage, dead: bool, sizes: CopySizes) -> tuple[MirrorImage, dict[str, bytes]]:
    """One picture, what the CSVs say of it, and its files (path under root -> bytes)."""
    split, name, image_id = planned.split, planned.display_name, planned.image_id
    rng, picture, placed = draw_upright(seed, image_id, planned.label_name, sizes.original)
    mid, *also = planned.label_name.split("+")

    boxable = split != "train" or rng.random() < .85
    rotation = draw_rotation(rng)
    thumbnail = not dead and rng.random() > .04

    labels = verified_labels(rng, mid, placed, placed[-1].variant)
    boxes = _boxes(rng, mid, placed, labels, sizes.original, rotation)
    if split == "train" and not boxes:
        boxable = False  # the boxable train list holds only pictures with boxes
    sources = [("verification" if rng.random() < .7 else "crowdsource-verification") for _ in labels]
    stored = stored_picture(picture, rotation)
    exif = exif_orientation(seed, image_id, rotation)
    original = _jpeg(stored, 82, exif)
    files: dict[str, bytes] = {}
    if not dead:
        files = _copies(planned, stored, original, rotation, sizes, thumbnail=thumbnail, boxable=boxable)
    landing, profile, author, title = attribution(rng, name)
    return MirrorImage(
        image_id=image_id, split=split, display_name=name, label_name=mid,
        labels=tuple((src, m, c) for src, (m, c) in zip(sources, labels)), boxes=tuple(boxes),
        boxable=boxable, dead=dead, rotation=rotation, thumbnail=thumbnail, exif_orientation=exif,
        original_size=len(original), original_md5=base64.b64encode(hashlib.md5(original).digest()).decode("ascii"),
        landing_url=landing, author_profile_url=profile, author=author, title=title, also=tuple(also),
    ), files


def _boxes(rng: random.Random, mid: str, placed: list[Placed], labels: list[tuple[str, int]],
           size: tuple[int, int], rotation: int | None) -> list[MirrorBox]:
    """The boxes of the objects drawn (in a picture of ``size``), in the stored frame."""
    kind = KINDS[mid]
    boxes: list[MirrorBox] = []
    for p in placed:
        box_mid = SHAPE_CLASS.get(p.key) if p is not placed[-1] else (kind.box_as or mid)
        if box_mid is None or box_mid not in BOXABLE or (box_mid, 1) not in labels:
            continue  # boxes only of boxable classes the labels verify
        x0, y0, x1, y1 = stored_box(p.box[0] / size[0], p.box[1] / size[1], p.box[2] / size[0], p.box[3] / size[1],
                                    rotation)
        boxes.append(MirrorBox(box_mid, x0, x1, y0, y1,
                               int(p.occluded), int(p.truncated), int(p.group),
                               "xclick" if rng.random() < .8 else "activemil"))
    return boxes


def _copies(planned: PlannedImage, stored: Image.Image, original: bytes, rotation: int | None, sizes: CopySizes,
            *, thumbnail: bool, boxable: bool) -> dict[str, bytes]:
    """The files of a photo still on Flickr: its original, thumbnail (if it has one) and
    CVDF copy (if boxable)."""
    image_id = planned.image_id
    files = {f"flickr/{image_id}_o.jpg": original}
    half = stored.reduce(2)  # the other copies are made from this cheaper source
    if thumbnail:
        files[f"flickr/{image_id}_z.jpg"] = _jpeg(_resized(half, stored_size(sizes.thumbnail, rotation)), 80)
    if boxable:
        files[f"cvdf/{planned.split}/{image_id}.jpg"] = _jpeg(_resized(half, stored_size(sizes.cvdf, rotation)), 85)
    return files


def _jpeg(img: Image.Image, quality: int, orientation: int | None = None) -> bytes:
    """``img`` as a JPEG, with an EXIF Orientation tag if ``orientation`` is given."""
    buf = io.BytesIO()
    if orientation is None:
        img.save(buf, format="JPEG", quality=quality)
    else:
        exif = Image.Exif()
        exif[EXIF_ORIENTATION_TAG] = orientation
        img.save(buf, format="JPEG", quality=quality, exif=exif.tobytes())
    return buf.getvalue()


def _resized(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    return img if img.size == size else img.resize(size, Image.Resampling.BILINEAR)
