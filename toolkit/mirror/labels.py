"""The human-verified labels of one picture: what it shows, some ancestors, verified negatives.

Verified negatives (``Confidence`` 0) are drawn among classes not in the picture, e.g.
``Hot dog,0`` on pictures of other food; a class is never denied on a picture that shows
it, an ancestor or a descendant of it, nor one related to Hot dog (an ontology-aware
sampler must keep those out of the negatives).
"""

from __future__ import annotations

import random

from toolkit.mirror.class_shapes import DENIABLE, HOT_DOG_STYLE, KINDS, SHAPE_CLASS
from toolkit.mirror.classes import HOT_DOG, HOT_DOG_RELATED, ancestors
from toolkit.mirror.scenes import Placed


def verified_labels(rng: random.Random, mid: str, placed: list[Placed], main_variant: str) -> list[tuple[str, int]]:
    """(LabelName, Confidence) of one picture: what is in it, a few ancestors, verified negatives."""
    positives = _positives(rng, mid, placed, main_variant)
    there = _never_denied(positives)
    negatives = _negatives(rng, mid, there)
    return [(m, 1) for m in positives] + [(m, 0) for m in negatives if m not in there]


def _positives(rng: random.Random, mid: str, placed: list[Placed], main_variant: str) -> list[str]:
    """The classes drawn (the main one first), and now and then their ancestors."""
    present: list[str] = [mid]
    if mid in HOT_DOG_STYLE.values() and rng.random() < .5:
        present.append(HOT_DOG)
    if mid == HOT_DOG and main_variant in HOT_DOG_STYLE and rng.random() < .5:
        present.append(HOT_DOG_STYLE[main_variant])
    if mid == "/m/0l515" and main_variant == "submarine":
        present.append("/m/06pcq")
    for p in placed[:-1]:
        present.append(SHAPE_CLASS[p.key])
    positives: list[str] = []
    for m in present:
        if m not in positives:
            positives.append(m)
    for m in list(positives):
        for a in ancestors(m):
            if a not in positives and rng.random() < .4:
                positives.append(a)
    return positives


def _never_denied(positives: list[str]) -> set[str]:
    """Never deny a class that is there, nor an ancestor or descendant of one."""
    there = set(positives) | {a for m in positives for a in ancestors(m)}
    if HOT_DOG in there or any(m in there for m in HOT_DOG_STYLE.values()):
        there |= {HOT_DOG, *HOT_DOG_STYLE.values()}
    if "/m/0l515" in there or "/m/06pcq" in there:
        there |= {"/m/0l515", "/m/06pcq", "/m/0cdn1"}
    return there


def _negatives(rng: random.Random, mid: str, there: set[str]) -> list[str]:
    """Classes verified absent from a picture of ``mid``: often Hot dog, a few others, Food."""
    negatives: list[str] = []
    food = KINDS[mid].food
    if HOT_DOG not in there:
        p_hot_dog = .5 if mid == "/m/07vh6y" else .4 if food else .15 if mid != "/m/0bm1pg" else 0
        if rng.random() < p_hot_dog:
            negatives.append(HOT_DOG)
    if rng.random() < .5:
        pool = [m for m in DENIABLE if m not in there and m not in HOT_DOG_RELATED and m != HOT_DOG]
        negatives += rng.sample(pool, rng.randint(1, 2))
    if not food and mid != "/m/0bm1pg" and "/m/02wbm" not in there and rng.random() < .3:
        negatives.append("/m/02wbm")
    return negatives
