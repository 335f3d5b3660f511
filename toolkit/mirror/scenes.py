"""Scenes: objects of ``drawers.SHAPES`` on a varied background, lit, and where each one is.

``compose_scene`` paints a background and unlabelled clutter, maybe a plate under the main
object, maybe a side dish, further whole objects beside it, then the main object, and last
lighting and sensor noise. It returns the picture and every object with its box (the boxes
of the box CSVs). Everything follows the random.Random it is given.
"""

from __future__ import annotations

import functools
import math
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from toolkit.mirror.drawers import BUN, MUSTARD, SAUSAGE, SHAPES, SIDE_DISHES, jitter, stroke_width

_DISTRACTOR_COLORS = (BUN, SAUSAGE, MUSTARD, (200, 140, 75), (160, 40, 30))
"""Background colours taken from a hot dog now and then, so colour alone does not tell."""


@dataclass(frozen=True)
class Placed:
    """An object as drawn: its shape key, variant, and box in pixels of the upright picture."""

    key: str
    variant: str
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive), clipped to the picture
    truncated: bool
    occluded: bool
    group: bool


def _background(rng: random.Random, nrng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    w, h = size

    def color() -> tuple[int, int, int]:
        if rng.random() < .25:
            return jitter(rng.choice(_DISTRACTOR_COLORS), rng, 25)[:3]
        return (rng.randint(20, 245), rng.randint(20, 245), rng.randint(20, 245))

    kind = rng.choice(("solid", "gradient", "gradient", "blotches", "blotches", "checks", "wood", "stripes"))
    if kind == "solid":
        return Image.new("RGB", size, color())
    if kind == "gradient":
        a, b = np.array(color(), np.float32), np.array(color(), np.float32)
        ang = rng.uniform(0, 2 * math.pi)
        sw, sh = 32, 24  # computed small, then smoothly enlarged
        yy, xx = np.mgrid[0:sh, 0:sw].astype(np.float32)
        t = xx * math.cos(ang) / sw + yy * math.sin(ang) / sh
        t = (t - t.min()) / max(1e-6, float(t.max() - t.min()))
        small = (a * (1 - t[..., None]) + b * t[..., None]).astype(np.uint8)
        return Image.fromarray(small).resize(size, Image.Resampling.BILINEAR)
    if kind == "blotches":
        small = nrng.integers(20, 240, size=(rng.randint(2, 5), rng.randint(2, 6), 3), dtype=np.uint8)
        return Image.fromarray(small).resize(size, Image.Resampling.BILINEAR)
    if kind == "checks":
        a, b = color(), rng.choice([(245, 245, 240), color()])
        cell = rng.randint(int(h / 10), int(h / 4))
        img = Image.new("RGB", size, a)
        d = ImageDraw.Draw(img)
        for i in range(0, w // cell + 1):
            for j in range(0, h // cell + 1):
                if (i + j) % 2:
                    d.rectangle((i * cell, j * cell, (i + 1) * cell - 1, (j + 1) * cell - 1), fill=b)
        return img
    if kind == "wood":
        base = np.array(jitter(rng.choice([(150, 100, 60), (190, 145, 95), (110, 70, 40)]), rng, 15)[:3], np.float32)
        xx = np.arange(w if rng.random() < .5 else h, dtype=np.float32)
        grain = np.sin(xx / rng.uniform(3, 9) + np.sin(xx / rng.uniform(20, 50)) * 3) * 14
        grain = np.broadcast_to(grain[None, :], (h, w)) if len(xx) == w else np.broadcast_to(grain[:, None], (h, w))
        return Image.fromarray(np.clip(base + grain[..., None], 0, 255).astype(np.uint8))
    img = Image.new("RGB", size, color())  # stripes
    d = ImageDraw.Draw(img)
    band = rng.randint(int(h / 12), int(h / 3))
    other = color()
    for i in range(0, w + h, 2 * band):
        d.polygon([(i, 0), (i + band, 0), (i + band - h, h), (i - h, h)], fill=other)
    return img


def _clutter(d: ImageDraw.ImageDraw, rng: random.Random, size: tuple[int, int]) -> None:
    """Unlabelled bits on the table: crumbs, napkins, cutlery-ish strokes."""
    w, h = size
    for _ in range(rng.randint(0, 5)):
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        s = rng.uniform(.03, .12) * h
        col = (rng.randint(0, 255), rng.randint(0, 255), rng.randint(0, 255))
        kind = rng.random()
        if kind < .4:
            d.rectangle((x, y, x + s * 2.5, y + s * 1.6), fill=col)
        elif kind < .7:
            d.line((x, y, x + rng.uniform(-3, 3) * s, y + rng.uniform(-3, 3) * s), fill=col, width=stroke_width(s / 4))
        else:
            d.ellipse((x, y, x + s / 2, y + s / 2), fill=col)


def _object_layer(rng: random.Random, key: str, width: float, variant: str | None = None) -> tuple[Image.Image, str]:
    shape = SHAPES[key]
    variant = variant if variant is not None else rng.choice(shape.variants)
    w = max(8.0, width)
    h = max(6.0, w / shape.aspect)
    pad = 2
    layer = Image.new("RGBA", (int(math.ceil(w)) + 2 * pad, int(math.ceil(h)) + 2 * pad), (0, 0, 0, 0))
    shape.drawer(ImageDraw.Draw(layer), rng, pad, pad, w, h, variant)
    return layer, variant


def _paste(canvas: Image.Image, layer: Image.Image, cx: float, cy: float, angle: float) -> tuple[int, int, int, int] | None:
    """Paste ``layer`` rotated by ``angle`` with its centre at (cx, cy); its visible box."""
    if abs(angle) > .5:
        layer = layer.rotate(angle, resample=Image.Resampling.NEAREST, expand=True)  # 20x faster; the copies are downscaled anyway
    x0, y0 = int(round(cx - layer.width / 2)), int(round(cy - layer.height / 2))
    canvas.paste(layer, (x0, y0), layer)
    bbox = layer.getchannel("A").point(_OPAQUE).getbbox()
    if bbox is None:
        return None
    bx0, by0 = max(0, x0 + bbox[0]), max(0, y0 + bbox[1])
    bx1, by1 = min(canvas.width, x0 + bbox[2]), min(canvas.height, y0 + bbox[3])
    if bx1 - bx0 < 4 or by1 - by0 < 4:
        return None
    return bx0, by0, bx1, by1


_OPAQUE = [255 if a > 96 else 0 for a in range(256)]


def _overlap(a: tuple[int, int, int, int], b: tuple[float, float, float, float]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return ix * iy


@dataclass(frozen=True)
class _Spot:
    """Where the main object goes: its centre, size, turn, and whether the frame cuts it."""

    cx: float
    cy: float
    w: float
    h: float
    angle: float
    partial: bool

    @property
    def area(self) -> tuple[float, float, float, float]:
        return (self.cx - self.w / 2, self.cy - self.h / 2, self.cx + self.w / 2, self.cy + self.h / 2)


def compose_scene(rng: random.Random, key: str, size: tuple[int, int], *, variant: str | None = None, food: bool = True,
                  also: tuple[str, ...] = ()) -> tuple[Image.Image, list[Placed]]:
    """A picture of ``size`` (upright) whose main object is drawn by ``SHAPES[key]``.

    ``also``: shape keys of further whole objects drawn beside it (a picture showing two
    classes). Returns the picture and every object drawn, the main one last (side dishes,
    plates and ``also`` first, since the main object is drawn over them).
    """
    nrng = np.random.default_rng(rng.getrandbits(64))
    canvas = _background(rng, nrng, size)
    _clutter(ImageDraw.Draw(canvas), rng, size)
    spot = _main_spot(rng, key, size)
    placed: list[Placed] = []
    if food and rng.random() < .3:
        placed += _plate(canvas, rng, spot)
    if rng.random() < .3:
        placed += _side_dish(canvas, rng, key, spot)
    placed += _beside(canvas, rng, also, spot)
    placed.append(_main_object(canvas, rng, key, variant, spot))
    return _light(canvas, rng, nrng), placed


def _main_spot(rng: random.Random, key: str, size: tuple[int, int]) -> _Spot:
    """A size, place and turn for the main object; now and then part-way out of the frame."""
    w, h = size
    shape = SHAPES[key]
    scale = rng.uniform(.42, .85)
    ow = min(scale * w, .92 * h * shape.aspect)
    oh = ow / shape.aspect
    partial = rng.random() < .15
    slack_x, slack_y = max(0.0, (w - ow) / 2), max(0.0, (h - oh) / 2)
    cx = w / 2 + rng.uniform(-slack_x, slack_x)
    cy = h / 2 + rng.uniform(-slack_y, slack_y)
    if partial:  # push it part-way out of the frame
        cx += rng.choice((-1, 1)) * (slack_x + ow * rng.uniform(.15, .35))
    angle = rng.uniform(-35, 35) if rng.random() < .5 else rng.uniform(-10, 10)
    return _Spot(cx, cy, ow, oh, angle, partial)


def _plate(canvas: Image.Image, rng: random.Random, spot: _Spot) -> list[Placed]:
    """A plate under the main object (drawn first, so always occluded)."""
    w = canvas.width
    pw = min(w * .98, spot.w * rng.uniform(1.15, 1.4))
    layer, _ = _object_layer(rng, "plate", pw)
    box = _paste(canvas, layer, spot.cx + rng.uniform(-.05, .05) * w, spot.cy + spot.h * .1, 0)
    if box:
        return [Placed("plate", "", box, _cut(box, canvas.size), True, False)]
    return []


def _side_dish(canvas: Image.Image, rng: random.Random, key: str, spot: _Spot) -> list[Placed]:
    """A small extra object, in the least crowded of a few places tried."""
    w, h = canvas.size
    side = rng.choice([s for s in SIDE_DISHES if s != key])
    sw = w * rng.uniform(.16, .3)
    best: tuple[float, float, float] | None = None
    for _ in range(6):
        sx, sy = rng.uniform(sw / 2, w - sw / 2), rng.uniform(sw / 3, h - sw / 3)
        ov = _overlap((int(sx - sw / 2), int(sy - sw / 3), int(sx + sw / 2), int(sy + sw / 3)), spot.area)
        if best is None or ov < best[0]:
            best = (ov, sx, sy)
    assert best is not None
    layer, sv = _object_layer(rng, side, sw)
    box = _paste(canvas, layer, best[1], best[2], rng.uniform(-15, 15))
    if box:
        return [Placed(side, sv, box, _cut(box, canvas.size), _overlap(box, spot.area) > 0,
                       sv in SHAPES[side].group_variants)]
    return []


def _beside(canvas: Image.Image, rng: random.Random, also: tuple[str, ...], spot: _Spot) -> list[Placed]:
    """Whole objects of ``also``, on the side of the picture away from the main object."""
    w, h = canvas.size
    placed: list[Placed] = []
    for k, extra in enumerate(also):
        ew = w * rng.uniform(.3, .42)
        ex = w * (.2 + .06 * k) if spot.cx > w / 2 else w * (.8 - .06 * k)
        layer, ev = _object_layer(rng, extra, ew)
        box = _paste(canvas, layer, ex, h * rng.uniform(.3, .7), rng.uniform(-15, 15))
        if box:
            placed.append(Placed(extra, ev, box, _cut(box, canvas.size), _overlap(box, spot.area) > 0,
                                 ev in SHAPES[extra].group_variants))
    return placed


def _main_object(canvas: Image.Image, rng: random.Random, key: str, variant: str | None, spot: _Spot) -> Placed:
    layer, v = _object_layer(rng, key, spot.w, variant)
    box = _paste(canvas, layer, spot.cx, spot.cy, spot.angle)
    if box is None:  # cannot happen with the sizes above; keep the contract anyway
        box = (0, 0, canvas.width, canvas.height)
    return Placed(key, v, box, _cut(box, canvas.size) or spot.partial, False, v in SHAPES[key].group_variants)


def _cut(box: tuple[int, int, int, int], size: tuple[int, int]) -> bool:
    return box[0] <= 0 or box[1] <= 0 or box[2] >= size[0] or box[3] >= size[1]


def _light(img: Image.Image, rng: random.Random, nrng: np.random.Generator) -> Image.Image:
    """Exposure, colour cast, vignette and sensor noise."""
    gain = rng.uniform(.7, 1.2)
    casts = [rng.uniform(-18, 18) for _ in range(3)]
    src = np.asarray(img)
    out = np.empty(src.shape, np.int16)
    levels = np.arange(256, dtype=np.float32)
    for c in range(3):
        out[..., c] = np.clip(levels * gain + casts[c], 0, 255).astype(np.int16)[src[..., c]]
    if rng.random() < .35:
        strength = rng.uniform(.15, .35)
        keep = (128 - (strength * 128) * _radial(img.size)).astype(np.int16)  # 128 = unchanged; 255 * 128 fits int16
        out = (out * keep[..., None]) >> 7
    bank = _noise_bank(img.size)
    level = rng.randrange(len(bank))
    ox, oy = rng.randrange(img.width), rng.randrange(img.height)
    out += bank[level][oy:oy + img.height, ox:ox + img.width][..., None]
    result = Image.fromarray(np.clip(out, 0, 255).astype(np.uint8))
    if rng.random() < .12:
        result = result.filter(ImageFilter.SMOOTH)
    return result


@functools.lru_cache(maxsize=4)
def _radial(size: tuple[int, int]) -> np.ndarray:
    """Squared distance from the centre, scaled to 0 there and 1 in the corners."""
    w, h = size
    yy, xx = np.ogrid[0:h, 0:w]
    r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
    return (r2 / 2).astype(np.float32)


@functools.lru_cache(maxsize=4)
def _noise_bank(size: tuple[int, int]) -> tuple[np.ndarray, ...]:
    """Gaussian sensor noise of a few strengths, twice the picture's size, fixed forever."""
    w, h = size
    base = np.random.default_rng(20240607).normal(0, 1, size=(2 * h, 2 * w)).astype(np.float32)
    return tuple(np.round(base * s).astype(np.int16) for s in (1.0, 2.0, 3.0, 4.0))
