"""What ``train`` does at the end of every epoch and step, and the Keras callbacks that call it.

``EpochKeeper`` is early stopping on the validation loss that always ends a phase with its
best weights, plus the per-epoch checkpoint and history row. ``keras_callbacks`` wraps it
(and the progress bar's step) in Keras callbacks; Keras is imported only then.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .run import Run


class EpochKeeper:
    """One phase's epochs: its state in the checkpoint (``st``: epoch reached, done,
    early-stopping wait, best epoch, seconds) and its best weights so far."""

    def __init__(self, phase: str, run: Run, patience: int, epochs: int):
        self.phase, self.run, self.patience, self.epochs = phase, run, patience, epochs
        st = run.ckpt.state["phases"].setdefault(phase, {"epoch": 0, "done": False, "wait": 0, "best": None,
                                                         "seconds": 0.0})
        self.st = st
        self.best_weights = run.ckpt.read_weights(st["best"]["file"]) if st.get("best") else None
        self.t0 = time.perf_counter()

    def begin_epoch(self) -> None:
        self.t0 = time.perf_counter()

    def end_epoch(self, model, epoch: int, logs: dict) -> None:
        """Record epoch ``epoch`` (0-based): history row, best weights, checkpoint; stop
        ``model`` when the validation loss has not improved for ``patience`` epochs."""
        seconds = time.perf_counter() - self.t0
        row = epoch_row(self.phase, epoch + 1, logs, seconds)
        self.run.ckpt.state["history"].append(row)
        self._track_best(model, epoch, logs.get("val_loss"))
        stop = self.st["wait"] >= self.patience
        self.st["epoch"] = epoch + 1
        self.st["done"] = stop or epoch + 1 >= self.epochs
        self.st["stopped_early"] = stop and epoch + 1 < self.epochs
        self.st["seconds"] = round(self.st.get("seconds", 0.0) + seconds, 3)
        self.st["model_file"] = self.run.ckpt.write_model(f"{self.phase}-e{epoch + 1:03d}.keras", model)
        self.run.ckpt.commit(self.run.settings)
        self.run.show_epoch(row)
        if stop:
            model.stop_training = True
        if self.run.on_epoch_end:
            self.run.on_epoch_end(self.phase, epoch + 1, row)

    def _track_best(self, model, epoch: int, val) -> None:
        best = self.st["best"]
        if val is not None and math.isfinite(val) and (best is None or val < best["val_loss"]):
            self.best_weights = model.get_weights()
            name = self.run.ckpt.write_weights(f"{self.phase}-best-e{epoch + 1:03d}.npz", self.best_weights)
            self.st["best"] = {"val_loss": float(val), "epoch": epoch + 1, "file": name}
            self.st["wait"] = 0
        else:
            self.st["wait"] += 1

    def restore_best(self, model) -> None:
        """Give ``model`` the weights of the phase's best epoch (when there was one)."""
        if self.best_weights is not None:
            model.set_weights(self.best_weights)


def keras_callbacks(keeper: EpochKeeper, advance: Callable[[], None]) -> list:
    """Keras callbacks driving ``keeper`` each epoch and ``advance`` each training step."""
    import keras

    class Keeper(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            keeper.begin_epoch()

        def on_epoch_end(self, epoch, logs=None):
            keeper.end_epoch(self.model, epoch, logs or {})

        def on_train_end(self, logs=None):
            keeper.restore_best(self.model)

    class Progress(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            advance()

    return [Keeper(), Progress()]


def epoch_row(phase: str, epoch: int, logs: dict, seconds: float) -> dict:
    """The history row of one epoch (``epoch`` counts from 1)."""
    return {"phase": phase, "epoch": epoch, **{k: _num(logs.get(k)) for k in
            ("loss", "accuracy", "val_loss", "val_accuracy")}, "seconds": round(seconds, 3)}


def epoch_line(row: dict) -> str:
    """An epoch's row as the line shown to the user."""
    return (f"{row['phase']} epoch {row['epoch']}: loss {fmt(row['loss'])} acc {fmt(row['accuracy'])} "
            f"val_loss {fmt(row['val_loss'])} val_acc {fmt(row['val_accuracy'])} ({row['seconds']:.1f} s)")


def fmt(v) -> str:
    return "-" if v is None else f"{v:.4f}"


def _num(v) -> float | None:
    return None if v is None else round(float(v), 6)
