"""The embedded mirror: a small, generated Open Images served over real HTTP on localhost.

It is the offline default of the demo and the fixture of the tests. ``generate_mirror``
writes the files in the official schemas and paths (``toolkit.openimages.layout``);
``MirrorServer`` serves a folder, with fault injection; ``start_mirror`` does both.

    server, info = start_mirror(tmp_path)
    with server:
        ...  # info.metadata_base, info.images_base
"""

from toolkit.mirror.generate import (
    BOXABLE,
    CLASSES,
    DEFAULT_IMAGES_PER_CLASS,
    DRAWABLE,
    HOT_DOG,
    HOT_DOG_RELATED,
    MOUSE_MIDS,
    MirrorBox,
    MirrorImage,
    MirrorInfo,
    generate_mirror,
    held_out_count,
    start_mirror,
)
from toolkit.mirror.server import FAULT_KINDS, PLACEHOLDER_PATH, Fault, FaultPlan, MirrorServer

__all__ = [
    "BOXABLE", "CLASSES", "DEFAULT_IMAGES_PER_CLASS", "DRAWABLE", "FAULT_KINDS", "HOT_DOG",
    "HOT_DOG_RELATED", "MOUSE_MIDS", "PLACEHOLDER_PATH", "Fault", "FaultPlan", "MirrorBox",
    "MirrorImage", "MirrorInfo", "MirrorServer", "generate_mirror", "held_out_count", "start_mirror",
]
