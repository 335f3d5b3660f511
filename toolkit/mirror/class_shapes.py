"""How each drawable class is pictured: which ``drawers.SHAPES`` key draws it, and back.

``KINDS`` maps a LabelName to its shape (and whether it is food, and which boxable class
its boxes carry); ``SHAPE_CLASS`` maps the shape of an object drawn beside the main one
back to its class; ``HOT_DOG_STYLE`` maps a hot dog's topping style to its own class.
"""

from __future__ import annotations

from dataclasses import dataclass

from toolkit.mirror.classes import CLASSES, HOT_DOG

@dataclass(frozen=True)
class Kind:
    """How the pictures of one class look."""

    shape: str  # key of SHAPES
    food: bool = True
    box_as: str | None = None  # the boxable class a box of it carries (None: its own if boxable)


KINDS: dict[str, Kind] = {
    "/m/01b9xk": Kind("hot_dog"),
    "/m/05ztbl": Kind("chicago_hot_dog", box_as=HOT_DOG),
    "/m/07bp0z": Kind("michigan_hot_dog", box_as=HOT_DOG),
    "/m/07jl02": Kind("coney_hot_dog", box_as=HOT_DOG),
    "/m/07vh6y": Kind("hot_dog_bun"),
    "/m/0bm1pg": Kind("hot_dog_stand", food=False),
    "/m/0663v": Kind("pizza"),
    "/m/0l515": Kind("sandwich"),
    "/m/0cdn1": Kind("hamburger"),
    "/m/02y6n": Kind("french_fries"),
    "/m/09qck": Kind("banana"),
    "/m/0jy4k": Kind("doughnut"),
    "/m/0fszt": Kind("cake"),
    "/m/07crc": Kind("taco"),
    "/m/01yrx": Kind("cat", food=False),
    "/m/0bt9lr": Kind("dog", food=False),
    "/m/0k4j": Kind("car", food=False),
    "/m/02p5f1q": Kind("coffee_cup", food=False),
    "/m/014j1m": Kind("apple"),
    "/m/0grw1": Kind("salad"),
    "/m/07030": Kind("sushi"),
}
DENIABLE = tuple(KINDS)  # the classes a picture may carry a verified-absent label of
KINDS["/m/06pcq"] = Kind("submarine_sandwich")  # after DENIABLE: the older pictures' labels stay as they were
SHAPE_CLASS = {"coffee_cup": "/m/02p5f1q", "apple": "/m/014j1m", "banana": "/m/09qck",
               "french_fries": "/m/02y6n", "salad": "/m/0grw1", "plate": "/m/050gv4",
               "pizza": "/m/0663v", "hamburger": "/m/0cdn1", "sandwich": "/m/0l515", "hot_dog": HOT_DOG,
               "submarine_sandwich": "/m/06pcq"}
HOT_DOG_STYLE = {"chicago": "/m/05ztbl", "michigan": "/m/07bp0z", "coney": "/m/07jl02"}

DRAWABLE = tuple(CLASSES[mid] for mid in KINDS)
"""Display names ``images_per_class`` accepts; also "A + B" of two of them (A's picture
with a B beside it, verified for both)."""
