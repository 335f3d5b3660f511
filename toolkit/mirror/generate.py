"""Writes a small Open Images into a folder: the files and schemas of the real one.

``generate_mirror(root, base_url)`` writes class lists, the boxable hierarchy,
human-verified labels of both label sets, image lists with attribution, boxes, and the
pictures themselves (CVDF copies, Flickr originals and thumbnails), all at the paths of
``toolkit.openimages.layout``. ``base_url`` is where ``MirrorServer`` serves ``root``: the
image lists carry absolute URLs, so the server is started first.

What the mirror models, beside the happy path:
- verified negatives (``Confidence`` 0), e.g. ``Hot dog,0`` on pictures of other food;
- classes related to Hot dog (Hot dog bun, Hot dog stand, Chicago-style hot dog, ...)
  that an ontology-aware sampler must keep out of the negatives;
- two classes with the display name "Mouse";
- the real Sandwich family (Food > Sandwich > Hamburger, Submarine sandwich): pictures of
  a Submarine sandwich that only some label Sandwich too, Hamburgers whose ancestor label
  Sandwich is verified on some, and pictures that show two classes ("Pizza + Hamburger":
  a pizza with a hamburger beside it, verified for both; "Pizza + Submarine sandwich"), which
  a multi-class build must treat as ambiguous;
- images that are not boxable (train only: absent from the CVDF copy, so a client falls
  back to Flickr), images "dead on Flickr" (no CVDF copy, no thumbnail, and the original
  redirects to ``/photo_unavailable.png``), rows without a thumbnail URL, and rotated
  originals.

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

Image lists are written in a shuffled row order: the real ones are not sorted by ImageID
(label and box files are, and so are they here).

Everything is a function of ``seed``: the same seed gives byte-identical files.
"""

from __future__ import annotations

import base64
import concurrent.futures
import csv
import functools
import hashlib
import io
import json
import math
import random
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from toolkit.mirror.server import PLACEHOLDER_PATH, REDIRECTS_FILE, FaultPlan, MirrorServer
from toolkit.openimages import layout

# == pictures ============================================================================
#
# Each drawer paints one object into a box of a transparent RGBA layer; compose_scene puts
# objects on a varied background, adds lighting and noise, and says where each object ended
# up (the boxes of the box CSVs). Everything follows the random.Random it is given.
# Hot dog versus the rest is learnable but not trivial: buns, submarine sandwiches, bananas
# and tacos share its colours and outline, backgrounds sometimes wear bun, sausage or mustard
# colours, and objects are often cut by the frame.

Color = tuple[int, int, int]
Drawer = Callable[[ImageDraw.ImageDraw, random.Random, float, float, float, float, str], None]

BUN = (214, 160, 92)
SAUSAGE = (170, 70, 42)
MUSTARD = (238, 196, 38)
KETCHUP = (196, 32, 28)


def _jit(color: Color, rng: random.Random, amount: int = 16) -> tuple[int, int, int, int]:
    return tuple(max(0, min(255, c + rng.randint(-amount, amount))) for c in color) + (255,)  # type: ignore[return-value]


def _shade(color: tuple[int, ...], factor: float) -> tuple[int, int, int, int]:
    return tuple(max(0, min(255, int(c * factor))) for c in color[:3]) + (255,)  # type: ignore[return-value]


def _width(v: float) -> int:
    return max(1, int(round(v)))


# -- drawers: (draw, rng, x, y, w, h, variant) ---------------------------------------


def draw_hot_dog(d: ImageDraw.ImageDraw, rng: random.Random, x: float, y: float, w: float, h: float, style: str) -> None:
    """A sausage in a bun, topped according to ``style``."""
    bun = _jit(BUN, rng, 20)
    crust = _shade(bun, 0.72)
    sausage = _jit(SAUSAGE, rng, 18)
    # back half of the bun
    d.rounded_rectangle((x + .04 * w, y + .08 * h, x + .96 * w, y + .62 * h), radius=.26 * h, fill=crust)
    d.rounded_rectangle((x + .06 * w, y + .12 * h, x + .94 * w, y + .58 * h), radius=.22 * h, fill=bun)
    if style == "chicago":  # poppy-seed bun
        for _ in range(int(w // 6) + 8):
            px, py = x + rng.uniform(.1, .9) * w, y + rng.uniform(.15, .3) * h
            d.ellipse((px, py, px + 1.6, py + 1.6), fill=(40, 35, 30, 255))
    # the sausage, a little longer than the bun
    d.rounded_rectangle((x, y + .28 * h, x + w, y + .66 * h), radius=.19 * h, fill=sausage)
    d.line((x + .08 * w, y + .37 * h, x + .92 * w, y + .37 * h), fill=_shade(sausage, 1.3), width=_width(.05 * h))
    # front half of the bun
    d.rounded_rectangle((x + .03 * w, y + .50 * h, x + .97 * w, y + .98 * h), radius=.24 * h, fill=crust)
    d.rounded_rectangle((x + .05 * w, y + .52 * h, x + .95 * w, y + .92 * h), radius=.2 * h, fill=bun)
    d.line((x + .15 * w, y + .62 * h, x + .85 * w, y + .62 * h), fill=_shade(bun, 1.12), width=_width(.05 * h))
    _toppings(d, rng, x, y, w, h, style)


def _zigzag(d: ImageDraw.ImageDraw, rng: random.Random, x: float, y: float, w: float, h: float, color: tuple[int, ...], y0: float, y1: float) -> None:
    n = rng.randint(7, 12)
    pts = [(x + (.1 + .8 * i / n) * w, y + (y0 if i % 2 else y1) * h) for i in range(n + 1)]
    d.line(pts, fill=color, width=_width(.06 * h), joint="curve")


def _toppings(d: ImageDraw.ImageDraw, rng: random.Random, x: float, y: float, w: float, h: float, style: str) -> None:
    def blobs(color: Color, n: int, size: float, y0: float = .3, y1: float = .5) -> None:
        for _ in range(n):
            px, py = x + rng.uniform(.1, .88) * w, y + rng.uniform(y0, y1) * h
            s = size * h * rng.uniform(.7, 1.3)
            d.ellipse((px, py, px + s * 1.4, py + s), fill=_jit(color, rng, 14))

    if style == "chicago":
        d.rounded_rectangle((x + .15 * w, y + .26 * h, x + .8 * w, y + .38 * h), radius=.05 * h, fill=_jit((70, 120, 40), rng))  # pickle spear
        _zigzag(d, rng, x, y, w, h, _jit(MUSTARD, rng, 10), .33, .46)
        blobs((60, 205, 70), 14, .07)  # neon relish
        for _ in range(rng.randint(2, 3)):  # tomato wedges
            px = x + rng.uniform(.15, .75) * w
            d.pieslice((px, y + .22 * h, px + .16 * w, y + .52 * h), 180, 360, fill=_jit((215, 40, 35), rng))
        blobs((245, 245, 235), 8, .05)  # onions
        blobs((120, 160, 50), 3, .08)  # sport peppers
    elif style == "michigan":
        blobs((112, 58, 34), 26, .09, .26, .48)  # meat sauce
        d.line((x + .12 * w, y + .4 * h, x + .88 * w, y + .4 * h), fill=_jit(MUSTARD, rng, 10), width=_width(.04 * h))
        blobs((245, 245, 235), 10, .045)
    elif style == "coney":
        blobs((135, 48, 30), 30, .1, .24, .5)  # chili
        blobs((248, 248, 240), 14, .05, .26, .44)  # diced onions
        _zigzag(d, rng, x, y, w, h, _jit(MUSTARD, rng, 10), .34, .44)
    elif style == "ketchup":
        _zigzag(d, rng, x, y, w, h, _jit(KETCHUP, rng, 12), .32, .44)
        d.line((x + .1 * w, y + .42 * h, x + .9 * w, y + .42 * h), fill=_jit(MUSTARD, rng, 10), width=_width(.04 * h))
    else:  # plain: the mustard zigzag
        _zigzag(d, rng, x, y, w, h, _jit(MUSTARD, rng, 10), .32, .46)


def draw_hot_dog_bun(d: ImageDraw.ImageDraw, rng: random.Random, x: float, y: float, w: float, h: float, variant: str) -> None:
    """An empty, split bun: the hot dog's silhouette without the sausage."""
    bun = _jit(BUN, rng, 20)
    crust = _shade(bun, 0.72)
    d.rounded_rectangle((x + .02 * w, y + .06 * h, x + .98 * w, y + .58 * h), radius=.26 * h, fill=crust)
    d.rounded_rectangle((x + .04 * w, y + .1 * h, x + .96 * w, y + .54 * h), radius=.22 * h, fill=bun)
    d.rounded_rectangle((x + .08 * w, y + .42 * h, x + .92 * w, y + .6 * h), radius=.08 * h, fill=_shade(bun, 1.15))  # crumb
    d.rounded_rectangle((x + .02 * w, y + .52 * h, x + .98 * w, y + .98 * h), radius=.24 * h, fill=crust)
    d.rounded_rectangle((x + .04 * w, y + .55 * h, x + .96 * w, y + .93 * h), radius=.2 * h, fill=bun)


def draw_hot_dog_stand(d: ImageDraw.ImageDraw, rng: random.Random, x: float, y: float, w: float, h: float, variant: str) -> None:
    """A street cart under a striped umbrella, with a hot dog on its sign."""
    a, b = _jit((205, 35, 35), rng, 20), _jit(rng.choice([(245, 210, 40), (245, 245, 240), (40, 90, 200)]), rng, 10)
    n = 8
    for i in range(n):
        d.pieslice((x, y, x + w, y + .7 * h), 180 + 180 * i / n, 180 + 180 * (i + 1) / n, fill=a if i % 2 else b)
    d.rectangle((x + .49 * w, y + .33 * h, x + .51 * w, y + .55 * h), fill=(90, 90, 90, 255))
    body = _jit((190, 192, 198), rng, 20)
    d.rectangle((x + .1 * w, y + .5 * h, x + .9 * w, y + .85 * h), fill=body, outline=_shade(body, .6), width=_width(.01 * w))
    d.rectangle((x + .2 * w, y + .56 * h, x + .8 * w, y + .74 * h), fill=_jit((200, 40, 30), rng, 10))
    draw_hot_dog(d, rng, x + .3 * w, y + .58 * h, .4 * w, .14 * h, "plain")
    for cx in (.25, .75):
        d.ellipse((x + (cx - .08) * w, y + .8 * h, x + (cx + .08) * w, y + .96 * h), fill=(30, 30, 30, 255))
        d.ellipse((x + (cx - .03) * w, y + .85 * h, x + (cx + .03) * w, y + .91 * h), fill=(150, 150, 150, 255))


def draw_pizza(d: ImageDraw.ImageDraw, rng: random.Random, x: float, y: float, w: float, h: float, variant: str) -> None:
    crust = _jit((205, 148, 78), rng, 15)
    d.ellipse((x, y, x + w, y + h), fill=crust)
    d.ellipse((x + .07 * w, y + .07 * h, x + .93 * w, y + .93 * h), fill=_jit((190, 52, 30), rng, 12))
    d.ellipse((x + .1 * w, y + .1 * h, x + .9 * w, y + .9 * h), fill=_jit((246, 208, 118), rng, 10))
    for _ in range(rng.randint(3, 8)):  # browned cheese
        px, py = x + rng.uniform(.2, .75) * w, y + rng.uniform(.2, .75) * h
        d.ellipse((px, py, px + .06 * w, py + .05 * h), fill=_jit((215, 160, 70), rng, 10))
    topping = rng.choice(["pepperoni", "pepperoni", "olive", "basil", "mushroom"])
    for _ in range(rng.randint(5, 11)):
        ang, rad = rng.uniform(0, 2 * math.pi), rng.uniform(0, .3)
        px, py = x + (.5 + rad * math.cos(ang)) * w, y + (.5 + rad * math.sin(ang)) * h
        s = rng.uniform(.07, .11)
        if topping == "pepperoni":
            d.ellipse((px - s * w, py - s * h, px + s * w, py + s * h), fill=_jit((168, 38, 32), rng, 12))
        elif topping == "olive":
            d.ellipse((px - s * w / 2, py - s * h / 2, px + s * w / 2, py + s * h / 2), outline=(25, 25, 25, 255), width=_width(.02 * w))
        elif topping == "basil":
            d.ellipse((px - s * w, py - s * h / 2, px + s * w, py + s * h / 2), fill=_jit((40, 120, 40), rng, 12))
        else:
            d.pieslice((px - s * w, py - s * h, px + s * w, py + s * h), 180, 360, fill=_jit((200, 185, 160), rng, 10))
    if variant == "cut":  # a slice already taken
        start = rng.uniform(0, 360)
        d.pieslice((x - 2, y - 2, x + w + 2, y + h + 2), start, start + rng.uniform(40, 70), fill=(0, 0, 0, 0))


def _layers(d: ImageDraw.ImageDraw, rng: random.Random, x: float, y: float, w: float, y0: float, y1: float) -> None:
    """Sandwich fillings between heights y0 and y1 (fractions already scaled)."""
    fillings = rng.sample([((70, 160, 50), "wave"), ((210, 40, 35), "slab"), ((245, 200, 60), "slab"), ((235, 160, 160), "slab"), ((150, 95, 60), "slab")], 3)
    step = (y1 - y0) / len(fillings)
    for i, (color, shape) in enumerate(fillings):
        top = y0 + i * step
        if shape == "wave":
            pts = [(x + w * j / 12, top + (step * .6 if j % 2 else 0)) for j in range(13)] + [(x + w, top + step), (x, top + step)]
            d.polygon(pts, fill=_jit(color, rng, 12))
        else:
            d.rectangle((x + .01 * w, top, x + .99 * w, top + step), fill=_jit(color, rng, 12))


def draw_sandwich(d: ImageDraw.ImageDraw, rng: random.Random, x: float, y: float, w: float, h: float, variant: str) -> None:
    if variant == "submarine":  # a long roll: the hot dog's hardest look-alike
        roll = _jit((200, 140, 75), rng, 15)
        d.rounded_rectangle((x, y + .05 * h, x + w, y + .5 * h), radius=.22 * h, fill=roll)
        _layers(d, rng, x + .03 * w, y, .94 * w, y + .38 * h, y + .66 * h)
        d.rounded_rectangle((x + .02 * w, y + .6 * h, x + .98 * w, y + .95 * h), radius=.16 * h, fill=_shade(roll, .95))
        return
    bread = _jit((236, 212, 160), rng, 12)
    crust = _jit((170, 110, 55), rng, 12)
    d.rounded_rectangle((x, y + .62 * h, x + w, y + h), radius=.08 * h, fill=crust)
    d.rounded_rectangle((x + .03 * w, y + .65 * h, x + .97 * w, y + .96 * h), radius=.06 * h, fill=bread)
    _layers(d, rng, x, y, w, y + .3 * h, y + .64 * h)
    d.rounded_rectangle((x, y, x + w, y + .34 * h), radius=.12 * h, fill=crust)
    d.rounded_rectangle((x + .03 * w, y + .03 * h, x + .97 * w, y + .3 * h), radius=.1 * h, fill=bread)


def draw_hamburger(d: ImageDraw.ImageDraw, rng: random.Random, x: float, y: float, w: float, h: float, variant: str) -> None:
    bun = _jit((205, 135, 60), rng, 15)
    d.rounded_rectangle((x + .06 * w, y + .76 * h, x + .94 * w, y + h), radius=.1 * h, fill=bun)
    d.rounded_rectangle((x, y + .58 * h, x + w, y + .8 * h), radius=.1 * h, fill=_jit((90, 50, 30), rng, 12))  # patty
    if rng.random() < .7:
        d.polygon([(x + .02 * w, y + .56 * h), (x + .98 * w, y + .56 * h), (x + .8 * w, y + .7 * h), (x + .65 * w, y + .6 * h), (x + .3 * w, y + .72 * h), (x + .15 * w, y + .6 * h)], fill=_jit((245, 190, 40), rng, 10))
    d.rectangle((x + .04 * w, y + .5 * h, x + .96 * w, y + .58 * h), fill=_jit((205, 40, 35), rng, 12))
    pts = [(x + w * j / 14, y + (.46 if j % 2 else .52) * h) for j in range(15)] + [(x + w, y + .54 * h), (x, y + .54 * h)]
    d.polygon(pts, fill=_jit((80, 170, 60), rng, 12))
    d.chord((x + .02 * w, y, x + .98 * w, y + .96 * h), 180, 360, fill=bun)
    for _ in range(rng.randint(6, 14)):  # sesame
        px, py = x + rng.uniform(.2, .78) * w, y + rng.uniform(.1, .38) * h
        d.ellipse((px, py, px + .03 * w, py + .02 * h), fill=(245, 235, 200, 255))


def draw_french_fries(d: ImageDraw.ImageDraw, rng: random.Random, x: float, y: float, w: float, h: float, variant: str) -> None:
    for _ in range(rng.randint(12, 20)):
        px = x + rng.uniform(.15, .85) * w
        top = y + rng.uniform(0, .3) * h
        lean = rng.uniform(-.08, .08) * w
        d.line((px + lean, top, px, y + .6 * h), fill=_jit((240, 195, 75), rng, 15), width=_width(.06 * w))
    box = _jit(rng.choice([(205, 30, 30), (205, 30, 30), (40, 80, 180), (240, 240, 235)]), rng, 10)
    d.polygon([(x + .05 * w, y + .4 * h), (x + .95 * w, y + .4 * h), (x + .82 * w, y + h), (x + .18 * w, y + h)], fill=box)
    d.chord((x + .2 * w, y + .3 * h, x + .8 * w, y + .52 * h), 0, 180, fill=box)


def draw_banana(d: ImageDraw.ImageDraw, rng: random.Random, x: float, y: float, w: float, h: float, variant: str) -> None:
    n_fruit = rng.randint(2, 3) if variant == "bunch" else 1
    for k in range(n_fruit):
        yo = y + k * .18 * h
        hh = h * (.75 if n_fruit > 1 else 1.0)
        yellow = _jit((235, 205, 60), rng, 15)
        top, bottom = [], []
        for i in range(21):
            t = i / 20
            cy = yo + hh * (.25 + .45 * (1 - (2 * t - 1) ** 2))
            th = hh * .3 * (math.sin(math.pi * t) ** .6)
            top.append((x + t * w, cy - th / 2))
            bottom.append((x + t * w, cy + th / 2))
        d.polygon(top + bottom[::-1], fill=yellow)
        d.line(bottom[3:18], fill=_shade(yellow, .85), width=_width(.03 * hh))
        d.line((top[0], (top[0][0] + .06 * w, top[0][1] - .03 * hh)), fill=(90, 70, 30, 255), width=_width(.05 * hh))
        d.ellipse((bottom[-1][0] - .03 * w, bottom[-1][1] - .06 * hh, bottom[-1][0] + .01 * w, bottom[-1][1]), fill=(60, 45, 25, 255))
        for _ in range(rng.randint(0, 5)):  # ripeness spots
            t = rng.uniform(.2, .8)
            px, py = x + t * w, yo + hh * (.25 + .45 * (1 - (2 * t - 1) ** 2))
            d.ellipse((px, py - 2, px + 3, py + 1), fill=(110, 80, 30, 255))


def draw_doughnut(d: ImageDraw.ImageDraw, rng: random.Random, x: float, y: float, w: float, h: float, variant: str) -> None:
    d.ellipse((x, y, x + w, y + h), fill=_jit((205, 145, 75), rng, 12))
    icing = _jit(rng.choice([(240, 130, 170), (95, 55, 35), (250, 245, 235), (140, 200, 240)]), rng, 10)
    pts = []
    for i in range(36):
        a = 2 * math.pi * i / 36
        r = .42 + (.03 if i % 3 == 0 else 0) + rng.uniform(-.01, .01)
        pts.append((x + (.5 + r * math.cos(a)) * w, y + (.5 + r * math.sin(a)) * h))
    d.polygon(pts, fill=icing)
    for _ in range(rng.randint(10, 24)) if rng.random() < .7 else ():
        a, r = rng.uniform(0, 2 * math.pi), rng.uniform(.22, .4)
        px, py = x + (.5 + r * math.cos(a)) * w, y + (.5 + r * math.sin(a)) * h
        b = rng.uniform(0, math.pi)
        d.line((px, py, px + .04 * w * math.cos(b), py + .04 * h * math.sin(b)), fill=_jit(rng.choice([(240, 60, 60), (60, 160, 240), (250, 230, 60), (80, 200, 90), (250, 250, 250)]), rng, 5), width=_width(.015 * w))
    d.ellipse((x + .33 * w, y + .33 * h, x + .67 * w, y + .67 * h), fill=_jit((190, 130, 65), rng, 10))
    d.ellipse((x + .37 * w, y + .37 * h, x + .63 * w, y + .63 * h), fill=(0, 0, 0, 0))  # the hole


def draw_cake(d: ImageDraw.ImageDraw, rng: random.Random, x: float, y: float, w: float, h: float, variant: str) -> None:
    frosting = _jit(rng.choice([(250, 245, 240), (245, 180, 200), (110, 65, 40), (250, 230, 170)]), rng, 10)
    sponge = _jit(rng.choice([(240, 215, 160), (120, 70, 45)]), rng, 10)
    d.ellipse((x - .02 * w, y + .86 * h, x + 1.02 * w, y + h), fill=(235, 235, 240, 255))  # plate
    d.rectangle((x + .05 * w, y + .4 * h, x + .95 * w, y + .92 * h), fill=frosting)
    for i in range(rng.randint(1, 2)):
        yy = y + (.55 + .17 * i) * h
        d.rectangle((x + .05 * w, yy, x + .95 * w, yy + .05 * h), fill=sponge)
    d.ellipse((x + .05 * w, y + .32 * h, x + .95 * w, y + .48 * h), fill=_shade(frosting, 1.05))
    for i in range(9):  # drips
        px = x + (.08 + .1 * i) * w
        d.rounded_rectangle((px, y + .42 * h, px + .05 * w, y + (.5 + .08 * rng.random()) * h), radius=.02 * w, fill=_shade(frosting, .92))
    for _ in range(rng.randint(0, 5)):  # candles
        px = x + rng.uniform(.2, .78) * w
        d.rectangle((px, y + .2 * h, px + .025 * w, y + .38 * h), fill=_jit(rng.choice([(60, 120, 230), (240, 80, 120), (250, 250, 250)]), rng, 10))
        d.ellipse((px - .005 * w, y + .12 * h, px + .03 * w, y + .2 * h), fill=(255, 200, 40, 255))
    for _ in range(rng.randint(0, 4)):
        px = x + rng.uniform(.15, .8) * w
        d.ellipse((px, y + .33 * h, px + .06 * w, y + .4 * h), fill=(200, 20, 40, 255))


def draw_taco(d: ImageDraw.ImageDraw, rng: random.Random, x: float, y: float, w: float, h: float, variant: str) -> None:
    shell = _jit((228, 178, 70), rng, 12)
    for color, y0 in (((115, 65, 35), .18), ((90, 175, 60), .12), ((215, 45, 35), .22), ((250, 215, 90), .26)):
        for _ in range(10):
            px = x + rng.uniform(.06, .86) * w
            s = rng.uniform(.05, .1)
            d.ellipse((px, y + (y0 + rng.uniform(0, .12)) * h, px + s * w, y + (y0 + .12 + rng.uniform(0, .1)) * h), fill=_jit(color, rng, 12))
    d.chord((x, y - .3 * h, x + w, y + h), 0, 180, fill=shell)
    d.arc((x + .03 * w, y - .24 * h, x + .97 * w, y + .94 * h), 20, 160, fill=_shade(shell, .8), width=_width(.02 * h))


def _eyes(d: ImageDraw.ImageDraw, rng: random.Random, x: float, y: float, w: float, h: float, iris: tuple[int, ...], slit: bool) -> None:
    for cx in (.34, .66):
        d.ellipse((x + (cx - .08) * w, y + .38 * h, x + (cx + .08) * w, y + .5 * h), fill=iris)
        if slit:
            d.ellipse((x + (cx - .015) * w, y + .385 * h, x + (cx + .015) * w, y + .495 * h), fill=(15, 15, 15, 255))
        else:
            d.ellipse((x + (cx - .05) * w, y + .4 * h, x + (cx + .05) * w, y + .48 * h), fill=(15, 15, 15, 255))
            d.ellipse((x + (cx - .02) * w, y + .41 * h, x + cx * w, y + .43 * h), fill=(250, 250, 250, 255))


def draw_cat(d: ImageDraw.ImageDraw, rng: random.Random, x: float, y: float, w: float, h: float, variant: str) -> None:
    fur = _jit(rng.choice([(220, 140, 60), (130, 130, 135), (45, 42, 40), (235, 232, 225), (170, 120, 80)]), rng, 12)
    for sx in (1, -1):  # ears
        ex = .5 + sx * .28
        d.polygon([(x + (ex - .17) * w, y + .3 * h), (x + (ex + .17) * w, y + .3 * h), (x + (ex + sx * .08) * w, y)], fill=fur)
        d.polygon([(x + (ex - .08) * w, y + .27 * h), (x + (ex + .08) * w, y + .27 * h), (x + (ex + sx * .06) * w, y + .1 * h)], fill=(235, 160, 170, 255))
    d.ellipse((x + .08 * w, y + .16 * h, x + .92 * w, y + h), fill=fur)
    if rng.random() < .4:  # a patch or tabby stripes
        patch = _shade(fur, rng.choice([.6, 1.4]))
        d.ellipse((x + rng.uniform(.1, .5) * w, y + .2 * h, x + rng.uniform(.5, .8) * w, y + .45 * h), fill=patch)
    _eyes(d, rng, x, y, w, h, _jit(rng.choice([(120, 200, 60), (230, 190, 50), (90, 160, 220)]), rng, 10), slit=True)
    d.polygon([(x + .45 * w, y + .6 * h), (x + .55 * w, y + .6 * h), (x + .5 * w, y + .67 * h)], fill=(230, 130, 150, 255))
    d.line((x + .5 * w, y + .67 * h, x + .44 * w, y + .74 * h), fill=(40, 30, 30, 255), width=_width(.01 * w))
    d.line((x + .5 * w, y + .67 * h, x + .56 * w, y + .74 * h), fill=(40, 30, 30, 255), width=_width(.01 * w))
    whisker = (240, 240, 240, 255) if sum(fur[:3]) < 300 else (60, 60, 60, 255)
    for sx in (1, -1):
        for k in (-1, 0, 1):
            d.line((x + (.5 + sx * .1) * w, y + .66 * h, x + (.5 + sx * .45) * w, y + (.62 + .05 * k) * h), fill=whisker, width=1)


def draw_dog(d: ImageDraw.ImageDraw, rng: random.Random, x: float, y: float, w: float, h: float, variant: str) -> None:
    fur = _jit(rng.choice([(150, 95, 50), (215, 170, 90), (40, 35, 30), (240, 235, 225), (120, 110, 100)]), rng, 12)
    ear = _shade(fur, .65)
    d.ellipse((x + .14 * w, y + .08 * h, x + .86 * w, y + .86 * h), fill=fur)
    for sx in (0, 1):  # floppy ears
        ex = x + (.0 if sx == 0 else .72) * w
        d.ellipse((ex, y + .12 * h, ex + .28 * w, y + .66 * h), fill=ear)
    d.ellipse((x + .3 * w, y + .52 * h, x + .7 * w, y + .92 * h), fill=_shade(fur, 1.25))  # snout
    _eyes(d, rng, x, y, w, h, (90, 55, 30, 255), slit=False)
    d.ellipse((x + .42 * w, y + .56 * h, x + .58 * w, y + .68 * h), fill=(20, 20, 20, 255))
    d.line((x + .5 * w, y + .68 * h, x + .5 * w, y + .76 * h), fill=(20, 20, 20, 255), width=_width(.012 * w))
    if rng.random() < .5:
        d.ellipse((x + .44 * w, y + .76 * h, x + .56 * w, y + .9 * h), fill=(230, 110, 120, 255))


def draw_car(d: ImageDraw.ImageDraw, rng: random.Random, x: float, y: float, w: float, h: float, variant: str) -> None:
    paint = _jit(rng.choice([(200, 30, 30), (30, 70, 170), (235, 235, 235), (30, 30, 35), (240, 190, 30), (60, 140, 70), (150, 150, 155)]), rng, 12)
    d.polygon([(x + .22 * w, y + .42 * h), (x + .32 * w, y + .08 * h), (x + .7 * w, y + .08 * h), (x + .84 * w, y + .42 * h)], fill=paint)
    glass = _jit((170, 200, 220), rng, 10)
    d.polygon([(x + .28 * w, y + .4 * h), (x + .35 * w, y + .14 * h), (x + .5 * w, y + .14 * h), (x + .5 * w, y + .4 * h)], fill=glass)
    d.polygon([(x + .53 * w, y + .4 * h), (x + .53 * w, y + .14 * h), (x + .68 * w, y + .14 * h), (x + .78 * w, y + .4 * h)], fill=glass)
    d.rounded_rectangle((x, y + .38 * h, x + w, y + .8 * h), radius=.12 * h, fill=paint)
    d.line((x + .52 * w, y + .42 * h, x + .52 * w, y + .75 * h), fill=_shade(paint, .6), width=_width(.01 * w))
    d.ellipse((x + .93 * w, y + .46 * h, x + .99 * w, y + .56 * h), fill=(255, 240, 170, 255))
    d.rectangle((x + .005 * w, y + .48 * h, x + .04 * w, y + .56 * h), fill=(200, 30, 30, 255))
    for cx in (.22, .78):
        d.ellipse((x + (cx - .1) * w, y + .6 * h, x + (cx + .1) * w, y + h), fill=(25, 25, 25, 255))
        d.ellipse((x + (cx - .045) * w, y + .71 * h, x + (cx + .045) * w, y + .89 * h), fill=(170, 170, 175, 255))


def draw_coffee_cup(d: ImageDraw.ImageDraw, rng: random.Random, x: float, y: float, w: float, h: float, variant: str) -> None:
    china = _jit(rng.choice([(245, 245, 240), (245, 245, 240), (200, 40, 40), (50, 90, 170), (240, 200, 60)]), rng, 8)
    d.ellipse((x, y + .78 * h, x + w, y + h), fill=_shade(china, .93))  # saucer
    d.ellipse((x + .62 * w, y + .34 * h, x + .94 * w, y + .7 * h), outline=china, width=_width(.06 * w))  # handle
    d.rounded_rectangle((x + .14 * w, y + .28 * h, x + .76 * w, y + .88 * h), radius=.16 * w, fill=china)
    d.ellipse((x + .14 * w, y + .22 * h, x + .76 * w, y + .36 * h), fill=_shade(china, 1.08))
    d.ellipse((x + .18 * w, y + .24 * h, x + .72 * w, y + .34 * h), fill=_jit((95, 55, 30), rng, 10))
    for k in range(rng.randint(0, 3)):  # steam
        px = x + (.3 + .12 * k) * w
        d.line([(px + (.02 * w if i % 2 else -.02 * w), y + (.2 - .05 * i) * h) for i in range(4)], fill=(235, 235, 235, 150), width=_width(.02 * w))


def draw_apple(d: ImageDraw.ImageDraw, rng: random.Random, x: float, y: float, w: float, h: float, variant: str) -> None:
    skin = _jit(rng.choice([(200, 30, 35), (200, 30, 35), (140, 200, 60), (230, 200, 60)]), rng, 15)
    d.ellipse((x, y + .14 * h, x + .62 * w, y + h), fill=skin)
    d.ellipse((x + .38 * w, y + .14 * h, x + w, y + h), fill=skin)
    d.ellipse((x + .2 * w, y + .3 * h, x + .34 * w, y + .5 * h), fill=_shade(skin, 1.35))
    d.line((x + .5 * w, y + .24 * h, x + .54 * w, y), fill=(90, 60, 30, 255), width=_width(.04 * w))
    if rng.random() < .7:
        d.ellipse((x + .54 * w, y + .02 * h, x + .8 * w, y + .14 * h), fill=_jit((60, 150, 50), rng, 10))


def draw_salad(d: ImageDraw.ImageDraw, rng: random.Random, x: float, y: float, w: float, h: float, variant: str) -> None:
    for _ in range(22):
        px, py = x + rng.uniform(.05, .8) * w, y + rng.uniform(.02, .45) * h
        s = rng.uniform(.12, .22)
        d.ellipse((px, py, px + s * w, py + s * h), fill=_jit(rng.choice([(80, 170, 60), (120, 190, 70), (50, 130, 45), (150, 40, 70)]), rng, 12))
    for _ in range(rng.randint(3, 6)):
        px, py = x + rng.uniform(.15, .75) * w, y + rng.uniform(.1, .4) * h
        d.ellipse((px, py, px + .09 * w, py + .14 * h), fill=_jit((220, 40, 35), rng, 10))
    bowl = _jit(rng.choice([(245, 245, 240), (170, 120, 70), (90, 150, 200)]), rng, 10)
    d.chord((x, y - .1 * h, x + w, y + h), 0, 180, fill=bowl)


def draw_sushi(d: ImageDraw.ImageDraw, rng: random.Random, x: float, y: float, w: float, h: float, variant: str) -> None:
    if variant == "maki":
        for k in range(3):
            cx = x + (k / 3) * w
            d.ellipse((cx, y + .2 * h, cx + w / 3.1, y + .9 * h), fill=(25, 35, 25, 255))
            d.ellipse((cx + .02 * w, y + .26 * h, cx + w / 3.1 - .02 * w, y + .84 * h), fill=(245, 245, 238, 255))
            d.ellipse((cx + .1 * w, y + .45 * h, cx + w / 3.1 - .1 * w, y + .65 * h), fill=_jit(rng.choice([(240, 120, 70), (90, 170, 80), (200, 40, 50)]), rng, 10))
        return
    d.rounded_rectangle((x + .04 * w, y + .45 * h, x + .96 * w, y + h), radius=.2 * h, fill=(245, 245, 238, 255))
    fish = _jit(rng.choice([(245, 130, 80), (200, 40, 50), (250, 200, 160)]), rng, 10)
    d.rounded_rectangle((x, y + .1 * h, x + w, y + .6 * h), radius=.22 * h, fill=fish)
    for i in range(5):
        px = x + (.15 + .16 * i) * w
        d.line((px, y + .14 * h, px + .08 * w, y + .56 * h), fill=(250, 230, 220, 255), width=_width(.02 * w))


def draw_plate(d: ImageDraw.ImageDraw, rng: random.Random, x: float, y: float, w: float, h: float, variant: str) -> None:
    china = _jit(rng.choice([(248, 248, 246), (235, 235, 240), (220, 230, 245)]), rng, 6)
    d.ellipse((x, y, x + w, y + h), fill=_shade(china, .9))
    d.ellipse((x + .08 * w, y + .08 * h, x + .92 * w, y + .92 * h), fill=china)


@dataclass(frozen=True)
class Shape:
    """How a class is drawn: its drawer, width/height of its box, and variants to pick from."""

    drawer: Drawer
    aspect: float
    variants: tuple[str, ...] = ("",)
    group_variants: tuple[str, ...] = ()  # variants whose box is a group (IsGroupOf=1)


SHAPES: dict[str, Shape] = {
    "hot_dog": Shape(draw_hot_dog, 2.5, ("plain", "plain", "plain", "ketchup", "ketchup", "coney", "chicago", "michigan")),
    "chicago_hot_dog": Shape(draw_hot_dog, 2.5, ("chicago",)),
    "michigan_hot_dog": Shape(draw_hot_dog, 2.5, ("michigan",)),
    "coney_hot_dog": Shape(draw_hot_dog, 2.5, ("coney",)),
    "hot_dog_bun": Shape(draw_hot_dog_bun, 2.5),
    "hot_dog_stand": Shape(draw_hot_dog_stand, 1.0),
    "pizza": Shape(draw_pizza, 1.0, ("whole", "cut")),
    "sandwich": Shape(draw_sandwich, 1.3, ("club", "club", "submarine")),
    "submarine_sandwich": Shape(draw_sandwich, 2.2, ("submarine",)),
    "hamburger": Shape(draw_hamburger, 1.25),
    "french_fries": Shape(draw_french_fries, .8, ("box",), group_variants=("box",)),
    "banana": Shape(draw_banana, 2.0, ("single", "single", "bunch"), group_variants=("bunch",)),
    "doughnut": Shape(draw_doughnut, 1.0),
    "cake": Shape(draw_cake, 1.1),
    "taco": Shape(draw_taco, 1.6),
    "cat": Shape(draw_cat, 1.0),
    "dog": Shape(draw_dog, 1.0),
    "car": Shape(draw_car, 2.2),
    "coffee_cup": Shape(draw_coffee_cup, 1.1),
    "apple": Shape(draw_apple, 1.0),
    "salad": Shape(draw_salad, 1.5),
    "sushi": Shape(draw_sushi, 1.6, ("nigiri", "maki")),
    "plate": Shape(draw_plate, 1.6),
}
"""Drawable things by key; ``generate.py`` maps classes to these keys."""

SIDE_DISHES = ("coffee_cup", "apple", "banana", "french_fries", "salad")
"""Small extra objects that may share a picture with the main one."""

_DISTRACTOR_COLORS = (BUN, SAUSAGE, MUSTARD, (200, 140, 75), (160, 40, 30))


# -- scenes -----------------------------------------------------------------------------


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
            return _jit(rng.choice(_DISTRACTOR_COLORS), rng, 25)[:3]
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
        base = np.array(_jit(rng.choice([(150, 100, 60), (190, 145, 95), (110, 70, 40)]), rng, 15)[:3], np.float32)
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
            d.line((x, y, x + rng.uniform(-3, 3) * s, y + rng.uniform(-3, 3) * s), fill=col, width=_width(s / 4))
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


def compose_scene(rng: random.Random, key: str, size: tuple[int, int], *, variant: str | None = None, food: bool = True,
                  also: tuple[str, ...] = ()) -> tuple[Image.Image, list[Placed]]:
    """A picture of ``size`` (upright) whose main object is drawn by ``SHAPES[key]``.

    ``also``: shape keys of further whole objects drawn beside it (a picture showing two
    classes). Returns the picture and every object drawn, the main one last (side dishes,
    plates and ``also`` first, since the main object is drawn over them).
    """
    w, h = size
    nrng = np.random.default_rng(rng.getrandbits(64))
    canvas = _background(rng, nrng, size)
    _clutter(ImageDraw.Draw(canvas), rng, size)
    placed: list[Placed] = []

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
    main_area = (cx - ow / 2, cy - oh / 2, cx + ow / 2, cy + oh / 2)

    if food and rng.random() < .3:
        pw = min(w * .98, ow * rng.uniform(1.15, 1.4))
        layer, _ = _object_layer(rng, "plate", pw)
        box = _paste(canvas, layer, cx + rng.uniform(-.05, .05) * w, cy + oh * .1, 0)
        if box:
            placed.append(Placed("plate", "", box, _cut(box, size), True, False))

    if rng.random() < .3:
        side = rng.choice([s for s in SIDE_DISHES if s != key])
        sw = w * rng.uniform(.16, .3)
        best: tuple[float, float, float] | None = None
        for _ in range(6):
            sx, sy = rng.uniform(sw / 2, w - sw / 2), rng.uniform(sw / 3, h - sw / 3)
            ov = _overlap((int(sx - sw / 2), int(sy - sw / 3), int(sx + sw / 2), int(sy + sw / 3)), main_area)
            if best is None or ov < best[0]:
                best = (ov, sx, sy)
        assert best is not None
        layer, sv = _object_layer(rng, side, sw)
        box = _paste(canvas, layer, best[1], best[2], rng.uniform(-15, 15))
        if box:
            placed.append(Placed(side, sv, box, _cut(box, size), _overlap(box, main_area) > 0, sv in SHAPES[side].group_variants))

    for k, extra in enumerate(also):  # on the side of the picture away from the main object
        ew = w * rng.uniform(.3, .42)
        ex = w * (.2 + .06 * k) if cx > w / 2 else w * (.8 - .06 * k)
        layer, ev = _object_layer(rng, extra, ew)
        box = _paste(canvas, layer, ex, h * rng.uniform(.3, .7), rng.uniform(-15, 15))
        if box:
            placed.append(Placed(extra, ev, box, _cut(box, size), _overlap(box, main_area) > 0,
                                 ev in SHAPES[extra].group_variants))

    layer, v = _object_layer(rng, key, ow, variant)
    box = _paste(canvas, layer, cx, cy, angle)
    if box is None:  # cannot happen with the sizes above; keep the contract anyway
        box = (0, 0, w, h)
    placed.append(Placed(key, v, box, _cut(box, size) or partial, False, v in shape.group_variants))

    return _light(canvas, rng, nrng), placed


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


# == the mirror ==========================================================================

# -- the classes --------------------------------------------------------------------------

CLASSES: dict[str, str] = {
    "/m/02wbm": "Food",
    "/m/01_bhs": "Fast food",
    "/m/01b9xk": "Hot dog",
    "/m/05ztbl": "Chicago-style hot dog",
    "/m/07bp0z": "Michigan hot dog",
    "/m/07jl02": "Coney island hot dog",
    "/m/07vh6y": "Hot dog bun",
    "/m/0bm1pg": "Hot dog stand",
    "/m/02y6n": "French fries",
    "/m/0663v": "Pizza",
    "/m/0l515": "Sandwich",
    "/m/06pcq": "Submarine sandwich",
    "/m/0cdn1": "Hamburger",
    "/m/02xwb": "Fruit",
    "/m/09qck": "Banana",
    "/m/014j1m": "Apple",
    "/m/052lwg6": "Baked goods",
    "/m/0hnyx": "Pastry",
    "/m/0jy4k": "Doughnut",
    "/m/09728": "Bread",
    "/m/0270h": "Dessert",
    "/m/0fszt": "Cake",
    "/m/0f4s2w": "Vegetable",
    "/m/0grw1": "Salad",
    "/m/07030": "Sushi",
    "/m/07crc": "Taco",
    "/m/0jbk": "Animal",
    "/m/04rky": "Mammal",
    "/m/01lrl": "Carnivore",
    "/m/01yrx": "Cat",
    "/m/0bt9lr": "Dog",
    "/m/04rmv": "Mouse",
    "/m/020lf": "Mouse",  # a second "Mouse": display names are not unique
    "/m/07yv9": "Vehicle",
    "/m/01prls": "Land vehicle",
    "/m/0k4j": "Car",
    "/m/03_wxk": "Kitchenware",
    "/m/04brg2": "Tableware",
    "/m/02p5f1q": "Coffee cup",
    "/m/050gv4": "Plate",
    "/m/0c_jw": "Furniture",
    "/m/04bcr3": "Table",
    "/m/01g317": "Person",
    "/m/0dzct": "Human face",
    "/m/0271t": "Drink",
    "/m/02vqfm": "Coffee",
    # not boxable: only in the ~20k list and the v7 labels
    "/m/0ht80": "Ketchup",
    "/m/0kdzn": "Sausage",
    "/m/05xnqg": "Street food",
    "/m/0h55b": "Junk food",
    "/m/0jfd5": "Lunch",
    "/m/02q08p0": "Dish",
}
"""The class list (``layout.CLASSES_ALL``): LabelName -> DisplayName."""

NOT_BOXABLE = frozenset({
    "/m/05ztbl", "/m/07bp0z", "/m/07jl02", "/m/07vh6y", "/m/0bm1pg",
    "/m/0ht80", "/m/0kdzn", "/m/05xnqg", "/m/0h55b", "/m/0jfd5", "/m/02q08p0",
})
BOXABLE = frozenset(CLASSES) - NOT_BOXABLE
"""The boxable subset (``layout.CLASSES_BOXABLE``, and every node of the hierarchy)."""

HOT_DOG = "/m/01b9xk"
HOT_DOG_RELATED = ("/m/05ztbl", "/m/07bp0z", "/m/07jl02", "/m/07vh6y", "/m/0bm1pg")
"""Chicago-style, Michigan and Coney island hot dog, Hot dog bun, Hot dog stand."""
MOUSE_MIDS = ("/m/04rmv", "/m/020lf")

# (LabelName, [children]) with Part lists as in the official file; root is Entity.
_TREE: tuple = (layout.HIERARCHY_ROOT, [
    ("/m/02wbm", [
        ("/m/01_bhs", [("/m/01b9xk", []), ("/m/02y6n", [])]),
        ("/m/0663v", []),
        ("/m/0l515", [("/m/0cdn1", []), ("/m/06pcq", [])]),
        ("/m/02xwb", [("/m/09qck", []), ("/m/014j1m", [])]),
        ("/m/052lwg6", [("/m/0hnyx", [("/m/0jy4k", [])]), ("/m/09728", [])]),
        ("/m/0270h", [("/m/0fszt", [])]),
        ("/m/0f4s2w", [("/m/0grw1", [])]),
        ("/m/07030", []),
        ("/m/07crc", []),
    ]),
    ("/m/0jbk", [("/m/04rky", [("/m/01lrl", [("/m/01yrx", []), ("/m/0bt9lr", [])]), ("/m/04rmv", [])])]),
    ("/m/07yv9", [("/m/01prls", [("/m/0k4j", [])])]),
    ("/m/03_wxk", [("/m/04brg2", [("/m/02p5f1q", []), ("/m/050gv4", [])])]),
    ("/m/0c_jw", [("/m/04bcr3", [])]),
    ("/m/01g317", [], ["/m/0dzct"]),  # Person, with Human face as a Part
    ("/m/0dzct", []),
    ("/m/0271t", [("/m/02vqfm", [])]),
    ("/m/020lf", []),
])


def _hierarchy_json(node: tuple) -> dict:
    out: dict = {"LabelName": node[0]}
    if node[1]:
        out["Subcategory"] = [_hierarchy_json(child) for child in node[1]]
    if len(node) > 2:
        out["Part"] = [{"LabelName": mid} for mid in node[2]]
    return out


def _parents(node: tuple, parent: str | None = None, out: dict[str, str] | None = None) -> dict[str, str]:
    out = {} if out is None else out
    if parent is not None and parent != layout.HIERARCHY_ROOT:
        out.setdefault(node[0], parent)
    for child in node[1]:
        _parents(child, node[0], out)
    return out


PARENT = _parents(_TREE)
"""Boxable class -> its parent in the hierarchy (the root left out)."""


def ancestors(mid: str) -> list[str]:
    """Parents of ``mid`` up to (not including) Entity, nearest first."""
    out = []
    while mid in PARENT:
        mid = PARENT[mid]
        out.append(mid)
    return out


# -- what a class's pictures look like ----------------------------------------------------


@dataclass(frozen=True)
class _Kind:
    shape: str  # key of SHAPES
    food: bool = True
    box_as: str | None = None  # the boxable class a box of it carries (None: its own if boxable)


_KINDS: dict[str, _Kind] = {
    "/m/01b9xk": _Kind("hot_dog"),
    "/m/05ztbl": _Kind("chicago_hot_dog", box_as=HOT_DOG),
    "/m/07bp0z": _Kind("michigan_hot_dog", box_as=HOT_DOG),
    "/m/07jl02": _Kind("coney_hot_dog", box_as=HOT_DOG),
    "/m/07vh6y": _Kind("hot_dog_bun"),
    "/m/0bm1pg": _Kind("hot_dog_stand", food=False),
    "/m/0663v": _Kind("pizza"),
    "/m/0l515": _Kind("sandwich"),
    "/m/0cdn1": _Kind("hamburger"),
    "/m/02y6n": _Kind("french_fries"),
    "/m/09qck": _Kind("banana"),
    "/m/0jy4k": _Kind("doughnut"),
    "/m/0fszt": _Kind("cake"),
    "/m/07crc": _Kind("taco"),
    "/m/01yrx": _Kind("cat", food=False),
    "/m/0bt9lr": _Kind("dog", food=False),
    "/m/0k4j": _Kind("car", food=False),
    "/m/02p5f1q": _Kind("coffee_cup", food=False),
    "/m/014j1m": _Kind("apple"),
    "/m/0grw1": _Kind("salad"),
    "/m/07030": _Kind("sushi"),
}
_DENIABLE = tuple(_KINDS)  # the classes a picture may carry a verified-absent label of
_KINDS["/m/06pcq"] = _Kind("submarine_sandwich")  # after _DENIABLE: the older pictures' labels stay as they were
_SHAPE_CLASS = {"coffee_cup": "/m/02p5f1q", "apple": "/m/014j1m", "banana": "/m/09qck",
                "french_fries": "/m/02y6n", "salad": "/m/0grw1", "plate": "/m/050gv4",
                "pizza": "/m/0663v", "hamburger": "/m/0cdn1", "sandwich": "/m/0l515", "hot_dog": HOT_DOG,
                "submarine_sandwich": "/m/06pcq"}
_HOT_DOG_STYLE = {"chicago": "/m/05ztbl", "michigan": "/m/07bp0z", "coney": "/m/07jl02"}

DRAWABLE = tuple(CLASSES[mid] for mid in _KINDS)
"""Display names ``images_per_class`` accepts; also "A + B" of two of them (A's picture
with a B beside it, verified for both)."""

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


# -- results ------------------------------------------------------------------------------


@dataclass(frozen=True)
class MirrorBox:
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


@dataclass
class MirrorInfo:
    """What ``generate_mirror`` wrote, for the code and tests that use the mirror."""

    root: Path
    base_url: str
    metadata_base: str  # base_url + "/": where the layout paths live
    images_base: str  # base_url + "/cvdf/": the CVDF copy, ``{split}/{ImageID}.jpg``
    seed: int
    images: tuple[MirrorImage, ...]
    counts: dict[tuple[str, str], int]  # (split, display name it was drawn for) -> pictures
    dead_ids: frozenset[str]
    classes: dict[str, str] = field(default_factory=lambda: dict(CLASSES))
    placeholder_url: str = ""
    image_size: tuple[int, int] = (224, 168)  # (width, height) of an upright CVDF copy

    def upright(self, image_id: str) -> Image.Image:
        """The picture of ``image_id`` as drawn, upright, at the Flickr original's size
        (twice ``image_size``): what a client should end up with after turning it."""
        im = self.image(image_id)
        _, picture, _ = _draw(self.seed, image_id, "+".join((im.label_name, *im.also)),
                              (2 * self.image_size[0], 2 * self.image_size[1]))
        return picture

    def ids(self, split: str | None = None, display_name: str | None = None) -> list[str]:
        """ImageIDs, optionally of one split and/or drawn for one class, sorted."""
        return sorted(im.image_id for im in self.images
                      if (split is None or im.split == split) and (display_name is None or im.display_name == display_name))

    def image(self, image_id: str) -> MirrorImage:
        for im in self.images:
            if im.image_id == image_id:
                return im
        raise KeyError(image_id)

    def original_url(self, image_id: str) -> str:
        return f"{self.base_url}/flickr/{image_id}_o.jpg"

    def thumbnail_url(self, image_id: str) -> str:
        return f"{self.base_url}/flickr/{image_id}_z.jpg"


LICENSE = "https://creativecommons.org/licenses/by/2.0/"

# -- attribution --------------------------------------------------------------------------

_AUTHORS = (
    "Jason Smith", "Zoë Müller", "Kim, Ji-woo", 'Bob "Hot Dog" Roberts', "Łukasz Żółkiewski",
    "佐藤 健", "ana_b", "François Côté", "O'Brien, Pat", "Maria José Ñúñez", "foodie_nyc",
    "David Lee", "Søren Kierkegaard Jr.", "Anonymous Coward", "Ирина Петрова", "chris",
)
_TITLES = {
    "Hot dog": ("Hot dog", "Ballpark frank", 'The "best" hot dog, ever', "Lunch, finally",
                "Würstchen im Brötchen", "Hot dog at Gray's Papaya", "Chili dog — Coney Island"),
    "Chicago-style hot dog": ("Chicago dog", 'Chicago-style, "dragged through the garden"', "Portillo's"),
    "Hot dog bun": ("Buns, fresh", "Hot dog buns (empty)"),
    "Hot dog stand": ("Hot dog stand, 5th Ave", "Street cart", "Würstelstand"),
}
_GENERIC_TITLES = ("IMG_{n}", "DSC0{n}", "Untitled", "Dinner, Paris", "Café au lait", "{name}",
                   "{name} :)", 'My "{name}"', "{name}, again", "P10{n}")


def _attribution(rng: random.Random, display_name: str) -> tuple[str, str, str, str]:
    nsid = f"{rng.randint(10_000_000, 99_999_999)}@N0{rng.randint(0, 8)}"
    photo = rng.randint(10**9, 10**10 - 1)
    titles = _TITLES.get(display_name, ()) + _GENERIC_TITLES
    title = rng.choice(titles).format(n=rng.randint(1000, 9999), name=display_name.lower())
    return (f"https://www.flickr.com/photos/{nsid}/{photo}", f"https://www.flickr.com/people/{nsid}/",
            rng.choice(_AUTHORS), title)


# -- labels -------------------------------------------------------------------------------


def _labels(rng: random.Random, mid: str, placed: list[Placed], main_variant: str) -> list[tuple[str, int]]:
    """(LabelName, Confidence) of one picture: what is in it, a few ancestors, verified negatives."""
    present: list[str] = [mid]
    if mid in _HOT_DOG_STYLE.values() and rng.random() < .5:
        present.append(HOT_DOG)
    if mid == HOT_DOG and main_variant in _HOT_DOG_STYLE and rng.random() < .5:
        present.append(_HOT_DOG_STYLE[main_variant])
    if mid == "/m/0l515" and main_variant == "submarine":
        present.append("/m/06pcq")
    for p in placed[:-1]:
        present.append(_SHAPE_CLASS[p.key])
    positives: list[str] = []
    for m in present:
        if m not in positives:
            positives.append(m)
    for m in list(positives):
        for a in ancestors(m):
            if a not in positives and rng.random() < .4:
                positives.append(a)
    # never deny a class that is there, nor an ancestor or descendant of one
    there = set(positives) | {a for m in positives for a in ancestors(m)}
    if HOT_DOG in there or any(m in there for m in _HOT_DOG_STYLE.values()):
        there |= {HOT_DOG, *_HOT_DOG_STYLE.values()}
    if "/m/0l515" in there or "/m/06pcq" in there:
        there |= {"/m/0l515", "/m/06pcq", "/m/0cdn1"}

    negatives: list[str] = []
    food = _KINDS[mid].food
    if HOT_DOG not in there:
        p_hot_dog = .5 if mid == "/m/07vh6y" else .4 if food else .15 if mid != "/m/0bm1pg" else 0
        if rng.random() < p_hot_dog:
            negatives.append(HOT_DOG)
    if rng.random() < .5:
        pool = [m for m in _DENIABLE if m not in there and m not in HOT_DOG_RELATED and m != HOT_DOG]
        negatives += rng.sample(pool, rng.randint(1, 2))
    if not food and mid != "/m/0bm1pg" and "/m/02wbm" not in there and rng.random() < .3:
        negatives.append("/m/02wbm")
    return [(m, 1) for m in positives] + [(m, 0) for m in negatives if m not in there]


# -- the writer ---------------------------------------------------------------------------


def _image_id(seed: int, split: str, mid: str, index: int, taken: set[str]) -> str:
    salt = 0
    while True:
        h = hashlib.sha256(f"mlkit-mirror:{seed}:{split}:{mid}:{index}:{salt}".encode()).hexdigest()[:16]
        if h not in taken:
            taken.add(h)
            return h
        salt += 1


def _jpeg(img: Image.Image, quality: int, orientation: int | None = None) -> bytes:
    buf = io.BytesIO()
    if orientation is None:
        img.save(buf, format="JPEG", quality=quality)
    else:
        exif = Image.Exif()
        exif[_EXIF_ORIENTATION_TAG] = orientation
        img.save(buf, format="JPEG", quality=quality, exif=exif.tobytes())
    return buf.getvalue()


# PIL's ROTATE_n turns n degrees counter-clockwise: the stored copy is the upright picture
# turned CLOCKWISE by Rotation, so that Rotation degrees counter-clockwise undo it
_TRANSPOSE = {90: Image.Transpose.ROTATE_270, 180: Image.Transpose.ROTATE_180, 270: Image.Transpose.ROTATE_90}
# EXIF Orientation that says the same as Rotation: 8 = turn 90 counter-clockwise to view,
# 3 = 180, 6 = 90 clockwise (= 270 counter-clockwise)
EXIF_FOR_ROTATION = {90: 8, 180: 3, 270: 6}
_EXIF_ORIENTATION_TAG = 0x0112


def _stored(img: Image.Image, rotation: int | None) -> Image.Image:
    """The picture as stored: the upright one turned ``rotation`` degrees clockwise."""
    return img.transpose(_TRANSPOSE[rotation]) if rotation in _TRANSPOSE else img


def _stored_box(x0: float, y0: float, x1: float, y1: float, rotation: int | None) -> tuple[float, float, float, float]:
    """A box normalised to the upright picture, in the stored frame (turned clockwise)."""
    if rotation == 90:    # clockwise 90: upright (x, y) -> stored (1 - y, x)
        return 1 - y1, x0, 1 - y0, x1
    if rotation == 180:
        return 1 - x1, 1 - y1, 1 - x0, 1 - y0
    if rotation == 270:   # clockwise 270: upright (x, y) -> stored (y, 1 - x)
        return y0, 1 - x1, y1, 1 - x0
    return x0, y0, x1, y1


def _has_exif(seed: int, image_id: str) -> bool:
    """About half the rotated originals carry their EXIF orientation (a hash, so that the
    pictures' own random draws are not disturbed)."""
    return hashlib.sha256(f"exif:{seed}:{image_id}".encode()).digest()[0] < 128


def _write_csv(path: Path, header: Iterable[str] | None, rows: Iterable[Iterable[object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        if header is not None:
            writer.writerow(header)
        writer.writerows(rows)


def _write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _coord(v: float) -> str:
    return f"{min(1.0, max(0.0, v)):.6f}"


def generate_mirror(
    root: Path,
    base_url: str,
    *,
    seed: int = 0,
    images_per_class: Mapping[str, int] | None = None,
    image_size: tuple[int, int] = (224, 168),
) -> MirrorInfo:
    """Write a small Open Images under ``root``, its image URLs under ``base_url``.

    ``images_per_class`` maps a display name of ``DRAWABLE`` to its number of train
    pictures (validation and test get ``held_out_count`` of it each); default
    ``DEFAULT_IMAGES_PER_CLASS``. ``image_size`` (width, height) is the size of the CVDF
    copy; the Flickr original is twice that, the thumbnail 0.7 times. Existing files are
    overwritten, others left alone.
    """
    root = Path(root)
    base_url = base_url.rstrip("/")
    wanted = dict(DEFAULT_IMAGES_PER_CLASS if images_per_class is None else images_per_class)
    by_name = {name: mid for mid, name in CLASSES.items() if mid in _KINDS}
    for combo in [n for n in wanted if " + " in n]:  # "Pizza + Hamburger": LabelNames joined by "+"
        parts = combo.split(" + ")
        if all(part in by_name for part in parts):
            by_name[combo] = "+".join(by_name[part] for part in parts)
    unknown = sorted(set(wanted) - set(by_name))
    if unknown:
        raise ValueError(f"cannot draw {', '.join(map(repr, unknown))}; images_per_class takes {', '.join(DRAWABLE)}")
    width, height = image_size
    big = (2 * width, 2 * height)
    thumb = (max(8, round(.7 * width)), max(8, round(.7 * height)))

    planned: list[tuple[str, str, str, str]] = []  # split, display name, LabelName, ImageID
    taken: set[str] = set()
    for split in layout.SPLITS:
        for name, n_train in wanted.items():
            mid = by_name[name]
            n = n_train if split == "train" else held_out_count(n_train)
            planned += [(split, name, mid, _image_id(seed, split, mid, i, taken)) for i in range(n)]

    def dead_draw(image_id: str) -> float:
        return int.from_bytes(hashlib.sha256(f"dead:{seed}:{image_id}".encode()).digest()[:8], "big") / 2**64

    dead = {p[3] for p in planned if dead_draw(p[3]) < DEAD_RATE}
    train_ids = [p[3] for p in planned if p[0] == "train"]
    if len(train_ids) >= 10 and not dead.intersection(train_ids):
        dead.add(min(train_ids, key=dead_draw))  # a mirror of any size shows the failure it models

    key = (seed, tuple(planned), tuple(sorted(dead)), big, image_size, thumb)
    drawn = _DRAWN.pop(key, None)
    if drawn is None:
        # PIL and numpy let go of the GIL in their heavy parts, so two threads gain a little
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            drawn = list(pool.map(lambda p: _make_image(seed, *p, p[3] in dead, big, image_size, thumb), planned))
    _DRAWN[key] = drawn
    while len(_DRAWN) > 2:
        _DRAWN.pop(next(iter(_DRAWN)))
    images = [im for im, _ in drawn]
    for _, files in drawn:
        for rel, data in files.items():
            _write_bytes(root / rel, data)
    redirects = {f"/flickr/{im.image_id}_o.jpg": PLACEHOLDER_PATH for im in images if im.dead}

    _write_metadata(root, base_url, images)
    (root / REDIRECTS_FILE).write_text(json.dumps(dict(sorted(redirects.items())), indent=1) + "\n", encoding="utf-8")

    counts = Counter((im.split, im.display_name) for im in images)
    return MirrorInfo(
        root=root, base_url=base_url, metadata_base=base_url + "/", images_base=base_url + "/cvdf/",
        seed=seed, images=tuple(sorted(images, key=lambda im: (layout.SPLITS.index(im.split), im.image_id))),
        counts=dict(counts), dead_ids=frozenset(im.image_id for im in images if im.dead),
        placeholder_url=base_url + PLACEHOLDER_PATH, image_size=tuple(image_size),
    )


_DRAWN: dict[tuple, list[tuple[MirrorImage, dict[str, bytes]]]] = {}
"""The last mirrors drawn in this process: a mirror depends on its seed, sizes and classes,
never on its base URL or folder, so the next test session's fixture only writes files."""


def _make_image(seed: int, split: str, name: str, mid: str, image_id: str, dead: bool,
                big: tuple[int, int], size: tuple[int, int], thumb: tuple[int, int]) -> tuple[MirrorImage, dict[str, bytes]]:
    """One picture, what the CSVs say of it, and its files (path under root -> bytes)."""
    rng, picture, placed = _draw(seed, image_id, mid, big)
    mid, *also = mid.split("+")
    kind = _KINDS[mid]
    main_variant = placed[-1].variant

    boxable = split != "train" or rng.random() < .85
    r = rng.random()
    rotation = rng.choice((90, 180, 270)) if r < .04 else None if r < .6 else 0
    thumbnail = not dead and rng.random() > .04

    labels = _labels(rng, mid, placed, main_variant)
    boxes: list[MirrorBox] = []
    for p in placed:
        box_mid = _SHAPE_CLASS.get(p.key) if p is not placed[-1] else (kind.box_as or mid)
        if box_mid is None or box_mid not in BOXABLE or (box_mid, 1) not in labels:
            continue  # boxes only of boxable classes the labels verify
        x0, y0, x1, y1 = _stored_box(p.box[0] / big[0], p.box[1] / big[1], p.box[2] / big[0], p.box[3] / big[1],
                                     rotation)
        boxes.append(MirrorBox(box_mid, x0, x1, y0, y1,
                               int(p.occluded), int(p.truncated), int(p.group),
                               "xclick" if rng.random() < .8 else "activemil"))
    if split == "train" and not boxes:
        boxable = False  # the boxable train list holds only pictures with boxes
    sources = [("verification" if rng.random() < .7 else "crowdsource-verification") for _ in labels]
    stored = _stored(picture, rotation)
    exif = EXIF_FOR_ROTATION.get(rotation) if rotation and _has_exif(seed, image_id) else None
    original = _jpeg(stored, 82, exif)
    files: dict[str, bytes] = {}
    if not dead:
        files[f"flickr/{image_id}_o.jpg"] = original
        half = stored.reduce(2)  # the other copies are made from this cheaper source
        if thumbnail:
            files[f"flickr/{image_id}_z.jpg"] = _jpeg(_resized(half, _turned(thumb, rotation)), 80)
        if boxable:
            files[f"cvdf/{split}/{image_id}.jpg"] = _jpeg(_resized(half, _turned(size, rotation)), 85)
    landing, profile, author, title = _attribution(rng, name)
    return MirrorImage(
        image_id=image_id, split=split, display_name=name, label_name=mid,
        labels=tuple((src, m, c) for src, (m, c) in zip(sources, labels)), boxes=tuple(boxes),
        boxable=boxable, dead=dead, rotation=rotation, thumbnail=thumbnail, exif_orientation=exif,
        original_size=len(original), original_md5=base64.b64encode(hashlib.md5(original).digest()).decode("ascii"),
        landing_url=landing, author_profile_url=profile, author=author, title=title, also=tuple(also),
    ), files


def _draw(seed: int, image_id: str, mid: str, big: tuple[int, int]) -> tuple[random.Random, Image.Image, list[Placed]]:
    """The upright picture of ``image_id`` and the random stream its other draws continue."""
    rng = random.Random(f"mlkit-mirror:{seed}:{image_id}")
    mid, *also = mid.split("+")  # "A+B": A's picture with a B beside it
    kind = _KINDS[mid]
    picture, placed = compose_scene(rng, kind.shape, big, food=kind.food, also=tuple(_KINDS[m].shape for m in also))
    return rng, picture, placed


def _resized(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    return img if img.size == size else img.resize(size, Image.Resampling.BILINEAR)


def _turned(size: tuple[int, int], rotation: int | None) -> tuple[int, int]:
    return (size[1], size[0]) if rotation in (90, 270) else size


def _write_metadata(root: Path, base_url: str, images: list[MirrorImage]) -> None:
    by_name = sorted(CLASSES.items())
    _write_csv(root / layout.CLASSES_ALL, ("LabelName", "DisplayName"), by_name)
    _write_csv(root / layout.CLASSES_BOXABLE, None, [row for row in by_name if row[0] in BOXABLE])
    hierarchy = root / layout.HIERARCHY
    hierarchy.parent.mkdir(parents=True, exist_ok=True)
    hierarchy.write_text(json.dumps(_hierarchy_json(_TREE), indent=4) + "\n", encoding="utf-8")

    for split in layout.SPLITS:
        mine = sorted((im for im in images if im.split == split), key=lambda im: im.image_id)
        boxable = [im for im in mine if im.boxable]
        _write_csv(root / layout.human_labels_path(split, "all"), layout.LABEL_COLUMNS,
                   [(im.image_id, src, mid, conf) for im in mine for src, mid, conf in im.labels])
        _write_csv(root / layout.human_labels_path(split, "boxable"), layout.LABEL_COLUMNS,
                   [(im.image_id, src, mid, conf) for im in boxable for src, mid, conf in im.labels if mid in BOXABLE])
        # the real image lists are not sorted by ImageID: a fixed shuffle of the rows
        listed = sorted(mine, key=lambda im: hashlib.sha256(f"row:{im.image_id}".encode()).digest())
        rows = [_image_row(base_url, im) for im in listed]
        if split == "train":
            _write_csv(root / layout.image_list_path(split, "all"), layout.IMAGE_COLUMNS, rows)
            _write_csv(root / layout.image_list_path(split, "boxable"), layout.IMAGE_COLUMNS,
                       [row for row, im in zip(rows, listed) if im.boxable])
        else:
            _write_csv(root / layout.image_list_path(split), layout.IMAGE_COLUMNS, rows)
        _write_csv(root / layout.boxes_path(split), layout.BOX_COLUMNS, [
            (im.image_id, b.source, b.label_name, 1, _coord(b.x_min), _coord(b.x_max), _coord(b.y_min), _coord(b.y_max),
             b.is_occluded, b.is_truncated, b.is_group_of, 0, 0)
            for im in boxable for b in im.boxes])


def _image_row(base_url: str, im: MirrorImage) -> tuple[object, ...]:
    return (
        im.image_id, im.split, f"{base_url}/flickr/{im.image_id}_o.jpg", im.landing_url,
        LICENSE, im.author_profile_url, im.author, im.title, im.original_size, im.original_md5,
        f"{base_url}/flickr/{im.image_id}_z.jpg" if im.thumbnail else "",
        "" if im.rotation is None else im.rotation,
    )


def start_mirror(
    root: Path,
    *,
    seed: int = 0,
    images_per_class: Mapping[str, int] | None = None,
    image_size: tuple[int, int] = (224, 168),
    faults: FaultPlan | None = None,
    port: int = 0,
) -> tuple[MirrorServer, MirrorInfo]:
    """Start a ``MirrorServer`` on ``root``, generate the mirror into it, return both.

    The caller stops the server (``server.stop()``, or use it as a context manager).
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    server = MirrorServer(root, faults=faults, port=port).start()
    try:
        info = generate_mirror(root, server.url, seed=seed, images_per_class=images_per_class, image_size=image_size)
    except BaseException:
        server.stop()
        raise
    return server, info
