"""Who took each picture: Flickr-style authors, titles and URLs, and the licence of all.

Names and titles mix scripts, quotes and commas on purpose.
"""

from __future__ import annotations

import random

LICENSE = "https://creativecommons.org/licenses/by/2.0/"
"""The License of every picture (CC BY 2.0)."""

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


def attribution(rng: random.Random, display_name: str) -> tuple[str, str, str, str]:
    """(LandingURL, AuthorProfileURL, Author, Title) of one picture drawn for ``display_name``."""
    nsid = f"{rng.randint(10_000_000, 99_999_999)}@N0{rng.randint(0, 8)}"
    photo = rng.randint(10**9, 10**10 - 1)
    titles = _TITLES.get(display_name, ()) + _GENERIC_TITLES
    title = rng.choice(titles).format(n=rng.randint(1000, 9999), name=display_name.lower())
    return (f"https://www.flickr.com/photos/{nsid}/{photo}", f"https://www.flickr.com/people/{nsid}/",
            rng.choice(_AUTHORS), title)
