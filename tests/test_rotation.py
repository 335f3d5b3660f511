"""Rotated images as Open Images has them, downloaded and compared with the upright picture.

Open Images' page "Rotated images in Open Images"
(https://storage.googleapis.com/openimages/web/2018-05-17-rotation-information.html):
``Rotation`` is the degrees COUNTER-CLOCKWISE that the image and its boxes should be
rotated; it was recovered from the Flickr original's EXIF orientation, and the copies
Open Images serves carry no EXIF. The mirror stores each rotated picture as the upright
one turned clockwise by ``Rotation``, boxes in that stored frame, and gives about half the
rotated Flickr originals the EXIF tag. Every result here is compared pixel by pixel with
the upright picture the mirror drew (``MirrorInfo.upright``), not with metadata.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from toolkit.dataset.download import DownloadJob, DownloadOptions, ImageSource, download_images
from toolkit.openimages import layout

ANGLES = (90, 180, 270)


def fast(**kw) -> DownloadOptions:
    base = dict(workers=4, retries=1, backoff=0.01)
    base.update(kw)
    return DownloadOptions(**base)


def error(a: Image.Image, b: Image.Image) -> float:
    """Mean absolute difference per channel (0..255), after bringing b to a's size."""
    b = b.convert("RGB").resize(a.size, Image.Resampling.BILINEAR)
    return float(np.abs(np.asarray(a.convert("RGB"), np.float32) - np.asarray(b, np.float32)).mean())


def turned(img: Image.Image, ccw: int) -> Image.Image:
    return img.rotate(ccw, expand=True) if ccw % 360 else img  # PIL's rotate is counter-clockwise


def upright_box(box: tuple[float, float, float, float], rotation: int) -> tuple[float, float, float, float]:
    """A stored-frame box (xmin, ymin, xmax, ymax) turned counter-clockwise with its image.

    Derived here on its own: turning 90 degrees counter-clockwise sends the stored point
    (x, y) to (y, 1 - x); 180 to (1 - x, 1 - y); 270 to (1 - y, x)."""
    x0, y0, x1, y1 = box
    if rotation == 90:
        return y0, 1 - x1, y1, 1 - x0
    if rotation == 180:
        return 1 - x1, 1 - y1, 1 - x0, 1 - y0
    if rotation == 270:
        return 1 - y1, x0, 1 - y0, x1
    return box


def rotated(info, *, exif: bool | None = None, cvdf: bool | None = None):
    out = [im for im in info.images if im.rotation in ANGLES and not im.dead]
    if exif is not None:
        out = [im for im in out if (im.exif_orientation is not None) == exif]
    if cvdf is not None:
        out = [im for im in out if im.has_cvdf_copy == cvdf]
    return out


def fetch(info, im, kind: str, dest: Path, crop=None) -> Image.Image:
    url = (layout.cvdf_image_url(info.images_base, im.split, im.image_id) if kind == "cvdf"
           else info.original_url(im.image_id))
    job = DownloadJob(im.image_id, dest, (ImageSource(url, kind),), rotation=float(im.rotation), crop=crop)
    report = download_images([job], fast())
    assert report.outcomes[0].ok, report.outcomes[0]
    with Image.open(dest) as img:
        img.load()
        return img.convert("RGB")


def test_mirror_serves_every_case(mirror):
    """The default mirror holds each angle with and without the EXIF tag on the original,
    the tag says the same turn as Rotation, and the CVDF copies carry no EXIF."""
    _, info = mirror
    cases = {(im.rotation, im.exif_orientation is not None) for im in rotated(info)}
    assert cases == {(a, e) for a in ANGLES for e in (True, False)}
    for im in rotated(info):
        with Image.open(info.root / "flickr" / f"{im.image_id}_o.jpg") as original:
            assert original.getexif().get(0x0112) == im.exif_orientation
            assert im.exif_orientation in (None, {90: 8, 180: 3, 270: 6}[im.rotation])
        if im.has_cvdf_copy:
            with Image.open(info.root / "cvdf" / im.split / f"{im.image_id}.jpg") as copy:
                assert 0x0112 not in copy.getexif()


def test_rotation_column_is_written_as_in_the_image_list(mirror):
    _, info = mirror
    with open(info.root / layout.image_list_path("train"), newline="", encoding="utf-8") as f:
        rows = {r["ImageID"]: r for r in csv.DictReader(f)}
    for im in rotated(info):
        if im.split == "train":
            assert float(rows[im.image_id]["Rotation"]) == im.rotation


@pytest.mark.parametrize("kind", ["cvdf", "original"])
def test_downloaded_image_matches_the_upright_picture(mirror, tmp_path, kind):
    """Each rotated picture, from the CVDF copy (no EXIF) and from the Flickr original
    (EXIF on some, not on others), comes out upright: close to the drawn picture and far
    from it turned any other way."""
    _, info = mirror
    images = rotated(info, cvdf=True) if kind == "cvdf" else rotated(info)
    seen = set()
    for im in images:
        got = fetch(info, im, kind, tmp_path / kind / f"{im.image_id}.jpg")
        upright = info.upright(im.image_id)
        err = error(got, upright)
        assert got.size[0] > got.size[1], f"{im.image_id} ({im.rotation}, exif {im.exif_orientation}) not upright"
        assert err < 8, f"{im.image_id} ({im.rotation}, exif {im.exif_orientation}): mean error {err:.1f}"
        for other in (90, 180, 270):  # the upright picture turned any other way is far off
            wrong = turned(upright, other)
            if wrong.size == got.size:
                assert error(got, wrong) > 2 * err + 4, (im.image_id, im.rotation, other)
        seen.add((im.rotation, im.exif_orientation is not None))
    expected = {(a, e) for a in ANGLES for e in (True, False)} if kind == "original" else {(a, False) for a in ANGLES}
    assert expected <= seen


def _boxed(info):
    return [im for im in rotated(info) if im.boxes]


@pytest.mark.parametrize("kind", ["cvdf", "original"])
def test_crop_holds_the_drawn_object(mirror, tmp_path, kind):
    """A crop to a box of the box file (stored frame) is the object cut from the upright
    picture at the same place, for every angle, with and without EXIF."""
    _, info = mirror
    images = [im for im in _boxed(info) if kind == "original" or im.has_cvdf_copy]
    seen = set()
    for im in images:
        b = max(im.boxes, key=lambda b: (b.x_max - b.x_min) * (b.y_max - b.y_min))
        stored = (b.x_min, b.y_min, b.x_max, b.y_max)
        got = fetch(info, im, kind, tmp_path / kind / f"{im.image_id}.jpg", crop=stored)
        upright = info.upright(im.image_id)
        x0, y0, x1, y1 = upright_box(stored, im.rotation)
        w, h = upright.size
        want = upright.crop((round(x0 * w), round(y0 * h), round(x1 * w), round(y1 * h)))
        assert abs(got.width / got.height - want.width / want.height) < 0.15 * (want.width / want.height) + 0.1, \
            (im.image_id, im.rotation, got.size, want.size)
        err = error(got, want)
        assert err < 12, f"{im.image_id} ({im.rotation}, exif {im.exif_orientation}): crop error {err:.1f}"
        seen.add((im.rotation, im.exif_orientation is not None))
    expected = ({(a, e) for a in ANGLES for e in (True, False)} if kind == "original"
                else {(a, False) for a in ANGLES})
    assert expected <= seen, f"the mirror lacks boxed rotated pictures for {expected - seen}"


def test_build_with_crop_cuts_rotated_positives_to_their_hot_dog(mirror_config, mirror):
    """End to end: build-dataset --crop over rotated Hot dog pictures gives the hot dog,
    upright, as the mirror drew it."""
    from toolkit.dataset.build import build_dataset

    _, info = mirror
    result = build_dataset(mirror_config(crop=True, crop_margin=0.0, negatives=5))
    rotated_hot_dogs = [im for im in _boxed(info) if im.display_name == "Hot dog"]
    assert rotated_hot_dogs, "the mirror should hold rotated Hot dog pictures with boxes"
    checked = 0
    for im in rotated_hot_dogs:
        files = list(result.path.glob(f"*/*/{im.image_id}.jpg"))
        if not files:
            continue
        hot_dogs = [b for b in im.boxes if b.label_name == im.label_name]
        b = max(hot_dogs, key=lambda b: (b.x_max - b.x_min) * (b.y_max - b.y_min))
        upright = info.upright(im.image_id)
        x0, y0, x1, y1 = upright_box((b.x_min, b.y_min, b.x_max, b.y_max), im.rotation)
        w, h = upright.size
        want = upright.crop((round(x0 * w), round(y0 * h), round(x1 * w), round(y1 * h)))
        with Image.open(files[0]) as got:
            err = error(got.convert("RGB"), want)
        assert err < 12, f"{im.image_id} ({im.rotation}): crop error {err:.1f}"
        checked += 1
    assert checked, "no rotated Hot dog picture made it into the dataset"
