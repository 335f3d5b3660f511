"""Rotated pictures: the frame their copies and boxes are stored in, and their EXIF tag.

Rotation, as Open Images has it (its page "Rotated images in Open Images",
https://storage.googleapis.com/openimages/web/2018-05-17-rotation-information.html):
``Rotation`` 0/90/180/270 is "the degrees (counterclockwise) that the image and boxes
should be rotated" to stand upright, recovered from the EXIF orientation of the Flickr
original; empty means unknown. So a rotated picture is stored as the upright one turned
CLOCKWISE by ``Rotation``, every copy (CVDF, original, thumbnail) in that same frame, and
its boxes are normalised to that STORED frame. The copies Open Images serves carry no
EXIF; of the rotated Flickr originals, about half carry the EXIF Orientation tag that
describes the same turn (``MirrorImage.exif_orientation``) and half have none, so a
client that honours both (or neither) shows up. ``MirrorInfo.upright`` redraws the
upright picture, to compare a client's result with.
"""

from __future__ import annotations

import hashlib
import random

from PIL import Image

# PIL's ROTATE_n turns n degrees counter-clockwise: the stored copy is the upright picture
# turned CLOCKWISE by Rotation, so that Rotation degrees counter-clockwise undo it
_TRANSPOSE = {90: Image.Transpose.ROTATE_270, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_90}
# EXIF Orientation that says the same as Rotation: 8 = turn 90 counter-clockwise to view,
# 3 = 180, 6 = 90 clockwise (= 270 counter-clockwise)
EXIF_FOR_ROTATION = {90: 8, 180: 3, 270: 6}
EXIF_ORIENTATION_TAG = 0x0112


def draw_rotation(rng: random.Random) -> int | None:
    """A picture's ``Rotation``: mostly 0 or unknown (None), now and then 90, 180 or 270."""
    r = rng.random()
    return rng.choice((90, 180, 270)) if r < .04 else None if r < .6 else 0


def stored_picture(img: Image.Image, rotation: int | None) -> Image.Image:
    """The picture as stored: the upright one turned ``rotation`` degrees clockwise."""
    return img.transpose(_TRANSPOSE[rotation]) if rotation in _TRANSPOSE else img


def stored_box(x0: float, y0: float, x1: float, y1: float, rotation: int | None) -> tuple[float, float, float, float]:
    """A box normalised to the upright picture, in the stored frame (turned clockwise)."""
    if rotation == 90:    # clockwise 90: upright (x, y) -> stored (1 - y, x)
        return 1 - y1, x0, 1 - y0, x1
    if rotation == 180:
        return 1 - x1, 1 - y1, 1 - x0, 1 - y0
    if rotation == 270:   # clockwise 270: upright (x, y) -> stored (y, 1 - x)
        return y0, 1 - x1, y1, 1 - x0
    return x0, y0, x1, y1


def stored_size(size: tuple[int, int], rotation: int | None) -> tuple[int, int]:
    """``size`` (width, height) of the upright picture, in the stored frame."""
    return (size[1], size[0]) if rotation in (90, 270) else size


def exif_orientation(seed: int, image_id: str, rotation: int | None) -> int | None:
    """The EXIF Orientation of a Flickr original, or None where it carries none."""
    return EXIF_FOR_ROTATION.get(rotation) if rotation and _has_exif(seed, image_id) else None


def _has_exif(seed: int, image_id: str) -> bool:
    """About half the rotated originals carry their EXIF orientation (a hash, so that the
    pictures' own random draws are not disturbed)."""
    return hashlib.sha256(f"exif:{seed}:{image_id}".encode()).digest()[0] < 128
