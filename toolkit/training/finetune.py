"""``--quality``: what ``train`` does beyond its settings.

``fast`` (the default): the head on the frozen backbone's features, computed once
(``toolkit.training.train``'s fast path); seconds on a CPU.

``best``: the same head first (the warm-up: a trained head keeps the first fine-tuning
steps from wrecking the pretrained features with large, random-head gradients), then the
whole backbone is fine-tuned with BatchNormalization kept in inference mode (see
``toolkit.training.model``), on strongly augmented images (``toolkit.training.augment``: random resized
crops, flips, colour jitter), with Adam under a cosine learning-rate schedule that starts
with a one-epoch linear warm-up, and early stopping on the validation loss (the phase
ends with its best epoch's weights). Checkpoints, resume, outputs and export are those of
any ``train`` run: ``best`` only fills in the fine-tuning settings below and chooses the
augmentation and the schedule of that phase.

The preset's values were fixed before measuring (common fine-tuning practice for a small
photo set, sized to the CPU budget: about 10 minutes on 2 cores for ~500 photos at
224 px); a setting the caller changed from ``TrainConfig``'s default is kept as given.
Label smoothing and mixup were considered and left out: both need one-hot targets, while
the trainer's sparse labels, class weights and saved loss are shared with ``fast``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..errors import MlkitError

QUALITIES = ("fast", "best")
WHOLE_BACKBONE = 1000   # more than MobileNetV2's 154 layers: unfreeze_top then trains them all

# What ``best`` sets, unless the caller changed the setting from its default.
BEST_PRESET: dict[str, Any] = {
    "fine_tune_layers": WHOLE_BACKBONE,
    "fine_tune_epochs": 10,
    "fine_tune_learning_rate": 1e-4,   # the cosine schedule's peak
    "patience": 4,
}
WARMUP_EPOCHS = 1
FINAL_LR_FRACTION = 0.01   # the cosine ends at 1 % of the peak


def check_quality(quality: str) -> None:
    if quality not in QUALITIES:
        raise MlkitError(f"unknown --quality {quality!r}; choose fast (the head on frozen features, seconds) or "
                         "best (fine-tunes the whole backbone with augmentation, minutes)")


def with_quality(config):
    """``config`` with the settings its quality implies filled in (a new object)."""
    check_quality(config.quality)
    if config.quality != "best":
        return config
    defaults = {f.name: f.default for f in dataclasses.fields(config)}
    changes = {k: v for k, v in BEST_PRESET.items() if getattr(config, k) == defaults[k]}
    return dataclasses.replace(config, **changes)


def uses_schedule(config, phase: str) -> bool:
    return config.quality == "best" and phase == "fine_tune"


def learning_rate(config, phase: str, steps_per_epoch: int, epochs: int):
    """The Adam learning rate of ``phase``: a float, or for ``best``'s fine-tuning a
    cosine schedule (Loshchilov & Hutter 2017, SGDR) with a linear warm-up."""
    peak = config.fine_tune_learning_rate if phase == "fine_tune" else config.learning_rate
    if not uses_schedule(config, phase):
        return peak
    import keras

    warmup = max(1, WARMUP_EPOCHS * steps_per_epoch)
    total = max(warmup + 1, epochs * steps_per_epoch)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=peak * FINAL_LR_FRACTION, decay_steps=total - warmup, alpha=FINAL_LR_FRACTION,
        warmup_target=peak, warmup_steps=warmup)


def augmentation(config, phase: str):
    """The training augmentation of ``phase`` (None: none)."""
    if uses_schedule(config, phase):
        from .augment import strong_augmentation

        return strong_augmentation(config.image_size, seed=config.seed)
    if config.augment:
        from .data import augmentation as mild

        return mild(config.seed)
    return None


def epochs_note(config, steps_per_epoch: int) -> str:
    return (f"--quality best: whole backbone fine-tuned for up to {config.fine_tune_epochs} epochs "
            f"({steps_per_epoch} steps each), cosine learning rate peaking at {config.fine_tune_learning_rate:g}, "
            "random resized crops, flips and colour jitter")
