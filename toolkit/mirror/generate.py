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
  originals (``rotation.py`` says how Open Images stores them, and so does the mirror).

The parts: ``classes`` (class list, hierarchy), ``class_shapes`` (how each class is
drawn), ``planning`` (which pictures, their ImageIDs, which are dead), ``drawers`` and
``scenes`` (the pictures), ``labels`` and ``attribution`` (what the CSVs say of each),
``rotation``, ``photos`` (one photo and its copies), ``metadata`` (the Open Images files).

Everything is a function of ``seed``: the same seed gives byte-identical files.
"""

from __future__ import annotations

import concurrent.futures
import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from toolkit.mirror.classes import CLASSES
from toolkit.mirror.faults import FaultPlan
from toolkit.mirror.metadata import write_metadata
from toolkit.mirror.photos import CopySizes, copy_sizes, draw_upright, make_photo
from toolkit.mirror.planning import PlannedImage, dead_ids, plan_images
from toolkit.mirror.records import MirrorImage
from toolkit.mirror.server import PLACEHOLDER_PATH, REDIRECTS_FILE, MirrorServer
from toolkit.openimages import layout


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
        _, picture, _ = draw_upright(self.seed, image_id, "+".join((im.label_name, *im.also)),
                                     copy_sizes(self.image_size).original)
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
    planned = plan_images(seed, images_per_class)
    sizes = copy_sizes(image_size)
    drawn = _drawn(seed, planned, dead_ids(seed, planned), sizes)
    images = [im for im, _ in drawn]
    for _, files in drawn:
        for rel, data in files.items():
            _write_bytes(root / rel, data)
    write_metadata(root, base_url, images)
    _write_redirects(root, images)

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


def _drawn(seed: int, planned: list[PlannedImage], dead: set[str],
           sizes: CopySizes) -> list[tuple[MirrorImage, dict[str, bytes]]]:
    """Every planned photo and its files, from ``_DRAWN`` or drawn now."""
    key = (seed, tuple(planned), tuple(sorted(dead)), sizes)
    drawn = _DRAWN.pop(key, None)
    if drawn is None:
        # PIL and numpy let go of the GIL in their heavy parts, so two threads gain a little
        with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
            drawn = list(pool.map(lambda p: make_photo(seed, p, p.image_id in dead, sizes), planned))
    _DRAWN[key] = drawn
    while len(_DRAWN) > 2:
        _DRAWN.pop(next(iter(_DRAWN)))
    return drawn


def _write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _write_redirects(root: Path, images: list[MirrorImage]) -> None:
    """The originals of photos gone from Flickr redirect to the placeholder (``MirrorServer``)."""
    redirects = {f"/flickr/{im.image_id}_o.jpg": PLACEHOLDER_PATH for im in images if im.dead}
    (root / REDIRECTS_FILE).write_text(json.dumps(dict(sorted(redirects.items())), indent=1) + "\n", encoding="utf-8")


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
