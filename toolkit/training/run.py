"""``Run``: what the steps of one ``train`` call share, and how they report through its
``Reporter``."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from ..progress import Bar, Reporter
from .callbacks import epoch_line, fmt
from .checkpoints import Checkpoints
from .config import EpochHook, TrainConfig


class Run:
    """State shared by the steps of one ``train`` call: the config and its recorded
    settings, the checkpoint, the model once built, and the bar on show."""

    def __init__(self, config: TrainConfig, reporter: Reporter, on_epoch_end: EpochHook | None):
        self.config, self.reporter, self.on_epoch_end = config, reporter, on_epoch_end
        self.settings = config.settings()
        self.ckpt: Checkpoints
        self.model = None               # the classifier once built (sizes a full disk's message)
        self._bar: Bar | None = None
        self._step = 1.0
        self._left = 0.0

    def say(self, text: str) -> None:
        self.reporter.note(text)

    @contextmanager
    def display(self, description: str, total: float, *, unit: str, step: float = 1.0) -> Iterator[None]:
        """A bar of ``total`` ``unit`` while the block runs; each ``advance`` is ``step`` of them."""
        with self.reporter.bar(description, total, unit=unit) as bar:
            self._bar, self._step, self._left = bar, step, total
            try:
                yield
            finally:
                self._bar = None

    def advance(self) -> None:
        """One step (a batch) done."""
        if self._bar is not None:
            amount = min(self._step, self._left)   # a last, partial batch does not overshoot
            self._left -= amount
            self._bar.advance(amount)

    def show_epoch(self, row: dict) -> None:
        if self._bar is not None:
            self._bar.describe(f"val_acc {fmt(row['val_accuracy'])}")
        self.say(epoch_line(row))
