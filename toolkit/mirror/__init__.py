"""The embedded mirror: a small, generated Open Images served over real HTTP on localhost.

It is the offline default of the demo and the fixture of the tests. ``generate_mirror``
writes the files in the official schemas and paths (``toolkit.openimages.layout``);
``MirrorServer`` serves a folder, with fault injection; ``start_mirror`` does both.

    server, info = start_mirror(tmp_path)
    with server:
        ...  # info.metadata_base, info.images_base
"""

from toolkit.mirror.class_shapes import DRAWABLE
from toolkit.mirror.classes import BOXABLE, CLASSES, HOT_DOG, HOT_DOG_RELATED, MOUSE_MIDS
from toolkit.mirror.faults import FAULT_KINDS, Fault, FaultPlan
from toolkit.mirror.generate import MirrorInfo, generate_mirror, start_mirror
from toolkit.mirror.planning import DEFAULT_IMAGES_PER_CLASS, held_out_count
from toolkit.mirror.records import MirrorBox, MirrorImage
from toolkit.mirror.server import PLACEHOLDER_PATH, MirrorServer

__all__ = [
    "BOXABLE", "CLASSES", "DEFAULT_IMAGES_PER_CLASS", "DRAWABLE", "FAULT_KINDS", "HOT_DOG",
    "HOT_DOG_RELATED", "MOUSE_MIDS", "PLACEHOLDER_PATH", "Fault", "FaultPlan", "MirrorBox",
    "MirrorImage", "MirrorInfo", "MirrorServer", "generate_mirror", "held_out_count", "start_mirror",
]
