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

Scaling out uses TensorFlow's own engine, ``tf.distribute`` (``strategy="mirrored"``
or ``"multi-worker"``; see ``toolkit.training.distribution``).

This module puts the run together; the parts live beside it: ``config`` (TrainConfig,
TrainResult), ``checkpoints`` (the resumable state, its fingerprint, what an interrupted run
kept), ``phases`` (the head, fine-tuning, the final model), ``callbacks`` (what happens
after each epoch and step), ``distribution`` (the strategy) and ``outputs`` (the model
folder's files).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from . import finetune
from .checkpoints import Checkpoints, describe_progress, fingerprint, interrupted_message
from .config import (FAST_HEAD_EPOCHS, HEAD_EPOCHS, STRATEGIES, EpochHook, TrainConfig, TrainingInterrupted,
                     TrainResult)
from .data import check_image_files, decode_errors_named, read_dataset, split_files
from .distribution import is_chief, make_strategy
from ..dataset.folder import FolderSplit
from ..errors import MlkitError
from .evaluate import score
from .model import WeightsChoice, resolve_weights
from .model_folder import check_output, write_error
from .outputs import PLOT_FILES, TRAINING_JSON, model_card, training_record, write_outputs
from .phases import Splits, train_model
from ..progress import SILENT, Reporter
from .run import Run
from .spec import KERAS_FILE, ModelSpec

__all__ = ["FAST_HEAD_EPOCHS", "HEAD_EPOCHS", "PLOT_FILES", "STRATEGIES", "TRAINING_JSON", "TrainConfig",
           "TrainResult", "TrainingInterrupted", "interrupted_message", "train"]

def train(config: TrainConfig, reporter: Reporter = SILENT, on_epoch_end: EpochHook | None = None) -> TrainResult:
    """Train, evaluate and save a classifier; see the module doc.

    ``reporter`` receives progress messages and bars; ``on_epoch_end(phase, epoch, row)`` is
    called after each epoch's checkpoint is written (an exception it raises stops training
    there, e.g. KeyboardInterrupt; running again resumes). A KeyboardInterrupt leaves as
    ``TrainingInterrupted``, whose message says what was kept. Raises MlkitError on bad
    input before anything is written, and for a full or read-only disk."""
    t_start = time.perf_counter()
    config = finetune.with_quality(config)
    config.validate()
    notes: list[str] = []
    splits, exclusion = _read_splits(config, notes, reporter)
    spec, weights = _model_spec(config, splits, notes)
    name = config.name or splits.info.name
    check_output(Path(config.output_dir) / name, config.overwrite)
    if config.augment and config.use_fast_path:
        notes.append("--fast with --augment: the head trains on unaugmented features; augmentation applies to "
                     "fine-tuning")
    strategy = make_strategy(config.strategy, notes)
    out_root, scratch = _output_root(config, strategy)
    run = Run(config, reporter, on_epoch_end)
    if exclusion is not None:  # what is left out shapes the run, not the file's name
        run.settings["exclude"] = exclusion.to_json()
    resumed_from = _open_checkpoint(run, splits, out_root / f".{name}.checkpoint")
    _seed_everything(config.seed, notes)
    timings: dict[str, float] = {}
    try:
        with decode_errors_named(splits.paths):
            final, probs = train_model(run, strategy, spec, weights, splits, timings)
        evaluated = splits.evaluated
        evaluation = score(spec, evaluated.labels, probs, paths=evaluated.paths,
                           model=str(out_root / name / KERAS_FILE), data=str(splits.info.path), split=evaluated.split)
        timings["total_seconds"] = round(time.perf_counter() - t_start, 3)
        history = list(run.ckpt.state["history"])
        card = model_card(config, spec, name, splits.info, weights, run.ckpt.state["phases"], evaluation)
        record = training_record(config, splits.info, weights, history, timings, evaluation, resumed_from, notes,
                                 card.versions)
        files = write_outputs(out_root / name, final, card, record, evaluation)
        run.ckpt.remove()
    except KeyboardInterrupt as exc:   # Ctrl-C, or an on_epoch_end hook that stops the run
        if isinstance(exc, TrainingInterrupted):
            raise
        raise TrainingInterrupted(interrupted_message(run.ckpt)) from None
    except OSError as exc:   # a full or read-only disk under the checkpoint or the model folder
        error = write_error(out_root / name, exc, run.model)
        if error is None:
            raise
        raise error from None
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    return TrainResult(out_root / name, name, card, history, timings, evaluation, resumed_from, files, notes)


def _read_splits(config: TrainConfig, notes: list[str], reporter: Reporter):
    """(the train, val and test images, the exclusion applied or None); MlkitError when
    they cannot be trained on. What the user should know goes to ``notes``."""
    info = read_dataset(config.dataset_dir, FolderSplit(config.val, config.test, config.seed), check_decodes=True,
                        reporter=reporter)
    train_files = split_files(info, "train")
    val_files = split_files(info, "val", require_all_classes=False)
    exclusion = None
    if config.exclude is not None:
        from .review import exclude_from_splits

        train_files, val_files, exclusion = exclude_from_splits(config.exclude, info, train_files, val_files)
        notes.append(exclusion.note)
    try:
        test_files = split_files(info, "test", require_all_classes=False)
    except MlkitError:
        test_files = None
        notes.append("the test split is empty: the report and plots below are on the validation split")
    splits = Splits(info, train_files, val_files, test_files)
    check_image_files(splits.paths)
    if config.batch_size > len(train_files):
        raise MlkitError(f"the train split ({len(train_files)} images) can't be smaller than --batch-size "
                         f"({config.batch_size}): set a smaller --batch-size or add data")
    return splits, exclusion


def _model_spec(config: TrainConfig, splits: Splits, notes: list[str]) -> tuple[ModelSpec, WeightsChoice]:
    spec = ModelSpec(labels=splits.info.classes, alpha=config.alpha, image_size=config.image_size,
                     dropout=config.dropout, resize_mode=config.resize_mode)
    weights = resolve_weights(config.weights, spec)
    if weights.note:
        notes.append(weights.note)
    return spec, weights


def _output_root(config: TrainConfig, strategy) -> tuple[Path, Path | None]:
    """(where the model folder and checkpoint go, a scratch folder to remove at the end or
    None): other workers than the chief compute the same, but write into a scratch folder."""
    if is_chief(strategy):
        return Path(config.output_dir), None
    scratch = Path(tempfile.mkdtemp(prefix="mlkit-worker-"))
    return scratch, scratch


def _open_checkpoint(run: Run, splits: Splits, folder: Path) -> str | None:
    """Give ``run`` its checkpoint, resumed when a matching one is there: how far that run
    got ("head epoch 3"), or None."""
    run.ckpt = Checkpoints(folder, fingerprint(run.settings, splits.info))
    resumed = run.ckpt.open(run.config.resume, run.settings, run.say)
    resumed_from = describe_progress(run.ckpt.state) if resumed else None
    if resumed_from:
        run.say(f"Resuming the interrupted run ({resumed_from}).")
    return resumed_from


def _seed_everything(seed: int, notes: list[str]) -> None:
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    try:
        tf.config.experimental.enable_op_determinism()
    except Exception:  # noqa: BLE001 - determinism is best effort on exotic setups
        notes.append("TensorFlow op determinism could not be enabled; results may vary slightly between runs")
