"""``train``: a MobileNetV2 image classifier from a dataset folder, in two phases.

1. The head (dropout + softmax Dense) on a frozen backbone. On the fast path (the
   default when augmentation is off) the frozen backbone's pooled features are computed
   once for the train and val images and the head is trained on them: one forward pass
   per image instead of one per image per epoch, which is most of a CPU user's time.
   Otherwise (``augment``, or ``fast=False``) images flow through the frozen backbone
   every epoch, as Keras' transfer-learning guide does. The classifier's kernel carries
   an L2 penalty (``l2``) while it trains, and on the fast path the head trains for 30
   epochs by default: an L2-penalised softmax layer on fixed features is a regularised
   logistic regression, and it needs about that many Adam epochs to reach its optimum
   (on the seefood photos, 5-fold CV: +1.2 points at 224 px over 10 unpenalised epochs;
   each epoch costs milliseconds there). The penalty is not saved with the model.
2. Optionally (``fine_tune_layers > 0``), the top N backbone layers are unfrozen and
   trained with the whole model at a lower learning rate. BatchNormalization layers stay
   frozen (inference mode) throughout.

Class weights and oversampling come from ``dataset.json``. Each phase stops early when
the validation loss has not improved for ``patience`` epochs, and ends with the weights of
its best epoch. After every epoch a checkpoint (model with optimizer state, early-stopping
state and best weights, history, cached features) is written atomically under
``<output>/.<name>.checkpoint/``; running the same command again resumes from it (with
other settings it is set aside and training starts over; ``resume=True`` insists,
``resume=False`` starts over). Each epoch's batch order depends only on the seed and the
epoch's number (``toolkit.training.epochs``), so a resumed run ends with the weights of an
uninterrupted one. The outputs appear under ``<output>/<name>/`` only when complete:
model.keras, labels.txt, model.json, training.json and the PNG plots are written to a
staging folder that is then exchanged with the old one in one step; an existing model
folder is replaced only with ``overwrite`` (``toolkit.training.model_folder``).

Scaling out uses TensorFlow's own engine, ``tf.distribute``: ``strategy="mirrored"``
trains on every local GPU (synchronous data parallelism; ``batch_size`` is the global
batch; with no GPU it mirrors over the CPU, which is how the tests run it).
``"multi-worker"`` is ``MultiWorkerMirroredStrategy``: each machine runs the same command
with its own ``TF_CONFIG`` (the cluster and its task index) and only the chief writes
outputs and checkpoints. Keras 3 cannot yet ``fit`` under that strategy when the cluster
has more than one worker (keras-team/keras#20585, open since TF 2.16; reproduced here with
Keras 3.15 / TF 2.21), so such a TF_CONFIG is refused with a clear error before any work;
without TF_CONFIG it runs as a single worker.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from . import finetune
from . import plots
from .data import (DatasetInfo, SplitFiles, check_image_files, class_weight_dict,
                   decode_errors_named, image_dataset, load_images, oversample, read_dataset, split_files)
from .epochs import epoch_batches
from ..errors import MlkitError
from .evaluate import EvalResult, score
from ..dataset.folder import FolderSplit
from ..fsutil import atomic_write_bytes, atomic_write_text, usual_permissions
from .model import (BACKBONE_LAYER, WeightsChoice, build_classifier, build_head, copy_head, drop_weight_penalties,
                    feature_extractor, load_keras_model, predict_batches, resolve_weights, save_keras, unfreeze_top)
from .model_folder import check_output, swap_in, write_error
from .spec import KERAS_FILE, LABELS_FILE, ModelCard, ModelSpec, labels_text, library_versions

STRATEGIES = ("default", "mirrored", "multi-worker")
TRAINING_JSON = "training.json"
PLOT_FILES = {"curves": "learning_curves.png", "confusion": "confusion_matrix.png",
              "misclassified": "misclassified.png"}
# Settings that change what a run computes; a checkpoint made with others is not resumed.
# (epochs, fine_tune_epochs and patience may change: a resumed run can train longer.)
_SHAPING = ("alpha", "image_size", "weights", "dropout", "l2", "resize_mode", "batch_size", "learning_rate",
            "fine_tune_learning_rate", "fine_tune_layers", "seed", "augment", "fast", "strategy", "quality",
            "exclude")

# Default head epochs: on cached features (fast path), and with images through the backbone.
FAST_HEAD_EPOCHS = 30
HEAD_EPOCHS = 10

Log = Callable[[str], None]
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
    strategy: "default" | "mirrored" | "multi-worker" (see the module doc).
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
    progress: bool = True
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
        for key, low in (("epochs", 1), ("batch_size", 1), ("patience", 1)):
            if getattr(self, key) is not None and getattr(self, key) < low:
                raise MlkitError(f"--{key.replace('_', '-')} must be at least {low}, got {getattr(self, key)}")
        for key in ("fine_tune_epochs", "fine_tune_layers"):
            if getattr(self, key) < 0:
                raise MlkitError(f"--{key.replace('_', '-')} must be 0 or more, got {getattr(self, key)}")
        for key in ("learning_rate", "fine_tune_learning_rate"):
            if not 0 < getattr(self, key) < 10:
                raise MlkitError(f"--{key.replace('_', '-')} must be a small positive number, got {getattr(self, key)}")
        if not (0 <= self.l2 < 100):   # also rejects NaN
            raise MlkitError(f"--l2 must be 0 (no penalty) or a small positive number, got {self.l2}")
        if self.strategy not in STRATEGIES:
            raise MlkitError(f"unknown --strategy {self.strategy!r}; choose one of {', '.join(STRATEGIES)}")
        if self.name is not None and (not self.name.strip() or any(c in self.name for c in "/\\") or
                                      self.name.startswith(".")):
            raise MlkitError(f"--name {self.name!r} must be a plain folder name (no slashes, not hidden)")
        ModelSpec(labels=["positive", "negative"], alpha=self.alpha, image_size=self.image_size,
                  dropout=self.dropout, resize_mode=self.resize_mode)  # checks those values now
        if self.fast and self.augment and not self.fine_tunes:
            raise MlkitError("--fast trains the head on features computed once from unaugmented images, so "
                             "--augment would change nothing: use --no-fast with --augment (slower), or add "
                             "--fine-tune-layers N (augmentation then applies to fine-tuning)")

    def settings(self) -> dict[str, Any]:
        d = asdict(self)
        d["dataset_dir"], d["output_dir"] = str(self.dataset_dir), str(self.output_dir)
        d["exclude"] = None if self.exclude is None else str(self.exclude)
        d["fast"] = self.use_fast_path
        d["epochs"] = self.head_epochs
        d.pop("progress")
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


# ------------------------------------------------------------------------------ checkpoints

class _Checkpoints:
    """``<output>/.<name>.checkpoint/``: state.json plus the files it names. Every file
    is written atomically before state.json names it; files it no longer names are
    removed after. A kill at any moment leaves a consistent, resumable checkpoint."""

    def __init__(self, folder: Path, fingerprint: str, enabled: bool = True):
        self.folder, self.fingerprint, self.enabled = folder, fingerprint, enabled
        self.state: dict[str, Any] = {"fingerprint": fingerprint, "phases": {}, "history": []}

    def open(self, resume: bool | None, settings: dict, say: Log) -> bool:
        """Load a matching checkpoint; True when one is resumed."""
        path = self.folder / "state.json"
        old = None
        if path.is_file():
            try:
                old = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                old = None
        if resume is False or old is None:
            if resume is True:
                raise MlkitError(f"--resume: there is no interrupted run to resume in {self.folder}")
            if old is not None or self.folder.exists():
                shutil.rmtree(self.folder, ignore_errors=True)
            return False
        if old.get("fingerprint") != self.fingerprint:
            differs = sorted(k for k in settings if k in _SHAPING and old.get("settings", {}).get(k) != settings[k])
            what = ", ".join(differs) if differs else "the dataset"
            if resume is True:
                raise MlkitError(f"the interrupted run in {self.folder} used other settings ({what} differ); "
                                 "rerun with those, or with --no-resume to start over")
            say(f"An interrupted run with other settings ({what}) was set aside; training from the start.")
            shutil.rmtree(self.folder, ignore_errors=True)
            return False
        self.state = old
        return True

    def file(self, name: str) -> Path:
        return self.folder / name

    def write_array(self, name: str, array: np.ndarray) -> str:
        if self.enabled:
            buf = io.BytesIO()
            np.save(buf, array, allow_pickle=False)
            atomic_write_bytes(self.folder / name, buf.getvalue())
        return name

    def read_array(self, name: str) -> np.ndarray:
        return np.load(self.folder / name, allow_pickle=False)

    def write_weights(self, name: str, weights: list[np.ndarray]) -> str:
        if self.enabled:
            buf = io.BytesIO()
            np.savez(buf, *weights)
            atomic_write_bytes(self.folder / name, buf.getvalue())
        return name

    def read_weights(self, name: str) -> list[np.ndarray]:
        with np.load(self.folder / name, allow_pickle=False) as z:
            return [z[f"arr_{i}"] for i in range(len(z.files))]

    def write_model(self, name: str, model) -> str:
        if self.enabled:
            save_keras(model, self.folder / name)
        return name

    def commit(self, settings: dict) -> None:
        """Write state.json, then drop files it no longer names."""
        if not self.enabled:
            return
        self.state["settings"] = settings
        atomic_write_text(self.folder / "state.json", json.dumps(self.state, indent=1))
        keep = {"state.json"} | set(_referenced_files(self.state))
        for p in self.folder.iterdir():
            if p.name not in keep and not p.name.startswith(".") and p.is_file():
                p.unlink(missing_ok=True)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def _referenced_files(obj) -> list[str]:
    if isinstance(obj, dict):
        return [f for k, v in obj.items() for f in ([v] if k.endswith("file") and isinstance(v, str)
                                                    else _referenced_files(v))]
    if isinstance(obj, list):
        return [f for v in obj for f in _referenced_files(v)]
    return []


# ------------------------------------------------------------------------------ callbacks

def _keras_callbacks():
    """Callback classes (defined lazily: importing keras is slow)."""
    import keras

    class EpochKeeper(keras.callbacks.Callback):
        """Early stopping on the validation loss that always ends a phase with its best
        weights, plus the per-epoch checkpoint and history."""

        def __init__(self, phase: str, run: _Run, patience: int, epochs: int):
            super().__init__()
            self.phase, self.run, self.patience, self.epochs = phase, run, patience, epochs
            st = run.ckpt.state["phases"].setdefault(phase, {"epoch": 0, "done": False, "wait": 0, "best": None,
                                                             "seconds": 0.0})
            self.st = st
            self.best_weights = run.ckpt.read_weights(st["best"]["file"]) if st.get("best") else None
            self.t0 = time.perf_counter()

        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            seconds = time.perf_counter() - self.t0
            row = {"phase": self.phase, "epoch": epoch + 1, **{k: _num(logs.get(k)) for k in
                   ("loss", "accuracy", "val_loss", "val_accuracy")}, "seconds": round(seconds, 3)}
            self.run.ckpt.state["history"].append(row)
            val = logs.get("val_loss")
            best = self.st["best"]
            if val is not None and math.isfinite(val) and (best is None or val < best["val_loss"]):
                self.best_weights = self.model.get_weights()
                name = self.run.ckpt.write_weights(f"{self.phase}-best-e{epoch + 1:03d}.npz", self.best_weights)
                self.st["best"] = {"val_loss": float(val), "epoch": epoch + 1, "file": name}
                self.st["wait"] = 0
            else:
                self.st["wait"] += 1
            stop = self.st["wait"] >= self.patience
            self.st["epoch"] = epoch + 1
            self.st["done"] = stop or epoch + 1 >= self.epochs
            self.st["stopped_early"] = stop and epoch + 1 < self.epochs
            self.st["seconds"] = round(self.st.get("seconds", 0.0) + seconds, 3)
            self.st["model_file"] = self.run.ckpt.write_model(f"{self.phase}-e{epoch + 1:03d}.keras", self.model)
            self.run.ckpt.commit(self.run.settings)
            self.run.show_epoch(row)
            if stop:
                self.model.stop_training = True
            if self.run.on_epoch_end:
                self.run.on_epoch_end(self.phase, epoch + 1, row)

        def on_train_end(self, logs=None):
            if self.best_weights is not None:
                self.model.set_weights(self.best_weights)

    class Progress(keras.callbacks.Callback):
        def __init__(self, advance: Callable[[], None]):
            super().__init__()
            self.advance = advance

        def on_train_batch_end(self, batch, logs=None):
            self.advance()

    return EpochKeeper, Progress


def _num(v) -> float | None:
    return None if v is None else round(float(v), 6)


# ------------------------------------------------------------------------------ the run

class _Run:
    """State shared by the steps of one ``train`` call."""

    def __init__(self, config: TrainConfig, say: Log, on_epoch_end: EpochHook | None):
        self.config, self.say, self.on_epoch_end = config, say, on_epoch_end
        self.settings = config.settings()
        self.ckpt: _Checkpoints
        self._progress = None
        self._task = None

    # progress display: a rich bar on stderr when enabled and a terminal, else log lines
    @contextmanager
    def display(self, description: str, total: int) -> Iterator[None]:
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        console = Console(stderr=True)
        progress = Progress(TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(),
                            TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                            console=console, disable=not (self.config.progress and console.is_terminal),
                            transient=False)
        self._task = progress.add_task(description, total=total, info="")
        self._progress = progress
        try:
            with progress:
                yield
        finally:
            self._progress = None

    def advance(self) -> None:
        if self._progress is not None:
            self._progress.update(self._task, advance=1)

    def show_epoch(self, row: dict) -> None:
        text = (f"{row['phase']} epoch {row['epoch']}: loss {_fmt(row['loss'])} acc {_fmt(row['accuracy'])} "
                f"val_loss {_fmt(row['val_loss'])} val_acc {_fmt(row['val_accuracy'])} ({row['seconds']:.1f} s)")
        if self._progress is not None and not self._progress.disable:
            self._progress.update(self._task, info=f"val_acc {_fmt(row['val_accuracy'])}")
            self._progress.console.print(text, highlight=False)
        else:
            self.say(text)


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.4f}"


def train(config: TrainConfig, log: Log | None = None, on_epoch_end: EpochHook | None = None) -> TrainResult:
    """Train, evaluate and save a classifier; see the module doc.

    ``log`` receives progress messages; ``on_epoch_end(phase, epoch, row)`` is called after
    each epoch's checkpoint is written (an exception it raises stops training there, e.g.
    KeyboardInterrupt; running again resumes). A KeyboardInterrupt leaves as
    ``TrainingInterrupted``, whose message says what was kept. Raises MlkitError on bad
    input before anything is written, and for a full or read-only disk."""
    t_start = time.perf_counter()
    say = log or (lambda _m: None)
    config = finetune.with_quality(config)
    config.validate()
    info = read_dataset(config.dataset_dir, FolderSplit(config.val, config.test, config.seed), check_decodes=True,
                        log=say)
    train_files = split_files(info, "train")
    val_files = split_files(info, "val", require_all_classes=False)
    notes: list[str] = []
    exclusion = None
    if config.exclude is not None:
        from .review import exclude_from_splits

        train_files, val_files, exclusion = exclude_from_splits(config.exclude, info, train_files, val_files)
        notes.append(exclusion.note)
    try:
        test_files: SplitFiles | None = split_files(info, "test", require_all_classes=False)
    except MlkitError:
        test_files = None
        notes.append("the test split is empty: the report and plots below are on the validation split")
    all_paths = train_files.paths + val_files.paths + (test_files.paths if test_files else [])
    check_image_files(all_paths)
    if config.batch_size > len(train_files):
        raise MlkitError(f"the train split ({len(train_files)} images) can't be smaller than --batch-size "
                         f"({config.batch_size}): set a smaller --batch-size or add data")
    spec = ModelSpec(labels=info.classes, alpha=config.alpha, image_size=config.image_size,
                     dropout=config.dropout, resize_mode=config.resize_mode)
    weights = resolve_weights(config.weights, spec)
    if weights.note:
        notes.append(weights.note)
    name = config.name or info.name
    out_root = Path(config.output_dir)
    check_output(out_root / name, config.overwrite)
    fast = config.use_fast_path
    if config.augment and fast:
        notes.append("--fast with --augment: the head trains on unaugmented features; augmentation applies to "
                     "fine-tuning")

    strategy = _make_strategy(config.strategy, notes)
    chief = _is_chief(strategy)
    scratch = None
    if not chief:  # other workers compute the same, but write into a scratch folder
        scratch = Path(tempfile.mkdtemp(prefix="mlkit-worker-"))
        out_root = scratch
    run = _Run(config, say, on_epoch_end)
    if exclusion is not None:  # what is left out shapes the run, not the file's name
        run.settings["exclude"] = exclusion.to_json()
    fingerprint = _fingerprint(run.settings, info)
    run.ckpt = _Checkpoints(out_root / f".{name}.checkpoint", fingerprint)
    resumed = run.ckpt.open(config.resume, run.settings, say)
    resumed_from = _describe_progress(run.ckpt.state) if resumed else None
    if resumed_from:
        say(f"Resuming the interrupted run ({resumed_from}).")

    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(config.seed)
    try:
        tf.config.experimental.enable_op_determinism()
    except Exception:  # noqa: BLE001 - determinism is best effort on exotic setups
        notes.append("TensorFlow op determinism could not be enabled; results may vary slightly between runs")

    train_used = oversample(train_files, info)
    class_weight = class_weight_dict(info)
    timings: dict[str, float] = {}
    eval_files = test_files or val_files
    model = None
    try:
        with decode_errors_named(all_paths):
            with strategy.scope():
                model = build_classifier(spec, weights, l2=config.l2)
            _check_backbone(run, model)
            probs = None
            if fast:
                splits = {"train": train_files, "val": val_files,
                          **({"test": test_files} if test_files and not config.fine_tunes else {})}
                feats = _features(run, model, spec, splits, timings)
                head = _train_head_on_features(run, strategy, spec, feats, train_files, train_used, val_files,
                                               class_weight, timings)
                copy_head(head, model)
                if eval_files.split in feats:  # the model's output there is the head's on its features
                    probs = predict_batches(head, [feats[eval_files.split]])
            else:
                model = _train_end_to_end(run, strategy, spec, model, "head", train_used, val_files, class_weight,
                                          timings)
            if config.fine_tunes:
                model = _train_end_to_end(run, strategy, spec, model, "fine_tune", train_used, val_files,
                                          class_weight, timings)
            final = keras.Model(model.input, model.output, name=model.name)  # same layers, no optimizer
            drop_weight_penalties(final)
            t0 = time.perf_counter()
            if probs is None:
                probs = predict_batches(final, image_dataset(eval_files.paths, spec, batch_size=config.batch_size,
                                                             cache=False))
            else:
                _check_assembly(final, eval_files, spec, probs)
            timings["evaluate_seconds"] = round(time.perf_counter() - t0, 3)
        evaluation = score(spec, eval_files.labels, probs, paths=eval_files.paths,
                           model=str(out_root / name / KERAS_FILE), data=str(info.path), split=eval_files.split)
        timings["total_seconds"] = round(time.perf_counter() - t_start, 3)
        history = list(run.ckpt.state["history"])
        card = _model_card(config, spec, name, info, weights, run, evaluation)
        files = _write_outputs(out_root / name, final, card, config, info, weights, history, timings, evaluation,
                               resumed_from, notes)
        run.ckpt.remove()
    except KeyboardInterrupt as exc:   # Ctrl-C, or an on_epoch_end hook that stops the run
        if isinstance(exc, TrainingInterrupted):
            raise
        raise TrainingInterrupted(interrupted_message(run.ckpt)) from None
    except OSError as exc:   # a full or read-only disk under the checkpoint or the model folder
        error = write_error(out_root / name, exc, model)
        if error is None:
            raise
        raise error from None
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return TrainResult(out_root / name, name, card, history, timings, evaluation, resumed_from, files, notes)


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped by Ctrl-C (or a hook); the message says truthfully what was kept."""


def interrupted_message(ckpt: _Checkpoints) -> str:
    """What an interrupted run leaves for the next one: read from the checkpoint on disk
    (what was committed), not from memory."""
    try:
        state = json.loads((ckpt.folder / "state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        state = None
    if not ckpt.enabled or not state:
        return ("Interrupted before anything could be kept (no backbone features computed, no epoch finished): "
                "running the same command again starts from the beginning.")
    progress = _describe_progress(state)
    if progress == "features computed":
        return ("Interrupted before the first epoch finished. The backbone features are kept; run the same "
                "command again to resume from them.")
    if progress == "started":
        return "Interrupted before the first epoch finished: running the same command again starts that epoch over."
    return (f"Interrupted. Training is checkpointed up to {progress}; the epoch under way was lost. Run the "
            "same command again to resume from there.")


def _describe_progress(state: dict) -> str | None:
    phases = state.get("phases", {})
    for phase in ("fine_tune", "head"):
        if phase in phases and phases[phase].get("epoch"):
            return f"{phase} epoch {phases[phase]['epoch']}"
    if state.get("features"):
        return "features computed"
    return "started"


def _fingerprint(settings: dict, info: DatasetInfo) -> str:
    doc = {k: settings[k] for k in _SHAPING}
    doc["dataset"] = info.content_hash or str(info.path.resolve())
    if info.source:   # a plain folder: its split is part of the data
        doc["split"] = info.source
    doc["toolkit"] = __version__
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def _check_backbone(run: _Run, model) -> None:
    """A resumed run must start from the same backbone (e.g. the same seeded random init)."""
    first = model.get_layer(BACKBONE_LAYER).weights[0].numpy()
    digest = hashlib.sha256(first.tobytes()).hexdigest()[:16]
    state = run.ckpt.state
    if state.get("backbone_digest") not in (None, digest):
        raise MlkitError(f"the interrupted run in {run.ckpt.folder} started from other backbone weights; "
                         "rerun with --no-resume to start over")
    state["backbone_digest"] = digest


def _compile(model, learning_rate: float) -> None:
    import keras

    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])


def _features(run: _Run, model, spec: ModelSpec, splits: dict[str, SplitFiles],
              timings: dict) -> dict[str, np.ndarray]:
    """The frozen backbone's pooled features of every image of ``splits``, in one pass
    (one traced function), kept in the checkpoint."""
    state = run.ckpt.state.setdefault("features", {})
    if not all(state.get(f"{s}_file") for s in splits):
        paths = [p for f in splits.values() for p in f.paths]
        run.say("Computing backbone features once: " + ", ".join(f"{len(f)} {s}" for s, f in splits.items())
                + " images ...")
        t0 = time.perf_counter()
        extractor = feature_extractor(model)
        ds = image_dataset(paths, spec, batch_size=run.config.batch_size, cache=False)
        # Computed on this machine's default device, also under a strategy (each worker of a
        # multi-worker run computes them all; Keras' predict cannot gather them there).
        with run.display("features", math.ceil(len(paths) / run.config.batch_size)):
            feats = predict_batches(extractor, ds, on_batch=run.advance)
        start = 0
        for split, files in splits.items():
            state[f"{split}_file"] = run.ckpt.write_array(f"features-{split}.npy", feats[start:start + len(files)])
            start += len(files)
        state["seconds"] = round(time.perf_counter() - t0, 3)
        state["images"] = len(paths)
        run.ckpt.commit(run.settings)
    timings["features_seconds"] = state["seconds"]
    timings["features_images"] = state["images"]
    timings["features_images_per_second"] = round(state["images"] / max(state["seconds"], 1e-9), 2)
    return {s: run.ckpt.read_array(state[f"{s}_file"]) for s in splits}


def _train_head_on_features(run: _Run, strategy, spec: ModelSpec, feats: dict[str, np.ndarray],
                            train_files: SplitFiles, train_used: SplitFiles, val_files: SplitFiles, class_weight,
                            timings: dict):
    cfg = run.config
    f_train, f_val = feats["train"], feats["val"]
    if len(train_used) != len(train_files):  # oversampling repeats rows
        index = {p: i for i, p in enumerate(train_files.paths)}
        f_train = f_train[[index[p] for p in train_used.paths]]
    head = _phase_model(run, strategy, "head", lambda: build_head(spec, f_train.shape[1], cfg.l2),
                        cfg.learning_rate)

    def data(start: int) -> dict:
        import tensorflow as tf

        rows = tf.data.Dataset.from_tensor_slices((f_train, np.asarray(train_used.labels, np.int64)))
        return dict(x=epoch_batches(rows, len(f_train), cfg.batch_size, cfg.seed, start, cfg.head_epochs),
                    validation_data=(f_val, val_files.labels), validation_batch_size=cfg.batch_size)

    _fit(run, head, "head", cfg.head_epochs, data, class_weight, len(train_used),
         math.ceil(len(train_used) / cfg.batch_size), timings)
    return head


def _check_assembly(model, files: SplitFiles, spec: ModelSpec, probs: np.ndarray, n: int = 8) -> None:
    """The assembled model must give what the head gave on the cached features."""
    x = load_images(files.paths[:n], spec)
    got = np.asarray(model(x, training=False))
    diff = float(np.abs(got - probs[:n]).max())
    if diff > 1e-4:
        raise RuntimeError(f"internal error: the assembled model differs from the trained head by {diff:.2e}")


def _phase_model(run: _Run, strategy, phase: str, build: Callable[[], Any], learning_rate: float):
    """The model a phase trains: from its checkpoint (weights and optimizer state) when an
    interrupted run got that far, else built."""
    st = run.ckpt.state["phases"].get(phase)
    with strategy.scope():
        if st and st.get("model_file"):
            return load_keras_model(run.ckpt.file(st["model_file"]), compile=True)
        model = build()
        _compile(model, learning_rate)
        return model


def _fit(run: _Run, model, phase: str, epochs: int, data: Callable[[int], dict], class_weight, n_images: int,
         steps: int, timings: dict) -> None:
    EpochKeeper, ProgressCb = _keras_callbacks()
    keeper = EpochKeeper(phase, run, run.config.patience, epochs)
    st = keeper.st
    start = st["epoch"]
    if st["done"] or start >= epochs:
        if keeper.best_weights is not None:
            model.set_weights(keeper.best_weights)
        st["done"] = True
    else:
        run.say(f"Training {phase.replace('_', '-')}: up to {epochs} epochs"
                + (f", from epoch {start + 1}" if start else "") + " ...")
        with run.display(phase.replace("_", "-"), (epochs - start) * steps):
            model.fit(**data(start), epochs=epochs, initial_epoch=start, steps_per_epoch=steps, shuffle=False,
                      class_weight=class_weight, verbose=0, callbacks=[keeper, ProgressCb(run.advance)])
        st["done"] = True
        run.ckpt.commit(run.settings)
    timings[f"{phase}_seconds"] = st["seconds"]
    timings[f"{phase}_epochs"] = st["epoch"]
    timings[f"{phase}_images_per_second"] = round(n_images * st["epoch"] / max(st["seconds"], 1e-9), 2)


def _train_end_to_end(run: _Run, strategy, spec: ModelSpec, model, phase: str, train_used: SplitFiles,
                      val_files: SplitFiles, class_weight, timings: dict):
    cfg = run.config
    fine = phase == "fine_tune"

    def build():
        if fine:
            n = unfreeze_top(model, cfg.fine_tune_layers)
            whole = cfg.fine_tune_layers >= len(model.get_layer(BACKBONE_LAYER).layers)
            run.say(f"Fine-tuning {'the whole backbone' if whole else f'the top {cfg.fine_tune_layers} backbone layers'}"
                    f" ({n} with weights; BatchNormalization stays frozen).")
        return model

    steps = math.ceil(len(train_used) / cfg.batch_size)
    epochs = cfg.fine_tune_epochs if fine else cfg.head_epochs
    if finetune.uses_schedule(cfg, phase):
        run.say(finetune.epochs_note(cfg, steps))
    phase_model = _phase_model(run, strategy, phase, build, finetune.learning_rate(cfg, phase, steps, epochs))
    aug = finetune.augmentation(cfg, phase)

    def data(start: int) -> dict:
        train_ds = image_dataset(train_used.paths, spec, labels=train_used.labels, batch_size=cfg.batch_size,
                                 shuffle=True, seed=cfg.seed, augment=aug, epochs=(start, epochs))
        val_ds = image_dataset(val_files.paths, spec, labels=val_files.labels, batch_size=cfg.batch_size)
        return dict(x=train_ds, validation_data=val_ds)

    _fit(run, phase_model, phase, epochs, data, class_weight, len(train_used), steps, timings)
    return phase_model


# ------------------------------------------------------------------------------ strategies

def _make_strategy(name: str, notes: list[str]):
    import tensorflow as tf

    try:
        if name == "default":
            return tf.distribute.get_strategy()
        if name == "mirrored":
            gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
            if not gpus:
                notes.append("--strategy mirrored: no GPU found, mirroring over the CPU")
            return tf.distribute.MirroredStrategy(devices=gpus or ["/cpu:0"])
        workers = _cluster_size()
        if workers > 1:
            raise MlkitError(
                f"--strategy multi-worker: TF_CONFIG describes a cluster of {workers} tasks, but Keras "
                f"{_keras_version()} cannot train under tf.distribute.MultiWorkerMirroredStrategy across machines "
                "(keras-team/keras#20585). Train on one machine: --strategy mirrored uses all its GPUs")
        if workers == 0:
            notes.append("--strategy multi-worker without TF_CONFIG: running as a single worker")
        return tf.distribute.MultiWorkerMirroredStrategy()
    except (RuntimeError, ValueError) as exc:
        raise MlkitError(f"--strategy {name}: TensorFlow could not set it up ({exc}). For multi-worker, set "
                         "TF_CONFIG (cluster and this task) on every machine and start each in a fresh process") \
            from None


def _cluster_size() -> int:
    """Tasks in TF_CONFIG's cluster (0 when TF_CONFIG is unset)."""
    raw = os.environ.get("TF_CONFIG")
    if not raw:
        return 0
    try:
        cluster = json.loads(raw).get("cluster", {})
        return sum(len(tasks) for job, tasks in cluster.items() if job != "evaluator")
    except (ValueError, AttributeError, TypeError) as exc:
        raise MlkitError(f"TF_CONFIG is not valid JSON with a \"cluster\" ({exc})") from None


def _keras_version() -> str:
    import keras

    return keras.__version__


def _is_chief(strategy) -> bool:
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not getattr(resolver, "task_type", None):
        return True
    cluster = resolver.cluster_spec().as_dict()
    return resolver.task_type == "chief" or (resolver.task_type == "worker" and resolver.task_id == 0
                                             and "chief" not in cluster)


# ------------------------------------------------------------------------------ outputs

def _model_card(config: TrainConfig, spec: ModelSpec, name: str, info: DatasetInfo, weights: WeightsChoice,
                run: _Run, evaluation: EvalResult) -> ModelCard:
    phases = run.ckpt.state["phases"]
    summary = {
        "phases": {p: {"epochs": s.get("epoch"), "best_epoch": (s.get("best") or {}).get("epoch"),
                       "best_val_loss": (s.get("best") or {}).get("val_loss"),
                       "stopped_early": bool(s.get("stopped_early"))} for p, s in phases.items()},
        **{k: v for k, v in config.settings().items() if k not in ("dataset_dir", "output_dir", "name", "resume",
                                                                   "alpha", "image_size", "dropout", "resize_mode")},
        "class_weights": info.class_weights, "repeat": info.repeat,
    }
    metrics = {"split": evaluation.split, "images": evaluation.n, "accuracy": round(evaluation.accuracy, 6),
               "roc_auc": None if evaluation.roc_auc is None else round(evaluation.roc_auc, 6),
               "classes": [c.to_json() for c in evaluation.classes]}
    return ModelCard(spec=spec, name=name, dataset={**info.to_json(), "path": str(info.path.resolve())},
                     weights=weights.to_json(), training=summary, metrics=metrics, versions=library_versions())


def _write_outputs(folder: Path, model, card: ModelCard, config: TrainConfig, info: DatasetInfo,
                   weights: WeightsChoice, history: list[dict], timings: dict, evaluation: EvalResult,
                   resumed_from: str | None, notes: list[str]) -> list[str]:
    """Write everything into a staging folder, then swap it in place of ``folder``."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    for stale in (*folder.parent.glob(f".{folder.name}.partial-*"), *folder.parent.glob(f".{folder.name}.old-*")):
        shutil.rmtree(stale, ignore_errors=True)  # left by a run killed while writing its outputs
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.partial-", dir=folder.parent))
    try:
        save_keras(model, staging / KERAS_FILE)
        atomic_write_text(staging / LABELS_FILE, labels_text(card.spec.labels))
        card.write(staging)
        training = {"format": 1, "settings": config.settings(), "dataset": info.to_json(), "weights": weights.to_json(),
                    "history": history, "timings": timings, "resumed_from": resumed_from,
                    "evaluation": evaluation.to_json(), "notes": notes, "versions": card.versions}
        atomic_write_text(staging / TRAINING_JSON, json.dumps(training, indent=2) + "\n")
        title = f"{card.name}: MobileNetV2 alpha {card.spec.alpha}, {card.spec.image_size} px"
        atomic_write_bytes(staging / PLOT_FILES["curves"], plots.learning_curves(history, title))
        atomic_write_bytes(staging / PLOT_FILES["confusion"], plots.confusion_matrix_plot(
            evaluation.confusion, card.spec.labels, f"{evaluation.split} split ({evaluation.n} images)"))
        wrong = evaluation.misclassified()
        shown = wrong[:16]
        images = load_images([evaluation.paths[i] for i in shown], card.spec) if len(shown) else None
        labels = card.spec.labels
        atomic_write_bytes(staging / PLOT_FILES["misclassified"], plots.misclassified_grid(
            [evaluation.paths[i] for i in wrong], [labels[evaluation.y_true[i]] for i in wrong],
            [labels[evaluation.y_pred[i]] for i in wrong],
            [float(evaluation.probs[i, evaluation.y_pred[i]]) for i in wrong], images,
            title=f"misclassified {evaluation.split} images ({len(wrong)} of {evaluation.n})"))
        files = sorted(p.name for p in staging.iterdir())
        usual_permissions(staging)
        swap_in(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return files


