"""``ModelSpec``: the facts a trained model carries, decided once and written to
``model.json`` beside it.

Labels, input size, pixel range, colour order, how an image is resized, the
normalisation inside the model, and the decision threshold are read back from
``model.json`` by every later stage (evaluate, predict, export, validate, the iOS
sample) instead of being repeated as literals there.

The model takes RGB pixels in 0..255 (float32, NHWC, ``image_size`` square) and
normalises them itself with MobileNetV2's ``x / 127.5 - 1``, so every exported format
takes raw pixels.
"""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import MlkitError, ParameterError
from ..fsutil import atomic_write_text

MODEL_JSON = "model.json"
KERAS_FILE = "model.keras"
LABELS_FILE = "labels.txt"
FORMAT = 1
BUNDLE_SUFFIXES = (".mlpackage",)   # model formats that are folders

BACKBONES = ("mobilenet_v2",)
# Image to model input: "squash" scales the whole image to a square, ignoring its aspect
# ratio (Vision's VNImageCropAndScaleOption.scaleFill; what Keras' image_dataset_from_directory
# does); "center_crop" takes the largest centred square, then scales it (Vision's default,
# .centerCrop). Squash is the default: nothing in the photo is cut away, and on the seefood
# photos it was as accurate at 224 px and more accurate at 256-320 px (5-fold CV).
RESIZE_MODES = ("squash", "center_crop")
PIXEL_RANGE = (0.0, 255.0)
COLOR_ORDER = "RGB"
# Inside the model: y = x * scale + offset, i.e. MobileNetV2's x / 127.5 - 1.
NORM_SCALE = 1.0 / 127.5
NORM_OFFSET = -1.0


@dataclass
class ModelSpec:
    """What the model is and what input it expects.

    labels: class names in output order, the positive class first (as ``dataset.json``
        lists them, or ``toolkit.dataset.folder`` orders a plain folder's); two or more.
        ``positive_label`` is ``labels[0]`` unless given.
    alpha: MobileNetV2 width multiplier (0.35, 0.5, 0.75, 1.0, 1.3, 1.4 have ImageNet weights).
    image_size: side of the square input in pixels (>= 32; 96, 128, 160, 192, 224 have
        ImageNet weights).
    dropout: dropout rate before the classifier (training only).
    resize_mode: see RESIZE_MODES.
    threshold: two classes: the positive class is predicted when its probability is >= this,
        else the other label (0.5 is the argmax). More classes: not used; the most probable
        label is predicted (``toolkit.runtimes.predict.decide``).
    """

    labels: list[str]
    alpha: float = 1.0
    image_size: int = 224
    dropout: float = 0.2
    resize_mode: str = "squash"
    threshold: float = 0.5
    positive_label: str = ""
    backbone: str = "mobilenet_v2"

    def __post_init__(self) -> None:
        self.labels = [str(x) for x in self.labels]
        if not self.positive_label and self.labels:
            self.positive_label = self.labels[0]
        self.validate()

    # ----------------------------------------------------------------------- checks
    def validate(self) -> None:
        if len(self.labels) < 2:
            raise MlkitError(f"a classifier needs at least two classes, got {self.labels or 'none'}")
        if len(set(self.labels)) != len(self.labels):
            raise MlkitError(f"class labels must be distinct, got {self.labels}")
        if self.positive_label not in self.labels:
            raise MlkitError(f"positive label {self.positive_label!r} is not one of the labels {self.labels}")
        if self.backbone not in BACKBONES:
            raise MlkitError(f"unknown backbone {self.backbone!r}; this toolkit builds {', '.join(BACKBONES)}")
        if not 0 < self.alpha <= 2:
            raise ParameterError("alpha", self.alpha, "must be in (0, 2]")
        if not 32 <= self.image_size <= 1024:
            raise ParameterError("image_size", self.image_size, "must be between 32 and 1024 pixels")
        if not 0 <= self.dropout < 1:
            raise ParameterError("dropout", self.dropout, "must be in [0, 1)")
        if self.resize_mode not in RESIZE_MODES:
            raise MlkitError(f"unknown resize mode {self.resize_mode!r} (--resize); choose "
                             f"{' or '.join(m.replace('_', '-') for m in RESIZE_MODES)}")
        if not 0 <= self.threshold <= 1:
            raise ParameterError("threshold", self.threshold, "must be in [0, 1]", flag="")

    @property
    def positive_index(self) -> int:
        return self.labels.index(self.positive_label)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return (self.image_size, self.image_size, 3)

    # ----------------------------------------------------------------------- JSON
    def to_json(self) -> dict[str, Any]:
        """The model facts as they appear at the top of ``model.json``."""
        return {
            "backbone": self.backbone,
            "alpha": self.alpha,
            "image_size": self.image_size,
            "labels": list(self.labels),
            "positive_label": self.positive_label,
            "threshold": self.threshold,
            "input": {
                "shape": [1, self.image_size, self.image_size, 3],
                "layout": "NHWC",
                "dtype": "float32",
                "color": COLOR_ORDER,
                "pixel_range": list(PIXEL_RANGE),
                "resize_mode": self.resize_mode,
                "resize": "bilinear, antialiased; pixels rounded to whole numbers 0..255",
            },
            "normalization": {
                "in_model": True,
                "scale": NORM_SCALE,
                "offset": NORM_OFFSET,
                "formula": "x * scale + offset (MobileNetV2: x / 127.5 - 1), done by the model's first layer",
            },
            "output": {"kind": "probabilities", "activation": "softmax", "classes": len(self.labels)},
            "dropout": self.dropout,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any], source: str = "model.json") -> ModelSpec:
        try:
            inp = doc.get("input", {})
            norm = doc.get("normalization", {})
            if list(inp.get("pixel_range", PIXEL_RANGE)) != list(PIXEL_RANGE) or \
                    inp.get("color", COLOR_ORDER) != COLOR_ORDER or not norm.get("in_model", True):
                raise MlkitError(f"{source}: this toolkit only handles models that take RGB pixels in 0..255 "
                                 "and normalise them inside the model")
            return cls(labels=list(doc["labels"]), alpha=float(doc["alpha"]), image_size=int(doc["image_size"]),
                       dropout=float(doc.get("dropout", 0.2)), resize_mode=inp.get("resize_mode", "squash"),
                       threshold=float(doc.get("threshold", 0.5)), positive_label=doc.get("positive_label", ""),
                       backbone=doc.get("backbone", "mobilenet_v2"))
        except (KeyError, TypeError, ValueError) as exc:
            raise MlkitError(f"{source} is not a model description written by mlkit train ({exc!r})") from exc


@dataclass
class ModelCard:
    """``model.json``: the spec plus where the model came from."""

    spec: ModelSpec
    name: str
    dataset: dict[str, Any] = field(default_factory=dict)    # name, path, content_hash, classes
    weights: dict[str, Any] = field(default_factory=dict)    # initial weights: kind, file
    training: dict[str, Any] = field(default_factory=dict)   # a summary of the settings and outcome
    metrics: dict[str, Any] = field(default_factory=dict)    # on the test split
    versions: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=lambda: {"keras": KERAS_FILE, "labels": LABELS_FILE})

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "name": self.name, **self.spec.to_json(), "files": self.files,
                "dataset": self.dataset, "weights": self.weights, "training": self.training,
                "metrics": self.metrics, "versions": self.versions or library_versions()}

    def write(self, folder: Path) -> Path:
        path = Path(folder) / MODEL_JSON
        atomic_write_text(path, json.dumps(self.to_json(), indent=2) + "\n")
        return path

    @classmethod
    def from_json(cls, doc: dict[str, Any], source: str = MODEL_JSON) -> ModelCard:
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise MlkitError(f"{source} has an unknown format (expected \"format\": {FORMAT}); "
                             "was it written by a newer mlkit?")
        return cls(spec=ModelSpec.from_json(doc, source), name=str(doc.get("name", "")),
                   dataset=doc.get("dataset", {}), weights=doc.get("weights", {}),
                   training=doc.get("training", {}), metrics=doc.get("metrics", {}),
                   versions=doc.get("versions", {}), files=doc.get("files", {}))


def read_model_card(path: Path | str) -> ModelCard:
    """Read ``model.json`` given the file itself, its folder, or any model file beside it."""
    json_path = find_model_json(path)
    try:
        doc = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise MlkitError(f"cannot read {json_path}: {exc}") from exc
    return ModelCard.from_json(doc, str(json_path))


def find_model_json(path: Path | str) -> Path:
    p = Path(path)
    if not p.exists():
        raise MlkitError(f"{p} does not exist: give a model folder written by `mlkit train` "
                         f"(models/<name>) or a model file in it")
    in_folder = p.is_dir() and p.suffix.lower() not in BUNDLE_SUFFIXES  # a model folder, not an .mlpackage
    candidate = p if p.name == MODEL_JSON else (p / MODEL_JSON if in_folder else p.parent / MODEL_JSON)
    if not candidate.is_file():
        raise MlkitError(f"no {MODEL_JSON} beside {p}: the labels and input facts of a model live there "
                         "(written by `mlkit train`); keep it in the model's folder")
    return candidate


def library_versions() -> dict[str, str]:
    import keras
    import numpy
    import tensorflow as tf

    return {"toolkit": __version__, "tensorflow": tf.__version__, "keras": keras.__version__,
            "numpy": numpy.__version__, "python": platform.python_version()}


def labels_text(labels: list[str]) -> str:
    """``labels.txt``: one label a line, in output order."""
    return "".join(f"{label}\n" for label in labels)
