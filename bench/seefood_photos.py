"""Where the training benchmarks (bench_train.py, bench_quality.py) find the shared seefood
photos and the Keras weights, the photos' classes, and their files. Importing it puts the
project root on sys.path, so a benchmark run as a script can import ``toolkit``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SHARED = Path(os.environ.get("MLKIT_SHARED_DATA", ROOT.parent / "shared" / "data"))
PHOTOS = SHARED / "seefood" / "train"
KERAS_HOME = SHARED / "keras"
CLASSES = ("hot_dog", "not_hot_dog")


def class_photos(cls: str) -> list[Path]:
    """The photos of class ``cls`` (a folder of PHOTOS), sorted by path."""
    return sorted((PHOTOS / cls).glob("*.jpg"))
