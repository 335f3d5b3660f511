"""Drawers of single objects: a hot dog, a pizza, a cat, ... each painted into a box.

Each drawer paints one object into a box of a transparent RGBA layer (``scenes.py`` puts
objects on a varied background, adds lighting and noise, and says where each object ended
up: the boxes of the box CSVs). Everything follows the random.Random it is given.
Hot dog versus the rest is learnable but not trivial: buns, submarine sandwiches, bananas
and tacos share its colours and outline, backgrounds sometimes wear bun, sausage or mustard
colours, and objects are often cut by the frame.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

from PIL import ImageDraw

Color = tuple[int, int, int]
Drawer = Callable[[ImageDraw.ImageDraw, random.Random, float, float, float, float, str], None]

BUN = (214, 160, 92)
SAUSAGE = (170, 70, 42)
MUSTARD = (238, 196, 38)
KETCHUP = (196, 32, 28)


def jitter(color: Color, rng: random.Random, amount: int = 16) -> tuple[int, int, int, int]:
    """``color`` with each channel moved by up to ``amount``, as opaque RGBA."""
    return tuple(max(0, min(255, c + rng.randint(-amount, amount))) for c in color) + (255,)  # type: ignore[return-value]


def shade(color: tuple[int, ...], factor: float) -> tuple[int, int, int, int]:
    """``color`` darkened (``factor`` < 1) or lightened, as opaque RGBA."""
    return tuple(max(0, min(255, int(c * factor))) for c in color[:3]) + (255,)  # type: ignore[return-value]


def stroke_width(v: float) -> int:
    """A line width in whole pixels, at least 1."""
    return max(1, int(round(v)))


# -- drawers: (draw, rng, x, y, w, h, variant) ---------------------------------------


def draw_hot_dog(d: ImageDraw.ImageDraw, rng: random.Random, x: float, y: float, w: float, h: float, style: str) -> None:
    """A sausage in a bun, topped according to ``style``."""
    bun = jitter(BUN, rng, 20)
    crust = shade(bun, 0.72)
    sausage = jitter(SAUSAGE, rng, 18)
    # back half of the bun
    d.rounded_rectangle((x + .04 * w, y + .08 * h, x + .96 * w, y + .62 * h), radius=.26 * h, fill=crust)
    d.rounded_rectangle((x + .06 * w, y + .12 * h, x + .94 * w, y + .58 * h), radius=.22 * h, fill=bun)
    if style == "chicago":  # poppy-seed bun
        for _ in range(int(w // 6) + 8):
            px, py = x + rng.uniform(.1, .9) * w, y + rng.uniform(.15, .3) * h
            d.ellipse((px, py, px + 1.6, py + 1.6), fill=(40, 35, 30, 255))
    # the sausage, a little longer than the bun
    d.rounded_rectangle((x, y + .28 * h, x + w, y + .66 * h), radius=.19 * h, fill=sausage)
    d.line((x + .08 * w, y + .37 * h, x + .92 * w, y + .37 * h), fill=shade(sausage, 1.3), width=stroke_width(.05 * h))
    # front half of the bun
    d.rounded_rectangle((x + .03 * w, y + .50 * h, x + .97 * w, y + .98 * h), radius=.24 * h, fill=crust)
    d.rounded_rectangle((x + .05 * w, y + .52 * h, x + .95 * w, y + .92 * h), radius=.2 * h, fill=bun)
    d.line((x + .15 * w, y + .62 * h, x + .85 * w, y + .62 * h), fill=shade(bun, 1.12), width=stroke_width(.05 * h))
    _toppings(d, rng, x, y, w, h, style)


def _zigzag(d: ImageDraw.ImageDraw, rng: random.Random, x: float, y: float, w: float, h: float, color: tuple[int, ...], y0: float, y1: float) -> None:
    n = rng.randint(7, 12)
    pts = [(x + (.1 + .8 * i / n) * w, y + (y0 if i % 2 else y1) * h) for i in range(n + 1)]
    d.line(pts, fill=color, width=stroke_width(.06 * h), joint="curve")


def _toppings(d: ImageDraw.ImageDraw, rng: random.Random, x: float, y: float, w: float, h: float, style: str) -> None:
    def blobs(color: Color, n: int, size: float, y0: float = .3, y1: float = .5) -> None:
        for _ in range(n):
            px, py = x + rng.uniform(.1, .88) * w, y + rng.uniform(y0, y1) * h
            s = size * h * rng.uniform(.7, 1.3)
            d.ellipse((px, py, px + s * 1.4, py + s), fill=jitter(color, rng, 14))

    if style == "chicago":
        d.rounded_rectangle((x + .15 * w, y + .26 * h, x + .8 * w, y + .38 * h), radius=.05 * h, fill=jitter((70, 120, 40), rng))  # pickle spear
        _zigzag(d, rng, x, y, w, h, jitter(MUSTARD, rng, 10), .33, .46)
        blobs((60, 205, 70), 14, .07)  # neon relish
        for _ in range(rng.randint(2, 3)):  # tomato wedges
            px = x + rng.uniform(.15, .75) * w
            d.pieslice((px, y + .22 * h, px + .16 * w, y + .52 * h), 180, 360, fill=jitter((215, 40, 35), rng))
        blobs((245, 245, 235), 8, .05)  # onions
        blobs((120, 160, 50), 3, .08)  # sport peppers
    elif style == "michigan":
        blobs((112, 58, 34), 26, .09, .26, .48)  # meat sauce
        d.line((x + .12 * w, y + .4 * h, x + .88 * w, y + .4 * h), fill=jitter(MUSTARD, rng, 10), width=stroke_width(.04 * h))
        blobs((245, 245, 235), 10, .045)
    elif style == "coney":
        blobs((135, 48, 30), 30, .1, .24, .5)  # chili
        blobs((248, 248, 240), 14, .05, .26, .44)  # diced onions
        _zigzag(d, rng, x, y, w, h, jitter(MUSTARD, rng, 10), .34, .44)
    elif style == "ketchup":
        _zigzag(d, rng, x, y, w, h, jitter(KETCHUP, rng, 12), .32, .44)
        d.line((x + .1 * w, y + .42 * h, x + .9 * w, y + .42 * h), fill=jitter(MUSTARD, rng, 10), width=stroke_width(.04 * h))
    else:  # plain: the mustard zigzag
        _zigzag(d, rng, x, y, w, h, jitter(MUSTARD, rng, 10), .32, .46)


def draw_hot_dog_bun(d: ImageDraw.ImageDraw, rng: random.Random, x: float, y: float, w: float, h: float, variant: str) -> None:
    """An empty, split bun: the hot dog's silhouette without the sausage."""
    bun = jitter(BUN, rng, 20)
    crust = shade(bun, 0.72)
    d.rounded_rectangle((x + .02 * w, y + .06 * h, x + .98 * w, y + .58 * h), radius=.26 * h, fill=crust)
    d.rounded_rectangle((x + .04 * w, y + .1 * h, x + .96 * w, y + .54 * h), radius=.22 * h, fill=bun)
    d.rounded_rectangle((x + .08 * w, y + .42 * h, x + .92 * w, y + .6 * h), radius=.08 * h, fill=shade(bun, 1.15))  # crumb
    d.rounded_rectangle((x + .02 * w, y + .52 * h, x + .98 * w, y + .98 * h), radius=.24 * h, fill=crust)
    d.rounded_rectangle((x + .04 * w, y + .55 * h, x + .96 * w, y + .93 * h), radius=.2 * h, fill=bun)


def draw_hot_dog_stand(d: ImageDraw.ImageDraw, rng: random.Random, x: float, y: float, w: float, h: float, variant: str) -> None:
    """A street cart under a striped umbrella, with a hot dog on its sign."""
    a, b = jitter((205, 35, 35), rng, 20), jitter(rng.choice([(245, 210, 40), (245, 245, 240), (40, 90, 200)]), rng, 10)
    n = 8
    for i in range(n):
        d.pieslice((x, y, x + w, y + .7 * h), 180 + 180 * i / n, 180 + 180 * (i + 1) / n, fill=a if i % 2 else b)
    d.rectangle((x + .49 * w, y + .33 * h, x + .51 * w, y + .55 * h), fill=(90, 90, 90, 255))
    body = jitter((190, 192, 198), rng, 20)
    d.rectangle((x + .1 * w, y + .5 * h, x + .9 * w, y + .85 * h), fill=body, outline=shade(body, .6), width=stroke_width(.01 * w))
    d.rectangle((x + .2 * w, y + .56 * h, x + .8 * w, y + .74 * h), fill=jitter((200, 40, 30), rng, 10))
    draw_hot_dog(d, rng, x + .3 * w, y + .58 * h, .4 * w, .14 * h, "plain")
    for cx in (.25, .75):
        d.ellipse((x + (cx - .08) * w, y + .8 * h, x + (cx + .08) * w, y + .96 * h), fill=(30, 30, 30, 255))
        d.ellipse((x + (cx - .03) * w, y + .85 * h, x + (cx + .03) * w, y + .91 * h), fill=(150, 150, 150, 255))


def draw_pizza(d: ImageDraw.ImageDraw, rng: random.Random, x: float, y: float, w: float, h: float, variant: str) -> None:
    crust = jitter((205, 148, 78), rng, 15)
    d.ellipse((x, y, x + w, y + h), fill=crust)
    d.ellipse((x + .07 * w, y + .07 * h, x + .93 * w, y + .93 * h), fill=jitter((190, 52, 30), rng, 12))
    d.ellipse((x + .1 * w, y + .1 * h, x + .9 * w, y + .9 * h), fill=jitter((246, 208, 118), rng, 10))
    for _ in range(rng.randint(3, 8)):  # browned cheese
        px, py = x + rng.uniform(.2, .75) * w, y + rng.uniform(.2, .75) * h
        d.ellipse((px, py, px + .06 * w, py + .05 * h), fill=jitter((215, 160, 70), rng, 10))
    topping = rng.choice(["pepperoni", "pepperoni", "olive", "basil", "mushroom"])
    for _ in range(rng.randint(5, 11)):
        ang, rad = rng.uniform(0, 2 * math.pi), rng.uniform(0, .3)
        px, py = x + (.5 + rad * math.cos(ang)) * w, y + (.5 + rad * math.sin(ang)) * h
        s = rng.uniform(.07, .11)
        if topping == "pepperoni":
            d.ellipse((px - s * w, py - s * h, px + s * w, py + s * h), fill=jitter((168, 38, 32), rng, 12))
        elif topping == "olive":
            d.ellipse((px - s * w / 2, py - s * h / 2, px + s * w / 2, py + s * h / 2), outline=(25, 25, 25, 255), width=stroke_width(.02 * w))
        elif topping == "basil":
            d.ellipse((px - s * w, py - s * h / 2, px + s * w, py + s * h / 2), fill=jitter((40, 120, 40), rng, 12))
        else:
            d.pieslice((px - s * w, py - s * h, px + s * w, py + s * h), 180, 360, fill=jitter((200, 185, 160), rng, 10))
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
            d.polygon(pts, fill=jitter(color, rng, 12))
        else:
            d.rectangle((x + .01 * w, top, x + .99 * w, top + step), fill=jitter(color, rng, 12))


def draw_sandwich(d: ImageDraw.ImageDraw, rng: random.Random, x: float, y: float, w: float, h: float, variant: str) -> None:
    if variant == "submarine":  # a long roll: the hot dog's hardest look-alike
        roll = jitter((200, 140, 75), rng, 15)
        d.rounded_rectangle((x, y + .05 * h, x + w, y + .5 * h), radius=.22 * h, fill=roll)
        _layers(d, rng, x + .03 * w, y, .94 * w, y + .38 * h, y + .66 * h)
        d.rounded_rectangle((x + .02 * w, y + .6 * h, x + .98 * w, y + .95 * h), radius=.16 * h, fill=shade(roll, .95))
        return
    bread = jitter((236, 212, 160), rng, 12)
    crust = jitter((170, 110, 55), rng, 12)
    d.rounded_rectangle((x, y + .62 * h, x + w, y + h), radius=.08 * h, fill=crust)
    d.rounded_rectangle((x + .03 * w, y + .65 * h, x + .97 * w, y + .96 * h), radius=.06 * h, fill=bread)
    _layers(d, rng, x, y, w, y + .3 * h, y + .64 * h)
    d.rounded_rectangle((x, y, x + w, y + .34 * h), radius=.12 * h, fill=crust)
    d.rounded_rectangle((x + .03 * w, y + .03 * h, x + .97 * w, y + .3 * h), radius=.1 * h, fill=bread)


def draw_hamburger(d: ImageDraw.ImageDraw, rng: random.Random, x: float, y: float, w: float, h: float, variant: str) -> None:
    bun = jitter((205, 135, 60), rng, 15)
    d.rounded_rectangle((x + .06 * w, y + .76 * h, x + .94 * w, y + h), radius=.1 * h, fill=bun)
    d.rounded_rectangle((x, y + .58 * h, x + w, y + .8 * h), radius=.1 * h, fill=jitter((90, 50, 30), rng, 12))  # patty
    if rng.random() < .7:
        d.polygon([(x + .02 * w, y + .56 * h), (x + .98 * w, y + .56 * h), (x + .8 * w, y + .7 * h), (x + .65 * w, y + .6 * h), (x + .3 * w, y + .72 * h), (x + .15 * w, y + .6 * h)], fill=jitter((245, 190, 40), rng, 10))
    d.rectangle((x + .04 * w, y + .5 * h, x + .96 * w, y + .58 * h), fill=jitter((205, 40, 35), rng, 12))
    pts = [(x + w * j / 14, y + (.46 if j % 2 else .52) * h) for j in range(15)] + [(x + w, y + .54 * h), (x, y + .54 * h)]
    d.polygon(pts, fill=jitter((80, 170, 60), rng, 12))
    d.chord((x + .02 * w, y, x + .98 * w, y + .96 * h), 180, 360, fill=bun)
    for _ in range(rng.randint(6, 14)):  # sesame
        px, py = x + rng.uniform(.2, .78) * w, y + rng.uniform(.1, .38) * h
        d.ellipse((px, py, px + .03 * w, py + .02 * h), fill=(245, 235, 200, 255))


def draw_french_fries(d: ImageDraw.ImageDraw, rng: random.Random, x: float, y: float, w: float, h: float, variant: str) -> None:
    for _ in range(rng.randint(12, 20)):
        px = x + rng.uniform(.15, .85) * w
        top = y + rng.uniform(0, .3) * h
        lean = rng.uniform(-.08, .08) * w
        d.line((px + lean, top, px, y + .6 * h), fill=jitter((240, 195, 75), rng, 15), width=stroke_width(.06 * w))
    box = jitter(rng.choice([(205, 30, 30), (205, 30, 30), (40, 80, 180), (240, 240, 235)]), rng, 10)
    d.polygon([(x + .05 * w, y + .4 * h), (x + .95 * w, y + .4 * h), (x + .82 * w, y + h), (x + .18 * w, y + h)], fill=box)
    d.chord((x + .2 * w, y + .3 * h, x + .8 * w, y + .52 * h), 0, 180, fill=box)


def draw_banana(d: ImageDraw.ImageDraw, rng: random.Random, x: float, y: float, w: float, h: float, variant: str) -> None:
    n_fruit = rng.randint(2, 3) if variant == "bunch" else 1
    for k in range(n_fruit):
        yo = y + k * .18 * h
        hh = h * (.75 if n_fruit > 1 else 1.0)
        yellow = jitter((235, 205, 60), rng, 15)
        top, bottom = [], []
        for i in range(21):
            t = i / 20
            cy = yo + hh * (.25 + .45 * (1 - (2 * t - 1) ** 2))
            th = hh * .3 * (math.sin(math.pi * t) ** .6)
            top.append((x + t * w, cy - th / 2))
            bottom.append((x + t * w, cy + th / 2))
        d.polygon(top + bottom[::-1], fill=yellow)
        d.line(bottom[3:18], fill=shade(yellow, .85), width=stroke_width(.03 * hh))
        d.line((top[0], (top[0][0] + .06 * w, top[0][1] - .03 * hh)), fill=(90, 70, 30, 255), width=stroke_width(.05 * hh))
        d.ellipse((bottom[-1][0] - .03 * w, bottom[-1][1] - .06 * hh, bottom[-1][0] + .01 * w, bottom[-1][1]), fill=(60, 45, 25, 255))
        for _ in range(rng.randint(0, 5)):  # ripeness spots
            t = rng.uniform(.2, .8)
            px, py = x + t * w, yo + hh * (.25 + .45 * (1 - (2 * t - 1) ** 2))
            d.ellipse((px, py - 2, px + 3, py + 1), fill=(110, 80, 30, 255))


def draw_doughnut(d: ImageDraw.ImageDraw, rng: random.Random, x: float, y: float, w: float, h: float, variant: str) -> None:
    d.ellipse((x, y, x + w, y + h), fill=jitter((205, 145, 75), rng, 12))
    icing = jitter(rng.choice([(240, 130, 170), (95, 55, 35), (250, 245, 235), (140, 200, 240)]), rng, 10)
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
        d.line((px, py, px + .04 * w * math.cos(b), py + .04 * h * math.sin(b)), fill=jitter(rng.choice([(240, 60, 60), (60, 160, 240), (250, 230, 60), (80, 200, 90), (250, 250, 250)]), rng, 5), width=stroke_width(.015 * w))
    d.ellipse((x + .33 * w, y + .33 * h, x + .67 * w, y + .67 * h), fill=jitter((190, 130, 65), rng, 10))
    d.ellipse((x + .37 * w, y + .37 * h, x + .63 * w, y + .63 * h), fill=(0, 0, 0, 0))  # the hole


def draw_cake(d: ImageDraw.ImageDraw, rng: random.Random, x: float, y: float, w: float, h: float, variant: str) -> None:
    frosting = jitter(rng.choice([(250, 245, 240), (245, 180, 200), (110, 65, 40), (250, 230, 170)]), rng, 10)
    sponge = jitter(rng.choice([(240, 215, 160), (120, 70, 45)]), rng, 10)
    d.ellipse((x - .02 * w, y + .86 * h, x + 1.02 * w, y + h), fill=(235, 235, 240, 255))  # plate
    d.rectangle((x + .05 * w, y + .4 * h, x + .95 * w, y + .92 * h), fill=frosting)
    for i in range(rng.randint(1, 2)):
        yy = y + (.55 + .17 * i) * h
        d.rectangle((x + .05 * w, yy, x + .95 * w, yy + .05 * h), fill=sponge)
    d.ellipse((x + .05 * w, y + .32 * h, x + .95 * w, y + .48 * h), fill=shade(frosting, 1.05))
    for i in range(9):  # drips
        px = x + (.08 + .1 * i) * w
        d.rounded_rectangle((px, y + .42 * h, px + .05 * w, y + (.5 + .08 * rng.random()) * h), radius=.02 * w, fill=shade(frosting, .92))
    for _ in range(rng.randint(0, 5)):  # candles
        px = x + rng.uniform(.2, .78) * w
        d.rectangle((px, y + .2 * h, px + .025 * w, y + .38 * h), fill=jitter(rng.choice([(60, 120, 230), (240, 80, 120), (250, 250, 250)]), rng, 10))
        d.ellipse((px - .005 * w, y + .12 * h, px + .03 * w, y + .2 * h), fill=(255, 200, 40, 255))
    for _ in range(rng.randint(0, 4)):
        px = x + rng.uniform(.15, .8) * w
        d.ellipse((px, y + .33 * h, px + .06 * w, y + .4 * h), fill=(200, 20, 40, 255))


def draw_taco(d: ImageDraw.ImageDraw, rng: random.Random, x: float, y: float, w: float, h: float, variant: str) -> None:
    shell = jitter((228, 178, 70), rng, 12)
    for color, y0 in (((115, 65, 35), .18), ((90, 175, 60), .12), ((215, 45, 35), .22), ((250, 215, 90), .26)):
        for _ in range(10):
            px = x + rng.uniform(.06, .86) * w
            s = rng.uniform(.05, .1)
            d.ellipse((px, y + (y0 + rng.uniform(0, .12)) * h, px + s * w, y + (y0 + .12 + rng.uniform(0, .1)) * h), fill=jitter(color, rng, 12))
    d.chord((x, y - .3 * h, x + w, y + h), 0, 180, fill=shell)
    d.arc((x + .03 * w, y - .24 * h, x + .97 * w, y + .94 * h), 20, 160, fill=shade(shell, .8), width=stroke_width(.02 * h))


def _eyes(d: ImageDraw.ImageDraw, rng: random.Random, x: float, y: float, w: float, h: float, iris: tuple[int, ...], slit: bool) -> None:
    for cx in (.34, .66):
        d.ellipse((x + (cx - .08) * w, y + .38 * h, x + (cx + .08) * w, y + .5 * h), fill=iris)
        if slit:
            d.ellipse((x + (cx - .015) * w, y + .385 * h, x + (cx + .015) * w, y + .495 * h), fill=(15, 15, 15, 255))
        else:
            d.ellipse((x + (cx - .05) * w, y + .4 * h, x + (cx + .05) * w, y + .48 * h), fill=(15, 15, 15, 255))
            d.ellipse((x + (cx - .02) * w, y + .41 * h, x + cx * w, y + .43 * h), fill=(250, 250, 250, 255))


def draw_cat(d: ImageDraw.ImageDraw, rng: random.Random, x: float, y: float, w: float, h: float, variant: str) -> None:
    fur = jitter(rng.choice([(220, 140, 60), (130, 130, 135), (45, 42, 40), (235, 232, 225), (170, 120, 80)]), rng, 12)
    for sx in (1, -1):  # ears
        ex = .5 + sx * .28
        d.polygon([(x + (ex - .17) * w, y + .3 * h), (x + (ex + .17) * w, y + .3 * h), (x + (ex + sx * .08) * w, y)], fill=fur)
        d.polygon([(x + (ex - .08) * w, y + .27 * h), (x + (ex + .08) * w, y + .27 * h), (x + (ex + sx * .06) * w, y + .1 * h)], fill=(235, 160, 170, 255))
    d.ellipse((x + .08 * w, y + .16 * h, x + .92 * w, y + h), fill=fur)
    if rng.random() < .4:  # a patch or tabby stripes
        patch = shade(fur, rng.choice([.6, 1.4]))
        d.ellipse((x + rng.uniform(.1, .5) * w, y + .2 * h, x + rng.uniform(.5, .8) * w, y + .45 * h), fill=patch)
    _eyes(d, rng, x, y, w, h, jitter(rng.choice([(120, 200, 60), (230, 190, 50), (90, 160, 220)]), rng, 10), slit=True)
    d.polygon([(x + .45 * w, y + .6 * h), (x + .55 * w, y + .6 * h), (x + .5 * w, y + .67 * h)], fill=(230, 130, 150, 255))
    d.line((x + .5 * w, y + .67 * h, x + .44 * w, y + .74 * h), fill=(40, 30, 30, 255), width=stroke_width(.01 * w))
    d.line((x + .5 * w, y + .67 * h, x + .56 * w, y + .74 * h), fill=(40, 30, 30, 255), width=stroke_width(.01 * w))
    whisker = (240, 240, 240, 255) if sum(fur[:3]) < 300 else (60, 60, 60, 255)
    for sx in (1, -1):
        for k in (-1, 0, 1):
            d.line((x + (.5 + sx * .1) * w, y + .66 * h, x + (.5 + sx * .45) * w, y + (.62 + .05 * k) * h), fill=whisker, width=1)


def draw_dog(d: ImageDraw.ImageDraw, rng: random.Random, x: float, y: float, w: float, h: float, variant: str) -> None:
    fur = jitter(rng.choice([(150, 95, 50), (215, 170, 90), (40, 35, 30), (240, 235, 225), (120, 110, 100)]), rng, 12)
    ear = shade(fur, .65)
    d.ellipse((x + .14 * w, y + .08 * h, x + .86 * w, y + .86 * h), fill=fur)
    for sx in (0, 1):  # floppy ears
        ex = x + (.0 if sx == 0 else .72) * w
        d.ellipse((ex, y + .12 * h, ex + .28 * w, y + .66 * h), fill=ear)
    d.ellipse((x + .3 * w, y + .52 * h, x + .7 * w, y + .92 * h), fill=shade(fur, 1.25))  # snout
    _eyes(d, rng, x, y, w, h, (90, 55, 30, 255), slit=False)
    d.ellipse((x + .42 * w, y + .56 * h, x + .58 * w, y + .68 * h), fill=(20, 20, 20, 255))
    d.line((x + .5 * w, y + .68 * h, x + .5 * w, y + .76 * h), fill=(20, 20, 20, 255), width=stroke_width(.012 * w))
    if rng.random() < .5:
        d.ellipse((x + .44 * w, y + .76 * h, x + .56 * w, y + .9 * h), fill=(230, 110, 120, 255))


def draw_car(d: ImageDraw.ImageDraw, rng: random.Random, x: float, y: float, w: float, h: float, variant: str) -> None:
    paint = jitter(rng.choice([(200, 30, 30), (30, 70, 170), (235, 235, 235), (30, 30, 35), (240, 190, 30), (60, 140, 70), (150, 150, 155)]), rng, 12)
    d.polygon([(x + .22 * w, y + .42 * h), (x + .32 * w, y + .08 * h), (x + .7 * w, y + .08 * h), (x + .84 * w, y + .42 * h)], fill=paint)
    glass = jitter((170, 200, 220), rng, 10)
    d.polygon([(x + .28 * w, y + .4 * h), (x + .35 * w, y + .14 * h), (x + .5 * w, y + .14 * h), (x + .5 * w, y + .4 * h)], fill=glass)
    d.polygon([(x + .53 * w, y + .4 * h), (x + .53 * w, y + .14 * h), (x + .68 * w, y + .14 * h), (x + .78 * w, y + .4 * h)], fill=glass)
    d.rounded_rectangle((x, y + .38 * h, x + w, y + .8 * h), radius=.12 * h, fill=paint)
    d.line((x + .52 * w, y + .42 * h, x + .52 * w, y + .75 * h), fill=shade(paint, .6), width=stroke_width(.01 * w))
    d.ellipse((x + .93 * w, y + .46 * h, x + .99 * w, y + .56 * h), fill=(255, 240, 170, 255))
    d.rectangle((x + .005 * w, y + .48 * h, x + .04 * w, y + .56 * h), fill=(200, 30, 30, 255))
    for cx in (.22, .78):
        d.ellipse((x + (cx - .1) * w, y + .6 * h, x + (cx + .1) * w, y + h), fill=(25, 25, 25, 255))
        d.ellipse((x + (cx - .045) * w, y + .71 * h, x + (cx + .045) * w, y + .89 * h), fill=(170, 170, 175, 255))


def draw_coffee_cup(d: ImageDraw.ImageDraw, rng: random.Random, x: float, y: float, w: float, h: float, variant: str) -> None:
    china = jitter(rng.choice([(245, 245, 240), (245, 245, 240), (200, 40, 40), (50, 90, 170), (240, 200, 60)]), rng, 8)
    d.ellipse((x, y + .78 * h, x + w, y + h), fill=shade(china, .93))  # saucer
    d.ellipse((x + .62 * w, y + .34 * h, x + .94 * w, y + .7 * h), outline=china, width=stroke_width(.06 * w))  # handle
    d.rounded_rectangle((x + .14 * w, y + .28 * h, x + .76 * w, y + .88 * h), radius=.16 * w, fill=china)
    d.ellipse((x + .14 * w, y + .22 * h, x + .76 * w, y + .36 * h), fill=shade(china, 1.08))
    d.ellipse((x + .18 * w, y + .24 * h, x + .72 * w, y + .34 * h), fill=jitter((95, 55, 30), rng, 10))
    for k in range(rng.randint(0, 3)):  # steam
        px = x + (.3 + .12 * k) * w
        d.line([(px + (.02 * w if i % 2 else -.02 * w), y + (.2 - .05 * i) * h) for i in range(4)], fill=(235, 235, 235, 150), width=stroke_width(.02 * w))


def draw_apple(d: ImageDraw.ImageDraw, rng: random.Random, x: float, y: float, w: float, h: float, variant: str) -> None:
    skin = jitter(rng.choice([(200, 30, 35), (200, 30, 35), (140, 200, 60), (230, 200, 60)]), rng, 15)
    d.ellipse((x, y + .14 * h, x + .62 * w, y + h), fill=skin)
    d.ellipse((x + .38 * w, y + .14 * h, x + w, y + h), fill=skin)
    d.ellipse((x + .2 * w, y + .3 * h, x + .34 * w, y + .5 * h), fill=shade(skin, 1.35))
    d.line((x + .5 * w, y + .24 * h, x + .54 * w, y), fill=(90, 60, 30, 255), width=stroke_width(.04 * w))
    if rng.random() < .7:
        d.ellipse((x + .54 * w, y + .02 * h, x + .8 * w, y + .14 * h), fill=jitter((60, 150, 50), rng, 10))


def draw_salad(d: ImageDraw.ImageDraw, rng: random.Random, x: float, y: float, w: float, h: float, variant: str) -> None:
    for _ in range(22):
        px, py = x + rng.uniform(.05, .8) * w, y + rng.uniform(.02, .45) * h
        s = rng.uniform(.12, .22)
        d.ellipse((px, py, px + s * w, py + s * h), fill=jitter(rng.choice([(80, 170, 60), (120, 190, 70), (50, 130, 45), (150, 40, 70)]), rng, 12))
    for _ in range(rng.randint(3, 6)):
        px, py = x + rng.uniform(.15, .75) * w, y + rng.uniform(.1, .4) * h
        d.ellipse((px, py, px + .09 * w, py + .14 * h), fill=jitter((220, 40, 35), rng, 10))
    bowl = jitter(rng.choice([(245, 245, 240), (170, 120, 70), (90, 150, 200)]), rng, 10)
    d.chord((x, y - .1 * h, x + w, y + h), 0, 180, fill=bowl)


def draw_sushi(d: ImageDraw.ImageDraw, rng: random.Random, x: float, y: float, w: float, h: float, variant: str) -> None:
    if variant == "maki":
        for k in range(3):
            cx = x + (k / 3) * w
            d.ellipse((cx, y + .2 * h, cx + w / 3.1, y + .9 * h), fill=(25, 35, 25, 255))
            d.ellipse((cx + .02 * w, y + .26 * h, cx + w / 3.1 - .02 * w, y + .84 * h), fill=(245, 245, 238, 255))
            d.ellipse((cx + .1 * w, y + .45 * h, cx + w / 3.1 - .1 * w, y + .65 * h), fill=jitter(rng.choice([(240, 120, 70), (90, 170, 80), (200, 40, 50)]), rng, 10))
        return
    d.rounded_rectangle((x + .04 * w, y + .45 * h, x + .96 * w, y + h), radius=.2 * h, fill=(245, 245, 238, 255))
    fish = jitter(rng.choice([(245, 130, 80), (200, 40, 50), (250, 200, 160)]), rng, 10)
    d.rounded_rectangle((x, y + .1 * h, x + w, y + .6 * h), radius=.22 * h, fill=fish)
    for i in range(5):
        px = x + (.15 + .16 * i) * w
        d.line((px, y + .14 * h, px + .08 * w, y + .56 * h), fill=(250, 230, 220, 255), width=stroke_width(.02 * w))


def draw_plate(d: ImageDraw.ImageDraw, rng: random.Random, x: float, y: float, w: float, h: float, variant: str) -> None:
    china = jitter(rng.choice([(248, 248, 246), (235, 235, 240), (220, 230, 245)]), rng, 6)
    d.ellipse((x, y, x + w, y + h), fill=shade(china, .9))
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
"""Drawable things by key; ``class_shapes.py`` maps classes to these keys."""

SIDE_DISHES = ("coffee_cup", "apple", "banana", "french_fries", "salad")
"""Small extra objects that may share a picture with the main one."""
