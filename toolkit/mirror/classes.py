"""The mirror's classes: the class list, the boxable subset and the hierarchy.

Real LabelNames and DisplayNames of Open Images, a few of them chosen for what they test:
classes related to Hot dog, two classes with the display name "Mouse", the real Sandwich
family (Food > Sandwich > Hamburger, Submarine sandwich), and classes that are not boxable.
"""

from __future__ import annotations

from toolkit.openimages import layout

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
HIERARCHY: tuple = (layout.HIERARCHY_ROOT, [
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


def _parents(node: tuple, parent: str | None = None, out: dict[str, str] | None = None) -> dict[str, str]:
    out = {} if out is None else out
    if parent is not None and parent != layout.HIERARCHY_ROOT:
        out.setdefault(node[0], parent)
    for child in node[1]:
        _parents(child, node[0], out)
    return out

PARENT = _parents(HIERARCHY)
"""Boxable class -> its parent in the hierarchy (the root left out)."""

def ancestors(mid: str) -> list[str]:
    """Parents of ``mid`` up to (not including) Entity, nearest first."""
    out = []
    while mid in PARENT:
        mid = PARENT[mid]
        out.append(mid)
    return out
