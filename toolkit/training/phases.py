"""The training phases of ``train`` and how they make the final model.

The head on features computed once (the fast path), or on images through the frozen
backbone every epoch; then, optionally, fine-tuning. Every phase resumes from its
checkpoint (``toolkit.training.checkpoints``) and ends with the weights of its best epoch
(``toolkit.training.callbacks``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import finetune
from .data import DatasetInfo, SplitFiles, class_weight_dict, image_dataset, load_images, oversample
from .epochs import epoch_batches
from .model import (BACKBONE_LAYER, WeightsChoice, build_classifier, build_head, copy_head, drop_weight_penalties,
                    feature_extractor, load_keras_model, predict_batches, unfreeze_top)
from .run import Run
from .spec import ModelSpec


@dataclass
class Splits:
    """The images a run trains on, validates on and evaluates on."""

    info: DatasetInfo
    train: SplitFiles
    val: SplitFiles
    test: SplitFiles | None

    @property
    def evaluated(self) -> SplitFiles:
        """The split the final report is on: test, else val."""
        return self.test or self.val

    @property
    def paths(self) -> list:
        return self.train.paths + self.val.paths + (self.test.paths if self.test else [])


def train_model(run: Run, strategy, spec: ModelSpec, weights: WeightsChoice, splits: Splits,
                timings: dict) -> tuple[Any, np.ndarray]:
    """Build, train and assemble the classifier: (the final model, without optimizer or
    weight penalties; its probabilities on ``splits.evaluated``)."""
    import keras

    cfg = run.config
    with strategy.scope():
        model = run.model = build_classifier(spec, weights, l2=cfg.l2)
    run.ckpt.check_backbone(model)
    train_used = oversample(splits.train, splits.info)
    class_weight = class_weight_dict(splits.info)
    probs = None
    if cfg.use_fast_path:
        probs = _fast_head(run, strategy, spec, model, splits, train_used, class_weight, timings)
    else:
        model = _train_end_to_end(run, strategy, spec, model, "head", train_used, splits.val, class_weight,
                                  timings)
    if cfg.fine_tunes:
        model = _train_end_to_end(run, strategy, spec, model, "fine_tune", train_used, splits.val, class_weight,
                                  timings)
    final = keras.Model(model.input, model.output, name=model.name)  # same layers, no optimizer
    drop_weight_penalties(final)
    t0 = time.perf_counter()
    evaluated = splits.evaluated
    if probs is None:
        probs = predict_batches(final, image_dataset(evaluated.paths, spec, batch_size=cfg.batch_size, cache=False))
    else:
        _check_assembly(final, evaluated, spec, probs)
    timings["evaluate_seconds"] = round(time.perf_counter() - t0, 3)
    return final, probs


def _fast_head(run: Run, strategy, spec: ModelSpec, model, splits: Splits, train_used: SplitFiles, class_weight,
               timings: dict) -> np.ndarray | None:
    """The fast path: the head trained on cached features and copied into ``model``; the
    head's probabilities on the evaluated split when its features were computed (None else)."""
    evaluated = splits.evaluated
    wanted = {"train": splits.train, "val": splits.val,
              **({"test": splits.test} if splits.test and not run.config.fine_tunes else {})}
    feats = _features(run, model, spec, wanted, timings)
    head = _train_head_on_features(run, strategy, spec, feats, splits.train, train_used, splits.val,
                                   class_weight, timings)
    copy_head(head, model)
    if evaluated.split in feats:  # the model's output there is the head's on its features
        return predict_batches(head, [feats[evaluated.split]])
    return None


def _compile(model, learning_rate: float) -> None:
    import keras

    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])


def _features(run: Run, model, spec: ModelSpec, splits: dict[str, SplitFiles],
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
        with run.display("features", len(paths), unit="img", step=run.config.batch_size):
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


def _train_head_on_features(run: Run, strategy, spec: ModelSpec, feats: dict[str, np.ndarray],
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


def _phase_model(run: Run, strategy, phase: str, build: Callable[[], Any], learning_rate: float):
    """The model a phase trains: from its checkpoint (weights and optimizer state) when an
    interrupted run got that far, else built."""
    st = run.ckpt.state["phases"].get(phase)
    with strategy.scope():
        if st and st.get("model_file"):
            return load_keras_model(run.ckpt.file(st["model_file"]), compile=True)
        model = build()
        _compile(model, learning_rate)
        return model


def _fit(run: Run, model, phase: str, epochs: int, data: Callable[[int], dict], class_weight, n_images: int,
         steps: int, timings: dict) -> None:
    from .callbacks import EpochKeeper, keras_callbacks

    keeper = EpochKeeper(phase, run, run.config.patience, epochs)
    st = keeper.st
    start = st["epoch"]
    if st["done"] or start >= epochs:
        keeper.restore_best(model)
        st["done"] = True
    else:
        run.say(f"Training {phase.replace('_', '-')}: up to {epochs} epochs"
                + (f", from epoch {start + 1}" if start else "") + " ...")
        with run.display(phase.replace("_", "-"), epochs - start, unit="epoch", step=1 / steps):
            model.fit(**data(start), epochs=epochs, initial_epoch=start, steps_per_epoch=steps, shuffle=False,
                      class_weight=class_weight, verbose=0, callbacks=keras_callbacks(keeper, run.advance))
        st["done"] = True
        run.ckpt.commit(run.settings)
    timings[f"{phase}_seconds"] = st["seconds"]
    timings[f"{phase}_epochs"] = st["epoch"]
    timings[f"{phase}_images_per_second"] = round(n_images * st["epoch"] / max(st["seconds"], 1e-9), 2)


def _train_end_to_end(run: Run, strategy, spec: ModelSpec, model, phase: str, train_used: SplitFiles,
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
