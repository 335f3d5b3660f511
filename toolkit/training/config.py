"""What ``train`` is asked to do (``TrainConfig``) and what it gives back (``TrainResult``,
or ``TrainingInterrupted`` when it is stopped)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import finetune
from ..errors import MlkitError, ParameterError
from .evaluate import EvalResult
from .spec import ModelCard, ModelSpec

STRATEGIES = ("default", "mirrored", "multi-worker")

# Default head epochs: on cached features (fast path), and with images through the backbone.
FAST_HEAD_EPOCHS = 30
HEAD_EPOCHS = 10

EpochHook = Callable[[str, int, dict], None]


@dataclass
class TrainConfig:
    """The knobs of ``train``; defaults are the CLI's.

    dataset_dir: a folder written by ``mlkit build-dataset`` (with dataset.json), or any folder
    with one subfolder of images per class (or train/val/test of those), split with ``val``
    and ``test`` (fractions of each class) and ``seed``: see ``toolkit.dataset.folder``.
    name: model folder name under ``output_dir`` (default: the dataset's name).
    epochs: head epochs (phase 1), >= 1; None: 30 on the fast path (cheap there, and what
    the L2-penalised head needs to converge), 10 otherwise. fine_tune_epochs: phase-2 epochs (used when
    fine_tune_layers > 0). batch_size: images per step (the global batch under a strategy).
    learning_rate / fine_tune_learning_rate: Adam's, per phase. fine_tune_layers: how many
    of the backbone's top layers phase 2 trains (0: no phase 2; MobileNetV2 has 154).
    alpha, image_size, weights, dropout, resize_mode: see ModelSpec / build_classifier.
    l2: L2 penalty on the classifier's kernel while training (adds l2 * sum(kernel ** 2) to
    the loss; 0: none); a training term only, not saved with the model.
    seed: seeds every random choice and makes TensorFlow ops deterministic.
    augment: random flip / rotation / zoom / contrast on training images.
    fast: train the head on features computed once (None: whenever augment is off).
    patience: epochs without a better validation loss before a phase stops.
    strategy: "default" | "mirrored" | "multi-worker" (see ``toolkit.training.distribution``).
    resume: None: resume a matching interrupted run if there is one; True: require it;
    False: start over.
    overwrite: replace an earlier model in ``output_dir/name`` (with its exports); without
    it such a folder is refused before any work.
    quality: "fast" | "best" (see ``toolkit.training.finetune``: best fine-tunes the whole backbone
    with strong augmentation and a cosine schedule, filling in the fine-tuning settings the
    caller left at their defaults).
    exclude: a file of images to leave out of the train and val splits (``review.csv`` from
    ``mlkit review``, or ImageIDs / file names one per line; see ``toolkit.training.review``).
    """

    dataset_dir: Path
    name: str | None = None
    output_dir: Path = Path("models")
    epochs: int | None = None
    fine_tune_epochs: int = 5
    fine_tune_layers: int = 0
    batch_size: int = 32
    learning_rate: float = 1e-3
    fine_tune_learning_rate: float = 1e-5
    alpha: float = 1.0
    image_size: int = 224
    weights: str = "imagenet"
    dropout: float = 0.2
    l2: float = 0.1
    resize_mode: str = "squash"
    seed: int = 0
    augment: bool = False
    fast: bool | None = None
    patience: int = 3
    strategy: str = "default"
    resume: bool | None = None
    overwrite: bool = False
    val: float = 0.1     # a plain folder (no dataset.json): fractions of each class held out
    test: float = 0.1
    quality: str = "fast"
    exclude: Path | None = None

    @property
    def use_fast_path(self) -> bool:
        return (not self.augment) if self.fast is None else self.fast

    @property
    def head_epochs(self) -> int:
        """Phase-1 epochs: ``epochs``, or its default for the path taken."""
        if self.epochs is not None:
            return self.epochs
        return FAST_HEAD_EPOCHS if self.use_fast_path else HEAD_EPOCHS

    @property
    def fine_tunes(self) -> bool:
        return self.fine_tune_layers > 0 and self.fine_tune_epochs > 0

    def validate(self) -> None:
        finetune.check_quality(self.quality)
        self._check_ranges()
        if self.strategy not in STRATEGIES:
            raise MlkitError(f"unknown --strategy {self.strategy!r}; choose one of {', '.join(STRATEGIES)}")
        if self.name is not None and (not self.name.strip() or any(c in self.name for c in "/\\") or
                                      self.name.startswith(".")):
            raise ParameterError("name", self.name, "must be a plain folder name (no slashes, not hidden)")
        ModelSpec(labels=["positive", "negative"], alpha=self.alpha, image_size=self.image_size,
                  dropout=self.dropout, resize_mode=self.resize_mode)  # checks those values now
        if self.fast and self.augment and not self.fine_tunes:
            raise MlkitError("--fast trains the head on features computed once from unaugmented images, so "
                             "--augment would change nothing: use --no-fast with --augment (slower), or add "
                             "--fine-tune-layers N (augmentation then applies to fine-tuning)")

    def _check_ranges(self) -> None:
        for key, low in (("epochs", 1), ("batch_size", 1), ("patience", 1)):
            if getattr(self, key) is not None and getattr(self, key) < low:
                raise ParameterError(key, getattr(self, key), f"must be at least {low}")
        for key in ("fine_tune_epochs", "fine_tune_layers"):
            if getattr(self, key) < 0:
                raise ParameterError(key, getattr(self, key), "must be 0 or more")
        for key in ("learning_rate", "fine_tune_learning_rate"):
            if not 0 < getattr(self, key) < 10:
                raise ParameterError(key, getattr(self, key), "must be a small positive number")
        if not (0 <= self.l2 < 100):   # also rejects NaN
            raise ParameterError("l2", self.l2, "must be 0 (no penalty) or a small positive number")

    def settings(self) -> dict[str, Any]:
        """The settings as training.json and the checkpoint record them (``overwrite`` is
        not one: it says what may be replaced, not what is trained)."""
        d = asdict(self)
        d["dataset_dir"], d["output_dir"] = str(self.dataset_dir), str(self.output_dir)
        d["exclude"] = None if self.exclude is None else str(self.exclude)
        d["fast"] = self.use_fast_path
        d["epochs"] = self.head_epochs
        d.pop("overwrite")
        return d


@dataclass
class TrainResult:
    path: Path                         # the model folder
    name: str
    card: ModelCard
    history: list[dict]                # one row per epoch: phase, epoch, loss, accuracy, val_*, seconds
    timings: dict[str, float]
    evaluation: EvalResult | None      # on the test split (else val)
    resumed_from: str | None           # "head epoch 3" when an interrupted run was resumed
    files: list[str]
    notes: list[str] = field(default_factory=list)

    @property
    def spec(self) -> ModelSpec:
        return self.card.spec

    @property
    def report(self) -> str:
        return self.evaluation.report if self.evaluation else "(no evaluation split)"

    def to_json(self) -> dict:
        return {"path": str(self.path), "name": self.name, "model": self.card.to_json(), "history": self.history,
                "timings": self.timings, "evaluation": self.evaluation.to_json() if self.evaluation else None,
                "resumed_from": self.resumed_from, "files": self.files, "notes": self.notes}


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped by Ctrl-C (or a hook); the message says truthfully what was kept."""
