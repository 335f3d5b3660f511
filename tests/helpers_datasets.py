"""Test helpers that make smaller dataset folders out of built ones."""

from __future__ import annotations

import json
import shutil
from pathlib import Path


def copy_subset(dataset: Path, parent: Path, per_split: dict[str, int]) -> Path:
    """A copy of the dataset folder ``dataset`` as ``parent/<its name>`` holding, for each
    split in ``per_split``, the first ``per_split[split]`` images (in name order) of every
    class; its dataset.json says so in ``counts``. Returns the copy."""
    root = parent / dataset.name
    doc = json.loads((dataset / "dataset.json").read_text())
    for split, n in per_split.items():
        for cls in doc["classes"]:
            (root / split / cls).mkdir(parents=True)
            for p in sorted((dataset / split / cls).glob("*.jpg"))[:n]:
                shutil.copy(p, root / split / cls / p.name)
            doc["counts"][cls][split] = n
    (root / "dataset.json").write_text(json.dumps(doc))
    return root
