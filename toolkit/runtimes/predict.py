"""``predict``: label and probability per image, for any model file a runner exists for.

A runner wraps one model format behind one method, ``predict(images) -> probabilities``
(float32 pixels 0..255 in, the spec's input; one row of class probabilities per image
out). ``.keras`` has one here; the formats ``mlkit export`` writes (``.tflite``,
``.mlmodel``, ``.mlpackage``) plug in with ``register_runner`` (``toolkit.export``). The
labels, input size and decision threshold always come from ``model.json`` beside the file.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from ..dataset.manifest import IMAGE_SUFFIXES
from ..errors import MlkitError, ParameterError
from ..training.spec import KERAS_FILE, ModelCard, ModelSpec, read_model_card


class Runner(Protocol):
    path: Path
    card: ModelCard

    def predict(self, images: np.ndarray) -> np.ndarray:
        """(n, size, size, 3) float32 RGB 0..255 -> (n, classes) probabilities."""
        ...


RunnerFactory = Callable[[Path, ModelCard], Runner]
_RUNNERS: dict[str, tuple[str, RunnerFactory]] = {}


def register_runner(suffix: str, description: str, factory: RunnerFactory) -> None:
    """Make ``open_runner`` handle model files ending in ``suffix`` (e.g. ".tflite")."""
    _RUNNERS[suffix.lower()] = (description, factory)


class KerasRunner:
    """A ``model.keras`` written by ``mlkit train``, run by Keras."""

    def __init__(self, path: Path, card: ModelCard, batch_size: int = 32):
        from ..training.model import load_keras_model

        self.path, self.card, self.batch_size = path, card, batch_size
        self.model = load_keras_model(path)
        self._run = None
        shape = tuple(self.model.input_shape[1:])
        outputs = self.model.output_shape[-1]
        if shape != card.spec.input_shape or outputs != len(card.spec.labels):
            raise MlkitError(f"{path} takes {shape} and gives {outputs} classes, but its model.json says "
                             f"{card.spec.input_shape} and {len(card.spec.labels)} labels: they belong to "
                             "different models; retrain, or keep each model.json with its model")

    def predict(self, images: np.ndarray) -> np.ndarray:
        from ..training.model import inference_function

        if self._run is None:  # traced once, reused for every batch
            self._run = inference_function(self.model)
        images = np.asarray(images, dtype=np.float32)
        out = [self._run(images[i:i + self.batch_size]).numpy() for i in range(0, len(images), self.batch_size)]
        return np.concatenate(out) if out else np.zeros((0, len(self.card.spec.labels)), np.float32)


def _tflite(path: Path, card: ModelCard) -> Runner:
    from .litert import TFLiteRunner   # LiteRT is imported only when a .tflite is run

    return TFLiteRunner(path, card)


def _core_ml(path: Path, card: ModelCard) -> Runner:
    from .coreml import CoreMLRunner   # Core ML where it exists, else the reference evaluator

    return CoreMLRunner(path, card)


register_runner(".keras", "Keras", KerasRunner)
register_runner(".tflite", "TFLite", _tflite)
register_runner(".mlmodel", "Core ML", _core_ml)
register_runner(".mlpackage", "Core ML", _core_ml)


def resolve_model_file(path: Path | str) -> Path:
    """A model folder (``models/<name>``) means its ``model.keras``; a file means itself."""
    p = Path(path)
    if not p.exists():
        raise MlkitError(f"{p} does not exist: give a model folder written by `mlkit train` (models/<name>) "
                         "or a model file in it")
    if p.is_dir() and p.suffix.lower() not in _RUNNERS:   # an .mlpackage is a folder, and a model
        card = read_model_card(p)
        return p / card.files.get("keras", KERAS_FILE)
    return p


def open_runner(path: Path | str) -> Runner:
    model_file = resolve_model_file(path)
    suffix = model_file.suffix.lower()
    if suffix not in _RUNNERS:
        known = ", ".join(sorted(_RUNNERS))
        raise MlkitError(f"{model_file}: unknown model format {suffix or '(no suffix)'}; give one of {known}")
    card = read_model_card(model_file)
    return _RUNNERS[suffix][1](model_file, card)


def decide(probs: np.ndarray, spec: ModelSpec) -> np.ndarray:
    """Predicted class indices. Two classes: the positive class where its probability
    reaches ``spec.threshold``, else the other one. More classes: the most probable
    (the first of equals, in label order); the threshold does not apply."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.size == 0:
        return np.zeros(0, dtype=np.int64)
    if probs.shape[1] != 2:
        return probs.argmax(axis=1).astype(np.int64)
    pos = spec.positive_index
    others = probs.copy()
    others[:, pos] = -np.inf
    return np.where(probs[:, pos] >= spec.threshold, pos, others.argmax(axis=1)).astype(np.int64)


@dataclass
class Prediction:
    path: Path
    label: str
    probability: float                  # of the predicted label
    probabilities: dict[str, float]     # every label, in the model's order
    top_k: int = 0                      # how many of the most probable labels ``top`` lists

    @property
    def top(self) -> list[tuple[str, float]]:
        """The ``top_k`` most probable labels, most probable first (equals in label order)."""
        ranked = sorted(self.probabilities.items(), key=lambda kv: -kv[1])   # stable: label order for ties
        return ranked[:self.top_k]

    def to_json(self) -> dict:
        out = {"path": str(self.path), "label": self.label, "probability": round(self.probability, 6),
               "probabilities": {k: round(v, 6) for k, v in self.probabilities.items()}}
        if self.top_k:
            out["top"] = [{"label": k, "probability": round(v, 6)} for k, v in self.top]
        return out


NOT_AN_IMAGE = ("mlkit reads JPEG, PNG, BMP and GIF images: give image files in one of those formats (a "
                "damaged one can be opened and saved again in an image editor)")


def image_files(items: Sequence[Path | str]) -> list[Path]:
    """The image files ``items`` names: a file as given, a folder as every JPEG, PNG, BMP or
    GIF file in it and in its subfolders (by name, sorted), other files there skipped."""
    out: list[Path] = []
    for item in map(Path, items):
        if item.is_dir():
            found = sorted(p for p in item.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                           and not any(part.startswith(".") for part in p.relative_to(item).parts))
            if not found:
                raise MlkitError(f"{item} is a folder with no JPEG, PNG, BMP or GIF images in it (looked in its "
                                 "subfolders too): give image files, or a folder of them")
            out.extend(found)
        elif item.exists():
            out.append(item)
        else:
            raise MlkitError(f"no such image file: {item}")
    return out


def default_top_k(n_classes: int) -> int:
    """``--top-k`` by default: 3 for a model of more than two classes (at most its classes), none for two."""
    return 0 if n_classes <= 2 else min(3, n_classes)


def predict(model_path: Path | str, images: Sequence[Path | str], batch_size: int = 32,
            top_k: int | None = None) -> list[Prediction]:
    """Label and probabilities for each image file (a folder: each image in it, see
    ``image_files``), read and resized as in training. ``top_k``: also rank the k most
    probable labels (None: ``default_top_k``)."""
    from ..training.data import load_images

    if not images:
        raise MlkitError("give at least one image file to predict")
    spec = read_model_card(resolve_model_file(model_path)).spec
    n = len(spec.labels)
    if top_k is None:
        top_k = default_top_k(n)
    if top_k < 0:
        raise ParameterError("top_k", top_k, "must be 0 or more")
    top_k = min(top_k, n)
    images = image_files(images)
    # bad images fail before the model loads
    pixels = load_images(images, spec, batch_size=batch_size, advice=NOT_AN_IMAGE)
    runner = open_runner(model_path)
    probs = runner.predict(pixels)
    chosen = decide(probs, spec)
    return [Prediction(Path(p), spec.labels[k], float(row[k]), {lab: float(v) for lab, v in zip(spec.labels, row)},
                       top_k) for p, row, k in zip(images, probs, chosen)]
