"""The MIL ``classify`` op that ends a classifier program (coremltools'
``ClassifierConfig``): a predicted label and a {label: probability} dict per row."""

from __future__ import annotations

import numpy as np

from ....errors import MlkitError
from .registry import implements


@implements("classify")
def _classify(a):
    """Returns (labels, dicts): one predicted label and one {label: probability} per row."""
    probs = np.asarray(a.get("probabilities"), dtype=np.float32)
    classes = a.get("classes")
    if isinstance(classes, np.ndarray):
        classes = classes.reshape(-1).tolist()
    classes = [c.item() if isinstance(c, np.ndarray) else c for c in classes]
    rows = probs.reshape(-1, len(classes)) if probs.size % len(classes) == 0 else None
    if rows is None:
        raise MlkitError(f"classify: {probs.size} probabilities for {len(classes)} classes")
    labels = [classes[int(np.argmax(r))] for r in rows]
    dicts = [{c: float(p) for c, p in zip(classes, r)} for r in rows]
    return labels, dicts
